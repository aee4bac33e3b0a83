import Foundation
import Testing
import CKernels
@testable import Kernels

/// The C (AVX2/AVX-512) and Swift int4 kernels against a scalar dequantize-then-dot reference,
/// on the shapes of the real model's layers (K = 896 and 4864) and with K tails.
@Suite struct BlockQuantizedTests {
    struct Shape: Sendable, CustomStringConvertible {
        let k: Int, n: Int, zeroPoints: Bool, half: Bool
        var description: String { "K\(k) N\(n)\(zeroPoints ? " zp" : "")\(half ? " fp16" : " fp32") scales" }
    }

    static let shapes = [
        Shape(k: 896, n: 37, zeroPoints: false, half: true),
        Shape(k: 4864, n: 9, zeroPoints: false, half: true),
        Shape(k: 200, n: 21, zeroPoints: true, half: false),
        Shape(k: 96, n: 5, zeroPoints: true, half: true),
    ]

    @Test(arguments: shapes, [true, false])
    func gemvAndDequantizeMatchTheReference(_ s: Shape, native: Bool) throws {
        var rng = SeededRandom(seed: UInt64(s.k * 31 + s.n))
        func next() -> UInt64 { rng.next() >> 33 }
        let blocks = (s.k + 31) / 32
        let data = (0..<(s.n * blocks * 16)).map { _ in UInt8(truncatingIfNeeded: next()) }
        let scales = (0..<(s.n * blocks)).map { _ in Float(next() % 1000 + 1) / 20000 }
        let halfScales = scales.map { Float16($0) }
        let zps = (0..<(s.n * ((blocks + 1) / 2))).map { _ in UInt8(truncatingIfNeeded: next()) }
        let a = (0..<s.k).map { _ in Float(Int(next() % 2001) - 1000) / 1000 }

        func reference(_ row: Int) -> Double {
            var sum = 0.0
            for k in 0..<s.k {
                let b = k / 32, j = k % 32
                let byte = data[(row * blocks + b) * 16 + j / 2]
                let q = Int(j % 2 == 0 ? byte & 0xF : byte >> 4)
                let zpByte = zps[row * ((blocks + 1) / 2) + b / 2]
                let z = s.zeroPoints ? Int(b % 2 == 0 ? zpByte & 0xF : zpByte >> 4) : 8
                let scale = s.half ? Double(Float(halfScales[row * blocks + b])) : Double(scales[row * blocks + b])
                sum += Double(q - z) * scale * Double(a[k])
            }
            return sum
        }

        try data.withUnsafeBufferPointer { d in
            try scales.withUnsafeBufferPointer { sc in
                try halfScales.withUnsafeBufferPointer { hs in
                    try zps.withUnsafeBufferPointer { z in
                        var m = BlockQuantizedMatrix(
                            n: s.n, k: s.k, bits: 4, blockSize: 32, data: d.baseAddress!,
                            scales: s.half ? .half(hs.baseAddress!) : .float(sc.baseAddress!),
                            zeroPoints: s.zeroPoints ? .packed(z.baseAddress!) : .none)
                        m.allowsNativeKernels = native
                        // Without AVX2 the native flag changes nothing: both runs test the Swift kernels.
                        var packed = [Float](repeating: 0, count: m.paddedK)
                        var y = [Float](repeating: 0, count: s.n)
                        var deq = [Float](repeating: 0, count: s.n * m.paddedK)
                        a.withUnsafeBufferPointer { ap in
                            packed.withUnsafeMutableBufferPointer { m.pack(activations: ap.baseAddress!, into: $0.baseAddress!) }
                        }
                        let packedA = packed
                        packed.withUnsafeBufferPointer { p in
                            y.withUnsafeMutableBufferPointer { m.gemv(packed: p.baseAddress!, rows: 0..<s.n, into: $0.baseAddress!) }
                        }
                        deq.withUnsafeMutableBufferPointer { m.dequantize(rows: 0..<s.n, into: $0.baseAddress!, ld: m.paddedK) }
                        for row in 0..<s.n {
                            let r = reference(row)
                            let tolerance = 1e-5 * max(1, abs(r)) + 1e-6 * Double(s.k)
                            #expect(abs(Double(y[row]) - r) <= tolerance, "\(s) native=\(native) row \(row): gemv \(y[row]) vs \(r)")
                            // The dequantized row, in the kernels' order, dotted with the packed activations.
                            var dot = 0.0
                            for e in 0..<m.paddedK { dot += Double(deq[row * m.paddedK + e]) * Double(packedA[e]) }
                            #expect(abs(dot - r) <= tolerance, "\(s) native=\(native) row \(row): dequantize·a \(dot) vs \(r)")
                        }
                    }
                }
            }
        }
    }
}

/// The vectorised sigmoid (polynomial exp) against the libm-based formula.
@Suite struct ActivationKernelTests {
    @Test func sigmoidIsWithinFourUlpOfLibm() {
        var x: [Float] = stride(from: -30, through: 30, by: 0.0137).map { Float($0) }
        x += [0, -0, 1e-8, -1e-8, 88, -87, 100, -100, .infinity, -.infinity, .nan, 3]
        var y = [Float](repeating: 0, count: x.count)
        qk_sigmoid(x, &y, x.count)
        for (xi, yi) in zip(x, y) {
            if xi.isNaN { #expect(yi.isNaN); continue }
            let reference = xi >= 0 ? 1 / (1 + expf(-xi)) : expf(xi) / (1 + expf(xi))
            let tolerance = 4 * max(reference.ulp, Float.leastNormalMagnitude)
            #expect(abs(yi - reference) <= tolerance || (reference < 1e-30 && yi < 1e-30), "sigmoid(\(xi)) = \(yi), libm \(reference)")
        }
    }
}
