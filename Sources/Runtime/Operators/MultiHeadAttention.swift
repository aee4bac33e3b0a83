import Foundation
import Kernels

/// com.microsoft.MultiHeadAttention in its self-attention form (what onnxruntime-genai's builder
/// writes for CPU fp16 models, after a RotaryEmbedding), with ONNX Runtime's CPU semantics:
///
/// - inputs: `query [B, S, N·H]`, `key`, `value [B, L, N·H]` (separate, not packed, not BNSH), optional
///   `bias [3·N·H]` added to each, `key_padding_mask [B, T]` (0 masks the key), `attention_bias`
///   broadcastable to `[B, N, S, T]`, `past_key`/`past_value [B, N, P, H]`;
/// - the keys and values are the past's followed by the new ones (`present_key`/`present_value
///   [B, N, T = P + L, H]`); scores `scale · q·k` (default 1/√H) plus `attention_bias`, plus
///   `mask_filter_value` (default −10000) where the padding mask is 0 or, with `unidirectional`,
///   where the key comes after the query's position T − S + s; softmax in float32.
///
/// Other forms (packed QKV, cross-attention keys in BNSH, `past_sequence_length`,
/// `cache_indirection`) are refused with an error naming them.
struct MultiHeadAttentionOperator: Operator {
    let heads: Int
    let scale: Float
    let maskFilterValue: Float
    let unidirectional: Bool

    static func make(_ ctx: OperatorContext) throws -> MultiHeadAttentionOperator {
        let node = ctx.node
        guard let heads = node.intAttribute("num_heads"), heads > 0 else { throw node.invalid("num_heads must be positive") }
        for (i, what) in [(8, "past_sequence_length"), (9, "cache_indirection")] where i < node.inputs.count && !node.inputs[i].isEmpty {
            throw node.invalid("input \(i) (\(what), DecoderMaskedMultiHeadAttention's form) is not supported")
        }
        return MultiHeadAttentionOperator(heads: heads, scale: node.floatAttribute("scale", default: 0),
                                          maskFilterValue: node.floatAttribute("mask_filter_value", default: -10000),
                                          unidirectional: node.intAttribute("unidirectional", default: 0) != 0)
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let queryIn = try inputs.required(0)
        guard let keyIn = inputs.optional(1), let valueIn = inputs.optional(2) else {
            throw OpError("packed QKV (key and value omitted) is not supported")
        }
        let dtype = queryIn.dtype
        guard dtype == .float || dtype == .float16 else { throw OpError("query must be float32 or float16, got \(dtype)") }
        guard queryIn.rank == 3, keyIn.rank == 3, valueIn.rank == 3 else {
            throw OpError("query, key and value must be [batch, sequence, hidden] (got \(queryIn.shape), \(keyIn.shape), \(valueIn.shape))")
        }
        let (b, s, hidden) = (queryIn.shape[0], queryIn.shape[1], queryIn.shape[2])
        let l = keyIn.shape[1]
        guard hidden % heads == 0, keyIn.shape == [b, l, hidden], valueIn.shape == keyIn.shape else {
            throw OpError("key \(keyIn.shape) and value \(valueIn.shape) must be [\(b), length, \(hidden)] like query \(queryIn.shape), hidden a multiple of \(heads) heads")
        }
        let h = hidden / heads
        var q = try floatOperand(queryIn.contiguous()).floats(), k = try floatOperand(keyIn.contiguous()).floats()
        var v = try floatOperand(valueIn.contiguous()).floats()
        if let bias = inputs.optional(3) {
            let bf = try floatOperand(bias.contiguous()).floats()
            guard bf.count == 3 * hidden else { throw OpError("bias has \(bf.count) values, expected \(3 * hidden)") }
            for i in 0..<(b * s * hidden) { q[i] += bf[i % hidden] }
            for i in 0..<(b * l * hidden) { k[i] += bf[hidden + i % hidden]; v[i] += bf[2 * hidden + i % hidden] }
        }
        // New keys and values in float16 graphs are stored (and read) as float16.
        if dtype == .float16 {
            k = k.map { Float(Float16($0)) }
            v = v.map { Float(Float16($0)) }
            q = q.map { Float(Float16($0)) }
        }
        let pastKey = inputs.optional(6).map { $0.contiguous() }, pastValue = inputs.optional(7).map { $0.contiguous() }
        var p = 0
        if let pastKey, let pastValue {
            guard pastKey.rank == 4, pastKey.shape[0] == b, pastKey.shape[1] == heads, pastKey.shape[3] == h, pastValue.shape == pastKey.shape,
                  pastKey.dtype == dtype, pastValue.dtype == dtype else {
                throw OpError("past_key \(pastKey.shape) and past_value \(pastValue.shape) must be \(dtype)[\(b), \(heads), length, \(h)]")
            }
            p = pastKey.shape[2]
        } else if (pastKey == nil) != (pastValue == nil) {
            throw OpError("past_key and past_value must both be given or both omitted")
        }
        let t = p + l
        // Present caches [B, N, T, H] (float32 working copies).
        var presentK = [Float](repeating: 0, count: b * heads * t * h), presentV = presentK
        let pk = try pastKey.map { try floatOperand($0).floats() }, pv = try pastValue.map { try floatOperand($0).floats() }
        for bi in 0..<b {
            for n in 0..<heads {
                let base = (bi * heads + n) * t * h
                if let pk, let pv {
                    for i in 0..<(p * h) {
                        presentK[base + i] = pk[(bi * heads + n) * p * h + i]
                        presentV[base + i] = pv[(bi * heads + n) * p * h + i]
                    }
                }
                for li in 0..<l {
                    for d in 0..<h {
                        presentK[base + (p + li) * h + d] = k[(bi * l + li) * hidden + n * h + d]
                        presentV[base + (p + li) * h + d] = v[(bi * l + li) * hidden + n * h + d]
                    }
                }
            }
        }
        // Masks: key padding [B, T] and attention bias broadcast to [B, N, S, T].
        var padding: [Int]?
        if let m = inputs.optional(4) {
            guard m.rank == 2, m.shape == [b, t] else { throw OpError("key_padding_mask has shape \(m.shape); only [batch, total length] = [\(b), \(t)] is supported") }
            padding = try intValues(m)
        }
        var bias: (values: [Float], strides: [Int])?
        if let a = inputs.optional(5) {
            guard a.rank == 4, (a.shape[0] == b || a.shape[0] == 1), (a.shape[1] == heads || a.shape[1] == 1), a.shape[2] == s, a.shape[3] == t else {
                throw OpError("attention_bias has shape \(a.shape), expected [\(b) or 1, \(heads) or 1, \(s), \(t)]")
            }
            bias = (try floatOperand(a.contiguous()).floats(),
                    [a.shape[0] == 1 ? 0 : a.shape[1] * s * t, a.shape[1] == 1 ? 0 : s * t])
        }
        let alpha = scale == 0 ? 1 / Float(h).squareRoot() : scale
        var out = [Float](repeating: 0, count: b * s * hidden)
        var scores = [Float](repeating: 0, count: t)
        for bi in 0..<b {
            for n in 0..<heads {
                let base = (bi * heads + n) * t * h
                for si in 0..<s {
                    for j in 0..<t {
                        var dot: Float = 0
                        for d in 0..<h { dot += q[(bi * s + si) * hidden + n * h + d] * presentK[base + j * h + d] }
                        var x = dot * alpha
                        if let bias { x += bias.values[bi * bias.strides[0] + n * bias.strides[1] + si * t + j] }
                        if let padding, padding[bi * t + j] == 0 { x += maskFilterValue }
                        if unidirectional && j > t - s + si { x += maskFilterValue }
                        scores[j] = x
                    }
                    scores.withUnsafeMutableBufferPointer { maskedSoftmaxRow($0.baseAddress!, mask: nil, count: t, nanToZero: false) }
                    for j in 0..<t {
                        let w = scores[j]
                        for d in 0..<h { out[(bi * s + si) * hidden + n * h + d] += w * presentV[base + j * h + d] }
                    }
                }
            }
        }
        let y = narrowResult(Tensor(out, shape: [b, s, hidden]), to: dtype)
        let shape = [b, heads, t, h]
        return [y, narrowResult(Tensor(presentK, shape: shape), to: dtype), narrowResult(Tensor(presentV, shape: shape), to: dtype)]
    }
}

func registerMultiHeadAttention(_ add: (String, String, ClosedRange<Int>, @escaping OperatorFactory) -> Void) {
    add("MultiHeadAttention", "com.microsoft", 1...Int.max) { ctx in try MultiHeadAttentionOperator.make(ctx) }
}
