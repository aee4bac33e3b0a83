#ifndef QWEN_Q4X8_SHARED_H
#define QWEN_Q4X8_SHARED_H

// The q4x8 record layout (q4x8.c) as its kernels read it: shared by the AVX2 kernels (q4x8.c)
// and the AVX-512 ones (q4x8_avx512.c). Private to CKernels; x86-64 only.

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include "q4_shared.h"
#include "q4x8_layout.h"

// The record's 8 scales as floats.
Q4_AVX2 static inline __m256 record_scales(const uint8_t *rec, int f32) {
    return f32 ? _mm256_loadu_ps((const float *)rec) : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)rec));
}

// Asks for the (144 or 160 byte) record `ahead` bytes after r.
static inline __attribute__((always_inline)) void prefetch_record_at(const uint8_t *r, size_t ahead) {
    _mm_prefetch((const char *)r + ahead, _MM_HINT_T0);
    _mm_prefetch((const char *)r + ahead + 64, _MM_HINT_T0);
    _mm_prefetch((const char *)r + ahead + 128, _MM_HINT_T0);
}

// Asks for the record PREFETCH_AHEAD bytes after r.
static inline void prefetch_record(const uint8_t *r) { prefetch_record_at(r, PREFETCH_AHEAD); }

// The end of a block in the integer GEMVs: `dot` holds the 8 rows' integer sums Σ q·a over the
// block; the zero point comes off as the activation row's zero-point term `zterm` (8 × the
// block's Σ q, stored by the quantizer: one broadcast load here), the activation scale converts
// to float, and the rows' weight scales `ws` (`record_scales`) are applied into `acc`: the int8
// GEMM's epilogue (`gemm_group_i8x4`) too, so a row's decode products equal its prefill ones.
Q4_AVX2 static inline __m256 block_accumulate(__m256i dot, int32_t zterm, const float *ascale, __m256 ws, __m256 acc) {
    dot = _mm256_sub_epi32(dot, _mm256_set1_epi32(zterm));
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_broadcast_ss(ascale));
    return _mm256_fmadd_ps(v, ws, acc);
}

// Calls the always-inline kernel `fn(packed, f32, …)` with `f32` a constant: one expansion of it per
// scale format.
#define Q4X8_WITH_CONSTANT_SCALES(fn, packed, f32, ...) ((f32) ? fn(packed, 1, __VA_ARGS__) : fn(packed, 0, __VA_ARGS__))

// The single-row integer GEMVs over row groups [g0, g1) of `packed` (parameters packed, f32,
// blocks, ascale, zterm, g0, g1, y): `BLOCK_DOT(q, b)` gives block b's integer sums from its
// weight bytes q; one float accumulator, the blocks in order (as the multi-row passes and the
// int8 GEMM add them).
#define Q4X8_GEMV_BLOCK(BLOCK_DOT, B, ACC) { \
        const uint8_t *r = p + (B) * rec; \
        prefetch_record(r); \
        ACC = block_accumulate(BLOCK_DOT(r + sbytes, B), zterm[B], ascale + (B), record_scales(r, f32), ACC); \
    }

#define Q4X8_GEMV_GROUPS(BLOCK_DOT) \
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16; \
    for (size_t g = g0; g < g1; g++) { \
        const uint8_t *p = packed + g * blocks * rec; \
        __m256 acc = _mm256_setzero_ps(); \
        for (size_t b = 0; b < blocks; b++) Q4X8_GEMV_BLOCK(BLOCK_DOT, b, acc) \
        _mm256_storeu_ps(y + g * 8, acc); \
    }

// The body of one pass of the multi-row integer GEMVs (batched decode: one activation row per
// sequence), for parameters (p, f32, blocks, x, rows, out): the records of one row group p, up to
// eight activation rows x (each quantized by `qk_q16_quantize` or `qk_q8_quantize`; its block
// scales and zero-point terms SCALES_AT and ZTERMS_AT bytes after it), each row's 8 results at
// out[r]. `BLOCK_SUMS(q, B, dot)` sets dot[r] (r < rows) to row r's integer sums Σ q·a over block
// B of the record's 8 weight rows (words at q), each weight word loaded and split into nibbles
// once for all the pass's rows. The sums are exact integers however the products are split, and
// the float epilogue (`block_accumulate`, one accumulator per row, the blocks in order) is the
// single-row GEMVs' (`Q4X8_GEMV_GROUPS`): each row's results are its single-row GEMV's bit for
// bit, on every ISA. One accumulator rather than the even and odd blocks' two: with 4 rows in
// flight the FMA latency hides anyway, and the 4 registers saved end the accumulators' spills
// (Zen 3, C harness, one thread, int8 pass, 8 rows, ns per row and block: K = 896 3.27–3.31 →
// 2.94, and with the zero-point term stored rather than formed here 2.75). `f32` a constant
// (`Q4X8_WITH_CONSTANT_SCALES`). Every pass asks for the records ahead, not only the first: the
// later passes' prefetches hit L1 and cost less than a branch on which pass it is (Zen 4,
// session 15: 3.0–3.15 against 2.88 ns per row and block with it).
#define Q4X8_GEMV_ROWS_PASS(BLOCK_SUMS, SCALES_AT, ZTERMS_AT) \
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16, scales_at = (SCALES_AT), zterms_at = (ZTERMS_AT); \
    __m256 acc[8]; \
    for (int r = 0; r < rows; r++) acc[r] = _mm256_setzero_ps(); \
    for (size_t b = 0; b < blocks; b++) { \
        const uint8_t *rb = p + b * rec; \
        prefetch_record(rb); \
        __m256i dot[8]; \
        BLOCK_SUMS(rb + sbytes, b, dot) \
        const __m256 ws = record_scales(rb, f32); \
        for (int r = 0; r < rows; r++) { \
            const uint8_t *xr = (const uint8_t *)x[r]; \
            acc[r] = block_accumulate(dot[r], ((const int32_t *)(xr + zterms_at))[b], (const float *)(xr + scales_at) + b, \
                                      ws, acc[r]); \
        } \
    } \
    for (int r = 0; r < rows; r++) _mm256_storeu_ps(out[r], acc[r]);

// The passes' row layouts: int16 (blocks × 16 words of two int16, then a float scale and an int32
// zero-point term per block) and int8 (blocks × 32 bytes, then the same).
#define Q4X8_Q16_PASS(BLOCK_SUMS) Q4X8_GEMV_ROWS_PASS(BLOCK_SUMS, blocks * 64, blocks * 68)
#define Q4X8_Q8_PASS(BLOCK_SUMS) Q4X8_GEMV_ROWS_PASS(BLOCK_SUMS, blocks * 32, blocks * 36)

// Defines the multi-row GEMV `NAME(packed, f32, blocks, aq, row_bytes, m, g0, g1, y, ldy)` (rows of
// `aq` `row_bytes` apart, row i's results at y + i * ldy, row groups [g0, g1)) from its pass
// `PASS` (`Q4X8_Q16_PASS` or `Q4X8_Q8_PASS` in a function of `rows`), up to MAX rows a pass
// (`Q4X8_MULTI_ROW_GROUPS`), expanded once per scale format (`Q4X8_WITH_CONSTANT_SCALES`). ATTR
// is the ISA's target attribute; LINKAGE `static` or empty (called from q4x8.c).
#define Q4X8_MULTI_ROW_GEMV(ATTR, LINKAGE, NAME, PASS, MAX, XTYPE) \
    ATTR static inline __attribute__((always_inline)) void NAME##_groups(const uint8_t *packed, const int f32, \
            size_t blocks, const uint8_t *aq, size_t row_bytes, size_t m, size_t g0, size_t g1, float *y, size_t ldy) \
        Q4X8_MULTI_ROW_GROUPS(PASS, MAX, XTYPE) \
    ATTR LINKAGE void NAME(const uint8_t *packed, int f32, size_t blocks, const uint8_t *aq, size_t row_bytes, size_t m, \
                           size_t g0, size_t g1, float *y, size_t ldy) { \
        Q4X8_WITH_CONSTANT_SCALES(NAME##_groups, packed, f32, blocks, aq, row_bytes, m, g0, g1, y, ldy); \
    }

#endif
