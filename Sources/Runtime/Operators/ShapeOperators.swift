import ONNX
import Kernels

// Ops that move data without arithmetic: shape queries, views (Reshape, Squeeze, Unsqueeze,
// Flatten, Identity share storage), strided copies (Transpose, Slice, Expand, Tile), joins and
// splits, gathers and scatters, and generators (Constant, ConstantOfShape, Range, Trilu).

// MARK: - Strided copy

/// Copies the elements of a strided view of `src` into contiguous `dst`.
/// `srcStrides` are in elements and may be 0 (broadcast) or negative (reversed slices).
/// Copies of 256 KB or more (a prompt's attention transposes) split their rows over the pool.
func stridedCopy(elementSize: Int, shape: [Int], src: UnsafeRawPointer, srcStrides: [Int], dst: UnsafeMutableRawPointer) {
    let total = Tensor.elementCount(shape)
    if total == 0 { return }
    var dstStrides = [Int](repeating: 0, count: shape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) { dstStrides[i] = s; s *= shape[i] }
    let (dims, strides) = Broadcast.coalesce(shape, [srcStrides, dstStrides])
    let rank = dims.count
    let inner = dims[rank - 1], innerStride = strides[0][rank - 1]
    let rows = total / inner
    dims.withUnsafeBufferPointer { dims in
        strides[0].withUnsafeBufferPointer { ss in
            // Rows `range` of the output (each `inner` elements), from the first one's index.
            func copy<T>(_: T.Type, _ range: Range<Int>) {
                let ps = src.assumingMemoryBound(to: T.self), pd = dst.assumingMemoryBound(to: T.self)
                withUnsafeTemporaryAllocation(of: Int.self, capacity: rank) { index in
                    var srcOffset = 0, r = range.lowerBound
                    for d in stride(from: rank - 2, through: 0, by: -1) {
                        index[d] = r % dims[d]
                        r /= dims[d]
                        srcOffset += index[d] * ss[d]
                    }
                    var out = range.lowerBound * inner
                    for _ in range {
                        if innerStride == 1 {
                            (pd + out).update(from: ps + srcOffset, count: inner)
                        } else if innerStride == 0 {
                            (pd + out).update(repeating: ps[srcOffset], count: inner)
                        } else {
                            for i in 0..<inner { pd[out + i] = ps[srcOffset + i * innerStride] }
                        }
                        out += inner
                        var d = rank - 2
                        while d >= 0 {
                            index[d] += 1
                            srcOffset += ss[d]
                            if index[d] < dims[d] { break }
                            srcOffset -= ss[d] * dims[d]
                            index[d] = 0
                            d -= 1
                        }
                    }
                }
            }
            func copy(_ range: Range<Int>) {
                switch elementSize {
                case 1: copy(UInt8.self, range)
                case 2: copy(UInt16.self, range)
                case 4: copy(UInt32.self, range)
                case 8: copy(UInt64.self, range)
                default: copy(SIMD2<UInt64>.self, range)
                }
            }
            if total * elementSize >= 1 << 18 && rows > 1 {
                parallelFor(rows, minChunk: Swift.max(1, (1 << 16) / Swift.max(1, inner * elementSize))) { copy($0) }
            } else {
                copy(0..<rows)
            }
        }
    }
}

/// Contiguous element strides of `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) { strides[i] = s; s *= shape[i] }
    return strides
}

/// Reads a 1-D (or scalar) integer tensor as [Int].
func intValues(_ t: Tensor) throws -> [Int] {
    guard [.int64, .int32].contains(t.dtype) else { throw OpError("expected an int64 or int32 tensor, got \(t.dtype)") }
    return t.int64s().map { Int(truncatingIfNeeded: $0) }
}

/// Checks a shape computed from data: no negative dims, no overflowing element count.
func checkedShape(_ shape: [Int]) throws -> [Int] {
    var n = 1
    for d in shape {
        guard d >= 0 else { throw OpError("negative dimension in shape \(shape)") }
        let (m, o) = n.multipliedReportingOverflow(by: d)
        guard !o, m <= (1 << 40) else { throw OpError("shape \(shape) is too large") }
        n = m
    }
    return shape
}

// MARK: - Shape queries and views

struct ShapeOperator: Operator {
    /// Reads only the shape.
    var readsCacheViews: Bool { true }
    let start: Int
    let end: Int?
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let dims = x.shape[ShapeOperator.axes(start: start, end: end, rank: x.rank)].map { Int64($0) }
        return [Tensor(int64s: dims, shape: [dims.count])]
    }

    /// The axes Shape reports for `start` and `end` (negative from the back, clamped to the rank;
    /// empty when they cross).
    static func axes(start: Int, end: Int?, rank r: Int) -> Range<Int> {
        func clamp(_ v: Int) -> Int { Swift.min(Swift.max(v < 0 ? v + r : v, 0), r) }
        let s = clamp(start), e = clamp(end ?? r)
        return s < e ? s..<e : s..<s
    }
}

struct SizeOperator: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] { [Tensor.scalar(Int64(try inputs.required(0).count))] }
}

struct IdentityOperator: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] { [try inputs.required(0)] }
}

struct ReshapeOperator: Operator {
    let allowZero: Bool
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        return [x.reshaped(try shape(of: x.shape, requested: try intValues(try inputs.required(1))))]
    }

    /// Stacked rows of several sequences (`[n, …]`) reshape as one when each row's own shape
    /// (`[1, …]`) reshapes to one with a first axis of 1: that axis becomes n again.
    var rowStacking: RowStacking { .firstInput }
    func stacks(_ inputs: [Tensor?]) -> Bool { (try? rowShape(inputs))?.first == 1 }
    func runStacked(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0), row = try rowShape(inputs)
        guard row.first == 1 else { return try run(inputs) }
        return [x.reshaped([x.shape[0]] + row.dropFirst())]
    }

    /// What one row `[1, …]` of a stacked input reshapes to.
    private func rowShape(_ inputs: [Tensor?]) throws -> [Int] {
        let x = try inputs.required(0)
        guard x.rank >= 1 else { throw OpError("a stacked input has a first axis") }
        return try shape(of: [1] + x.shape.dropFirst(), requested: try intValues(try inputs.required(1)))
    }

    /// The shape `requested` (ONNX's 0 and -1 resolved) for an input of shape `input`.
    private func shape(of input: [Int], requested: [Int]) throws -> [Int] {
        let count = Tensor.elementCount(input)
        var shape = [Int]()
        var inferAt: Int?
        for (i, d) in requested.enumerated() {
            if d == -1 {
                guard inferAt == nil else { throw OpError("more than one -1 in shape \(requested)") }
                inferAt = i
                shape.append(1)
            } else if d == 0 && !allowZero {
                guard i < input.count else { throw OpError("shape \(requested) copies dimension \(i) of a rank-\(input.count) input") }
                shape.append(input[i])
            } else {
                guard d >= 0 else { throw OpError("invalid dimension \(d) in shape \(requested)") }
                shape.append(d)
            }
        }
        if let k = inferAt {
            let known = Tensor.elementCount(shape)
            guard known > 0, count % known == 0 else {
                throw OpError("cannot reshape \(input) (\(count) elements) to \(requested)")
            }
            shape[k] = count / known
        }
        guard (try? checkedShape(shape)) != nil, Tensor.elementCount(shape) == count else {
            throw OpError("cannot reshape \(input) (\(count) elements) to \(requested)")
        }
        return shape
    }
}

/// Unsqueeze (axes from the attribute before opset 13, from input 1 after).
struct UnsqueezeOperator: Operator {
    let axesAttribute: [Int]?
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let axes = try axesAttribute ?? intValues(try inputs.required(1))
        let outRank = x.rank + axes.count
        let normalized = try Set(axes.map { try normalizeAxis($0, rank: outRank) })
        guard normalized.count == axes.count else { throw OpError("repeated axes \(axes)") }
        var shape = [Int]()
        var k = 0
        for i in 0..<outRank {
            if normalized.contains(i) { shape.append(1) } else { shape.append(x.shape[k]); k += 1 }
        }
        return [x.reshaped(shape)]
    }
}

/// Squeeze (axes from the attribute before opset 13, from the optional input 1 after).
struct SqueezeOperator: Operator {
    let axesAttribute: [Int]?
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let axes = try axesAttribute ?? inputs.optional(1).map(intValues)
        var shape = [Int]()
        if let axes {
            let normalized = try Set(axes.map { try normalizeAxis($0, rank: x.rank) })
            for (i, d) in x.shape.enumerated() {
                if normalized.contains(i) {
                    guard d == 1 else { throw OpError("cannot squeeze axis \(i) of size \(d) in \(x.shape)") }
                } else {
                    shape.append(d)
                }
            }
        } else {
            shape = x.shape.filter { $0 != 1 }
        }
        return [x.reshaped(shape)]
    }
}

struct FlattenOperator: Operator {
    let axis: Int
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let a = axis < 0 ? axis + x.rank : axis
        guard a >= 0 && a <= x.rank else { throw OpError("axis \(axis) out of range for rank \(x.rank)") }
        let outer = Tensor.elementCount(Array(x.shape[..<a]))
        let inner = Tensor.elementCount(Array(x.shape[a...]))
        return [x.reshaped([outer, inner])]
    }
}

// MARK: - Strided copies

struct TransposeOperator: Operator {
    let perm: [Int]?
    /// Axis 0 kept in place: each sequence's row moves within itself.
    var rowStacking: RowStacking { perm?.first == 0 ? .firstInput : .none }
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let p = perm ?? Array((0..<x.rank).reversed())
        guard p.count == x.rank, isPermutation(p) else { throw OpError("perm \(p) is not a permutation of rank \(x.rank)") }
        let outShape = p.map { x.shape[$0] }
        // Axes longer than 1 kept in their order (decode's [1, 1, H, D] → [1, H, 1, D]): the
        // elements stay where they are, so the result shares the input's storage.
        var lastMoved = -1, inOrder = true
        for axis in p where x.shape[axis] != 1 {
            if axis < lastMoved { inOrder = false; break }
            lastMoved = axis
        }
        if inOrder { return [x.reshaped(outShape)] }
        let inStrides = contiguousStrides(x.shape)
        let out = Tensor(dtype: x.dtype, shape: outShape)
        stridedCopy(elementSize: x.dtype.storageSize!, shape: outShape, src: x.rawPointer, srcStrides: p.map { inStrides[$0] }, dst: out.rawPointer)
        return [out]
    }
}

/// Slice on one axis of size `dim` (step neither 0 nor Int.min): the first index taken (0 when
/// none) and how many, after ONNX's clamping of the bounds to [0, dim] (positive steps) or
/// [-1, dim - 1] (negative ones), negative bounds counting from the end.
func sliceAxis(start: Int, end: Int, step: Int, dim: Int) -> (begin: Int, count: Int) {
    var s = start, e = end
    if s < 0 { s += dim }
    if e < 0 { e += dim }
    let count: Int
    if step > 0 {
        s = Swift.min(Swift.max(s, 0), dim)
        e = Swift.min(Swift.max(e, 0), dim)
        count = e > s ? (e - s - 1) / step + 1 : 0  // ⌈(e − s) / step⌉ without overflow
    } else {
        s = Swift.min(Swift.max(s, -1), dim - 1)
        e = Swift.min(Swift.max(e, -1), dim - 1)
        count = s > e ? (s - e - 1) / -step + 1 : 0
    }
    return (count > 0 ? s : 0, count)
}

/// Steps `index` to the next index of `shape` in row-major order (the last axis fastest);
/// false after the last one (the index is then all zeros).
@inline(__always)
func advance(_ index: inout [Int], within shape: [Int]) -> Bool {
    var d = shape.count - 1
    while d >= 0 {
        index[d] += 1
        if index[d] < shape[d] { return true }
        index[d] = 0
        d -= 1
    }
    return false
}

/// Whether `p` holds each of 0..<p.count once.
func isPermutation(_ p: [Int]) -> Bool {
    var seen = 0 as UInt64
    guard p.count <= 64 else { return Set(p) == Set(0..<p.count) }
    for a in p {
        guard a >= 0 && a < p.count && seen & (1 << a) == 0 else { return false }
        seen |= 1 << a
    }
    return true
}

/// Slice (opset 10+: starts, ends, axes, steps as inputs; opset 1–9: attributes).
struct SliceOperator: Operator {
    let attributeStarts: [Int]?
    let attributeEnds: [Int]?
    let attributeAxes: [Int]?

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let starts = try attributeStarts ?? intValues(try inputs.required(1))
        let ends = try attributeEnds ?? intValues(try inputs.required(2))
        let axes = try attributeAxes ?? inputs.optional(3).map(intValues) ?? Array(0..<starts.count)
        let steps = try inputs.optional(4).map(intValues) ?? [Int](repeating: 1, count: starts.count)
        guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count else {
            throw OpError("starts/ends/axes/steps have different lengths")
        }
        var outShape = x.shape
        var begin = [Int](repeating: 0, count: x.rank)
        var stepOf = [Int](repeating: 1, count: x.rank)
        var seen = Set<Int>()
        for k in starts.indices {
            let axis = try normalizeAxis(axes[k], rank: x.rank)
            guard seen.insert(axis).inserted else { throw OpError("axis \(axes[k]) repeated") }
            let dim = x.shape[axis]
            let step = steps[k]
            guard step != 0, step != Int.min else { throw OpError("step \(step) on axis \(axis)") }
            let (first, count) = sliceAxis(start: starts[k], end: ends[k], step: step, dim: dim)
            outShape[axis] = count
            begin[axis] = first
            stepOf[axis] = step
        }
        let inStrides = contiguousStrides(x.shape)
        var offset = 0
        for i in 0..<x.rank { offset += begin[i] * inStrides[i] }
        let out = Tensor(dtype: x.dtype, shape: outShape)
        let size = x.dtype.storageSize!
        stridedCopy(elementSize: size, shape: outShape, src: x.rawPointer + offset * size,
                    srcStrides: (0..<x.rank).map { inStrides[$0] * stepOf[$0] }, dst: out.rawPointer)
        return [out]
    }
}

/// Expand: broadcast the input to (the broadcast of its shape with) the given shape.
struct ExpandOperator: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let target = try intValues(try inputs.required(1))
        let outShape = try checkedShape(try Broadcast.shape([x.shape, target]))
        if outShape == x.shape { return [x] }
        let out = Tensor(dtype: x.dtype, shape: outShape)
        stridedCopy(elementSize: x.dtype.storageSize!, shape: outShape, src: x.rawPointer,
                    srcStrides: Broadcast.strides(x.shape, to: outShape), dst: out.rawPointer)
        return [out]
    }
}

/// Tile: as an Expand of [1, d0, 1, d1, …] to [r0, d0, r1, d1, …].
struct TileOperator: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let repeats = try intValues(try inputs.required(1))
        guard repeats.count == x.rank, repeats.allSatisfy({ $0 >= 0 }) else {
            throw OpError("repeats \(repeats) do not fit rank \(x.rank)")
        }
        let strides = contiguousStrides(x.shape)
        var shape = [Int](), srcStrides = [Int]()
        for i in 0..<x.rank {
            shape += [repeats[i], x.shape[i]]
            srcStrides += [0, strides[i]]
        }
        let outShape = try checkedShape((0..<x.rank).map { i -> Int in
            let (d, overflow) = repeats[i].multipliedReportingOverflow(by: x.shape[i])
            return overflow ? -1 : d
        })
        let out = Tensor(dtype: x.dtype, shape: outShape)
        stridedCopy(elementSize: x.dtype.storageSize!, shape: shape, src: x.rawPointer, srcStrides: srcStrides, dst: out.rawPointer)
        return [out]
    }
}

// MARK: - Joins and splits

struct ConcatOperator: Operator {
    let axis: Int
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let parts = try inputs.indices.map { try inputs.required($0) }
        let first = parts[0]
        let a = try normalizeAxis(axis, rank: first.rank)
        var outShape = first.shape
        outShape[a] = 0
        for p in parts {
            guard p.dtype == first.dtype else { throw OpError("inputs have different types: \(first.dtype) and \(p.dtype)") }
            guard p.rank == first.rank,
                  (0..<p.rank).allSatisfy({ $0 == a || p.shape[$0] == first.shape[$0] }) else {
                throw OpError("cannot concatenate \(first.shape) and \(p.shape) on axis \(a)")
            }
            outShape[a] += p.shape[a]
        }
        let out = Tensor(dtype: first.dtype, shape: outShape)
        let size = first.dtype.storageSize!
        let outer = Tensor.elementCount(Array(outShape[..<a]))
        let innerOut = Tensor.elementCount(Array(outShape[a...])) * size
        var column = 0
        for p in parts {
            let chunk = Tensor.elementCount(Array(p.shape[a...])) * size
            if chunk > 0 {
                for o in 0..<outer {
                    (out.rawPointer + o * innerOut + column).copyMemory(from: p.rawPointer + o * chunk, byteCount: chunk)
                }
            }
            column += chunk
        }
        return [out]
    }
}

/// Split (sizes from the attribute before opset 13, from input 1 after; `num_outputs` from 18).
struct SplitOperator: Operator {
    let axis: Int
    let splitAttribute: [Int]?
    let outputCount: Int

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let a = try normalizeAxis(axis, rank: x.rank)
        let dim = x.shape[a]
        var sizes: [Int]
        if let s = try splitAttribute ?? inputs.optional(1).map(intValues) {
            sizes = s
        } else {
            // Equal parts; the last one smaller when it does not divide (opset 18 semantics).
            let n = outputCount
            let chunk = (dim + n - 1) / n
            sizes = (0..<n).map { i in Swift.max(0, Swift.min(chunk, dim - i * chunk)) }
        }
        guard sizes.allSatisfy({ $0 >= 0 && $0 <= dim }), sizes.reduce(0, &+) == dim else {
            throw OpError("split sizes \(sizes) do not add up to dimension \(dim) of \(x.shape)")
        }
        let strides = contiguousStrides(x.shape)
        let size = x.dtype.storageSize!
        var start = 0
        return sizes.map { n in
            var shape = x.shape
            shape[a] = n
            let out = Tensor(dtype: x.dtype, shape: shape)
            stridedCopy(elementSize: size, shape: shape, src: x.rawPointer + start * strides[a] * size, srcStrides: strides, dst: out.rawPointer)
            start += n
            return out
        }
    }
}

// MARK: - Gather and scatter

struct GatherOperator: Operator {
    let axis: Int
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let data = try inputs.required(0), indicesTensor = try inputs.required(1)
        let a = try normalizeAxis(axis, rank: data.rank)
        let indices = try intValues(indicesTensor)
        let dim = data.shape[a]
        let outShape = Array(data.shape[..<a]) + indicesTensor.shape + Array(data.shape[(a + 1)...])
        let out = Tensor(dtype: data.dtype, shape: outShape)
        let size = data.dtype.storageSize!
        let outer = Tensor.elementCount(Array(data.shape[..<a]))
        let inner = Tensor.elementCount(Array(data.shape[(a + 1)...])) * size
        var dst = out.rawPointer
        for o in 0..<outer {
            let base = data.rawPointer + o * dim * inner
            for var idx in indices {
                if idx < 0 { idx += dim }
                guard idx >= 0 && idx < dim else { throw OpError("index \(idx) is out of range for axis \(a) of size \(dim)") }
                dst.copyMemory(from: base + idx * inner, byteCount: inner)
                dst += inner
            }
        }
        return [out]
    }
}

struct GatherElementsOperator: Operator {
    let axis: Int
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let data = try inputs.required(0), idx = try inputs.required(1)
        let a = try normalizeAxis(axis, rank: data.rank)
        guard idx.rank == data.rank else { throw OpError("indices rank \(idx.rank) differs from data rank \(data.rank)") }
        let indices = try intValues(idx)
        let out = Tensor(dtype: data.dtype, shape: idx.shape)
        let size = data.dtype.storageSize!
        let dStrides = contiguousStrides(data.shape), iStrides = contiguousStrides(idx.shape)
        for (flat, var k) in indices.enumerated() {
            if k < 0 { k += data.shape[a] }
            guard k >= 0 && k < data.shape[a] else { throw OpError("index \(k) out of range on axis \(a)") }
            var rem = flat, src = 0
            for d in 0..<idx.rank {
                let c = rem / iStrides[d]
                rem %= iStrides[d]
                src += (d == a ? k : c) * dStrides[d]
            }
            (out.rawPointer + flat * size).copyMemory(from: data.rawPointer + src * size, byteCount: size)
        }
        return [out]
    }
}

/// ScatterND with reduction none (and add/mul for numeric types).
struct ScatterNDOperator: Operator {
    let reduction: String
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let data = try inputs.required(0), indicesT = try inputs.required(1), updates = try inputs.required(2)
        guard updates.dtype == data.dtype else { throw OpError("updates type \(updates.dtype) differs from data type \(data.dtype)") }
        let indices = try intValues(indicesT)
        let k = indicesT.shape.last ?? 0
        guard k <= data.rank else { throw OpError("index depth \(k) exceeds data rank \(data.rank)") }
        let out = Tensor(dtype: data.dtype, shape: data.shape)
        out.rawPointer.copyMemory(from: data.rawPointer, byteCount: data.byteCount)
        let size = data.dtype.storageSize!
        let slice = Tensor.elementCount(Array(data.shape[k...]))
        let strides = contiguousStrides(data.shape)
        let updateCount = k == 0 ? 1 : indices.count / k
        guard updates.count == updateCount * slice else {
            throw OpError("updates shape \(updates.shape) does not match indices \(indicesT.shape) and data \(data.shape)")
        }
        for u in 0..<updateCount {
            var offset = 0
            for j in 0..<k {
                var i = indices[u * k + j]
                if i < 0 { i += data.shape[j] }
                guard i >= 0 && i < data.shape[j] else { throw OpError("index \(i) out of range for dimension \(j) of \(data.shape)") }
                offset += i * strides[j]
            }
            switch reduction {
            case "none":
                (out.rawPointer + offset * size).copyMemory(from: updates.rawPointer + u * slice * size, byteCount: slice * size)
            case "add", "mul":
                let target = try castTensor(Tensor(dtype: data.dtype, shape: [slice], storage: sliceStorage(out, offset, slice)), to: .double)
                let upd = try castTensor(Tensor(dtype: data.dtype, shape: [slice], storage: sliceStorage(updates, u * slice, slice)), to: .double)
                let r = Tensor(dtype: .double, shape: [slice])
                for i in 0..<slice {
                    let a = target.pointer(as: Double.self)[i], b = upd.pointer(as: Double.self)[i]
                    r.pointer(as: Double.self)[i] = reduction == "add" ? a + b : a * b
                }
                let back = try castTensor(r, to: data.dtype)
                (out.rawPointer + offset * size).copyMemory(from: back.rawPointer, byteCount: slice * size)
            default:
                throw OpError("reduction '\(reduction)' is not supported")
            }
        }
        return [out]
    }

    private func sliceStorage(_ t: Tensor, _ offset: Int, _ count: Int) -> TensorStorage {
        let size = t.dtype.storageSize!
        return TensorStorage(borrowing: t.rawPointer + offset * size, byteCount: count * size, owner: t.storage)
    }
}

// MARK: - Generators

struct ConstantOperator: Operator {
    let value: Tensor
    func run(_ inputs: [Tensor?]) throws -> [Tensor] { [value] }
}

struct ConstantOfShapeOperator: Operator {
    let value: Tensor
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let shape = try checkedShape(try intValues(try inputs.required(0)))
        let out = Tensor(dtype: value.dtype, shape: shape)
        let size = value.dtype.storageSize!
        for i in 0..<out.count { (out.rawPointer + i * size).copyMemory(from: value.rawPointer, byteCount: size) }
        return [out]
    }
}

struct RangeOperator: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let start = try inputs.required(0), limit = try inputs.required(1), delta = try inputs.required(2)
        guard start.count == 1, limit.count == 1, delta.count == 1 else { throw OpError("start, limit and delta must be scalars") }
        switch start.dtype {
        case .float, .double, .float16:
            // Computed in the input type, element i = start + i * delta, like ONNX Runtime.
            let s = Double(start.floats()[0]), l = Double(limit.floats()[0]), d = Double(delta.floats()[0])
            guard d != 0, d.isFinite, s.isFinite, l.isFinite else { throw OpError("invalid range \(s) ..< \(l) step \(d)") }
            let count = ((l - s) / d).rounded(.up)
            guard count <= Double(1 << 32) else { throw OpError("range of \(count) elements is too large") }
            let n = Int(Swift.max(count, 0))
            if start.dtype == .double {
                let out = Tensor(dtype: .double, shape: [n])
                for i in 0..<n { out.pointer(as: Double.self)[i] = s + Double(i) * d }
                return [out]
            }
            let fs = Float(s), fd = Float(d)
            let out = Tensor((0..<n).map { fs + Float($0) * fd }, shape: [n])
            return [try castTensor(out, to: start.dtype)]
        case .int64, .int32:
            let s = start.int64s()[0], l = limit.int64s()[0], d = delta.int64s()[0]
            guard d != 0 else { throw OpError("delta is 0") }
            // In Double: the span of two extreme int64s overflows Int64.
            let count = ((Double(l) - Double(s)) / Double(d)).rounded(.up)
            guard count <= Double(1 << 32) else { throw OpError("range of \(count) elements is too large") }
            let n = Int(Swift.max(count, 0))
            guard n <= (1 << 32) else { throw OpError("range of \(n) elements is too large") }
            let out = Tensor(int64s: (0..<n).map { s + Int64($0) * d }, shape: [n])
            return [try castTensor(out, to: start.dtype)]
        default:
            throw OpError("Range of \(start.dtype) is not supported")
        }
    }
}

/// Trilu: keeps the upper (or lower) triangle of the last two dimensions, diagonal offset k.
struct TriluOperator: Operator {
    let upper: Bool
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.rank >= 2 else { throw OpError("input must have rank ≥ 2, got \(x.shape)") }
        let k = try inputs.optional(1).map { try intValues($0)[0] } ?? 0
        let rows = x.shape[x.rank - 2], cols = x.shape[x.rank - 1]
        let out = Tensor(dtype: x.dtype, shape: x.shape)
        let size = x.dtype.storageSize!
        out.rawPointer.copyMemory(from: x.rawPointer, byteCount: x.byteCount)
        let batches = x.count / Swift.max(rows * cols, 1)
        for b in 0..<(rows * cols == 0 ? 0 : batches) {
            for i in 0..<rows {
                for j in 0..<cols {
                    let keep = upper ? (j - i >= k) : (j - i <= k)
                    if !keep {
                        (out.rawPointer + ((b * rows + i) * cols + j) * size).initializeMemory(as: UInt8.self, repeating: 0, count: size)
                    }
                }
            }
        }
        return [out]
    }
}

/// CumSum along an axis given as a tensor; exclusive and reverse attributes.
struct CumSumOperator: Operator {
    let exclusive: Bool
    let reverse: Bool
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let axis = try normalizeAxis(try intValues(try inputs.required(1))[0], rank: x.rank)
        let outer = Tensor.elementCount(Array(x.shape[..<axis]))
        let n = x.shape[axis]
        let inner = Tensor.elementCount(Array(x.shape[(axis + 1)...]))
        func go<T>(_: T.Type, zero: T, _ add: (T, T) -> T) {
            let px = x.pointer(as: T.self)
            let out = Tensor(dtype: x.dtype, shape: x.shape)
            let po = out.pointer(as: T.self)
            for o in 0..<outer {
                for i in 0..<inner {
                    var acc = zero
                    for step in 0..<n {
                        let j = reverse ? n - 1 - step : step
                        let at = (o * n + j) * inner + i
                        if exclusive { po[at] = acc; acc = add(acc, px[at]) } else { acc = add(acc, px[at]); po[at] = acc }
                    }
                }
            }
            result = out
        }
        var result: Tensor?
        switch x.dtype {
        case .float: go(Float.self, zero: 0, +)
        case .double: go(Double.self, zero: 0, +)
        case .int64: go(Int64.self, zero: 0, &+)
        case .int32: go(Int32.self, zero: 0, &+)
        case .float16: go(Float16.self, zero: 0) { Float16(Float($0) + Float($1)) }
        default: throw OpError("CumSum of \(x.dtype) is not supported")
        }
        return [result!]
    }
}

// MARK: - Registration

func registerShapeOperators(_ add: (String, String, ClosedRange<Int>, @escaping OperatorFactory) -> Void) {
    add("Shape", "", 1...Int.max) { ctx in
        ShapeOperator(start: ctx.node.intAttribute("start", default: 0), end: ctx.node.intAttribute("end"))
    }
    add("Size", "", 1...Int.max) { _ in SizeOperator() }
    add("Identity", "", 1...Int.max) { _ in IdentityOperator() }
    add("Dropout", "", 7...Int.max) { _ in IdentityOperator() }
    add("Reshape", "", 5...Int.max) { ctx in ReshapeOperator(allowZero: ctx.node.intAttribute("allowzero", default: 0) != 0) }
    add("Unsqueeze", "", 1...Int.max) { ctx in UnsqueezeOperator(axesAttribute: ctx.opset < 13 ? ctx.node.intsAttribute("axes") ?? [] : nil) }
    add("Squeeze", "", 1...Int.max) { ctx in SqueezeOperator(axesAttribute: ctx.opset < 13 ? ctx.node.intsAttribute("axes") : nil) }
    add("Flatten", "", 1...Int.max) { ctx in FlattenOperator(axis: ctx.node.intAttribute("axis", default: 1)) }
    add("Transpose", "", 1...Int.max) { ctx in TransposeOperator(perm: ctx.node.intsAttribute("perm")) }
    add("Slice", "", 1...Int.max) { ctx in
        if ctx.opset < 10 {
            return SliceOperator(attributeStarts: ctx.node.intsAttribute("starts") ?? [],
                                 attributeEnds: ctx.node.intsAttribute("ends") ?? [],
                                 attributeAxes: ctx.node.intsAttribute("axes"))
        }
        return SliceOperator(attributeStarts: nil, attributeEnds: nil, attributeAxes: nil)
    }
    add("Expand", "", 8...Int.max) { _ in ExpandOperator() }
    add("Tile", "", 6...Int.max) { _ in TileOperator() }
    add("Concat", "", 1...Int.max) { ctx in
        guard let axis = ctx.node.intAttribute("axis") else { throw ctx.node.invalid("attribute 'axis' is required") }
        return ConcatOperator(axis: axis)
    }
    add("Split", "", 1...Int.max) { ctx in
        SplitOperator(axis: ctx.node.intAttribute("axis", default: 0),
                      splitAttribute: ctx.opset < 13 ? ctx.node.intsAttribute("split") : nil,
                      outputCount: ctx.node.intAttribute("num_outputs") ?? ctx.node.outputs.count)
    }
    add("Gather", "", 1...Int.max) { ctx in GatherOperator(axis: ctx.node.intAttribute("axis", default: 0)) }
    add("GatherElements", "", 11...Int.max) { ctx in GatherElementsOperator(axis: ctx.node.intAttribute("axis", default: 0)) }
    add("ScatterND", "", 11...Int.max) { ctx in ScatterNDOperator(reduction: ctx.node.stringAttribute("reduction") ?? "none") }
    add("Constant", "", 1...Int.max) { ctx in ConstantOperator(value: try constantValue(ctx.node, model: ctx.model)) }
    add("ConstantOfShape", "", 9...Int.max) { ctx in
        if let t = ctx.node.attributes["value"]?.t {
            let v = try Tensor(proto: t, model: ctx.model)
            guard v.count == 1 else { throw ctx.node.invalid("'value' must hold one element, has \(v.count)") }
            return ConstantOfShapeOperator(value: v)
        }
        return ConstantOfShapeOperator(value: Tensor([Float(0)], shape: [1]))
    }
    add("Range", "", 11...Int.max) { _ in RangeOperator() }
    add("Trilu", "", 14...Int.max) { ctx in TriluOperator(upper: ctx.node.intAttribute("upper", default: 1) != 0) }
    add("CumSum", "", 11...Int.max) { ctx in
        CumSumOperator(exclusive: ctx.node.intAttribute("exclusive", default: 0) != 0,
                       reverse: ctx.node.intAttribute("reverse", default: 0) != 0)
    }
}

/// The value of a Constant node (value, value_float(s), value_int(s)).
func constantValue(_ node: Node, model: ONNXModel?) throws -> Tensor {
    if let t = node.attributes["value"]?.t { return try Tensor(proto: t, model: model) }
    if let a = node.attributes["value_float"] { return Tensor([a.f], shape: []) }
    if let a = node.attributes["value_floats"] { return Tensor(a.floats, shape: [a.floats.count]) }
    if let a = node.attributes["value_int"] { return Tensor(int64s: [a.i], shape: []) }
    if let a = node.attributes["value_ints"] { return Tensor(int64s: a.ints, shape: [a.ints.count]) }
    throw node.invalid("Constant without a supported value attribute (value, value_float(s), value_int(s))")
}
