#include "cpu.h"
#include "qwen_kernels.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

// The CPU checks are computed once and kept in relaxed atomics: any thread may be first, all
// compute the same answer, and the atomics make the concurrent first calls race-free.

int qk_cpu_has_avx2_fma_f16c(void) { return qk_isa() >= QK_ISA_AVX2; }

int qk_cpu_has_avx_vnni(void) {
#if defined(__x86_64__) || defined(_M_X64)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avxvnni");
#else
    return 0;
#endif
}

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13)
#endif
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
// 1 when the sysctl `name` (hw.optional.arm.FEAT_*) exists and is non-zero.
static int apple_feature(const char *name) {
    int value = 0;
    size_t size = sizeof(value);
    return sysctlbyname(name, &value, &size, NULL, 0) == 0 && value != 0;
}
#endif

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
// The CPU's family as CPUID leaf 1 gives it (base family, plus the extended family when the base is 15).
static unsigned cpu_family(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned base = (eax >> 8) & 0xF;
    return base == 0xF ? base + ((eax >> 20) & 0xFF) : base;
}
#endif

static int detect(void) {
#if defined(__x86_64__) || defined(_M_X64)
    // __builtin_cpu_supports also asks XGETBV whether the OS saves the AVX / AVX-512 state.
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")))
        return QK_ISA_PORTABLE;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")))
        return qk_cpu_has_avx_vnni() ? QK_ISA_AVX_VNNI : QK_ISA_AVX2;
    if (!__builtin_cpu_supports("avx512vnni")) return QK_ISA_AVX512;
    // AMD Zen 4 (family 0x19) executes a 512-bit operation as two 256-bit halves: its integer
    // products run as fast in 256-bit registers, as measured there (q4x8_avx512.c). Zen 5 (family
    // 0x1A) and Intel's AVX-512 cores execute them whole, twice the work per instruction.
    return __builtin_cpu_is("amd") && cpu_family() == 0x19 ? QK_ISA_AVX512_VNNI : QK_ISA_AVX512_WIDE;
#elif defined(__aarch64__) && defined(__linux__)
    // The kernel's view of the CPU (it also hides what it does not let user space use).
    const unsigned long hwcap = getauxval(AT_HWCAP), hwcap2 = getauxval(AT_HWCAP2);
    if (!(hwcap & HWCAP_ASIMD)) return QK_ISA_PORTABLE;
    if (!(hwcap & HWCAP_ASIMDDP)) return QK_ISA_NEON;
    return (hwcap2 & HWCAP2_I8MM) ? QK_ISA_NEON_I8MM : QK_ISA_NEON_DOTPROD;
#elif defined(__aarch64__) && defined(__APPLE__)
    // Every Apple arm64 CPU has NEON and the dot product (A11 on); I8MM from M2 / A15.
    if (!apple_feature("hw.optional.arm.FEAT_DotProd")) return QK_ISA_NEON;
    return apple_feature("hw.optional.arm.FEAT_I8MM") ? QK_ISA_NEON_I8MM : QK_ISA_NEON_DOTPROD;
#elif defined(__aarch64__)
    return QK_ISA_NEON;
#else
    return QK_ISA_PORTABLE;
#endif
}

int qk_isa_detected(void) {
    static _Atomic int cached = -1;
    int isa = atomic_load_explicit(&cached, memory_order_relaxed);
    if (isa < 0) {
        isa = detect();
        atomic_store_explicit(&cached, isa, memory_order_relaxed);
    }
    return isa;
}

int qk_isa_parse(const char *name) {
    if (!name) return -1;
#if defined(__aarch64__)
    static const char *const names[] = { "portable", "neon", "dotprod", "i8mm" };
#else
    static const char *const names[] = { "portable", "avx2", "avxvnni", "avx512", "avx512vnni", "avx512wide" };
#endif
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

int qk_isa(void) {
    static _Atomic int cached = -1;
    int isa = atomic_load_explicit(&cached, memory_order_relaxed);
    if (isa < 0) {
        isa = qk_isa_detected();
        const int cap = qk_isa_parse(getenv("QWEN_ISA"));
        if (cap >= 0 && cap < isa) isa = qk_isa_runs(cap) ? cap : QK_ISA_AVX2;
        atomic_store_explicit(&cached, isa, memory_order_relaxed);
    }
    return isa;
}

int qk_isa_runs(int isa) {
#if defined(__x86_64__) || defined(_M_X64)
    if (isa == QK_ISA_AVX_VNNI) return qk_cpu_has_avx_vnni();
#endif
    return isa >= 0 && isa <= qk_isa_detected();
}

int qk_kernels_optimized(void) {
#ifdef __OPTIMIZE__
    return 1;
#else
    return 0;
#endif
}
