#include "cpu.h"
#include <stdatomic.h>

// The CPU checks are computed once and kept in relaxed atomics: any thread may be first, all
// compute the same answer, and the atomics make the concurrent first calls race-free.

int qk_cpu_has_avx2_fma_f16c(void) {
#if defined(__x86_64__) || defined(_M_X64)
    static _Atomic int cached = -1;
    int has = atomic_load_explicit(&cached, memory_order_relaxed);
    if (has < 0) {
        __builtin_cpu_init();
        has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        atomic_store_explicit(&cached, has, memory_order_relaxed);
    }
    return has;
#else
    return 0;
#endif
}
