// The row loops of the norm and rotary ops (Runtime's RMSNorm, Rotary, LayerNormalization,
// RotaryEmbedding and GroupQueryAttention operators).

/// RMSNorm of one row of `n` floats as the Qwen2/Llama exports compute it op by op (the fused
/// `RMSNorm` node computes exactly their floats): `dst[j] = weight[j] · (x[j] · 1/√(mean + ε))`,
/// the mean of squares summed in float32 in order and divided in double.
@inlinable
public func rmsNormRow(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, count n: Int, epsilon: Float,
                       into dst: UnsafeMutablePointer<Float>) {
    var acc: Float = 0
    for j in 0..<n { acc += x[j] * x[j] }
    rmsNormScale(x, weight: weight, count: n, sumOfSquares: acc, epsilon: epsilon, into: dst)
}

/// The scaling pass of an RMSNorm row whose sum of squares is known.
@usableFromInline @inline(__always)
func rmsNormScale(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, count n: Int, sumOfSquares: Float,
                  epsilon: Float, into dst: UnsafeMutablePointer<Float>) {
    let mean = Float(Double(sumOfSquares) / Double(n))
    let inverse = 1 / (mean + epsilon).squareRoot()
    for j in 0..<n { dst[j] = weight[j] * (x[j] * inverse) }
}

/// ``rmsNormRow(_:weight:count:epsilon:into:)`` for `rows` rows `n` apart: four rows' sums of
/// squares at a time, each still one chain in order (the same floats as row by row), so that
/// four chains hide the adds' latency, which bounds the one-row loop (~4 cycles an element).
@inlinable
public func rmsNormRows(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, count n: Int, epsilon: Float,
                        into dst: UnsafeMutablePointer<Float>) {
    var r = 0
    while r + 4 <= rows {
        let x0 = x + r * n, x1 = x0 + n, x2 = x1 + n, x3 = x2 + n
        var a0: Float = 0, a1: Float = 0, a2: Float = 0, a3: Float = 0
        for j in 0..<n {
            a0 += x0[j] * x0[j]
            a1 += x1[j] * x1[j]
            a2 += x2[j] * x2[j]
            a3 += x3[j] * x3[j]
        }
        let d0 = dst + r * n
        rmsNormScale(x0, weight: weight, count: n, sumOfSquares: a0, epsilon: epsilon, into: d0)
        rmsNormScale(x1, weight: weight, count: n, sumOfSquares: a1, epsilon: epsilon, into: d0 + n)
        rmsNormScale(x2, weight: weight, count: n, sumOfSquares: a2, epsilon: epsilon, into: d0 + 2 * n)
        rmsNormScale(x3, weight: weight, count: n, sumOfSquares: a3, epsilon: epsilon, into: d0 + 3 * n)
        r += 4
    }
    for row in r..<rows { rmsNormRow(x + row * n, weight: weight, count: n, epsilon: epsilon, into: dst + row * n) }
}

/// ONNX LayerNormalization (or, with `rms`, ONNX Runtime's SimplifiedLayerNormalization: no mean)
/// of one row of `n` floats: mean, then variance of the deviations, both summed in float32 in order
/// and divided by n; `dst[j] = (x[j] − mean) · inv · scale[j] (+ bias[j])` with
/// `inv = 1/√(variance + ε)`. `scaleCount` and `biasCount` are `n` or 1 (broadcast). Returns the
/// row's mean (0 with `rms`) and `inv`. (The op references in Tests/RuntimeTests/Data/ops check it
/// against ONNX Runtime.)
@inlinable
public func layerNormRow(_ x: UnsafePointer<Float>, scale: UnsafePointer<Float>, scaleCount: Int, bias: UnsafePointer<Float>?,
                         biasCount: Int, count n: Int, epsilon: Float, rms: Bool,
                         into dst: UnsafeMutablePointer<Float>) -> (mean: Float, inverseStdDev: Float) {
    var mean: Float = 0
    if !rms {
        for i in 0..<n { mean += x[i] }
        mean /= Float(n)
    }
    var variance: Float = 0
    for i in 0..<n { let d = x[i] - mean; variance += d * d }
    let inverse = layerNormInverse(variance, count: n, epsilon: epsilon)
    layerNormScale(x, mean: mean, inverse: inverse, scale: scale, scaleCount: scaleCount, bias: bias, biasCount: biasCount,
                   count: n, into: dst)
    return (mean, inverse)
}

/// ``layerNormRow(_:scale:scaleCount:bias:biasCount:count:epsilon:rms:into:)`` for `rows` rows `n`
/// apart, four rows' sums at a time, each still one chain in order (the same floats as row by row:
/// four chains hide the adds' latency, which bounds the one-row loop), each row's mean and `inv`
/// into `means` and `inverseStdDevs`.
@inlinable
public func layerNormRows(_ x: UnsafePointer<Float>, scale: UnsafePointer<Float>, scaleCount: Int, bias: UnsafePointer<Float>?,
                          biasCount: Int, rows: Int, count n: Int, epsilon: Float, rms: Bool, into dst: UnsafeMutablePointer<Float>,
                          means: UnsafeMutablePointer<Float>, inverseStdDevs: UnsafeMutablePointer<Float>) {
    var r = 0
    while r + 4 <= rows {
        let x0 = x + r * n, x1 = x0 + n, x2 = x1 + n, x3 = x2 + n
        var m0: Float = 0, m1: Float = 0, m2: Float = 0, m3: Float = 0
        if !rms {
            for i in 0..<n { m0 += x0[i]; m1 += x1[i]; m2 += x2[i]; m3 += x3[i] }
            m0 /= Float(n); m1 /= Float(n); m2 /= Float(n); m3 /= Float(n)
        }
        var v0: Float = 0, v1: Float = 0, v2: Float = 0, v3: Float = 0
        for i in 0..<n {
            let d0 = x0[i] - m0, d1 = x1[i] - m1, d2 = x2[i] - m2, d3 = x3[i] - m3
            v0 += d0 * d0; v1 += d1 * d1; v2 += d2 * d2; v3 += d3 * d3
        }
        for (k, (m, v)) in [(m0, v0), (m1, v1), (m2, v2), (m3, v3)].enumerated() {
            let inverse = layerNormInverse(v, count: n, epsilon: epsilon)
            layerNormScale(x0 + k * n, mean: m, inverse: inverse, scale: scale, scaleCount: scaleCount, bias: bias,
                           biasCount: biasCount, count: n, into: dst + (r + k) * n)
            (means[r + k], inverseStdDevs[r + k]) = (m, inverse)
        }
        r += 4
    }
    for row in r..<rows {
        (means[row], inverseStdDevs[row]) = layerNormRow(x + row * n, scale: scale, scaleCount: scaleCount, bias: bias,
                                                         biasCount: biasCount, count: n, epsilon: epsilon, rms: rms, into: dst + row * n)
    }
}

/// `1/√(Σ d² / n + ε)`, the variance divided in float32.
@usableFromInline @inline(__always)
func layerNormInverse(_ sumOfSquares: Float, count n: Int, epsilon: Float) -> Float {
    1 / (sumOfSquares / Float(n) + epsilon).squareRoot()
}

/// `dst[i] = (x[i] − mean) · inv · scale[i] (+ bias[i])`.
@usableFromInline @inline(__always)
func layerNormScale(_ x: UnsafePointer<Float>, mean: Float, inverse: Float, scale: UnsafePointer<Float>, scaleCount: Int,
                    bias: UnsafePointer<Float>?, biasCount: Int, count n: Int, into dst: UnsafeMutablePointer<Float>) {
    if scaleCount != 1, bias == nil {
        // The common form (a scale per element, no bias) as its own loop, which vectorises.
        for i in 0..<n { dst[i] = (x[i] - mean) * inverse * scale[i] }
        return
    }
    for i in 0..<n {
        var v = (x[i] - mean) * inverse * scale[scaleCount == 1 ? 0 : i]
        if let bias { v += bias[biasCount == 1 ? 0 : i] }
        dst[i] = v
    }
}

/// The rotate-half rotary embedding of one row of `n` floats (n even, h = n/2), as the exports
/// compute it op by op: `y[i] = x[i]·cos[i] + (−x[i+h])·sin[i]` for i < h and
/// `y[i] = x[i]·cos[i] + x[i−h]·sin[i]` after, two float32 products and their sum.
@inlinable
public func rotateHalfRow(_ x: UnsafePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, count n: Int,
                          into y: UnsafeMutablePointer<Float>) {
    let h = n / 2
    for i in 0..<h {
        let direct = x[i] * cos[i], rotated = -x[i + h] * sin[i]
        y[i] = direct + rotated
    }
    for i in h..<n {
        let direct = x[i] * cos[i], rotated = x[i - h] * sin[i]
        y[i] = direct + rotated
    }
}

/// Rotates one head's row in place: the first `rotaryDim` values in pairs (i, i + rotaryDim/2),
/// or (2i, 2i+1) when `interleaved`, by the angles whose cosines and sines are `cos[0..<half]`,
/// `sin[0..<half]`; the values after `rotaryDim` are left as they are. Each value is
/// `x[i]·cos + sign·x[j]·sin`, ONNX Runtime's formula.
@inlinable
public func rotateHeadRow(_ x: UnsafeMutablePointer<Float>, rotaryDim: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                          interleaved: Bool) {
    let half = rotaryDim / 2
    if interleaved {
        for p in 0..<half {
            let (a, b) = (x[2 * p], x[2 * p + 1])
            x[2 * p] = a * cos[p] - b * sin[p]
            x[2 * p + 1] = b * cos[p] + a * sin[p]
        }
    } else {
        for p in 0..<half {
            let (a, b) = (x[p], x[p + half])
            x[p] = a * cos[p] - b * sin[p]
            x[p + half] = b * cos[p] + a * sin[p]
        }
    }
}
