import Kernels
import Testing
@testable import Runtime

/// MatMulInteger with a constant B (packed at planning: the AVX-512 VNNI panels where that kernel
/// runs, else the int16 columns) and DynamicQuantizeLinear, against exact sums and the ONNX
/// definition computed here. The ORT single-op cases (`ORTOpCaseTests`) cover the same ops on
/// ONNX Runtime's outputs; these add the shapes the kernels' edges sit on: no rows, one row,
/// strip tails, k not a multiple of 4 or 16, n past whole 16-column panels.
struct QuantizationOpTests {
    @Test(arguments: [(0, 8, 5), (1, 896, 64), (5, 7, 17), (13, 100, 33), (6, 32, 3)], [(false, true), (true, true), (false, false), (true, false)])
    func matMulIntegerEqualsExactSums(_ shape: (m: Int, k: Int, n: Int), _ signs: (a: Bool, b: Bool)) throws {
        var rng = SeededRandom(seed: UInt64(shape.m * 1000 + shape.k * 10 + shape.n))
        let (m, k, n) = shape
        let aBytes = (0..<(m * k)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let bBytes = (0..<(k * n)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let aZero = UInt8.random(in: 0...255, using: &rng)
        let bZeros = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
        func value(_ byte: UInt8, signed: Bool) -> Int64 { signed ? Int64(Int8(bitPattern: byte)) : Int64(byte) }
        let a = Tensor(bytes: aBytes, dtype: signs.a ? .int8 : .uint8, shape: [1, m, k])
        let b = Tensor(bytes: bBytes, dtype: signs.b ? .int8 : .uint8, shape: [k, n])
        let za = Tensor(bytes: [aZero], dtype: signs.a ? .int8 : .uint8, shape: [])
        let zb = Tensor(bytes: bZeros, dtype: signs.b ? .int8 : .uint8, shape: [n])
        let y = try runOp("MatMulInteger", [a, b, za, zb], opset: 10, constantInputs: [1])[0]
        #expect(y.shape == [1, m, n])
        var expected = [Int64](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum: Int64 = 0
                for t in 0..<k {
                    sum += (value(aBytes[i * k + t], signed: signs.a) - value(aZero, signed: signs.a))
                        * (value(bBytes[t * n + j], signed: signs.b) - value(bZeros[j], signed: signs.b))
                }
                expected[i * n + j] = sum
            }
        }
        #expect(y.int64s() == expected, "m \(m), k \(k), n \(n), A \(signs.a ? "int8" : "uint8"), B \(signs.b ? "int8" : "uint8")")
    }

    /// scale = (max(x, 0) − min(x, 0)) / 255, zero point round(−min / scale) clamped, each value
    /// saturate(round_half_even(x / scale) + zero point), a NaN to the zero point and skipped by
    /// the range: threaded in chunks from 64 K values, vectorised within them.
    @Test(arguments: [7, 1000, 70_000, 200_003])
    func dynamicQuantizeLinearFollowsTheDefinition(_ n: Int) throws {
        var rng = SeededRandom(seed: UInt64(n))
        var x = (0..<n).map { _ in Float.random(in: -3...5, using: &rng) }
        x[n / 3] = .nan
        x[n / 2] = -0.0
        if n > 100 { x[n - 1] = -7.5 }   // the minimum at the very end, past every vector
        let out = try runOp("DynamicQuantizeLinear", [Tensor(x, shape: [n])], opset: 11, outputs: 3)
        var lo: Float = 0, hi: Float = 0
        for v in x where !v.isNaN {
            lo = Swift.min(lo, v)
            hi = Swift.max(hi, v)
        }
        let scale = hi == lo ? 1 : (hi - lo) / 255
        let zero = UInt8(Swift.max(0, Swift.min(255, (0 - lo / scale).rounded(.toNearestOrEven))))
        #expect(out[1].floats() == [scale])
        #expect(out[2].int64s() == [Int64(zero)])
        #expect(out[0].dtype == .uint8 && out[0].shape == [n])
        let q = out[0].int64s()
        var mismatches = 0
        for i in 0..<n {
            let v = (x[i] / scale).rounded(.toNearestOrEven) + Float(zero)
            let expected = v.isNaN ? zero : UInt8(Swift.min(Swift.max(v, 0), 255))
            if q[i] != Int64(expected) { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }
}
