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
