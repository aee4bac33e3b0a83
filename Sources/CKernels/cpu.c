#include "cpu.h"

int qk_cpu_has_avx2_fma_f16c(void) {
#if defined(__x86_64__) || defined(_M_X64)
    static int has = -1;
    if (has < 0) {
        __builtin_cpu_init();
        has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return has;
#else
    return 0;
#endif
}
