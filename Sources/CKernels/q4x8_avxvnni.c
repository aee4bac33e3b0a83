#include "q4x8_avx512.h"

// The 256-bit VNNI kernels (q4x8_vnni256.h) in the VEX encoding of AVX-VNNI, chosen by q4x8.c's
// entry points at level QK_ISA_AVX_VNNI: CPUs with `vpdpbusd` / `vpdpwssd` but no AVX-512 (Intel's
// client cores since Alder Lake, its E-core Xeons). Sixteen vector registers: fewer rows a pass in
// the multi-row GEMVs, one integer sum a row in the int8 GEMM. The same floats as every level.

#if defined(__x86_64__) || defined(_M_X64)
#include "q4x8_shared.h"

#define VNNI_ATTR __attribute__((target("avx2,fma,f16c,avxvnni")))
#define VNNI_DPBUSD _mm256_dpbusd_avx_epi32
// The compiler splits the VEX `vpdpwssd` back into `vpmaddwd` + `vpaddd` (clang 21 folds the
// intrinsic into its generic multiply-add and re-fuses it only for AVX-512 VNNI): the instruction
// is written out (int16 GEMV, 896 × 4,864 in cache, Zen 5: 66 µs split against AVX2's 62).
VNNI_ATTR static inline __attribute__((always_inline)) __m256i dpwssd_vex(__m256i acc, __m256i a, __m256i b) {
    __asm__("%{vex%} vpdpwssd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
    return acc;
}
#define VNNI_DPWSSD dpwssd_vex
#define VNNI_NAME(name) name##_avxvnni
// Rows a pass of the multi-row GEMVs (C harness, one thread, Zen 5 at QWEN_ISA=avxvnni, 8 rows ×
// 4,864 × 896 in cache, µs: int8 2 rows 218, 3 236, 4 262, AVX2's kernel 232; int16 2 rows 497,
// 4 373, AVX2's 423).
#define VNNI_MULTI_ROWS_Q8 2
#define VNNI_MULTI_ROWS_Q16 4
#define VNNI_GEMM_SPLIT 0
#include "q4x8_vnni256.h"

#endif
