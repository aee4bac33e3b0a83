import Foundation
import Testing
@testable import Kernels

/// The row norms' many-row forms compute each row as the one-row form does.
struct NormTests {
    /// `layerNormRows` (four rows' sums interleaved) equals `layerNormRow` row by row, bit for bit:
    /// outputs, means and inverse deviations, for LayerNormalization and the RMS form, scales and
    /// biases per element or broadcast, row counts around the groups of four.
    @Test(arguments: [1, 4, 5, 9], [false, true])
    func layerNormRowsEqualRowByRow(_ rows: Int, _ rms: Bool) {
        let n = 37
        var state = UInt64(rows * 2 + (rms ? 1 : 0) + 1) &* 0x9E37_79B9_7F4A_7C15
        func random() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(state >> 11) % 2_000_001 - 1_000_000) / 250_000
        }
        func buffer(_ count: Int, _ value: () -> Float) -> UnsafeMutableBufferPointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            for i in 0..<count { b[i] = value() }
            return b
        }
        let x = buffer(rows * n) { random() + 0.5 }, scale = buffer(n, random), bias = buffer(n, random)
        let one = buffer(rows * n) { 0 }, many = buffer(rows * n) { 0 }
        let means = buffer(rows) { 0 }, inverses = buffer(rows) { 0 }
        defer { [x, scale, bias, one, many, means, inverses].forEach { $0.deallocate() } }
        for (scaleCount, biasCount) in [(n, 0), (1, 1), (n, n)] {
            let pb = biasCount == 0 ? nil : UnsafePointer(bias.baseAddress!)
            var stats: [(Float, Float)] = []
            for r in 0..<rows {
                stats.append(layerNormRow(x.baseAddress! + r * n, scale: scale.baseAddress!, scaleCount: scaleCount, bias: pb,
                                          biasCount: biasCount, count: n, epsilon: 1e-6, rms: rms, into: one.baseAddress! + r * n))
            }
            layerNormRows(x.baseAddress!, scale: scale.baseAddress!, scaleCount: scaleCount, bias: pb, biasCount: biasCount,
                          rows: rows, count: n, epsilon: 1e-6, rms: rms, into: many.baseAddress!, means: means.baseAddress!,
                          inverseStdDevs: inverses.baseAddress!)
            let same = one.map(\.bitPattern) == many.map(\.bitPattern)
                && (0..<rows).allSatisfy { stats[$0].0 == means[$0] && stats[$0].1 == inverses[$0] }
            #expect(same, "rows \(rows), rms \(rms), scale \(scaleCount), bias \(biasCount)")
        }
    }
}
