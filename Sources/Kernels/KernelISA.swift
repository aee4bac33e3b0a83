import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The instruction-set levels of the C kernels (`qk_isa_level`), each including the ones below
/// but for ``avxVNNI``, which the AVX-512 levels do not include.
///
/// Chosen at run time: the highest level the CPU and OS support (``detected``), lowered by the
/// environment variable `QWEN_ISA` (x86-64: `portable`, `avx2`, `avxvnni`, `avx512`,
/// `avx512vnni`, `avx512wide`; arm64: `portable`, `neon`, `dotprod`, `i8mm`) when it names a lower
/// one (``active``). Every level computes the same floats, on both architectures; only the speed
/// differs.
public enum KernelISA: Int32, Comparable, CaseIterable, Sendable, CustomStringConvertible {
    /// No C SIMD kernel: the Swift and scalar fallbacks.
    case portable = 0
    #if arch(arm64)
    /// Advanced SIMD (NEON, with float16 conversions): every AArch64 CPU.
    case neon = 1
    /// The dot product instructions (`sdot`, FEAT_DotProd): the int8 products.
    case dotprod = 2
    /// The int8 matrix multiply (`smmla`, FEAT_I8MM): the int8 GEMM.
    case i8mm = 3
    #else
    /// AVX2, FMA and F16C.
    case avx2 = 1
    /// AVX2 with AVX-VNNI (the VEX `vpdpbusd` and `vpdpwssd`): the integer int4 products of CPUs
    /// with VNNI but no AVX-512 (Intel's client cores since Alder Lake). The levels above do not
    /// include it; on a CPU without AVX-VNNI it runs as ``avx2`` (``runnable`` leaves it out).
    case avxVNNI = 2
    /// AVX-512 F/BW/VL/DQ: the float32 GEMMs in 512-bit registers.
    case avx512 = 3
    /// AVX-512 VNNI: the integer (int8 and int16 activation) int4 products with `vpdpbusd` and
    /// `vpdpwssd`.
    case avx512VNNI = 4
    /// The integer products in 512-bit registers (two row groups per register): chosen on AVX-512
    /// VNNI CPUs that execute 512-bit operations whole (AMD Zen 5, Intel), not on AMD Zen 4, which
    /// splits them into 256-bit halves and runs the 256-bit kernels as fast.
    case avx512Wide = 5
    #endif

    /// The lowest level with C SIMD kernels (AVX2 on x86-64, NEON on arm64): every packed
    /// kernel runs from this level on.
    public static let simd = KernelISA(rawValue: 1)!

    /// The highest level this CPU supports.
    public static let detected = KernelISA(rawValue: qk_isa_detected()) ?? .portable

    /// The level the kernels run at in this process (``detected``, or lower with `QWEN_ISA`).
    public static let active = KernelISA(rawValue: qk_isa()) ?? .portable

    /// The level named as `QWEN_ISA` spells it (see the type's description).
    public init?(name: String) {
        guard let isa = KernelISA(rawValue: qk_isa_parse(name)) else { return nil }
        self = isa
    }

    /// The name `QWEN_ISA` takes.
    public var name: String {
        switch self {
        case .portable: "portable"
        #if arch(arm64)
        case .neon: "neon"
        case .dotprod: "dotprod"
        case .i8mm: "i8mm"
        #else
        case .avx2: "avx2"
        case .avxVNNI: "avxvnni"
        case .avx512: "avx512"
        case .avx512VNNI: "avx512vnni"
        case .avx512Wide: "avx512wide"
        #endif
        }
    }

    public var description: String {
        switch self {
        case .portable: "portable (no C SIMD kernels)"
        #if arch(arm64)
        case .neon: "NEON"
        case .dotprod: "NEON + dot product"
        case .i8mm: "NEON + int8 matrix multiply"
        #else
        case .avx2: "AVX2 + FMA + F16C"
        case .avxVNNI: "AVX2 + AVX-VNNI"
        case .avx512: "AVX-512 F/BW/VL/DQ"
        case .avx512VNNI: "AVX-512 VNNI"
        case .avx512Wide: "AVX-512 VNNI, 512-bit integer products"
        #endif
        }
    }

    /// The levels from ``simd`` up to ``active`` whose kernels run as that level on this machine.
    public static var runnable: [KernelISA] { allCases.filter { $0 >= .simd && $0 <= active && $0.runsHere } }

    /// Whether this level's kernels run as this level here (``avxVNNI`` needs AVX-VNNI, which
    /// the AVX-512 levels do not imply).
    public var runsHere: Bool { qk_isa_runs(rawValue) != 0 }

    public static func < (a: KernelISA, b: KernelISA) -> Bool { a.rawValue < b.rawValue }

    /// What to say about a `QWEN_ISA` setting (`setting`, on a CPU supporting `detected`), or nil
    /// when it is unset or does what it says.
    static func settingWarning(_ setting: String?, detected: KernelISA) -> String? {
        guard let setting else { return nil }
        guard let isa = KernelISA(name: setting) else {
            return "qwen-swift: warning: QWEN_ISA=\(setting) is not a kernel level "
                + "(\(allCases.map(\.name).joined(separator: ", "))); it is ignored and the kernels run at \(detected.name).\n"
        }
        guard isa <= detected else {
            return "qwen-swift: note: QWEN_ISA=\(setting) is above what this CPU supports; the kernels run at \(detected.name).\n"
        }
        guard isa.runsHere else {
            return "qwen-swift: note: QWEN_ISA=\(setting): this CPU does not have it; the kernels run at \(KernelISA.simd.name).\n"
        }
        return nil
    }

    /// The C level.
    var level: Int32 { rawValue }
}
