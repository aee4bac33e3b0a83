#include "cpu.h"
#include "qwen_kernels.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

// The CPU checks are computed once and kept in relaxed atomics: any thread may be first, all
// compute the same answer, and the atomics make the concurrent first calls race-free.

int qk_cpu_has_avx2_fma_f16c(void) { return qk_isa() >= QK_ISA_AVX2; }

int qk_isa_detected(void) {
#if defined(__x86_64__) || defined(_M_X64)
    static _Atomic int cached = -1;
    int isa = atomic_load_explicit(&cached, memory_order_relaxed);
    if (isa < 0) {
        // __builtin_cpu_supports also asks XGETBV whether the OS saves the AVX / AVX-512 state.
        __builtin_cpu_init();
        isa = QK_ISA_PORTABLE;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
            isa = QK_ISA_AVX2;
            if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
                isa = QK_ISA_AVX512;
                if (__builtin_cpu_supports("avx512vnni")) isa = QK_ISA_AVX512_VNNI;
            }
        }
        atomic_store_explicit(&cached, isa, memory_order_relaxed);
    }
    return isa;
#else
    return QK_ISA_PORTABLE;
#endif
}

int qk_isa_parse(const char *name) {
    if (!name) return -1;
    static const char *const names[] = { "portable", "avx2", "avx512", "avx512vnni" };
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

int qk_isa(void) {
    static _Atomic int cached = -1;
    int isa = atomic_load_explicit(&cached, memory_order_relaxed);
    if (isa < 0) {
        isa = qk_isa_detected();
        const int cap = qk_isa_parse(getenv("QWEN_ISA"));
        if (cap >= 0 && cap < isa) isa = cap;
        atomic_store_explicit(&cached, isa, memory_order_relaxed);
    }
    return isa;
}

int qk_kernels_optimized(void) {
#ifdef __OPTIMIZE__
    return 1;
#else
    return 0;
#endif
}
