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

// Asks for the (144 or 160 byte) record PREFETCH_AHEAD bytes after r.
static inline void prefetch_record(const uint8_t *r) {
    _mm_prefetch((const char *)r + PREFETCH_AHEAD, _MM_HINT_T0);
    _mm_prefetch((const char *)r + PREFETCH_AHEAD + 64, _MM_HINT_T0);
    _mm_prefetch((const char *)r + PREFETCH_AHEAD + 128, _MM_HINT_T0);
}

// The end of a block in the integer GEMVs: `dot` holds the 8 rows' integer sums Σ q·a over the
// block; the zero point 8 comes off as 8 × the activations' sum, the activation scale converts
// to float, and the rows' weight scales are applied into one of two accumulators (even and odd
// blocks, two independent FMA chains).
// `ws`: the record's weight scales (`record_scales`), read once per block by the multi-row GEMVs.
Q4_AVX2 static inline void block_epilogue_scaled(__m256i dot, int32_t asum, const float *ascale, __m256 ws,
                                              size_t b, __m256 *acc0, __m256 *acc1) {
    dot = _mm256_sub_epi32(dot, _mm256_set1_epi32(8 * asum));
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_broadcast_ss(ascale));
    if (b & 1) *acc1 = _mm256_fmadd_ps(v, ws, *acc1);
    else *acc0 = _mm256_fmadd_ps(v, ws, *acc0);
}

Q4_AVX2 static inline void block_epilogue(__m256i dot, int32_t asum, const float *ascale, const uint8_t *rec, int f32,
                                       size_t b, __m256 *acc0, __m256 *acc1) {
    block_epilogue_scaled(dot, asum, ascale, record_scales(rec, f32), b, acc0, acc1);
}

// The body of one pass of the multi-row int16 GEMVs (`gemv_i16_pass` in q4x8.c with AVX2,
// `gemv_i16_pass_vnni` in q4x8_avx512.c), for parameters (p, f32, blocks, x, rows, prefetch, out):
// the records of one row group p, up to four activation rows x (quantized by `qk_q16_quantize`),
// each row's 8 results at out[r]. `DPW(acc, w, x)` adds the products of the 16-bit pairs of w and x
// into the int32 lanes of acc (`vpmaddwd` then an add, or `vpdpwssd`: the same exact sums). The
// nibbles are shifted down and masked once per pass for all its rows, the weight scales converted
// once per block; two integer accumulators per row (nibbles 0, 2 and 1, 3); the float epilogue is
// `block_epilogue`'s, so each row's results are the single-row int16 GEMV's bit for bit.
#define Q4X8_GEMV_I16_PASS(DPW) \
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16; \
    const __m256i nibble = _mm256_set1_epi16(0x000F); \
    __m256 acc0[4], acc1[4]; \
    for (int r = 0; r < rows; r++) acc0[r] = acc1[r] = _mm256_setzero_ps(); \
    for (size_t b = 0; b < blocks; b++) { \
        const uint8_t *rb = p + b * rec; \
        if (prefetch) prefetch_record(rb); \
        const uint8_t *q = rb + sbytes; \
        __m256i da[4], db[4]; \
        for (int r = 0; r < rows; r++) da[r] = db[r] = _mm256_setzero_si256(); \
        _Pragma("unroll") \
        for (int j = 0; j < 4; j++) { \
            const __m256i w = _mm256_loadu_si256((const __m256i *)(q + 32 * j)); \
            const __m256i w0 = _mm256_and_si256(w, nibble), w1 = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibble); \
            const __m256i w2 = _mm256_and_si256(_mm256_srli_epi16(w, 8), nibble), w3 = _mm256_srli_epi16(w, 12); \
            for (int r = 0; r < rows; r++) { \
                const int32_t *xj = x[r] + b * 16 + 4 * j; \
                da[r] = DPW(da[r], w0, _mm256_set1_epi32(xj[0])); \
                db[r] = DPW(db[r], w1, _mm256_set1_epi32(xj[1])); \
                da[r] = DPW(da[r], w2, _mm256_set1_epi32(xj[2])); \
                db[r] = DPW(db[r], w3, _mm256_set1_epi32(xj[3])); \
            } \
        } \
        const __m256 ws = record_scales(rb, f32); \
        for (int r = 0; r < rows; r++) { \
            const int32_t *asum = x[r] + blocks * 17; \
            block_epilogue_scaled(_mm256_add_epi32(da[r], db[r]), asum[b], (const float *)(x[r] + blocks * 16) + b, ws, b, \
                                  &acc0[r], &acc1[r]); \
        } \
    } \
    for (int r = 0; r < rows; r++) _mm256_storeu_ps(out[r], _mm256_add_ps(acc0[r], acc1[r]));

#endif
