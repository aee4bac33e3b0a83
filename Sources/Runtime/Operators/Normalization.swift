import Foundation
import Kernels

// Normalisations: ONNX LayerNormalization, and the RMSNorm ops ONNX Runtime's optimiser writes
// into saved optimised graphs (SimplifiedLayerNormalization, com.microsoft
// SkipSimplifiedLayerNormalization). All compute in float32 and round the result once.

/// Normalises rows of `n` floats: `y = (x - mean) / sqrt(var + eps) * scale + bias` (or the RMS
/// form without the mean when `rms`), returning per-row mean and inverse std-dev.
private func normalizeRows(_ x: Tensor, axis: Int, epsilon: Float, scale: Tensor, bias: Tensor?, rms: Bool) throws -> (y: Tensor, mean: [Float], invStd: [Float]) {
    let a = try normalizeAxis(axis, rank: x.rank)
    let n = Tensor.elementCount(Array(x.shape[a...]))
    let rows = n == 0 ? 0 : x.count / n
    let xf = try floatOperand(x), sf = try floatOperand(scale), bf = try bias.map(floatOperand)
    guard sf.count == n || sf.count == 1 else { throw OpError("scale has \(sf.count) elements, expected \(n)") }
    if let bf { guard bf.count == n || bf.count == 1 else { throw OpError("bias has \(bf.count) elements, expected \(n)") } }
    let out = Tensor(dtype: .float, shape: x.shape)
    let px = xf.pointer(as: Float.self), po = out.pointer(as: Float.self), ps = sf.pointer(as: Float.self)
    let pb = bf?.pointer(as: Float.self)
    var means = [Float](repeating: 0, count: rows), invStds = [Float](repeating: 0, count: rows)
    if rows > 0 {
        means.withUnsafeMutableBufferPointer { m in
            invStds.withUnsafeMutableBufferPointer { v in
                layerNormRows(px, scale: ps, scaleCount: sf.count, bias: pb, biasCount: bf?.count ?? 0, rows: rows, count: n,
                              epsilon: epsilon, rms: rms, into: po, means: m.baseAddress!, inverseStdDevs: v.baseAddress!)
            }
        }
    }
    return (narrowResult(out, to: x.dtype), means, invStds)
}

struct LayerNormalizationOperator: Operator {
    let axis: Int
    let epsilon: Float
    let rms: Bool

    /// Rows of several sequences: each normalised by the same loop as alone, where the
    /// normalised axes leave the first one out.
    var rowStacking: RowStacking { .firstInput }
    func stacks(_ inputs: [Tensor?]) -> Bool {
        guard let x = inputs.first ?? nil, let a = try? normalizeAxis(axis, rank: x.rank) else { return false }
        return a >= 1
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let (y, mean, invStd) = try normalizeRows(x, axis: axis, epsilon: epsilon, scale: try inputs.required(1),
                                                  bias: rms ? nil : inputs.optional(2), rms: rms)
        let a = try normalizeAxis(axis, rank: x.rank)
        let statShape = Array(x.shape[..<a]) + [Int](repeating: 1, count: x.rank - a)
        // SimplifiedLayerNormalization's outputs are (Y, inv_std_var); LayerNormalization's (Y, Mean, InvStdDev).
        if rms { return [y, Tensor(invStd, shape: statShape)] }
        return [y, Tensor(mean, shape: statShape), Tensor(invStd, shape: statShape)]
    }
}

/// com.microsoft.SkipSimplifiedLayerNormalization: `s = input + skip (+ bias)`, `y = RMSNorm(s)`;
/// outputs y, mean (unused, zeros), inv_std_var, and s.
struct SkipSimplifiedLayerNormalizationOperator: Operator {
    let epsilon: Float

    /// Rows of several sequences (input and skip stacked, gamma and bias shared): the same sum
    /// and row norm for each as alone.
    var rowStacking: RowStacking { .elementwise }
    func stacks(_ inputs: [Tensor?]) -> Bool { ((inputs.first ?? nil)?.rank ?? 0) >= 2 }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0), skip = try inputs.required(1), gamma = try inputs.required(2)
        if let fused = fusedFloat32(x, skip, gamma, bias: inputs.optional(3)) { return fused }
        var sum = try binaryArithmetic(AddKind.self, try floatOperand(x), try floatOperand(skip))
        if let bias = inputs.optional(3) { sum = try binaryArithmetic(AddKind.self, sum, try floatOperand(bias)) }
        let (y, _, invStd) = try normalizeRows(sum, axis: -1, epsilon: epsilon, scale: gamma, bias: nil, rms: true)
        let statShape = Array(x.shape.dropLast()) + [1]
        return [narrowResult(try floatOperand(y), to: x.dtype), Tensor.zeros(.float, shape: statShape),
                Tensor(invStd, shape: statShape), narrowResult(sum, to: x.dtype)]
    }

    /// `run` for float32 operands of the common shapes (skip as x, gamma and bias one row): the
    /// sum and the norm of each row in one pass over it, no intermediate tensors, the rows of a
    /// batched step or a prompt spread over the threads. The same operations per element, in
    /// the same order, as the general path (`(x + skip) + bias`, then `layerNormRows`), so the
    /// same floats; nil for anything else.
    private func fusedFloat32(_ x: Tensor, _ skip: Tensor, _ gamma: Tensor, bias: Tensor?) -> [Tensor]? {
        guard x.dtype == .float, skip.dtype == .float, gamma.dtype == .float, bias.map({ $0.dtype == .float }) ?? true,
              x.rank >= 1, x.shape == skip.shape, x.isContiguous, skip.isContiguous, gamma.isContiguous,
              bias?.isContiguous ?? true else { return nil }
        let n = x.shape[x.rank - 1]
        guard n > 0, gamma.count == n, bias.map({ $0.count == n }) ?? true else { return nil }
        let rows = x.count / n
        let sum = Tensor(dtype: .float, shape: x.shape), y = Tensor(dtype: .float, shape: x.shape)
        let statShape = Array(x.shape.dropLast()) + [1]
        let invStd = Tensor(dtype: .float, shape: statShape), means = Tensor.zeros(.float, shape: statShape)
        let px = x.pointer(as: Float.self), pk = skip.pointer(as: Float.self), pg = gamma.pointer(as: Float.self)
        let pb = bias?.pointer(as: Float.self)
        let ps = sum.pointer(as: Float.self), py = y.pointer(as: Float.self), pi = invStd.pointer(as: Float.self)
        // Four rows a chunk at least (layerNormRows' group): one row of 896 takes ~1 µs.
        parallelFor(rows, minChunk: 4, granularity: 4) { range in
            let first = range.lowerBound * n, count = range.count * n
            for i in first..<(first + count) { ps[i] = px[i] + pk[i] }
            if let pb {
                for r in range { for j in 0..<n { ps[r * n + j] += pb[j] } }
            }
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: range.count)
            defer { scratch.deallocate() }
            layerNormRows(ps + first, scale: pg, scaleCount: n, bias: nil, biasCount: 0, rows: range.count, count: n,
                          epsilon: epsilon, rms: true, into: py + first, means: scratch, inverseStdDevs: pi + range.lowerBound)
        }
        return [y, means, invStd, sum]
    }
}

func registerContrib(_ add: (String, String, ClosedRange<Int>, @escaping OperatorFactory) -> Void) {
    add("LayerNormalization", "", 17...Int.max) { ctx in
        LayerNormalizationOperator(axis: ctx.node.intAttribute("axis", default: -1),
                                   epsilon: ctx.node.floatAttribute("epsilon", default: 1e-5), rms: false)
    }
    // ONNX Runtime registers SimplifiedLayerNormalization in the ONNX domain.
    add("SimplifiedLayerNormalization", "", 1...Int.max) { ctx in
        LayerNormalizationOperator(axis: ctx.node.intAttribute("axis", default: -1),
                                   epsilon: ctx.node.floatAttribute("epsilon", default: 1e-5), rms: true)
    }
    add("SkipSimplifiedLayerNormalization", "com.microsoft", 1...Int.max) { ctx in
        SkipSimplifiedLayerNormalizationOperator(epsilon: ctx.node.floatAttribute("epsilon", default: 1e-5))
    }
}
