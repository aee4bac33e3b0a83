#ifndef QWEN_Q4X8_AVX512_H
#define QWEN_Q4X8_AVX512_H

// The kernels above AVX2 over the q4x8 layout: q4x8_avx512.c (AVX-512) and q4x8_avxvnni.c
// (AVX-VNNI), called by q4x8.c's entry points when the level allows (the callers check the CPU).
// Private to CKernels; x86-64 only. Arguments as in q4x8.c's AVX2 kernels of the same names.

#include <stddef.h>
#include <stdint.h>
#include "qwen_kernels.h"
#include "q4_strips.h"

// `q4_gemm_run` with the AVX-512 float32 kernel: `fill` fills panels of 32 columns (panel[k * 32 + j]).
void q4_gemm_run_avx512(q4_panel_fill fill, const void *weights, size_t blocks, const float *ap, size_t m,
                        size_t s0, size_t s1, size_t n0, size_t n1, float *c, size_t ldc);
void q4x8_gemm_avx512(const uint8_t *packed, int f32, size_t blocks, const float *ap, size_t m, size_t s0,
                      size_t s1, size_t n0, size_t n1, float *c, size_t ldc);

// QK_ISA_AVX512_WIDE: the float32 decode GEMV (q4x8.c's `gemv_groups`) on two row groups per register.
void q4x8_gemv_f32_wide(const uint8_t *packed, int f32, size_t blocks, const float *xs, const float *xsum,
                        size_t g0, size_t g1, float *y);

// The 256-bit VNNI kernels (q4x8_vnni256.h): suffix _vnni the EVEX instance (QK_ISA_AVX512_VNNI),
// _avxvnni the VEX one (QK_ISA_AVX_VNNI).
#define Q4X8_VNNI256_KERNELS(SUFFIX) \
    void q4x8_gemv_q8##SUFFIX(const uint8_t *packed, int f32, size_t blocks, const int8_t *aq, const float *ascale, \
                              const int32_t *zterm, size_t g0, size_t g1, float *y); \
    void q4x8_gemm_group_i8x4##SUFFIX(const uint8_t *rec0, int f32, size_t blocks, const int8_t *const x[4], \
                                      float *const out[4]); \
    void q4x8_gemv_q16##SUFFIX(const uint8_t *packed, int f32, size_t blocks, const int32_t *aq, \
                               const float *ascale, const int32_t *zterm, size_t g0, size_t g1, float *y); \
    void q4x8_gemv_q8_multi##SUFFIX(const uint8_t *packed, int f32, size_t blocks, const uint8_t *aq, size_t row_bytes, \
                                    size_t m, size_t g0, size_t g1, float *y, size_t ldy); \
    void q4x8_gemv_q16_multi##SUFFIX(const uint8_t *packed, int f32, size_t blocks, const uint8_t *aq, \
                                     size_t row_bytes, size_t m, size_t g0, size_t g1, float *y, size_t ldy);
Q4X8_VNNI256_KERNELS(_vnni)
Q4X8_VNNI256_KERNELS(_avxvnni)

// QK_ISA_AVX512_WIDE: the int8 GEMM and multi-row GEMVs over row groups [g0, g1), m rows of aq
// `row_bytes` apart (int8 or int16 activations), row i's results at y + i * ldy.
void q4x8_q8_wide(const uint8_t *packed, int f32, size_t blocks, const uint8_t *aq, size_t row_bytes, size_t m,
                  size_t g0, size_t g1, float *y, size_t ldy);
void q4x8_q16_wide(const uint8_t *packed, int f32, size_t blocks, const uint8_t *aq, size_t row_bytes, size_t m,
                   size_t g0, size_t g1, float *y, size_t ldy);

#endif
