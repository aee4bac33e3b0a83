import Kernels

// Rotary position embedding with cos/sin caches, as com.microsoft.RotaryEmbedding, ai.onnx
// RotaryEmbedding (opset 23) and com.microsoft.GroupQueryAttention (`do_rotary`) compute it.

/// Rows of `count` head vectors of `headSize` floats at `x` (row r at `x + r·headSize`), each
/// rotated at `position(r)` by the caches `cos`/`sin` (`[positions, rotaryDim/2]`, float32).
func rotateRows(_ x: UnsafeMutablePointer<Float>, count: Int, headSize: Int, rotaryDim: Int, cos: Tensor, sin: Tensor,
                interleaved: Bool, position: (Int) -> Int) throws {
    let half = rotaryDim / 2, positions = cos.shape.first ?? 0
    let pc = UnsafePointer(cos.pointer(as: Float.self)), ps = UnsafePointer(sin.pointer(as: Float.self))
    for r in 0..<count {
        let p = position(r)
        guard p >= 0 && p < positions else { throw OpError("position \(p) is outside the cos/sin caches (\(positions) positions)") }
        rotateHeadRow(x + r * headSize, rotaryDim: rotaryDim, cos: pc + p * half, sin: ps + p * half, interleaved: interleaved)
    }
}

/// Checks cos/sin caches `[positions, rotaryDim/2]` against a head size and returns them as
/// float32 with the rotary dimension.
func rotaryCaches(_ cosIn: Tensor, _ sinIn: Tensor, headSize: Int) throws -> (cos: Tensor, sin: Tensor, rotaryDim: Int) {
    guard cosIn.rank == 2, cosIn.shape == sinIn.shape else {
        throw OpError("cos_cache \(cosIn.shape) and sin_cache \(sinIn.shape) must both be [positions, rotary_dim / 2]")
    }
    let rotaryDim = cosIn.shape[1] * 2
    guard rotaryDim > 0, rotaryDim <= headSize else { throw OpError("cos_cache gives a rotary dimension of \(rotaryDim) for heads of \(headSize)") }
    return (try floatOperand(cosIn), try floatOperand(sinIn), rotaryDim)
}

/// com.microsoft.RotaryEmbedding: input `[B, S, N·H]` (N from `num_heads`, or H from the caches
/// when rotating whole heads) or `[B, N, S, H]`; `position_ids` `[B, S]`, or one value, the
/// position of the first token (positions then count up); cos/sin caches `[positions, R/2]`.
/// ai.onnx RotaryEmbedding (opset 23) is the same computation with inputs ordered
/// (X, cos_cache, sin_cache, position_ids) and, without position_ids, caches `[B, S, R/2]`
/// already indexed by position.
struct RotaryEmbeddingOperator: Operator {
    let interleaved: Bool
    let numHeads: Int
    let rotaryDimAttribute: Int
    /// ai.onnx form (opset 23): inputs (X, cos, sin, position_ids?).
    let onnxDomain: Bool

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let xIn = try inputs.required(0)
        let positionsIn: Tensor?, cosIn: Tensor, sinIn: Tensor
        if onnxDomain {
            (cosIn, sinIn, positionsIn) = (try inputs.required(1), try inputs.required(2), inputs.optional(3))
        } else {
            (positionsIn, cosIn, sinIn) = (try inputs.required(1), try inputs.required(2), try inputs.required(3))
        }
        guard xIn.dtype == .float || xIn.dtype == .float16 else { throw OpError("input must be float32 or float16, got \(xIn.dtype)") }
        guard xIn.rank == 3 || xIn.rank == 4 else { throw OpError("input must be [B, S, hidden] or [B, N, S, H], got \(xIn.shape)") }
        let x = try floatOperand(xIn)
        let out = Tensor(dtype: .float, shape: x.shape)
        out.rawPointer.copyMemory(from: x.rawPointer, byteCount: x.count * 4)
        let b = x.shape[0]
        // Heads and their layout: rows of H floats; row r is (batch, position) and head.
        let heads: Int, s: Int, headSize: Int
        if x.rank == 4 {
            (heads, s, headSize) = (x.shape[1], x.shape[2], x.shape[3])
        } else {
            s = x.shape[1]
            let half = (cosIn.shape.last ?? 0)
            if numHeads > 0 { heads = numHeads } else if rotaryDimAttribute == 0, half > 0, x.shape[2] % (2 * half) == 0 { heads = x.shape[2] / (2 * half) }
            else { throw OpError("num_heads is needed to split a [B, S, hidden] input into heads") }
            guard heads > 0, x.shape[2] % heads == 0 else { throw OpError("hidden size \(x.shape[2]) is not a multiple of num_heads \(heads)") }
            headSize = x.shape[2] / heads
        }
        // Position of (batch bi, token si).
        let positionOf: (Int, Int) -> Int
        if let p = positionsIn {
            let ids = try intValues(p)
            if ids.count == 1 && !(p.rank == 2 && b * s == 1) && !onnxDomain {
                positionOf = { _, si in ids[0] + si }
            } else {
                guard ids.count == b * s else { throw OpError("position_ids has shape \(p.shape), expected [\(b), \(s)]") }
                positionOf = { bi, si in ids[bi * s + si] }
            }
        } else {
            positionOf = { bi, si in bi * s + si }   // caches [B, S, R/2] are read as [B·S, R/2]
        }
        var cosT = cosIn, sinT = sinIn
        if positionsIn == nil {
            guard cosIn.rank == 3, cosIn.shape[0] == b, cosIn.shape[1] == s else {
                throw OpError("without position_ids, cos_cache must be [\(b), \(s), rotary_dim / 2], got \(cosIn.shape)")
            }
            cosT = cosIn.reshaped([b * s, cosIn.shape[2]])
            sinT = sinIn.reshaped([b * s, sinIn.shape[2]])
        }
        let (cos, sin, rotaryDim) = try rotaryCaches(cosT, sinT, headSize: headSize)
        if rotaryDimAttribute > 0 && rotaryDimAttribute != rotaryDim {
            throw OpError("rotary_embedding_dim \(rotaryDimAttribute) does not match the caches' \(rotaryDim)")
        }
        let po = out.pointer(as: Float.self)
        for bi in 0..<b {
            for si in 0..<s {
                for h in 0..<heads {
                    let offset = x.rank == 4 ? ((bi * heads + h) * s + si) * headSize : ((bi * s + si) * heads + h) * headSize
                    try rotateRows(po + offset, count: 1, headSize: headSize, rotaryDim: rotaryDim, cos: cos, sin: sin,
                                   interleaved: interleaved) { _ in positionOf(bi, si) }
                }
            }
        }
        return [narrowResult(out, to: xIn.dtype)]
    }
}

func registerRotaryEmbedding(_ add: (String, String, ClosedRange<Int>, @escaping OperatorFactory) -> Void) {
    add("RotaryEmbedding", "com.microsoft", 1...Int.max) { ctx in
        if ctx.node.intAttribute("is_packed_batching", default: 0) != 0 {
            throw ctx.node.invalid("is_packed_batching = 1 is not supported")
        }
        return RotaryEmbeddingOperator(interleaved: ctx.node.intAttribute("interleaved", default: 0) != 0,
                                       numHeads: ctx.node.intAttribute("num_heads", default: 0),
                                       rotaryDimAttribute: ctx.node.intAttribute("rotary_embedding_dim", default: 0),
                                       onnxDomain: false)
    }
    add("RotaryEmbedding", "", 23...Int.max) { ctx in
        RotaryEmbeddingOperator(interleaved: ctx.node.intAttribute("interleaved", default: 0) != 0,
                                numHeads: ctx.node.intAttribute("num_heads", default: 0),
                                rotaryDimAttribute: ctx.node.intAttribute("rotary_embedding_dim", default: 0),
                                onnxDomain: true)
    }
}
