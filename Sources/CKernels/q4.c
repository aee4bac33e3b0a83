#include "qwen_kernels.h"
#include "cpu.h"

#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include "q4_shared.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define AVX2 __attribute__((target("avx2,fma,f16c")))

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

// MARK: 8-row AVX2 GEMV
//
// Eight rows at a time, lanes = rows. A row's 16-byte block is four little-endian 32-bit words;
// word j holds weights 8j..8j+7 with weight 8j+i in bits 4i..4i+3. Four loads per row group and
// eight unpacks transpose the words so that vector W[j] holds word j of all eight rows. Masking
// nibble i (0xF << 4i, after a 16-bit shift for i >= 4) leaves q * 16^(i mod 4), which converts
// to float exactly; the activations are pre-scaled by 16^-(k mod 4) (exact: powers of two), so
// one AND, one convert and one FMA per 8 weights compute q * a. The zero point is applied per
// block through the block's activation sum: sum (q - z) a = sum q a - z sum a.

// Transposes 8 rows x 8 float16 scales (row r at s + r * stride) into 8 float vectors of 8 rows.
AVX2 static inline void transpose_scales_f16(const uint16_t *s, size_t stride, __m256 out[8]) {
    __m128i r[8];
    for (int i = 0; i < 8; i++) r[i] = _mm_loadu_si128((const __m128i *)(s + i * stride));
    __m128i a0 = _mm_unpacklo_epi16(r[0], r[1]), a1 = _mm_unpackhi_epi16(r[0], r[1]);
    __m128i a2 = _mm_unpacklo_epi16(r[2], r[3]), a3 = _mm_unpackhi_epi16(r[2], r[3]);
    __m128i a4 = _mm_unpacklo_epi16(r[4], r[5]), a5 = _mm_unpackhi_epi16(r[4], r[5]);
    __m128i a6 = _mm_unpacklo_epi16(r[6], r[7]), a7 = _mm_unpackhi_epi16(r[6], r[7]);
    __m128i b0 = _mm_unpacklo_epi32(a0, a2), b1 = _mm_unpackhi_epi32(a0, a2);
    __m128i b2 = _mm_unpacklo_epi32(a1, a3), b3 = _mm_unpackhi_epi32(a1, a3);
    __m128i b4 = _mm_unpacklo_epi32(a4, a6), b5 = _mm_unpackhi_epi32(a4, a6);
    __m128i b6 = _mm_unpacklo_epi32(a5, a7), b7 = _mm_unpackhi_epi32(a5, a7);
    out[0] = _mm256_cvtph_ps(_mm_unpacklo_epi64(b0, b4));
    out[1] = _mm256_cvtph_ps(_mm_unpackhi_epi64(b0, b4));
    out[2] = _mm256_cvtph_ps(_mm_unpacklo_epi64(b1, b5));
    out[3] = _mm256_cvtph_ps(_mm_unpackhi_epi64(b1, b5));
    out[4] = _mm256_cvtph_ps(_mm_unpacklo_epi64(b2, b6));
    out[5] = _mm256_cvtph_ps(_mm_unpackhi_epi64(b2, b6));
    out[6] = _mm256_cvtph_ps(_mm_unpacklo_epi64(b3, b7));
    out[7] = _mm256_cvtph_ps(_mm_unpackhi_epi64(b3, b7));
}

// The scale of block b for 8 rows starting at `row` (float16 or float32 storage).
AVX2 static inline __m256 scales8(const uint16_t *sf16, const float *sf32, size_t blocks, size_t row, size_t b) {
    if (sf16) {
        const uint16_t *s = sf16 + row * blocks + b;
        __m128i v = _mm_setr_epi16((short)s[0], (short)s[blocks], (short)s[2 * blocks], (short)s[3 * blocks],
                                   (short)s[4 * blocks], (short)s[5 * blocks], (short)s[6 * blocks], (short)s[7 * blocks]);
        return _mm256_cvtph_ps(v);
    }
    const float *s = sf32 + row * blocks + b;
    return _mm256_setr_ps(s[0], s[blocks], s[2 * blocks], s[3 * blocks], s[4 * blocks], s[5 * blocks], s[6 * blocks], s[7 * blocks]);
}

// Zero points of block b for 8 rows starting at `row`, as floats (8 when there are none).
AVX2 static inline __m256 zero_points8(const uint8_t *zp, size_t blocks, size_t row, size_t b) {
    if (!zp) return _mm256_set1_ps(8.0f);
    int z[8];
    for (int i = 0; i < 8; i++) z[i] = block_zero_point(zp, blocks, row + i, b);
    return _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)z));
}

#define Q4_STEP(c, w, m, x) c = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(w, m)), _mm256_broadcast_ss(x), c)

// sum_k q[row, k] * a[k] over block b for the 8 rows whose block starts at p (rows rowBytes apart);
// xs = the block's 32 pre-scaled activations.
AVX2 static inline __m256 block_dot8(const uint8_t *p, size_t rowBytes, const float *xs) {
    __m256i w[4];
    q4_transpose_words8(p, rowBytes, w);
    const __m256i m0 = _mm256_set1_epi32(0xF), m1 = _mm256_set1_epi32(0xF0);
    const __m256i m2 = _mm256_set1_epi32(0xF00), m3 = _mm256_set1_epi32(0xF000);
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
    for (int j = 0; j < 4; j++) {
        __m256i lo = w[j], hi = _mm256_srli_epi32(w[j], 16);
        const float *x = xs + 8 * j;
        Q4_STEP(c0, lo, m0, x + 0); Q4_STEP(c1, lo, m1, x + 1); Q4_STEP(c2, lo, m2, x + 2); Q4_STEP(c3, lo, m3, x + 3);
        Q4_STEP(c0, hi, m0, x + 4); Q4_STEP(c1, hi, m1, x + 5); Q4_STEP(c2, hi, m2, x + 6); Q4_STEP(c3, hi, m3, x + 7);
    }
    return _mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3));
}
#undef Q4_STEP

// Rows [r0, r1), (r1 - r0) a multiple of 8. xs = a[k] * 16^-(k mod 4); xsum[b] = sum of block b of a.
AVX2 static void gemv8_avx2(const uint8_t *data, const uint16_t *sf16, const float *sf32, const uint8_t *zp,
                            size_t blocks, const float *xs, const float *xsum, size_t r0, size_t r1, float *y) {
    const size_t rowBytes = blocks * 16;
    for (size_t r = r0; r < r1; r += 8) {
        const uint8_t *rows = data + r * rowBytes;
        const char *next = (const char *)rows + 8 * rowBytes; // the next group, prefetched two lines per block
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        size_t b = 0;
        if (sf16 && !zp) {
            const __m256 eight = _mm256_set1_ps(8.0f);
            for (; b + 8 <= blocks; b += 8) {
                __m256 sc[8];
                transpose_scales_f16(sf16 + r * blocks + b, blocks, sc);
                for (int i = 0; i < 8; i += 2) {
                    const char *pf = next + (b + i) * 128;
                    _mm_prefetch(pf, _MM_HINT_T0); _mm_prefetch(pf + 64, _MM_HINT_T0);
                    _mm_prefetch(pf + 128, _MM_HINT_T0); _mm_prefetch(pf + 192, _MM_HINT_T0);
                    __m256 v0 = _mm256_fnmadd_ps(eight, _mm256_broadcast_ss(xsum + b + i), block_dot8(rows + (b + i) * 16, rowBytes, xs + (b + i) * 32));
                    __m256 v1 = _mm256_fnmadd_ps(eight, _mm256_broadcast_ss(xsum + b + i + 1), block_dot8(rows + (b + i + 1) * 16, rowBytes, xs + (b + i + 1) * 32));
                    acc0 = _mm256_fmadd_ps(v0, sc[i], acc0);
                    acc1 = _mm256_fmadd_ps(v1, sc[i + 1], acc1);
                }
            }
        }
        for (; b < blocks; b++) {
            const char *pf = next + b * 128;
            _mm_prefetch(pf, _MM_HINT_T0); _mm_prefetch(pf + 64, _MM_HINT_T0);
            __m256 v = _mm256_fnmadd_ps(zero_points8(zp, blocks, r, b), _mm256_broadcast_ss(xsum + b),
                                        block_dot8(rows + b * 16, rowBytes, xs + b * 32));
            acc0 = _mm256_fmadd_ps(v, scales8(sf16, sf32, blocks, r, b), acc0);
        }
        _mm256_storeu_ps(y + r, _mm256_add_ps(acc0, acc1));
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
    switch (qk_isa()) {
    case 0: return 0;
    default: break;
    }
    size_t grouped = (row_end - row_begin) / 8 * 8;
    if (grouped > 0) {
        float *xs = malloc((blocks * 33) * sizeof(float));
        if (xs) {
            q4_prescale_activations(a, blocks, xs, xs + blocks * 32);
            gemv8_avx2(data, scales_f16, scales_f32, zero_points, blocks, xs, xs + blocks * 32, row_begin, row_begin + grouped, y);
            free(xs);
            row_begin += grouped;
        }
    }
    // The rows past the last group of 8, one at a time (a 512-bit version gave other floats for
    // no measurable gain: at most 7 rows per call).
    if (row_begin < row_end) gemv_avx2(data, scales_f16, scales_f32, zero_points, blocks, a, row_begin, row_end, y);
    return 1;
}

int qk_q4_dequantize(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
                     const uint8_t *zero_points, size_t blocks,
                     size_t row_begin, size_t row_end, float *out, size_t ld) {
    const int isa = qk_isa();
    if (isa < QK_ISA_AVX2) return 0;
    (isa >= QK_ISA_AVX512 ? dequantize_avx512 : dequantize_avx2)(data, scales_f16, scales_f32, zero_points, blocks,
                                                                 row_begin, row_end, out, ld);
    return 1;
}

#elif !defined(__aarch64__)   // arm64: q4_neon.c

int qk_q4_gemv(const uint8_t *d, const uint16_t *s16, const float *s32, const uint8_t *z, size_t b, const float *a,
               size_t r0, size_t r1, float *y) { (void)d; (void)s16; (void)s32; (void)z; (void)b; (void)a; (void)r0; (void)r1; (void)y; return 0; }
int qk_q4_dequantize(const uint8_t *d, const uint16_t *s16, const float *s32, const uint8_t *z, size_t b,
                     size_t r0, size_t r1, float *o, size_t ld) { (void)d; (void)s16; (void)s32; (void)z; (void)b; (void)r0; (void)r1; (void)o; (void)ld; return 0; }

#endif
