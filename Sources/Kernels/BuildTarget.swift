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
/// dependencies that declare such flags, so the library cannot set them; it warns instead.
public enum BuildTarget {
    /// Whether the Swift code of this module was compiled for a CPU with AVX2 and FMA.
    public static let compiledForAVX2 = qk_caller_compiled_for_avx2() != 0

    /// Whether this CPU has AVX2, FMA and F16C.
    public static var cpuHasAVX2: Bool { qk_q4_isa() > 0 }

    /// The warning for a build that leaves the CPU's AVX2 unused, or nil.
    static func genericBuildWarning(compiledForAVX2: Bool, cpuHasAVX2: Bool) -> String? {
        guard cpuHasAVX2 && !compiledForAVX2 else { return nil }
        return "qwen-swift: warning: built for a generic x86-64 CPU, but this one has AVX2 and FMA: the Swift loops run "
            + "with SSE only (the C kernels are unaffected). Build with -Xswiftc -target-cpu -Xswiftc native "
            + "(or x86-64-v3) for full speed; see README, \"Build for speed\".\n"
    }

    private static let warnedOnce: Void = {
        if let message = genericBuildWarning(compiledForAVX2: compiledForAVX2, cpuHasAVX2: cpuHasAVX2) {
            var bytes = Array(message.utf8)
            _ = write(2, &bytes, bytes.count)
        }
    }()

    /// Prints `genericBuildWarning` to standard error, once per process.
    public static func warnOnceIfGeneric() { _ = warnedOnce }
}
