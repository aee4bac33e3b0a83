#ifndef QWEN_CPU_H
#define QWEN_CPU_H

// Whether this CPU runs the AVX2 + FMA + F16C kernels (checked once). Private to CKernels: the
// one feature check behind the q4 GEMV/GEMM, q4x8 and attention kernels.
int qk_cpu_has_avx2_fma_f16c(void);

#endif
