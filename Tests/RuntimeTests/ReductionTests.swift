import Foundation
import Testing
@testable import Runtime

@Suite struct ReductionTests {
    let x = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])

    @Test func reduceMeanAxesByOpset() throws {
        // Opset 18: axes as an input; opset 13: as an attribute.
        let r18 = try runOp("ReduceMean", [x, Tensor(int64s: [Int64(-1)], shape: [1])])[0]
        #expect(r18.shape == [2, 1] && r18.floats() == [2, 5])
        let r13 = try runOp("ReduceMean", [x], attributes: attrs(attr("axes", ints: [0]), attr("keepdims", int: 0)), opset: 13)[0]
        #expect(r13.shape == [3] && r13.floats() == [2.5, 3.5, 4.5])
        let all = try runOp("ReduceSum", [x], attributes: attrs(attr("keepdims", int: 0)))[0]
        #expect(all.shape == [] && all.floats() == [21])
        let noop = try runOp("ReduceSum", [x, Tensor(dtype: .int64, shape: [0])], attributes: attrs(attr("noop_with_empty_axes", int: 1)))[0]
        #expect(noop.floats() == x.floats())
        let h = try runOp("ReduceMax", [Tensor(float16s: [Float16(1), Float16(-3)], shape: [2]), Tensor(int64s: [Int64(0)], shape: [1])])[0]
        #expect(h.dtype == .float16 && h.floats() == [1])
        // Non-adjacent axes.
        let cube = Tensor((0..<8).map { Float($0) }, shape: [2, 2, 2])
        let sums = try runOp("ReduceSum", [cube, Tensor(int64s: [Int64(0), 2], shape: [2])], attributes: attrs(attr("keepdims", int: 0)))[0]
        #expect(sums.floats() == [10, 18])  // 0+1+4+5, 2+3+6+7
    }

    @Test func softmaxOverAxesAndMaskedRows() throws {
        let s = try runOp("Softmax", [Tensor([0, Float(log(3.0)), -.infinity], shape: [1, 3])])[0].floats()
        #expect(abs(s[0] - 0.25) < 1e-7 && abs(s[1] - 0.75) < 1e-7 && s[2] == 0)
        // axis 0 of [2, 2]
        let a = try runOp("Softmax", [Tensor([0, 0, Float(log(3.0)), 0], shape: [2, 2])], attributes: attrs(attr("axis", int: 0)))[0].floats()
        #expect(abs(a[0] - 0.25) < 1e-7 && abs(a[2] - 0.75) < 1e-7 && abs(a[1] - 0.5) < 1e-7)
        // float16 in, float16 out, computed in float32.
        let h = try runOp("Softmax", [Tensor(float16s: [Float16(0), Float16(0)], shape: [2])])[0]
        #expect(h.dtype == .float16 && h.floats() == [0.5, 0.5])
        // Opset 11: coerced to 2-D from axis 1, over the whole trailing block.
        let legacy = try runOp("Softmax", [Tensor([0, 0, 0, 0], shape: [1, 2, 2])], opset: 11)[0].floats()
        #expect(legacy == [0.25, 0.25, 0.25, 0.25])
    }

    @Test func argMax() throws {
        #expect(try runOp("ArgMax", [x], attributes: attrs(attr("axis", int: 1), attr("keepdims", int: 0)))[0].int64s() == [2, 2])
        #expect(try runOp("ArgMin", [x], attributes: attrs(attr("axis", int: 0)))[0].int64s() == [0, 0, 0])
    }
}
