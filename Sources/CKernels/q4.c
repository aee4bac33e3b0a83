#include "qwen_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define AVX2 __attribute__((target("avx2,fma,f16c")))

int qk_q4_isa(void) {
    static int isa = -1;
    if (isa < 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
            isa = 2;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
            isa = 1;
        else
            isa = 0;
    }
    return isa;
}

static inline float block_scale(const uint16_t *f16, const float *f32, size_t i) AVX2;
static inline float block_scale(const uint16_t *f16, const float *f32, size_t i) {
    return f16 ? _cvtsh_ss(f16[i]) : f32[i];
}

static inline int block_zero_point(const uint8_t *zp, size_t blocks, size_t row, size_t b) {
    if (!zp) return 8;
    uint8_t byte = zp[row * ((blocks + 1) / 2) + b / 2];
    return (b & 1) ? (byte >> 4) : (byte & 0x0F);
}

// 32 nibbles of one block, minus the zero point, as signed bytes in element order.
static inline __m256i unpack_block(const uint8_t *p, int zp) AVX2;
static inline __m256i unpack_block(const uint8_t *p, int zp) {
    __m128i bytes = _mm_loadu_si128((const __m128i *)p);
    __m128i mask = _mm_set1_epi8(0x0F);
    __m128i lo = _mm_and_si128(bytes, mask);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    __m256i q = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
    return _mm256_sub_epi8(q, _mm256_set1_epi8((char)zp));
}

AVX512 static void gemv_avx512(const uint8_t *data, const uint16_t *sf16, const float *sf32, const uint8_t *zp,
                               size_t blocks, const float *a, size_t r0, size_t r1, float *y) {
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = data + r * blocks * 16;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        size_t b = 0;
        for (; b + 1 < blocks; b += 2) {
            __m256i q0 = unpack_block(row + b * 16, block_zero_point(zp, blocks, r, b));
            __m256i q1 = unpack_block(row + b * 16 + 16, block_zero_point(zp, blocks, r, b + 1));
            const float *ab = a + b * 32;
            __m512 t0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q0))), _mm512_loadu_ps(ab));
            t0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q0, 1))), _mm512_loadu_ps(ab + 16), t0);
            __m512 t1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q1))), _mm512_loadu_ps(ab + 32));
            t1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q1, 1))), _mm512_loadu_ps(ab + 48), t1);
            acc0 = _mm512_fmadd_ps(t0, _mm512_set1_ps(block_scale(sf16, sf32, r * blocks + b)), acc0);
            acc1 = _mm512_fmadd_ps(t1, _mm512_set1_ps(block_scale(sf16, sf32, r * blocks + b + 1)), acc1);
        }
        for (; b < blocks; b++) {
            __m256i q0 = unpack_block(row + b * 16, block_zero_point(zp, blocks, r, b));
            const float *ab = a + b * 32;
            __m512 t0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q0))), _mm512_loadu_ps(ab));
            t0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q0, 1))), _mm512_loadu_ps(ab + 16), t0);
            acc0 = _mm512_fmadd_ps(t0, _mm512_set1_ps(block_scale(sf16, sf32, r * blocks + b)), acc0);
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    }
}

AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static void gemv_avx2(const uint8_t *data, const uint16_t *sf16, const float *sf32, const uint8_t *zp,
                           size_t blocks, const float *a, size_t r0, size_t r1, float *y) {
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = data + r * blocks * 16;
        __m256 acc = _mm256_setzero_ps();
        for (size_t b = 0; b < blocks; b++) {
            __m256i q = unpack_block(row + b * 16, block_zero_point(zp, blocks, r, b));
            __m128i q_lo = _mm256_castsi256_si128(q), q_hi = _mm256_extracti128_si256(q, 1);
            const float *ab = a + b * 32;
            __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q_lo)), _mm256_loadu_ps(ab));
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q_lo, 8))), _mm256_loadu_ps(ab + 8), t);
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q_hi)), _mm256_loadu_ps(ab + 16), t);
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q_hi, 8))), _mm256_loadu_ps(ab + 24), t);
            acc = _mm256_fmadd_ps(t, _mm256_set1_ps(block_scale(sf16, sf32, r * blocks + b)), acc);
        }
        y[r] = hsum256(acc);
    }
}

AVX512 static void dequantize_avx512(const uint8_t *data, const uint16_t *sf16, const float *sf32, const uint8_t *zp,
                                     size_t blocks, size_t r0, size_t r1, float *out, size_t ld) {
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = data + r * blocks * 16;
        float *o = out + (r - r0) * ld;
        for (size_t b = 0; b < blocks; b++) {
            __m256i q = unpack_block(row + b * 16, block_zero_point(zp, blocks, r, b));
            __m512 s = _mm512_set1_ps(block_scale(sf16, sf32, r * blocks + b));
            _mm512_storeu_ps(o + b * 32, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))), s));
            _mm512_storeu_ps(o + b * 32 + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))), s));
        }
    }
}

AVX2 static void dequantize_avx2(const uint8_t *data, const uint16_t *sf16, const float *sf32, const uint8_t *zp,
                                 size_t blocks, size_t r0, size_t r1, float *out, size_t ld) {
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = data + r * blocks * 16;
        float *o = out + (r - r0) * ld;
        for (size_t b = 0; b < blocks; b++) {
            __m256i q = unpack_block(row + b * 16, block_zero_point(zp, blocks, r, b));
            __m128i q_lo = _mm256_castsi256_si128(q), q_hi = _mm256_extracti128_si256(q, 1);
            __m256 s = _mm256_set1_ps(block_scale(sf16, sf32, r * blocks + b));
            _mm256_storeu_ps(o + b * 32, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q_lo)), s));
            _mm256_storeu_ps(o + b * 32 + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q_lo, 8))), s));
            _mm256_storeu_ps(o + b * 32 + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q_hi)), s));
            _mm256_storeu_ps(o + b * 32 + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q_hi, 8))), s));
        }
    }
}

int qk_q4_gemv(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
               const uint8_t *zero_points, size_t blocks, const float *a,
               size_t row_begin, size_t row_end, float *y) {
    switch (qk_q4_isa()) {
    case 2: gemv_avx512(data, scales_f16, scales_f32, zero_points, blocks, a, row_begin, row_end, y); return 1;
    case 1: gemv_avx2(data, scales_f16, scales_f32, zero_points, blocks, a, row_begin, row_end, y); return 1;
    default: return 0;
    }
}

int qk_q4_dequantize(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
                     const uint8_t *zero_points, size_t blocks,
                     size_t row_begin, size_t row_end, float *out, size_t ld) {
    switch (qk_q4_isa()) {
    case 2: dequantize_avx512(data, scales_f16, scales_f32, zero_points, blocks, row_begin, row_end, out, ld); return 1;
    case 1: dequantize_avx2(data, scales_f16, scales_f32, zero_points, blocks, row_begin, row_end, out, ld); return 1;
    default: return 0;
    }
}

#else

int qk_q4_isa(void) { return 0; }
int qk_q4_gemv(const uint8_t *d, const uint16_t *s16, const float *s32, const uint8_t *z, size_t b, const float *a,
               size_t r0, size_t r1, float *y) { (void)d; (void)s16; (void)s32; (void)z; (void)b; (void)a; (void)r0; (void)r1; (void)y; return 0; }
int qk_q4_dequantize(const uint8_t *d, const uint16_t *s16, const float *s32, const uint8_t *z, size_t b,
                     size_t r0, size_t r1, float *o, size_t ld) { (void)d; (void)s16; (void)s32; (void)z; (void)b; (void)r0; (void)r1; (void)o; (void)ld; return 0; }

#endif
