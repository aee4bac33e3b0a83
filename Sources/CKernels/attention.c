#include "qwen_kernels.h"
#include "cpu.h"

#include <math.h>

// One attention row in float32: scores over T keys, softmax, weighted sum of values. Keys and
// values are float16 (`k_half`/`v_half` != 0) or float32, rows of D contiguous elements.

static inline float load_scalar(const void *p, size_t i, int half);

#if defined(__x86_64__) || defined(_M_X64)
#include "simd_exp.h"
#define AVX2 __attribute__((target("avx2,fma,f16c")))

static inline float load_scalar(const void *p, size_t i, int half) {
    if (!half) return ((const float *)p)[i];
    // float16 → float32 without F16C: exact bit manipulation.
    uint16_t h = ((const uint16_t *)p)[i];
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0x1F) bits = sign | 0x7F800000 | (mant << 13);
    else if (exp != 0) bits = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant == 0) bits = sign;
    else {
        exp = 113;
        while (!(mant & 0x400)) { mant <<= 1; exp--; }
        bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
    }
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
}

AVX2 static inline __m256 load8(const void *p, size_t i, int half) {
    if (half) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_loadu_ps((const float *)p + i);
}

AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// k[i..i+8) · c, or with `scaled` k's float32 values as they are (already k · c: `scale_keys_avx2`).
AVX2 static inline __attribute__((always_inline)) __m256 key8(const void *k, size_t i, int half, int scaled, __m256 cv) {
    return scaled ? _mm256_loadu_ps((const float *)k + i) : _mm256_mul_ps(load8(k, i, half), cv);
}

// scores[t] = sum_d q[d] * (k[t, d] * c), D a multiple of 8. Per key: two accumulators (d mod 16
// below or above 8), then hsum8(acc0 + acc1). Four keys at a time where they are: the same
// operations per key, the four horizontal sums done together through a 4×4 transpose in
// exactly hsum8's order ((v0+v4) + (v2+v6)) + ((v1+v5) + (v3+v7)), so every score is the float
// the one-key loop gives, with four independent chains instead of one. With `scaled` the keys
// are float32 k · c already (the same floats, the multiply done once for all the rows that read
// them); `half` and `scaled` are constants where it is inlined (`scores_avx2` and
// `scores_scaled_avx2`).
AVX2 static inline __attribute__((always_inline)) void scores_kernel_avx2(const float *q, const void *k, int half, int scaled,
                                                                        size_t t_count, size_t d_count, float c,
                                                                        float *scores) {
    const __m256 cv = _mm256_set1_ps(c);
    size_t t0 = 0;
    for (; t0 + 4 <= t_count; t0 += 4) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        const size_t r0 = t0 * d_count, r1 = r0 + d_count, r2 = r1 + d_count, r3 = r2 + d_count;
        size_t d = 0;
        for (; d + 16 <= d_count; d += 16) {
            const __m256 qa = _mm256_loadu_ps(q + d), qb = _mm256_loadu_ps(q + d + 8);
            a0 = _mm256_fmadd_ps(qa, key8(k, r0 + d, half, scaled, cv), a0);
            b0 = _mm256_fmadd_ps(qb, key8(k, r0 + d + 8, half, scaled, cv), b0);
            a1 = _mm256_fmadd_ps(qa, key8(k, r1 + d, half, scaled, cv), a1);
            b1 = _mm256_fmadd_ps(qb, key8(k, r1 + d + 8, half, scaled, cv), b1);
            a2 = _mm256_fmadd_ps(qa, key8(k, r2 + d, half, scaled, cv), a2);
            b2 = _mm256_fmadd_ps(qb, key8(k, r2 + d + 8, half, scaled, cv), b2);
            a3 = _mm256_fmadd_ps(qa, key8(k, r3 + d, half, scaled, cv), a3);
            b3 = _mm256_fmadd_ps(qb, key8(k, r3 + d + 8, half, scaled, cv), b3);
        }
        for (; d < d_count; d += 8) {
            const __m256 qa = _mm256_loadu_ps(q + d);
            a0 = _mm256_fmadd_ps(qa, key8(k, r0 + d, half, scaled, cv), a0);
            a1 = _mm256_fmadd_ps(qa, key8(k, r1 + d, half, scaled, cv), a1);
            a2 = _mm256_fmadd_ps(qa, key8(k, r2 + d, half, scaled, cv), a2);
            a3 = _mm256_fmadd_ps(qa, key8(k, r3 + d, half, scaled, cv), a3);
        }
#define HALVES(a, b) ({ const __m256 s_ = _mm256_add_ps(a, b); _mm_add_ps(_mm256_castps256_ps128(s_), _mm256_extractf128_ps(s_, 1)); })
        __m128 x0 = HALVES(a0, b0), x1 = HALVES(a1, b1), x2 = HALVES(a2, b2), x3 = HALVES(a3, b3);
#undef HALVES
        _MM_TRANSPOSE4_PS(x0, x1, x2, x3);   // x_i now holds lane i of the four keys' halves
        _mm_storeu_ps(scores + t0, _mm_add_ps(_mm_add_ps(x0, x2), _mm_add_ps(x1, x3)));
    }
    for (size_t t = t0; t < t_count; t++) {
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        size_t d = 0;
        for (; d + 16 <= d_count; d += 16) {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), key8(k, t * d_count + d, half, scaled, cv), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), key8(k, t * d_count + d + 8, half, scaled, cv), acc1);
        }
        for (; d < d_count; d += 8)
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), key8(k, t * d_count + d, half, scaled, cv), acc0);
        scores[t] = hsum8(_mm256_add_ps(acc0, acc1));
    }
}

AVX2 static void scores_avx2(const float *q, const void *k, int half, size_t t_count, size_t d_count, float c, float *scores) {
    if (half) scores_kernel_avx2(q, k, 1, 0, t_count, d_count, c, scores);
    else scores_kernel_avx2(q, k, 0, 0, t_count, d_count, c, scores);
}

AVX2 static void scores_scaled_avx2(const float *q, const float *kc, size_t t_count, size_t d_count, float *scores) {
    scores_kernel_avx2(q, kc, 0, 1, t_count, d_count, 1, scores);
}

// kc[i] = k[i] · c for n elements (n a multiple of 8): the keys as `key8` scales them.
AVX2 static void scale_keys_avx2(const void *k, int half, size_t n, float c, float *kc) {
    const __m256 cv = _mm256_set1_ps(c);
    for (size_t i = 0; i < n; i += 8) _mm256_storeu_ps(kc + i, _mm256_mul_ps(load8(k, i, half), cv));
}

// out[i] = v[i] widened from float16, n a multiple of 8.
AVX2 static void widen_avx2(const void *v, size_t n, float *out) {
    for (size_t i = 0; i < n; i += 8) _mm256_storeu_ps(out + i, load8(v, i, 1));
}

// out[d] (+)= sum_t p[t] * v[t, d], D a multiple of 8 and at most 256; with `accumulate` the sums
// continue from out's values (a sum over T split into consecutive parts gives the same floats).
AVX2 static void weighted_sum_avx2(const float *p, const void *v, int half, size_t t_count, size_t d_count, float *out,
                                   int accumulate) {
    for (size_t d0 = 0; d0 < d_count; d0 += 64) {
        size_t width = d_count - d0 < 64 ? d_count - d0 : 64;
        if (width == 64) {
            // The common head size, spelled out: eight accumulators in registers (SwiftPM builds
            // C at -O2, which keeps the general loop's array in memory).
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
            if (accumulate) {
                a0 = _mm256_loadu_ps(out + d0); a1 = _mm256_loadu_ps(out + d0 + 8);
                a2 = _mm256_loadu_ps(out + d0 + 16); a3 = _mm256_loadu_ps(out + d0 + 24);
                a4 = _mm256_loadu_ps(out + d0 + 32); a5 = _mm256_loadu_ps(out + d0 + 40);
                a6 = _mm256_loadu_ps(out + d0 + 48); a7 = _mm256_loadu_ps(out + d0 + 56);
            }
            for (size_t t = 0; t < t_count; t++) {
                const __m256 pt = _mm256_set1_ps(p[t]);
                const size_t base = t * d_count + d0;
                a0 = _mm256_fmadd_ps(pt, load8(v, base, half), a0);
                a1 = _mm256_fmadd_ps(pt, load8(v, base + 8, half), a1);
                a2 = _mm256_fmadd_ps(pt, load8(v, base + 16, half), a2);
                a3 = _mm256_fmadd_ps(pt, load8(v, base + 24, half), a3);
                a4 = _mm256_fmadd_ps(pt, load8(v, base + 32, half), a4);
                a5 = _mm256_fmadd_ps(pt, load8(v, base + 40, half), a5);
                a6 = _mm256_fmadd_ps(pt, load8(v, base + 48, half), a6);
                a7 = _mm256_fmadd_ps(pt, load8(v, base + 56, half), a7);
            }
            _mm256_storeu_ps(out + d0, a0); _mm256_storeu_ps(out + d0 + 8, a1);
            _mm256_storeu_ps(out + d0 + 16, a2); _mm256_storeu_ps(out + d0 + 24, a3);
            _mm256_storeu_ps(out + d0 + 32, a4); _mm256_storeu_ps(out + d0 + 40, a5);
            _mm256_storeu_ps(out + d0 + 48, a6); _mm256_storeu_ps(out + d0 + 56, a7);
            continue;
        }
        __m256 acc[8];
        for (size_t j = 0; j < 8; j++) acc[j] = accumulate && j < width / 8 ? _mm256_loadu_ps(out + d0 + 8 * j) : _mm256_setzero_ps();
        for (size_t t = 0; t < t_count; t++) {
            __m256 pt = _mm256_set1_ps(p[t]);
            for (size_t j = 0; j < width / 8; j++)
                acc[j] = _mm256_fmadd_ps(pt, load8(v, t * d_count + d0 + 8 * j, half), acc[j]);
        }
        for (size_t j = 0; j < width / 8; j++) _mm256_storeu_ps(out + d0 + 8 * j, acc[j]);
    }
}

// --- AVX-512: the scores, weighted sums and staging above in 16 lanes ----------------------------
//
// The same floats as the AVX2 kernels: a key's two accumulators (d mod 16 below and above 8) are
// the two halves of one 512-bit register, added half to half as `HALVES` adds them; a head of 64
// values is four registers of the weighted sum's eight chains; the staging is elementwise; the
// softmax (`softmax_avx512`, below) keeps its sum over 8 lanes in t order.
#define AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))

AVX512 static inline __m512 load16(const void *p, size_t i, int half) {
    if (half) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
    return _mm512_loadu_ps((const float *)p + i);
}

AVX512 static inline __attribute__((always_inline)) __m512 key16(const void *k, size_t i, int half, int scaled, __m512 cv) {
    return scaled ? _mm512_loadu_ps((const float *)k + i) : _mm512_mul_ps(load16(k, i, half), cv);
}

// acc + q[d..d+16) · k: the AVX2 kernel's a (lanes 0–7) and b (8–15) steps at once; at a tail of 8
// (d mod 16 = 8) only a's, through `key8` (lanes 8–15 of the operands unused: the mask keeps acc's).
#define SCORE_STEP16(acc, d, r) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + (d)), key16(k, (r) + (d), half, scaled, cv), acc)
#define SCORE_STEP8(acc, d, r) acc = _mm512_mask3_fmadd_ps( \
        _mm512_castps256_ps512(_mm256_loadu_ps(q + (d))), \
        _mm512_castps256_ps512(key8(k, (r) + (d), half, scaled, _mm512_castps512_ps256(cv))), acc, 0x00FF)

// hsum8(a + b) of a key's register (a, b its halves), as a 128-bit vector of its 4 partial sums.
AVX512 static inline __attribute__((always_inline)) __m128 halves16(__m512 acc) {
    const __m256 s = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

AVX512 static inline __attribute__((always_inline)) void scores_kernel_avx512(const float *q, const void *k, int half, int scaled,
                                                                            size_t t_count, size_t d_count, float c,
                                                                            float *scores) {
    const __m512 cv = _mm512_set1_ps(c);
    const size_t d16 = d_count / 16 * 16;
    size_t t0 = 0;
    for (; t0 + 4 <= t_count; t0 += 4) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const size_t r0 = t0 * d_count, r1 = r0 + d_count, r2 = r1 + d_count, r3 = r2 + d_count;
        for (size_t d = 0; d < d16; d += 16) {
            SCORE_STEP16(a0, d, r0); SCORE_STEP16(a1, d, r1); SCORE_STEP16(a2, d, r2); SCORE_STEP16(a3, d, r3);
        }
        if (d16 < d_count) {
            SCORE_STEP8(a0, d16, r0); SCORE_STEP8(a1, d16, r1); SCORE_STEP8(a2, d16, r2); SCORE_STEP8(a3, d16, r3);
        }
        __m128 x0 = halves16(a0), x1 = halves16(a1), x2 = halves16(a2), x3 = halves16(a3);
        _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
        _mm_storeu_ps(scores + t0, _mm_add_ps(_mm_add_ps(x0, x2), _mm_add_ps(x1, x3)));
    }
    for (size_t t = t0; t < t_count; t++) {
        __m512 acc = _mm512_setzero_ps();
        for (size_t d = 0; d < d16; d += 16) SCORE_STEP16(acc, d, t * d_count);
        if (d16 < d_count) SCORE_STEP8(acc, d16, t * d_count);
        scores[t] = hsum8(_mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1)));
    }
}
#undef SCORE_STEP16
#undef SCORE_STEP8

AVX512 static void scores_avx512(const float *q, const void *k, int half, size_t t_count, size_t d_count, float c, float *scores) {
    if (half) scores_kernel_avx512(q, k, 1, 0, t_count, d_count, c, scores);
    else scores_kernel_avx512(q, k, 0, 0, t_count, d_count, c, scores);
}

AVX512 static void scores_scaled_avx512(const float *q, const float *kc, size_t t_count, size_t d_count, float *scores) {
    scores_kernel_avx512(q, kc, 0, 1, t_count, d_count, 1, scores);
}

AVX512 static void scale_keys_avx512(const void *k, int half, size_t n, float c, float *kc) {
    const __m512 cv = _mm512_set1_ps(c);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(kc + i, _mm512_mul_ps(load16(k, i, half), cv));
    if (i < n) _mm256_storeu_ps(kc + i, _mm256_mul_ps(load8(k, i, half), _mm512_castps512_ps256(cv)));
}

AVX512 static void widen_avx512(const void *v, size_t n, float *out) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load16(v, i, 1));
    if (i < n) _mm256_storeu_ps(out + i, load8(v, i, 1));
}

// A head of 64 values in four registers (each lane's chain over t is the AVX2 kernel's); other
// widths take the AVX2 kernel.
AVX512 static void weighted_sum_avx512(const float *p, const void *v, int half, size_t t_count, size_t d_count, float *out,
                                       int accumulate) {
    if (d_count != 64) {
        weighted_sum_avx2(p, v, half, t_count, d_count, out, accumulate);
        return;
    }
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    if (accumulate) {
        a0 = _mm512_loadu_ps(out); a1 = _mm512_loadu_ps(out + 16);
        a2 = _mm512_loadu_ps(out + 32); a3 = _mm512_loadu_ps(out + 48);
    }
    for (size_t t = 0; t < t_count; t++) {
        const __m512 pt = _mm512_set1_ps(p[t]);
        const size_t base = t * 64;
        a0 = _mm512_fmadd_ps(pt, load16(v, base, half), a0);
        a1 = _mm512_fmadd_ps(pt, load16(v, base + 16, half), a1);
        a2 = _mm512_fmadd_ps(pt, load16(v, base + 32, half), a2);
        a3 = _mm512_fmadd_ps(pt, load16(v, base + 48, half), a3);
    }
    _mm512_storeu_ps(out, a0); _mm512_storeu_ps(out + 16, a1);
    _mm512_storeu_ps(out + 32, a2); _mm512_storeu_ps(out + 48, a3);
}

// p = softmax(scores) in place, e^x vectorised (simd_exp.h). Returns 0 (scores untouched) when
// a score is NaN, for the scalar path to propagate it as the formula does.
AVX2 static int softmax_avx2(float *scores, size_t n, int nan_to_zero) {
    __m256 vmax = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
    size_t t = 0;
    for (; t + 8 <= n; t += 8) {
        __m256 x = _mm256_loadu_ps(scores + t);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
        vmax = _mm256_max_ps(vmax, x);
    }
    if (_mm256_movemask_ps(nan)) return 0;
    float m[8], max_value = -INFINITY;
    _mm256_storeu_ps(m, vmax);
    for (int i = 0; i < 8; i++) max_value = m[i] > max_value ? m[i] : max_value;
    for (; t < n; t++) {
        if (scores[t] != scores[t]) return 0;
        max_value = scores[t] > max_value ? scores[t] : max_value;
    }
    if (max_value == -INFINITY) {
        // A fully masked row: the formula gives NaN everywhere (0 behind the exports' NaN guard).
        for (t = 0; t < n; t++) scores[t] = nan_to_zero ? 0 : NAN;
        return 1;
    }
    const __m256 vm = _mm256_set1_ps(max_value);
    __m256 vsum = _mm256_setzero_ps();
    for (t = 0; t + 8 <= n; t += 8) {
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(scores + t), vm));
        _mm256_storeu_ps(scores + t, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float sum = hsum8(vsum);
    for (; t < n; t++) {
        float e = expf(scores[t] - max_value);
        scores[t] = e;
        sum += e;
    }
    const float inv = 1 / sum;
    const __m256 vinv = _mm256_set1_ps(inv);
    for (t = 0; t + 8 <= n; t += 8) _mm256_storeu_ps(scores + t, _mm256_mul_ps(_mm256_loadu_ps(scores + t), vinv));
    for (; t < n; t++) scores[t] *= inv;
    return 1;
}

// `softmax_avx2` with 16 lanes where the order allows: the maximum, e^x (`exp_avx512`, exp_avx2's
// floats) and the normalisation; the sum of the e^x in exp_avx2's order (8 lanes, t ascending:
// a register's low half, then its high half), so its floats.
AVX512 static int softmax_avx512(float *scores, size_t n, int nan_to_zero) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    size_t t = 0;
    for (; t + 16 <= n; t += 16) {
        const __m512 x = _mm512_loadu_ps(scores + t);
        nan |= _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        vmax = _mm512_max_ps(vmax, x);
    }
    if (nan) return 0;
    float max_value = _mm512_reduce_max_ps(vmax);
    for (; t < n; t++) {
        if (scores[t] != scores[t]) return 0;
        max_value = scores[t] > max_value ? scores[t] : max_value;
    }
    if (max_value == -INFINITY) {
        for (t = 0; t < n; t++) scores[t] = nan_to_zero ? 0 : NAN;
        return 1;
    }
    const __m512 vm = _mm512_set1_ps(max_value);
    __m256 vsum = _mm256_setzero_ps();
    for (t = 0; t + 16 <= n; t += 16) {
        const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(scores + t), vm));
        _mm512_storeu_ps(scores + t, e);
        vsum = _mm256_add_ps(vsum, _mm512_castps512_ps256(e));
        vsum = _mm256_add_ps(vsum, _mm512_extractf32x8_ps(e, 1));
    }
    if (t + 8 <= n) {
        const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(scores + t), _mm512_castps512_ps256(vm)));
        _mm256_storeu_ps(scores + t, e);
        vsum = _mm256_add_ps(vsum, e);
        t += 8;
    }
    float sum = hsum8(vsum);
    for (; t < n; t++) {
        float e = expf(scores[t] - max_value);
        scores[t] = e;
        sum += e;
    }
    const float inv = 1 / sum;
    const __m512 vinv = _mm512_set1_ps(inv);
    for (t = 0; t + 16 <= n; t += 16) _mm512_storeu_ps(scores + t, _mm512_mul_ps(_mm512_loadu_ps(scores + t), vinv));
    for (; t < n; t++) scores[t] *= inv;
    return 1;
}

#else
static inline float load_scalar(const void *p, size_t i, int half) {
    if (!half) return ((const float *)p)[i];
    return (float)((const _Float16 *)p)[i];
}
#endif

#if defined(__aarch64__)
#include "simd_exp.h"
#include "simd_neon.h"

// The NEON twins of the AVX2 kernels above: each __m256 two registers (simd_neon.h), the same
// operations in the same order, so every float is the AVX2 kernels' bit for bit.

static inline f32x8 load8(const void *p, size_t i, int half) {
    return half ? f32x8_load_half((const uint16_t *)p + i) : f32x8_load((const float *)p + i);
}

// acc + q · (k[i..i+8) · c), one step of a key's accumulator; with `scaled` k is float32 k · c.
static inline __attribute__((always_inline)) f32x8 score_step(f32x8 acc, f32x8 q, const void *k, size_t i, int half,
                                                              int scaled, f32x8 c) {
    return f32x8_fmadd(q, scaled ? f32x8_load((const float *)k + i) : f32x8_mul(load8(k, i, half), c), acc);
}

// scores_kernel_avx2's twin: per key the accumulators of d mod 16 below and above 8, then the
// horizontal sum of their sum; four keys at a time where they are, the four sums together
// (f32x8_hsum4, hsum8's additions in its order).
static inline __attribute__((always_inline)) void scores_kernel_neon(const float *q, const void *k, int half, int scaled,
                                                                     size_t t_count, size_t d_count, float c,
                                                                     float *scores) {
    const f32x8 cv = f32x8_dup(c);
    size_t t0 = 0;
    for (; t0 + 4 <= t_count; t0 += 4) {
        f32x8 a0 = f32x8_dup(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        const size_t r0 = t0 * d_count, r1 = r0 + d_count, r2 = r1 + d_count, r3 = r2 + d_count;
        size_t d = 0;
        for (; d + 16 <= d_count; d += 16) {
            const f32x8 qa = f32x8_load(q + d), qb = f32x8_load(q + d + 8);
            a0 = score_step(a0, qa, k, r0 + d, half, scaled, cv);
            b0 = score_step(b0, qb, k, r0 + d + 8, half, scaled, cv);
            a1 = score_step(a1, qa, k, r1 + d, half, scaled, cv);
            b1 = score_step(b1, qb, k, r1 + d + 8, half, scaled, cv);
            a2 = score_step(a2, qa, k, r2 + d, half, scaled, cv);
            b2 = score_step(b2, qb, k, r2 + d + 8, half, scaled, cv);
            a3 = score_step(a3, qa, k, r3 + d, half, scaled, cv);
            b3 = score_step(b3, qb, k, r3 + d + 8, half, scaled, cv);
        }
        for (; d < d_count; d += 8) {
            const f32x8 qa = f32x8_load(q + d);
            a0 = score_step(a0, qa, k, r0 + d, half, scaled, cv);
            a1 = score_step(a1, qa, k, r1 + d, half, scaled, cv);
            a2 = score_step(a2, qa, k, r2 + d, half, scaled, cv);
            a3 = score_step(a3, qa, k, r3 + d, half, scaled, cv);
        }
        vst1q_f32(scores + t0, f32x8_hsum4(f32x8_add(a0, b0), f32x8_add(a1, b1), f32x8_add(a2, b2), f32x8_add(a3, b3)));
    }
    for (size_t t = t0; t < t_count; t++) {
        f32x8 acc0 = f32x8_dup(0), acc1 = acc0;
        size_t d = 0;
        for (; d + 16 <= d_count; d += 16) {
            acc0 = score_step(acc0, f32x8_load(q + d), k, t * d_count + d, half, scaled, cv);
            acc1 = score_step(acc1, f32x8_load(q + d + 8), k, t * d_count + d + 8, half, scaled, cv);
        }
        for (; d < d_count; d += 8) acc0 = score_step(acc0, f32x8_load(q + d), k, t * d_count + d, half, scaled, cv);
        scores[t] = f32x8_hsum(f32x8_add(acc0, acc1));
    }
}

static void scores_neon(const float *q, const void *k, int half, size_t t_count, size_t d_count, float c, float *scores) {
    if (half) scores_kernel_neon(q, k, 1, 0, t_count, d_count, c, scores);
    else scores_kernel_neon(q, k, 0, 0, t_count, d_count, c, scores);
}

static void scores_scaled_neon(const float *q, const float *kc, size_t t_count, size_t d_count, float *scores) {
    scores_kernel_neon(q, kc, 0, 1, t_count, d_count, 1, scores);
}

// scale_keys_avx2's twin.
static void scale_keys_neon(const void *k, int half, size_t n, float c, float *kc) {
    const f32x8 cv = f32x8_dup(c);
    for (size_t i = 0; i < n; i += 8) f32x8_store(kc + i, f32x8_mul(load8(k, i, half), cv));
}

// widen_avx2's twin.
static void widen_neon(const void *v, size_t n, float *out) {
    for (size_t i = 0; i < n; i += 8) f32x8_store(out + i, load8(v, i, 1));
}

// weighted_sum_avx2's twin: each output float one chain of FMAs over t, in t order; the 64-wide
// case spelled out as there (16 accumulator registers).
static void weighted_sum_neon(const float *p, const void *v, int half, size_t t_count, size_t d_count, float *out,
                              int accumulate) {
    for (size_t d0 = 0; d0 < d_count; d0 += 64) {
        size_t width = d_count - d0 < 64 ? d_count - d0 : 64;
        if (width == 64) {
            f32x8 a0 = f32x8_dup(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
            if (accumulate) {
                a0 = f32x8_load(out + d0); a1 = f32x8_load(out + d0 + 8);
                a2 = f32x8_load(out + d0 + 16); a3 = f32x8_load(out + d0 + 24);
                a4 = f32x8_load(out + d0 + 32); a5 = f32x8_load(out + d0 + 40);
                a6 = f32x8_load(out + d0 + 48); a7 = f32x8_load(out + d0 + 56);
            }
            for (size_t t = 0; t < t_count; t++) {
                const f32x8 pt = f32x8_dup(p[t]);
                const size_t base = t * d_count + d0;
                a0 = f32x8_fmadd(pt, load8(v, base, half), a0);
                a1 = f32x8_fmadd(pt, load8(v, base + 8, half), a1);
                a2 = f32x8_fmadd(pt, load8(v, base + 16, half), a2);
                a3 = f32x8_fmadd(pt, load8(v, base + 24, half), a3);
                a4 = f32x8_fmadd(pt, load8(v, base + 32, half), a4);
                a5 = f32x8_fmadd(pt, load8(v, base + 40, half), a5);
                a6 = f32x8_fmadd(pt, load8(v, base + 48, half), a6);
                a7 = f32x8_fmadd(pt, load8(v, base + 56, half), a7);
            }
            f32x8_store(out + d0, a0); f32x8_store(out + d0 + 8, a1);
            f32x8_store(out + d0 + 16, a2); f32x8_store(out + d0 + 24, a3);
            f32x8_store(out + d0 + 32, a4); f32x8_store(out + d0 + 40, a5);
            f32x8_store(out + d0 + 48, a6); f32x8_store(out + d0 + 56, a7);
            continue;
        }
        f32x8 acc[8];
        for (size_t j = 0; j < width / 8; j++) acc[j] = accumulate ? f32x8_load(out + d0 + 8 * j) : f32x8_dup(0);
        for (size_t t = 0; t < t_count; t++) {
            const f32x8 pt = f32x8_dup(p[t]);
            for (size_t j = 0; j < width / 8; j++) acc[j] = f32x8_fmadd(pt, load8(v, t * d_count + d0 + 8 * j, half), acc[j]);
        }
        for (size_t j = 0; j < width / 8; j++) f32x8_store(out + d0 + 8 * j, acc[j]);
    }
}

// softmax_avx2's twin: the max of eight lanes then the tail (max_ps's semantics, f32x8_max),
// e^x eight at a time (exp_neon on each half) and expf on the tail, the same sums and products.
static int softmax_neon(float *scores, size_t n, int nan_to_zero) {
    f32x8 vmax = f32x8_dup(-INFINITY);
    uint32x4_t nan = vdupq_n_u32(0);
    size_t t = 0;
    for (; t + 8 <= n; t += 8) {
        const f32x8 x = f32x8_load(scores + t);
        nan = vorrq_u32(nan, vmvnq_u32(vandq_u32(vceqq_f32(x.lo, x.lo), vceqq_f32(x.hi, x.hi))));
        vmax = f32x8_max(vmax, x);
    }
    if (vmaxvq_u32(nan)) return 0;
    float m[8], max_value = -INFINITY;
    f32x8_store(m, vmax);
    for (int i = 0; i < 8; i++) max_value = m[i] > max_value ? m[i] : max_value;
    for (; t < n; t++) {
        if (scores[t] != scores[t]) return 0;
        max_value = scores[t] > max_value ? scores[t] : max_value;
    }
    if (max_value == -INFINITY) {
        for (t = 0; t < n; t++) scores[t] = nan_to_zero ? 0 : NAN;
        return 1;
    }
    const float32x4_t vm = vdupq_n_f32(max_value);
    f32x8 vsum = f32x8_dup(0);
    for (t = 0; t + 8 <= n; t += 8) {
        const f32x8 x = f32x8_load(scores + t);
        const f32x8 e = {exp_neon(vsubq_f32(x.lo, vm)), exp_neon(vsubq_f32(x.hi, vm))};
        f32x8_store(scores + t, e);
        vsum = f32x8_add(vsum, e);
    }
    float sum = f32x8_hsum(vsum);
    for (; t < n; t++) {
        float e = expf(scores[t] - max_value);
        scores[t] = e;
        sum += e;
    }
    const float inv = 1 / sum;
    const f32x8 vinv = f32x8_dup(inv);
    for (t = 0; t + 8 <= n; t += 8) f32x8_store(scores + t, f32x8_mul(f32x8_load(scores + t), vinv));
    for (; t < n; t++) scores[t] *= inv;
    return 1;
}
#endif

// The SIMD kernels of this build, and whether they run here (either set gives the same floats).
#if defined(__x86_64__) || defined(_M_X64)
#define SIMD_KERNELS 1
#define simd_runs() qk_cpu_has_avx2_fma_f16c()
#define AVX512_RUNS (qk_isa() >= QK_ISA_AVX512)
#define scores_simd (AVX512_RUNS ? scores_avx512 : scores_avx2)
#define scores_scaled_simd (AVX512_RUNS ? scores_scaled_avx512 : scores_scaled_avx2)
#define scale_keys_simd (AVX512_RUNS ? scale_keys_avx512 : scale_keys_avx2)
#define widen_simd (AVX512_RUNS ? widen_avx512 : widen_avx2)
#define weighted_sum_simd (AVX512_RUNS ? weighted_sum_avx512 : weighted_sum_avx2)
#define softmax_simd (AVX512_RUNS ? softmax_avx512 : softmax_avx2)
#elif defined(__aarch64__)
#define SIMD_KERNELS 1
#define simd_runs() (qk_isa() >= QK_ISA_NEON)
#define scores_simd scores_neon
#define scores_scaled_simd scores_scaled_neon
#define scale_keys_simd scale_keys_neon
#define widen_simd widen_neon
#define weighted_sum_simd weighted_sum_neon
#define softmax_simd softmax_neon
#endif

static void softmax_scalar(float *scores, size_t n, int nan_to_zero) {
    float max_value = -INFINITY;
    for (size_t t = 0; t < n; t++) max_value = scores[t] > max_value ? scores[t] : max_value;
    float sum = 0;
    for (size_t t = 0; t < n; t++) {
        float e = expf(scores[t] - max_value);
        scores[t] = e;
        sum += e;
    }
    float inv = 1 / sum;
    for (size_t t = 0; t < n; t++) {
        float p = scores[t] * inv;
        scores[t] = (nan_to_zero && p != p) ? 0 : p;
    }
}

void qk_softmax_row(float *scores, const float *mask, size_t n, int nan_to_zero) {
    if (mask)
        for (size_t t = 0; t < n; t++) scores[t] += mask[t];
    // As the Softmax op computes it (max-subtracted; a row of -inf gives NaN, which the exports'
    // guard turns into 0). Rows holding a NaN take the scalar path, which propagates it.
#ifdef SIMD_KERNELS
    if (simd_runs() && softmax_simd(scores, n, nan_to_zero)) return;
#endif
    softmax_scalar(scores, n, nan_to_zero);
}

void qk_attention_row(const float *q, const void *k, int k_half, const void *v, int v_half, size_t t_count, size_t d_count,
                      float scale, const float *mask, int nan_to_zero, float *scores, float *out) {
    int vectorized = 0;
#ifdef SIMD_KERNELS
    vectorized = simd_runs() && d_count % 8 == 0 && d_count <= 256;
    if (vectorized) scores_simd(q, k, k_half, t_count, d_count, scale, scores);
#endif
    if (!vectorized)
        for (size_t t = 0; t < t_count; t++) {
            float acc = 0;
            for (size_t d = 0; d < d_count; d++) acc += q[d] * (load_scalar(k, t * d_count + d, k_half) * scale);
            scores[t] = acc;
        }
    qk_softmax_row(scores, mask, t_count, nan_to_zero);
#ifdef SIMD_KERNELS
    if (vectorized) {
        weighted_sum_simd(scores, v, v_half, t_count, d_count, out, 0);
        return;
    }
#endif
    for (size_t d = 0; d < d_count; d++) out[d] = 0;
    for (size_t t = 0; t < t_count; t++)
        for (size_t d = 0; d < d_count; d++) out[d] += scores[t] * load_scalar(v, t * d_count + d, v_half);
}

// Element i of a float16 (`half`) or float32 buffer.
static inline const void *element(const void *p, int half, size_t i) {
    return (const char *)p + i * (half ? 2 : 4);
}

void qk_attention_group(const float *q, size_t q_stride, size_t rows, const void *k, int k_half, const void *v,
                        int v_half, size_t t_count, size_t d_count, float scale, const float *mask, size_t mask_stride,
                        int nan_to_zero, float *scores, float *out, size_t out_stride) {
#ifdef SIMD_KERNELS
    if (simd_runs() && d_count % 8 == 0 && d_count <= 256) {
        // Tiles of keys (then values) small enough for L1, each read from memory once and passed
        // by every row in turn; per row the operations and their order are qk_attention_row's.
        // With several rows, each tile's keys are scaled (k · c, as qk_attention_row scales
        // them), and float16 values widened, once into `staged` for all the rows: the same
        // floats, without each row repeating the multiply or conversion.
        const size_t tile = d_count <= 64 ? 64 : 16384 / (d_count * sizeof(float));
        float staged[4096] __attribute__((aligned(64)));   // tile * d_count floats (16 KB)
        const int stage = rows > 1;
        for (size_t t0 = 0; t0 < t_count; t0 += tile) {
            const size_t n = t_count - t0 < tile ? t_count - t0 : tile;
            const void *kt = element(k, k_half, t0 * d_count);
            if (stage) scale_keys_simd(kt, k_half, n * d_count, scale, staged);
            for (size_t r = 0; r < rows; r++) {
                float *sr = scores + r * t_count + t0;
                if (stage) scores_scaled_simd(q + r * q_stride, staged, n, d_count, sr);
                else scores_simd(q + r * q_stride, kt, k_half, n, d_count, scale, sr);
            }
        }
        for (size_t r = 0; r < rows; r++)
            qk_softmax_row(scores + r * t_count, mask ? mask + r * mask_stride : NULL, t_count, nan_to_zero);
        for (size_t t0 = 0; t0 < t_count; t0 += tile) {
            const size_t n = t_count - t0 < tile ? t_count - t0 : tile;
            const void *vt = element(v, v_half, t0 * d_count);
            int vt_half = v_half;
            if (stage && v_half) {
                widen_simd(vt, n * d_count, staged);
                vt = staged;
                vt_half = 0;
            }
            for (size_t r = 0; r < rows; r++)
                weighted_sum_simd(scores + r * t_count + t0, vt, vt_half, n, d_count, out + r * out_stride, t0 > 0);
        }
        if (t_count == 0)
            for (size_t r = 0; r < rows; r++)
                for (size_t d = 0; d < d_count; d++) out[r * out_stride + d] = 0;
        return;
    }
#endif
    for (size_t r = 0; r < rows; r++)
        qk_attention_row(q + r * q_stride, k, k_half, v, v_half, t_count, d_count, scale, mask ? mask + r * mask_stride : NULL,
                         nan_to_zero, scores + r * t_count, out + r * out_stride);
}
