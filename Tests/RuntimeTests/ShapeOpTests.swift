import Foundation
import Testing
@testable import Runtime

@Suite struct ShapeOpTests {
    let x = Tensor((0..<24).map { Float($0) }, shape: [2, 3, 4])

    @Test func shapeWithStartAndEnd() throws {
        #expect(try runOp("Shape", [x])[0].int64s() == [2, 3, 4])
        #expect(try runOp("Shape", [x], attributes: attrs(attr("start", int: -2)))[0].int64s() == [3, 4])
        #expect(try runOp("Shape", [x], attributes: attrs(attr("start", int: 1), attr("end", int: 2)))[0].int64s() == [3])
    }

    @Test func reshapeCopiesZerosAndInfersMinusOne() throws {
        let r = try runOp("Reshape", [x, Tensor(int64s: [Int64(0), -1], shape: [2])])[0]
        #expect(r.shape == [2, 12])
        #expect(r.floats() == x.floats())
        #expect(throws: RuntimeError.self) { try runOp("Reshape", [x, Tensor(int64s: [Int64(5), -1], shape: [2])]) }
        let z = try runOp("Reshape", [Tensor(dtype: .float, shape: [0, 4]), Tensor(int64s: [Int64(0), 2, 2], shape: [3])], attributes: attrs(attr("allowzero", int: 1)))[0]
        #expect(z.shape == [0, 2, 2])
    }

    /// Reshape of stacked rows (`Session.runBatch`): each row `[1, …]` reshaped as alone, the
    /// first axis the rows again; refused where a row's own reshape moves its first axis.
    @Test func reshapeOfStackedRowsReshapesEachRow() throws {
        let op = ReshapeOperator(allowZero: false)
        let rows = Tensor((0..<18).map { Float($0) }, shape: [3, 1, 6])      // three rows [1, 1, 6]
        let shape = Tensor(int64s: [Int64(0), -1, 2, 3], shape: [4])          // 0 copies the row's 1
        #expect(op.stacks([rows, shape]))
        let r = try op.runStacked([rows, shape])[0]
        #expect(r.shape == [3, 1, 2, 3])
        #expect(r.floats() == rows.floats())
        let alone = try op.run([Tensor((0..<6).map { Float($0) }, shape: [1, 1, 6]), shape])[0]
        #expect(alone.shape == [1] + r.shape.dropFirst())
        #expect(!op.stacks([rows, Tensor(int64s: [Int64(6), 1], shape: [2])]), "a row [1, 1, 6] → [6, 1] moves the first axis")
        #expect(!op.stacks([rows, Tensor(int64s: [Int64(5), -1], shape: [2])]), "no such shape")
        #expect(Session.equalSmallIntegers([shape, Tensor(int64s: [Int64(0), -1, 2, 3], shape: [4])]))
        #expect(!Session.equalSmallIntegers([shape, Tensor(int64s: [Int64(0), -1, 3, 2], shape: [4])]))
        #expect(!Session.equalSmallIntegers([shape, nil]))
    }

    @Test func unsqueezeAndSqueezeByOpset() throws {
        let u = try runOp("Unsqueeze", [x, Tensor(int64s: [Int64(-1), 0], shape: [2])])[0]
        #expect(u.shape == [1, 2, 3, 4, 1])
        let u11 = try runOp("Unsqueeze", [x], attributes: attrs(attr("axes", ints: [1])), opset: 11)[0]
        #expect(u11.shape == [2, 1, 3, 4])
        #expect(try runOp("Squeeze", [u, Tensor(int64s: [Int64(0)], shape: [1])])[0].shape == [2, 3, 4, 1])
        #expect(try runOp("Squeeze", [u])[0].shape == [2, 3, 4])
        #expect(throws: RuntimeError.self) { try runOp("Squeeze", [x, Tensor(int64s: [Int64(1)], shape: [1])]) }
    }

    @Test func transposeMovesAxes() throws {
        let t = try runOp("Transpose", [x], attributes: attrs(attr("perm", ints: [2, 0, 1])))[0]
        #expect(t.shape == [4, 2, 3])
        // out[k, i, j] = x[i, j, k] = i*12 + j*4 + k
        let v = t.floats()
        for k in 0..<4 { for i in 0..<2 { for j in 0..<3 {
            #expect(v[(k * 2 + i) * 3 + j] == Float(i * 12 + j * 4 + k))
        } } }
        #expect(try runOp("Transpose", [Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])])[0].floats() == [1, 4, 2, 5, 3, 6])
    }

    /// Copies of 256 KB and more split their rows over the pool (`stridedCopy`): a prompt's
    /// attention transpose ([1, S, H, D] → [1, H, S, D]) in float32 and float16, an odd shape
    /// whose rows are single elements, and a reversed Slice, each against index arithmetic.
    @Test func largeStridedCopiesAreExact() throws {
        for (dtype, shape, perm) in [(DataType.float, [1, 157, 14, 64], [0, 2, 1, 3]),
                                     (DataType.float16, [1, 157, 14, 64], [0, 2, 1, 3]),
                                     (DataType.float, [3, 173, 131], [2, 0, 1])] {
            let n = shape.reduce(1, *)
            let x = try castTensor(Tensor((0..<n).map { Float($0 % 2039) }, shape: shape), to: dtype)
            #expect(n * dtype.storageSize! >= 1 << 18)
            let t = try runOp("Transpose", [x], attributes: attrs(attr("perm", ints: perm)))[0]
            #expect(t.shape == perm.map { shape[$0] })
            let inStrides = shape.indices.map { shape[($0 + 1)...].reduce(1, *) }
            let out = t.floats(), outShape = t.shape
            var ok = true
            for o in 0..<n {
                var rest = o, source = 0
                for axis in outShape.indices.reversed() {
                    source += rest % outShape[axis] * inStrides[perm[axis]]
                    rest /= outShape[axis]
                }
                if out[o] != Float(source % 2039) { ok = false; break }
            }
            #expect(ok, "\(dtype) \(shape) perm \(perm)")
        }
        let rows = 600, columns = 300
        let x = Tensor((0..<(rows * columns)).map(Float.init), shape: [rows, columns])
        let reversed = try runOp("Slice", [x, Tensor(int64s: [-1], shape: [1]), Tensor(int64s: [Int64.min], shape: [1]),
                                          Tensor(int64s: [0], shape: [1]), Tensor(int64s: [-1], shape: [1])])[0]
        #expect(reversed.shape == [rows, columns])
        let values = reversed.floats()
        let exact = (0..<rows).allSatisfy { r in (0..<columns).allSatisfy { c in values[r * columns + c] == Float((rows - 1 - r) * columns + c) } }
        #expect(exact)
    }

    /// A permutation that moves only axes of length 1 (a decode step's [1, 1, H, D] → [1, H, 1, D])
    /// leaves the elements in place; one that reorders longer axes does not.
    @Test(arguments: [([1, 1, 3, 4], [0, 2, 1, 3]), ([3, 1, 4], [1, 0, 2]), ([1, 3, 1, 4], [2, 1, 3, 0]),
                      ([2, 1, 3], [2, 1, 0]), ([1, 2, 3], [0, 2, 1])])
    func transposeAroundLengthOneAxes(_ shape: [Int], _ perm: [Int]) throws {
        let n = shape.reduce(1, *)
        let x = Tensor((0..<n).map(Float.init), shape: shape)
        let t = try runOp("Transpose", [x], attributes: attrs(attr("perm", ints: perm)))[0]
        #expect(t.shape == perm.map { shape[$0] })
        // The reference: out[index] = x[index permuted back], from the definition.
        let outShape = perm.map { shape[$0] }
        var expected = [Float](repeating: 0, count: n)
        for flat in 0..<n {
            var rest = flat, inIndex = [Int](repeating: 0, count: shape.count)
            for a in stride(from: outShape.count - 1, through: 0, by: -1) {
                inIndex[perm[a]] = rest % outShape[a]
                rest /= outShape[a]
            }
            // x holds its own flat index: the row-major position of inIndex.
            expected[flat] = Float(zip(inIndex, shape).reduce(0) { $0 * $1.1 + $1.0 })
        }
        #expect(t.floats() == expected, "\(shape) perm \(perm)")
    }

    @Test func concatWithNegativeAxisAndEmptyPast() throws {
        // An empty past [1, 2, 0, 4] joined with one new step [1, 2, 1, 4] on axis -2.
        let past = Tensor(dtype: .float, shape: [1, 2, 0, 4])
        let new = Tensor((0..<8).map { Float($0) }, shape: [1, 2, 1, 4])
        let y = try runOp("Concat", [past, new], attributes: attrs(attr("axis", int: -2)))[0]
        #expect(y.shape == [1, 2, 1, 4])
        #expect(y.floats() == new.floats())
        let a = Tensor([1, 2, 3, 4], shape: [2, 2]), b = Tensor([5, 6], shape: [2, 1])
        #expect(try runOp("Concat", [a, b], attributes: attrs(attr("axis", int: 1)))[0].floats() == [1, 2, 5, 3, 4, 6])
    }

    @Test func sliceClampsAndStepsBackwards() throws {
        let v = Tensor((0..<10).map { Float($0) }, shape: [10])
        func slice(_ s: Int64, _ e: Int64, step: Int64 = 1) throws -> [Float] {
            try runOp("Slice", [v, Tensor(int64s: [s], shape: [1]), Tensor(int64s: [e], shape: [1]), Tensor(int64s: [Int64(0)], shape: [1]), Tensor(int64s: [step], shape: [1])])[0].floats()
        }
        #expect(try slice(2, 5) == [2, 3, 4])
        #expect(try slice(-3, Int64.max) == [7, 8, 9])
        #expect(try slice(8, -100, step: -3) == [8, 5, 2])
        #expect(try slice(Int64.max, Int64.min, step: -1) == (0..<10).reversed().map(Float.init))
        #expect(try slice(5, 2) == [])
        // Steps near Int64's ends take one element (the count's arithmetic must not overflow).
        #expect(try slice(2, 9, step: Int64.max) == [2])
        #expect(try slice(8, 0, step: -Int64.max) == [8])
        // 2-D: rows 1..<2, columns from the end.
        let m = try runOp("Slice", [x, Tensor(int64s: [Int64(1), -1], shape: [2]), Tensor(int64s: [Int64(2), -5], shape: [2]),
                                    Tensor(int64s: [Int64(1), 2], shape: [2]), Tensor(int64s: [Int64(1), -2], shape: [2])])[0]
        #expect(m.shape == [2, 1, 2])
        #expect(m.floats() == [7, 5, 19, 17])
    }

    @Test func gatherWithNegativeIndicesAndAxes() throws {
        let g = try runOp("Gather", [x, Tensor(int64s: [Int64(-1), 0], shape: [2])], attributes: attrs(attr("axis", int: -1)))[0]
        #expect(g.shape == [2, 3, 2])
        #expect(Array(g.floats().prefix(4)) == [3, 0, 7, 4])
        let s = try runOp("Gather", [Tensor(int64s: [Int64(5), 6, 7], shape: [3]), Tensor.scalar(Int64(1))])[0]
        #expect(s.shape == [] && s.int64s() == [6])
        #expect(throws: RuntimeError.self) { try runOp("Gather", [x, Tensor(int64s: [Int64(2)], shape: [1])]) }
    }

    @Test func expandTileAndConstantOfShape() throws {
        let e = try runOp("Expand", [Tensor([1, 2], shape: [2, 1]), Tensor(int64s: [Int64(2), 3], shape: [2])])[0]
        #expect(e.shape == [2, 3] && e.floats() == [1, 1, 1, 2, 2, 2])
        // Expand is bidirectional: shape [1] keeps the input's larger dims.
        #expect(try runOp("Expand", [Tensor([1, 2], shape: [2]), Tensor(int64s: [Int64(1)], shape: [1])])[0].shape == [2])
        let t = try runOp("Tile", [Tensor([1, 2], shape: [1, 2]), Tensor(int64s: [Int64(2), 2], shape: [2])])[0]
        #expect(t.shape == [2, 4] && t.floats() == [1, 2, 1, 2, 1, 2, 1, 2])
        let c = try runOp("ConstantOfShape", [Tensor(int64s: [Int64(2), 0], shape: [2])])[0]
        #expect(c.shape == [2, 0] && c.dtype == .float)
    }

    @Test func splitByInputAndByOutputCount() throws {
        let v = Tensor((0..<5).map { Float($0) }, shape: [5])
        let parts = try runOp("Split", [v, Tensor(int64s: [Int64(2), 3], shape: [2])], outputs: 2)
        #expect(parts[0].floats() == [0, 1] && parts[1].floats() == [2, 3, 4])
        let even = try runOp("Split", [v], attributes: attrs(attr("num_outputs", int: 2)), outputs: 2)
        #expect(even[0].floats() == [0, 1, 2] && even[1].floats() == [3, 4])
    }

    @Test func rangeTriluCumSumScatterND() throws {
        #expect(try runOp("Range", [Tensor.scalar(Int64(0)), Tensor.scalar(Int64(7)), Tensor.scalar(Int64(3))])[0].int64s() == [0, 3, 6])
        #expect(try runOp("Range", [Tensor.scalar(Float(1)), Tensor.scalar(Float(0)), Tensor.scalar(Float(-0.25))])[0].floats() == [1, 0.75, 0.5, 0.25])
        let ones = Tensor([Float](repeating: 1, count: 9), shape: [3, 3])
        #expect(try runOp("Trilu", [ones, Tensor.scalar(Int64(1))])[0].floats() == [0, 1, 1, 0, 0, 1, 0, 0, 0])
        #expect(try runOp("Trilu", [ones], attributes: attrs(attr("upper", int: 0)))[0].floats() == [1, 0, 0, 1, 1, 0, 1, 1, 1])
        let c = try runOp("CumSum", [Tensor([1, 2, 3, 4], shape: [2, 2]), Tensor.scalar(Int64(-1))])[0]
        #expect(c.floats() == [1, 3, 3, 7])
        let ce = try runOp("CumSum", [Tensor([1, 2, 3], shape: [3]), Tensor.scalar(Int64(0))],
                           attributes: attrs(attr("exclusive", int: 1), attr("reverse", int: 1)))[0]
        #expect(ce.floats() == [5, 3, 0])
        let s = try runOp("ScatterND", [Tensor([1, 2, 3, 4], shape: [4]), Tensor(int64s: [Int64(3), 1], shape: [2, 1]), Tensor([9, 10], shape: [2])])[0]
        #expect(s.floats() == [1, 10, 3, 9])
    }

    @Test func flattenAndIdentity() throws {
        #expect(try runOp("Flatten", [x], attributes: attrs(attr("axis", int: -1)))[0].shape == [6, 4])
        #expect(try runOp("Flatten", [x], attributes: attrs(attr("axis", int: 0)))[0].shape == [1, 24])
        #expect(try runOp("Identity", [x])[0].floats() == x.floats())
    }
}

@Suite struct HostileShapeTests {
    @Test func absurdRangesAndShapesAreErrorsNotCrashes() throws {
        #expect(throws: RuntimeError.self) {
            try runOp("Range", [Tensor.scalar(Float(0)), Tensor.scalar(Float(1e30)), Tensor.scalar(Float(1))])
        }
        #expect(throws: RuntimeError.self) {
            try runOp("Range", [Tensor.scalar(Int64.min), Tensor.scalar(Int64.max), Tensor.scalar(Int64(1))])
        }
        // An empty range far in the negative direction.
        #expect(try runOp("Range", [Tensor.scalar(Float(0)), Tensor.scalar(Float(-1e30)), Tensor.scalar(Float(1))])[0].count == 0)
        #expect(try runOp("Range", [Tensor.scalar(Int64.max), Tensor.scalar(Int64.min), Tensor.scalar(Int64(1))])[0].count == 0)
        #expect(throws: RuntimeError.self) {
            try runOp("ConstantOfShape", [Tensor(int64s: [1 << 30, 1 << 30], shape: [2])])
        }
        #expect(throws: RuntimeError.self) {
            try runOp("Expand", [Tensor([1], shape: [1]), Tensor(int64s: [-3], shape: [1])])
        }
        let v = Tensor([1, 2, 3], shape: [3])
        #expect(throws: RuntimeError.self) {
            try runOp("Slice", [v, Tensor(int64s: [0], shape: [1]), Tensor(int64s: [3], shape: [1]), Tensor(int64s: [0], shape: [1]), Tensor(int64s: [Int64.min], shape: [1])])
        }
        #expect(throws: RuntimeError.self) { try runOp("Tile", [v, Tensor(int64s: [Int64.max], shape: [1])]) }
        #expect(throws: RuntimeError.self) { try runOp("Reshape", [v, Tensor(int64s: [1 << 62, 1 << 62, 3], shape: [3])]) }
        #expect(throws: RuntimeError.self) { try runOp("Split", [v, Tensor(int64s: [Int64.max, 4, 2], shape: [3])], outputs: 3) }
        // Float-to-integer reads of NaN and huge values do not trap.
        #expect(Tensor([Float.nan, 1e30, -1e30, -2.7], shape: [4]).int64s() == [0, .max, .min, -2])
    }
}
