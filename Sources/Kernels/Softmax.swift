import Foundation

/// Softmax (or log-softmax) of one row of `n` floats; `src` and `dst` may alias.
///
/// Max-subtracted for stability; a row of all `-inf` gives NaN, as the formula (and ONNX
/// Runtime) does.
public func softmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, log: Bool = false) {
    var maxValue = -Float.infinity
    for i in 0..<n { maxValue = max(maxValue, src[i]) }
    if log {
        var sum: Float = 0
        for i in 0..<n { sum += expf(src[i] - maxValue) }
        let logSum = logf(sum)
        for i in 0..<n { dst[i] = src[i] - maxValue - logSum }
        return
    }
    var sum: Float = 0
    for i in 0..<n {
        let e = expf(src[i] - maxValue)
        dst[i] = e
        sum += e
    }
    let scale = 1 / sum
    for i in 0..<n { dst[i] *= scale }
}
