#ifndef QWEN_CPU_H
#define QWEN_CPU_H

// CPU feature checks, each computed once. Private to CKernels.

/// Whether the AVX2 + FMA + F16C kernels run here (`qk_isa() >= QK_ISA_AVX2`: the CPU has them
/// and QWEN_ISA does not say `portable`): the check behind every AVX2 path.
int qk_cpu_has_avx2_fma_f16c(void);

/// `isa` (a `qk_isa_level`) lowered to what this process may use (`qk_isa()`): what the
/// kernels' entry points do with a caller's level, so a level above the CPU's never runs.
static inline int qk_isa_clamp(int isa) {
    extern int qk_isa(void);
    const int top = qk_isa();
    return isa < top ? (isa < 0 ? 0 : isa) : top;
}

#endif
