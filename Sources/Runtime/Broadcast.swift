/// Multidirectional (NumPy-style) broadcasting, as ONNX defines it for elementwise ops.
enum Broadcast {
    /// For the batch dimensions of a NumPy matmul: which batch of A and of B (counted in whole
    /// matrices) each batch of the result, row-major over `batch`, multiplies.
    static func matrixPairs(_ aBatch: [Int], _ bBatch: [Int], to batch: [Int]) -> [(a: Int, b: Int)] {
        let aStrides = strides(aBatch, to: batch), bStrides = strides(bBatch, to: batch)
        let batchStrides = contiguousStrides(batch)
        return (0..<Tensor.elementCount(batch)).map { i in
            var rem = i, ia = 0, ib = 0
            for d in 0..<batch.count {
                let c = rem / batchStrides[d]
                rem %= batchStrides[d]
                ia += c * aStrides[d]
                ib += c * bStrides[d]
            }
            return (ia, ib)
        }
    }

    /// The broadcast result shape of `shapes`, or an error naming the clash.
    static func shape(_ shapes: [[Int]]) throws -> [Int] {
        let rank = shapes.map(\.count).max() ?? 0
        var out = [Int](repeating: 1, count: rank)
        for s in shapes {
            let offset = rank - s.count
            for (i, d) in s.enumerated() {
                let j = i + offset
                if out[j] == d || d == 1 { continue }
                if out[j] == 1 {
                    out[j] = d
                } else {
                    throw OpError("shapes \(shapes.map { "\($0)" }.joined(separator: " and ")) cannot be broadcast together (dimension \(j): \(out[j]) vs \(d))")
                }
            }
        }
        return out
    }

    /// Element strides of a contiguous `shape` read as `outShape` (0 on broadcast dimensions).
    static func strides(_ shape: [Int], to outShape: [Int]) -> [Int] {
        let offset = outShape.count - shape.count
        var strides = [Int](repeating: 0, count: outShape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i + offset] = shape[i] == 1 ? 0 : s
            s *= shape[i]
        }
        return strides
    }

    /// Merges adjacent dimensions that every operand walks contiguously (or all broadcast), so
    /// loops run over as few, as long rows as possible. Returns dims and per-operand strides.
    static func coalesce(_ dims: [Int], _ strides: [[Int]]) -> (dims: [Int], strides: [[Int]]) {
        var outDims: [Int] = []
        var outStrides = [[Int]](repeating: [], count: strides.count)
        for i in dims.indices where dims[i] != 1 {
            if let last = outDims.last,
               strides.indices.allSatisfy({ k in outStrides[k].last! == strides[k][i] * dims[i] }) {
                outDims[outDims.count - 1] = last * dims[i]
                for k in strides.indices { outStrides[k][outStrides[k].count - 1] = strides[k][i] }
            } else {
                outDims.append(dims[i])
                for k in strides.indices { outStrides[k].append(strides[k][i]) }
            }
        }
        if outDims.isEmpty {
            return ([1], strides.map { _ in [0] })
        }
        return (outDims, outStrides)
    }
}

/// Walks the broadcast of two operands row by row: calls `body(outOffset, aOffset, bOffset,
/// rowLength, aStride, bStride)` for each innermost row.
@inline(__always)
func forEachBroadcastRow2(
    outShape: [Int], aShape: [Int], bShape: [Int],
    _ body: (_ out: Int, _ a: Int, _ b: Int, _ n: Int, _ sa: Int, _ sb: Int) -> Void
) {
    let total = Tensor.elementCount(outShape)
    if total == 0 { return }
    let (dims, strides) = Broadcast.coalesce(
        outShape, [Broadcast.strides(aShape, to: outShape), Broadcast.strides(bShape, to: outShape)])
    let sa = strides[0], sb = strides[1]
    let rank = dims.count
    let inner = dims[rank - 1]
    var index = [Int](repeating: 0, count: rank)
    var offA = 0, offB = 0
    var out = 0
    while out < total {
        body(out, offA, offB, inner, sa[rank - 1], sb[rank - 1])
        out += inner
        var d = rank - 2
        while d >= 0 {
            index[d] += 1
            offA += sa[d]
            offB += sb[d]
            if index[d] < dims[d] { break }
            offA -= sa[d] * dims[d]
            offB -= sb[d] * dims[d]
            index[d] = 0
            d -= 1
        }
    }
}

/// Elementwise map of two broadcast operands.
@inline(__always)
func broadcastMap2<A, B, R>(
    outShape: [Int], _ a: UnsafePointer<A>, _ aShape: [Int], _ b: UnsafePointer<B>, _ bShape: [Int],
    _ out: UnsafeMutablePointer<R>, _ f: (A, B) -> R
) {
    forEachBroadcastRow2(outShape: outShape, aShape: aShape, bShape: bShape) { o, ia, ib, n, sa, sb in
        mapRow2(n, a + ia, sa, b + ib, sb, out + o, f)
    }
}

/// `out[i] = f(a[i·sa], b[i·sb])` for one row of `n` elements, with the contiguous and
/// scalar-operand cases as straight (vectorisable) loops.
@inline(__always)
func mapRow2<A, B, R>(
    _ n: Int, _ pa: UnsafePointer<A>, _ sa: Int, _ pb: UnsafePointer<B>, _ sb: Int,
    _ po: UnsafeMutablePointer<R>, _ f: (A, B) -> R
) {
    if sa == 1 && sb == 1 {
        for i in 0..<n { po[i] = f(pa[i], pb[i]) }
    } else if sa == 1 && sb == 0 {
        let vb = pb[0]
        for i in 0..<n { po[i] = f(pa[i], vb) }
    } else if sa == 0 && sb == 1 {
        let va = pa[0]
        for i in 0..<n { po[i] = f(va, pb[i]) }
    } else {
        for i in 0..<n { po[i] = f(pa[i * sa], pb[i * sb]) }
    }
}

/// Walks the broadcast of three operands element by element (used by Where).
@inline(__always)
func forEachBroadcast3(outShape: [Int], _ shapes: [[Int]], _ body: (_ out: Int, _ a: Int, _ b: Int, _ c: Int) -> Void) {
    let total = Tensor.elementCount(outShape)
    if total == 0 { return }
    let (dims, strides) = Broadcast.coalesce(outShape, shapes.map { Broadcast.strides($0, to: outShape) })
    let rank = dims.count
    var index = [Int](repeating: 0, count: rank)
    var off = [0, 0, 0]
    let s0 = strides[0], s1 = strides[1], s2 = strides[2]
    let inner = dims[rank - 1]
    var out = 0
    while out < total {
        let i0 = s0[rank - 1], i1 = s1[rank - 1], i2 = s2[rank - 1]
        for i in 0..<inner { body(out + i, off[0] + i * i0, off[1] + i * i1, off[2] + i * i2) }
        out += inner
        var d = rank - 2
        while d >= 0 {
            index[d] += 1
            off[0] += s0[d]; off[1] += s1[d]; off[2] += s2[d]
            if index[d] < dims[d] { break }
            off[0] -= s0[d] * dims[d]; off[1] -= s1[d] * dims[d]; off[2] -= s2[d] * dims[d]
            index[d] = 0
            d -= 1
        }
    }
}
