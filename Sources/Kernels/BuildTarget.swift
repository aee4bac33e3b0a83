import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What this build of the Swift code was compiled for, against the CPU it runs on.
///
/// The hot kernels are C chosen at run time, but the Swift loops (elementwise ops, conversions,
/// shape ops) use whatever the compiler was told: without `-Xswiftc -target-cpu -Xswiftc native`
/// (or `x86-64-v3`, `znver4`...) a `SIMD16<Float>` FMA becomes scalar `fma` calls. SwiftPM refuses
/// dependencies that declare such flags, so the library cannot set them. Measured, that costs a
/// generation ~4% (AMD Zen 4, 6 paired runs: wall 1.039×): too little for a line on every run's
/// stderr (`qwen-run --version` says how the binary was built). A build without optimisation
/// (debug: ~100× slower) is warned about once per process.
public enum BuildTarget {
    /// Whether the Swift code of this module was compiled for a CPU with AVX2 and FMA.
    public static let compiledForAVX2 = qk_caller_compiled_for_avx2() != 0

    /// Whether this CPU has AVX2, FMA and F16C (false off x86-64).
    public static var cpuHasAVX2: Bool {
        #if arch(x86_64)
        KernelISA.detected >= .avx2
        #else
        false
        #endif
    }

    /// Whether the C kernels were compiled with optimisation (SwiftPM builds C targets -O0 in
    /// debug builds).
    public static let kernelsOptimized = qk_kernels_optimized() != 0

    /// Whether this module's Swift code was compiled with optimisation (`-O`, as `-c release`).
    public static let swiftOptimized: Bool = {
        #if DEBUG
        return false
        #else
        return !_isDebugAssertConfiguration()
        #endif
    }()

    /// The warning for a build without optimisation, or nil.
    static func unoptimizedBuildWarning(kernelsOptimized: Bool, swiftOptimized: Bool) -> String? {
        guard !kernelsOptimized || !swiftOptimized else { return nil }
        let what = !kernelsOptimized && !swiftOptimized ? "its C kernels (-O0) and Swift code (-Onone)"
            : !kernelsOptimized ? "its C kernels (-O0)" : "its Swift code (-Onone)"
        return "qwen-swift: warning: this is a debug build: \(what) are not optimised, and a model runs about "
            + "100× slower than in a release build (measured: decode 1.2 vs 105 tokens/s). Build with -c release (e.g. "
            + "`swift build -c release`, `swift run -c release`), or keep a debug build of your own code and "
            + "optimise the dependencies with `-Xcc -O2 -Xswiftc -O`.\n"
    }

    private static let warnedOnce: Void = {
        let isaSetting = getenv("QWEN_ISA").map { String(cString: $0) }
        for message in [unoptimizedBuildWarning(kernelsOptimized: kernelsOptimized, swiftOptimized: swiftOptimized),
                        KernelISA.settingWarning(isaSetting, detected: KernelISA.detected)] {
            guard let message else { continue }
            var bytes = Array(message.utf8)
            _ = write(2, &bytes, bytes.count)
        }
    }()

    /// Prints `unoptimizedBuildWarning` and `KernelISA.settingWarning` (those that apply) to
    /// standard error, once per process.
    public static func warnOnce() { _ = warnedOnce }
}
