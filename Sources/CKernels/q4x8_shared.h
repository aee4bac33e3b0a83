#ifndef QWEN_Q4X8_SHARED_H
#define QWEN_Q4X8_SHARED_H

// The q4x8 record layout (q4x8.c) as its kernels read it: shared by the AVX2 kernels (q4x8.c)
// and the AVX-512 ones (q4x8_avx512.c). Private to CKernels; x86-64 only.

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include "q4_shared.h"

// Bytes of one record: the 8 scales (float16 or float32), then 128 bytes of weights.
static inline size_t record_bytes(int f32_scales) { return (f32_scales ? 32 : 16) + 128; }

// The record's 8 scales as floats.
Q4_AVX2 static inline __m256 record_scales(const uint8_t *rec, int f32) {
    return f32 ? _mm256_loadu_ps((const float *)rec) : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)rec));
}

// Bytes ahead of the record being read that each record's loop asks the memory system for.
enum { PREFETCH_AHEAD = 2048 };

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
Q4_AVX2 static inline void block_epilogue(__m256i dot, int32_t asum, const float *ascale, const uint8_t *rec, int f32,
                                       size_t b, __m256 *acc0, __m256 *acc1) {
    dot = _mm256_sub_epi32(dot, _mm256_set1_epi32(8 * asum));
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_broadcast_ss(ascale));
    if (b & 1) *acc1 = _mm256_fmadd_ps(v, record_scales(rec, f32), *acc1);
    else *acc0 = _mm256_fmadd_ps(v, record_scales(rec, f32), *acc0);
}

#endif
