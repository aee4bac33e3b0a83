import Foundation
import Testing
@testable import Kernels

/// `sgemm` against a double-precision reference, for every transpose combination, with alpha and
/// beta, on products small enough for one BLAS call and large enough to be split across the
/// kernels' threads by rows (M ≥ N) or by columns (M < N).
@Suite struct BLASTests {
    struct Shape: Sendable, CustomStringConvertible {
        let m: Int, n: Int, k: Int
        var description: String { "M\(m) N\(n) K\(k)" }
    }

    @Test(arguments: [Shape(m: 5, n: 7, k: 3), Shape(m: 300, n: 70, k: 64), Shape(m: 3, n: 900, k: 500)],
          [(false, false), (true, false), (false, true), (true, true)])
    func matchesTheReference(_ s: Shape, transposes: (a: Bool, b: Bool)) {
        var rng = SeededRandom(seed: UInt64(s.m * 1000 + s.n + s.k))
        func random() -> Float { Float(Int(rng.next() >> 40) % 2001 - 1000) / 1000 }
        let a = (0..<(s.m * s.k)).map { _ in random() }, b = (0..<(s.k * s.n)).map { _ in random() }
        let c0 = (0..<(s.m * s.n)).map { _ in random() }
        let (alpha, beta): (Float, Float) = (0.75, 0.5)
        // A stored [K, M] when transposed (lda = M), else [M, K] (lda = K); B likewise.
        let lda = transposes.a ? s.m : s.k, ldb = transposes.b ? s.k : s.n
        func aAt(_ i: Int, _ p: Int) -> Double { Double(transposes.a ? a[p * lda + i] : a[i * lda + p]) }
        func bAt(_ p: Int, _ j: Int) -> Double { Double(transposes.b ? b[j * ldb + p] : b[p * ldb + j]) }
        var c = c0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    sgemm(transA: transposes.a, transB: transposes.b, m: s.m, n: s.n, k: s.k, alpha: alpha, a: pa.baseAddress!,
                          lda: lda, b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: s.n)
                }
            }
        }
        var worst = 0.0
        for i in 0..<s.m {
            for j in 0..<s.n {
                var sum = 0.0
                for p in 0..<s.k { sum += aAt(i, p) * bAt(p, j) }
                let expected = Double(alpha) * sum + Double(beta) * Double(c0[i * s.n + j])
                worst = max(worst, abs(Double(c[i * s.n + j]) - expected))
            }
        }
        #expect(worst <= 1e-5 * Double(s.k), "\(s) transposes \(transposes): max |Δ| \(worst)")
    }
}

/// What the build was compiled for, and the debug-build warning.
@Suite struct BuildTargetTests {
    /// The Swift code's target as the compiler saw it: scripts/test names the CPU, so on a CPU with
    /// AVX2 it is compiled for AVX2; CI's generic build (QWEN_EXPECT_GENERIC_BUILD=1) is not.
    @Test func knowsWhatItWasCompiledFor() {
        print("BuildTarget: Swift compiled for AVX2: \(BuildTarget.compiledForAVX2), CPU has AVX2: \(BuildTarget.cpuHasAVX2)")
        if ProcessInfo.processInfo.environment["QWEN_EXPECT_GENERIC_BUILD"] == "1" {
            #expect(!BuildTarget.compiledForAVX2)
        } else if BuildTarget.cpuHasAVX2 {
            #expect(BuildTarget.compiledForAVX2, "scripts/test builds with -target-cpu native")
        }
    }

    /// The debug-build warning names what is unoptimised; scripts/test builds release, so this
    /// build is optimised in both languages and prints none.
    @Test func warnsForAnUnoptimisedBuild() {
        #expect(BuildTarget.unoptimizedBuildWarning(kernelsOptimized: true, swiftOptimized: true) == nil)
        let both = BuildTarget.unoptimizedBuildWarning(kernelsOptimized: false, swiftOptimized: false)
        #expect(both?.contains("C kernels (-O0) and Swift code (-Onone)") == true && both?.contains("-c release") == true)
        #expect(BuildTarget.unoptimizedBuildWarning(kernelsOptimized: false, swiftOptimized: true)?.contains("C kernels (-O0)") == true)
        #expect(BuildTarget.unoptimizedBuildWarning(kernelsOptimized: true, swiftOptimized: false)?.contains("Swift code (-Onone)") == true)
        #expect(BuildTarget.kernelsOptimized && BuildTarget.swiftOptimized, "scripts/test builds with -c release")
    }
}
