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
// to float, and the rows' weight scales `ws` (`record_scales`) are applied into `acc`.
Q4_AVX2 static inline __m256 block_accumulate(__m256i dot, int32_t asum, const float *ascale, __m256 ws, __m256 acc) {
    dot = _mm256_sub_epi32(dot, _mm256_set1_epi32(8 * asum));
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_broadcast_ss(ascale));
    return _mm256_fmadd_ps(v, ws, acc);
}

// Calls the always-inline kernel `fn(packed, f32, …)` with `f32` a constant: one expansion of it per
// scale format.
#define Q4X8_WITH_CONSTANT_SCALES(fn, packed, f32, ...) ((f32) ? fn(packed, 1, __VA_ARGS__) : fn(packed, 0, __VA_ARGS__))

// Runs `BLOCK(ARG, b, acc)` for b = 0 ..< blocks, the even blocks with acc0 and the odd ones with
// acc1 (two independent FMA chains), two blocks an iteration. With a block's parity, and the
// scales' format (callers pass `f32` as a constant), known where the code is generated, the loop
// has no branch and no register moves between accumulators.
#define Q4X8_BLOCK_PAIRS(BLOCK, ARG, acc0, acc1) { \
        size_t b = 0; \
        for (; b + 2 <= blocks; b += 2) { \
            BLOCK(ARG, b, acc0) \
            BLOCK(ARG, b + 1, acc1) \
        } \
        if (b < blocks) BLOCK(ARG, b, acc0) \
    }

// The single-row integer GEMVs over row groups [g0, g1) of `packed` (parameters packed, f32,
// blocks, ascale, asum, g0, g1, y): `BLOCK_DOT(q, b)` gives block b's integer sums from its
// weight bytes q; the blocks in pairs (`Q4X8_BLOCK_PAIRS`; Zen 4, C harness, one thread, the
// 0.5B's matrices: the int16 GEMV 4.2–5.2 → 4.0–4.3 ns per block of 8 rows with VNNI, 7.0–7.6 →
// 6.0–6.2 with AVX2).
#define Q4X8_GEMV_BLOCK(BLOCK_DOT, B, ACC) { \
        const uint8_t *r = p + (B) * rec; \
        prefetch_record(r); \
        ACC = block_accumulate(BLOCK_DOT(r + sbytes, B), asum[B], ascale + (B), record_scales(r, f32), ACC); \
    }

#define Q4X8_GEMV_GROUPS(BLOCK_DOT) \
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16; \
    for (size_t g = g0; g < g1; g++) { \
        const uint8_t *p = packed + g * blocks * rec; \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0; \
        Q4X8_BLOCK_PAIRS(Q4X8_GEMV_BLOCK, BLOCK_DOT, acc0, acc1) \
        _mm256_storeu_ps(y + g * 8, _mm256_add_ps(acc0, acc1)); \
    }

// The body of one pass of the multi-row int16 GEMVs (`gemv_i16_pass` in q4x8.c with AVX2,
// `gemv_i16_pass_vnni` in q4x8_avx512.c), for parameters (p, f32, blocks, x, rows, out):
// the records of one row group p, up to four activation rows x (quantized by `qk_q16_quantize`),
// each row's 8 results at out[r]. `DPW(acc, w, x)` adds the products of the 16-bit pairs of w and x
// into the int32 lanes of acc (`vpmaddwd` then an add, or `vpdpwssd`: the same exact sums). The
// nibbles are shifted down and masked once per pass for all its rows, the weight scales converted
// once per block; two integer accumulators per row (nibbles 0, 2 and 1, 3); the float epilogue is
// `block_accumulate`'s, so each row's results are the single-row int16 GEMV's bit for bit.
// Blocks in pairs (`Q4X8_BLOCK_PAIRS`) and `f32` a constant (Zen 4, C harness, one thread, 8
// rows against the 0.5B's matrices: 3.17 → 2.88 ns per row and block with VNNI, 6.5 → 4.5 with
// AVX2). Every pass asks for the records ahead, not only the first: the later passes' prefetches
// hit L1 and cost less than a branch on which pass it is (3.0–3.15 ns with it).
#define Q4X8_GEMV_I16_BLOCK(DPW, B, ACC) { \
        const uint8_t *rb = p + (B) * rec; \
        prefetch_record(rb); \
        const uint8_t *q = rb + sbytes; \
        __m256i da[8], db[8]; \
        for (int r = 0; r < rows; r++) da[r] = db[r] = _mm256_setzero_si256(); \
        _Pragma("unroll") \
        for (int j = 0; j < 4; j++) { \
            const __m256i w = _mm256_loadu_si256((const __m256i *)(q + 32 * j)); \
            const __m256i w0 = _mm256_and_si256(w, nibble), w1 = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibble); \
            const __m256i w2 = _mm256_and_si256(_mm256_srli_epi16(w, 8), nibble), w3 = _mm256_srli_epi16(w, 12); \
            for (int r = 0; r < rows; r++) { \
                const int32_t *xj = x[r] + (B) * 16 + 4 * j; \
                da[r] = DPW(da[r], w0, _mm256_set1_epi32(xj[0])); \
                db[r] = DPW(db[r], w1, _mm256_set1_epi32(xj[1])); \
                da[r] = DPW(da[r], w2, _mm256_set1_epi32(xj[2])); \
                db[r] = DPW(db[r], w3, _mm256_set1_epi32(xj[3])); \
            } \
        } \
        const __m256 ws = record_scales(rb, f32); \
        for (int r = 0; r < rows; r++) \
            ACC[r] = block_accumulate(_mm256_add_epi32(da[r], db[r]), x[r][blocks * 17 + (B)], \
                                      (const float *)(x[r] + blocks * 16) + (B), ws, ACC[r]); \
    }

#define Q4X8_GEMV_I16_PASS(DPW) \
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16; \
    const __m256i nibble = _mm256_set1_epi16(0x000F); \
    __m256 acc0[8], acc1[8]; \
    for (int r = 0; r < rows; r++) acc0[r] = acc1[r] = _mm256_setzero_ps(); \
    Q4X8_BLOCK_PAIRS(Q4X8_GEMV_I16_BLOCK, DPW, acc0, acc1) \
    for (int r = 0; r < rows; r++) _mm256_storeu_ps(out[r], _mm256_add_ps(acc0[r], acc1[r]));

// The body of one pass of the multi-row int8 GEMVs (`gemv_i8_pass` in q4x8.c with AVX2,
// `gemv_i8_pass_vnni` in q4x8_avx512.c), for parameters (p, f32, blocks, x, rows, out): the
// records of one row group p, up to eight activation rows x (quantized by `qk_q8_quantize`: blocks
// × 32 bytes, then a float scale and an int32 sum per block), each row's 8 results at out[r].
// `BLOCK_SUMS(q, B, dot)` sets dot[r] (r < rows) to row r's integer sums Σ q·a over block B of
// the record's 8 weight rows (words at q), each weight word loaded and split into nibbles once
// for all rows. The sums are exact integers however the products are split, and the float
// epilogue and block pairs are `Q4X8_GEMV_GROUPS`': each row's results are the single-row int8
// GEMV's bit for bit.
#define Q4X8_GEMV_I8_BLOCK(BLOCK_SUMS, B, ACC) { \
        const uint8_t *rb = p + (B) * rec; \
        prefetch_record(rb); \
        __m256i dot[8]; \
        BLOCK_SUMS(rb + sbytes, B, dot) \
        const __m256 ws = record_scales(rb, f32); \
        for (int r = 0; r < rows; r++) \
            ACC[r] = block_accumulate(dot[r], ((const int32_t *)(x[r] + blocks * 36))[B], \
                                      (const float *)(x[r] + blocks * 32) + (B), ws, ACC[r]); \
    }

#define Q4X8_GEMV_I8_PASS(BLOCK_SUMS) \
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16; \
    __m256 acc0[8], acc1[8]; \
    for (int r = 0; r < rows; r++) acc0[r] = acc1[r] = _mm256_setzero_ps(); \
    Q4X8_BLOCK_PAIRS(Q4X8_GEMV_I8_BLOCK, BLOCK_SUMS, acc0, acc1) \
    for (int r = 0; r < rows; r++) _mm256_storeu_ps(out[r], _mm256_add_ps(acc0[r], acc1[r]));

#endif
