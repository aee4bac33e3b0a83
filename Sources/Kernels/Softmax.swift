import CKernels
import Foundation

// Softmax, once: the ONNX Softmax op, attention (`maskedSoftmaxRow`, the fused kernels inside
// `qk_attention_row`/`group`) and the sampler all compute it with `qk_softmax_row`: max-subtracted,
// exponentials summed in order, then each multiplied by 1/sum; vectorised at every SIMD level, the
// scalar loop otherwise and for rows holding a NaN. (The Softmax op references check it against ONNX
// Runtime, the sampler's distributions against transformers' within 1e-5.)

/// Softmax (or log-softmax) of one row of `n` floats; `src` and `dst` may alias.
///
/// A row of all `-inf` gives NaN, as the formula (and ONNX Runtime) does.
public func softmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, log: Bool = false) {
    if log {
        var maxValue = -Float.infinity
        for i in 0..<n { maxValue = max(maxValue, src[i]) }
        var sum: Float = 0
        for i in 0..<n { sum += expf(src[i] - maxValue) }
        let logSum = logf(sum)
        for i in 0..<n { dst[i] = src[i] - maxValue - logSum }
        return
    }
    if UnsafePointer(dst) != src { dst.update(from: src, count: n) }
    qk_softmax_row(dst, nil, n, 0)
}

/// The softmax of `values` (`softmaxRow`).
public func softmax(_ values: [Float]) -> [Float] {
    var out = values
    out.withUnsafeMutableBufferPointer { p in
        if let base = p.baseAddress { softmaxRow(base, base, p.count) }
    }
    return out
}
