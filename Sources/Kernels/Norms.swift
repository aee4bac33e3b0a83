// The row loops of the fused norm and rotary ops (Runtime's RMSNorm and Rotary operators).

/// RMSNorm of one row of `n` floats as the Qwen2/Llama exports compute it op by op (the fused
/// `RMSNorm` node computes exactly their floats): `dst[j] = weight[j] · (x[j] · 1/√(mean + ε))`,
/// the mean of squares summed in float32 in order and divided in double.
@inlinable
public func rmsNormRow(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, count n: Int, epsilon: Float,
                       into dst: UnsafeMutablePointer<Float>) {
    var acc: Float = 0
    for j in 0..<n { acc += x[j] * x[j] }
    let mean = Float(Double(acc) / Double(n))
    let inverse = 1 / (mean + epsilon).squareRoot()
    for j in 0..<n { dst[j] = weight[j] * (x[j] * inverse) }
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
