#ifndef QWEN_CPU_H
#define QWEN_CPU_H

// CPU feature checks, each computed once. Private to CKernels.

#include "qwen_kernels.h"

/// Whether the AVX2 + FMA + F16C kernels run here (`qk_isa() >= QK_ISA_AVX2`: the CPU has them
/// and QWEN_ISA does not say `portable`): the check behind every AVX2 path.
int qk_cpu_has_avx2_fma_f16c(void);

/// Whether the CPU has AVX-VNNI (the VEX `vpdpbusd`, `vpdpwssd`).
int qk_cpu_has_avx_vnni(void);

/// `isa` (a `qk_isa_level`) lowered to what this process may use (`qk_isa()`): what the
/// kernels' entry points do with a caller's level, so a level above the CPU's never runs (nor
/// QK_ISA_AVX_VNNI below an AVX-512 level on a CPU without AVX-VNNI: that is AVX2).
static inline int qk_isa_clamp(int isa) {
    extern int qk_isa(void);
    extern int qk_isa_runs(int);
    const int top = qk_isa();
    if (isa >= top) return top;
    if (isa < 0) return 0;
    return qk_isa_runs(isa) ? isa : QK_ISA_AVX2;
}

#endif
