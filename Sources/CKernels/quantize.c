#include "qwen_kernels.h"
#include "cpu.h"

// DynamicQuantizeLinear's two passes (Quantization.swift), vectorised with the scalar loop's
// exact semantics: the range's min and max as `x < lo ? x : lo` and `x >= hi ? x : hi` (a NaN
// never replaces a bound), and each value as saturate(round_half_even(x / scale) + zero_point),
// NaN to the zero point. Division, rounding, addition and clamping are exact IEEE operations in
// either form, so the bytes are the scalar loop's.

static void min_max_scalar(const float *x, size_t n, float *lo, float *hi) {
    float l = *lo, h = *hi;
    for (size_t i = 0; i < n; i++) {
        l = x[i] < l ? x[i] : l;
        h = x[i] >= h ? x[i] : h;
    }
    *lo = l;
    *hi = h;
}

static inline uint8_t quantize_scalar(float x, float scale, uint8_t zero_point) {
    const float v = __builtin_rintf(x / scale) + (float)zero_point;   // rint: half to even (default mode)
    if (v != v) return zero_point;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2")))

AVX2 static void min_max_avx2(const float *x, size_t n, float *lo, float *hi) {
    __m256 l = _mm256_set1_ps(*lo), h = _mm256_set1_ps(*hi);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        l = _mm256_min_ps(v, l);   // v < l ? v : l
        // v >= h ? v : h: equal values differ only as ±0, which give the same scale.
        h = _mm256_max_ps(v, h);
    }
    float ls[8], hs[8];
    _mm256_storeu_ps(ls, l);
    _mm256_storeu_ps(hs, h);
    float a = ls[0], b = hs[0];
    for (int j = 1; j < 8; j++) {
        a = ls[j] < a ? ls[j] : a;
        b = hs[j] >= b ? hs[j] : b;
    }
    min_max_scalar(x + i, n - i, &a, &b);
    *lo = a;
    *hi = b;
}

AVX2 static void quantize_u8_avx2(const float *x, size_t n, float scale, uint8_t zero_point, uint8_t *y) {
    const __m256 s = _mm256_set1_ps(scale), z = _mm256_set1_ps((float)zero_point), top = _mm256_set1_ps(255);
    const __m256 zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_add_ps(_mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), s),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), z);
        const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        v = _mm256_blendv_ps(_mm256_min_ps(_mm256_max_ps(v, zero), top), z, nan);
        const __m256i q = _mm256_cvttps_epi32(v);
        const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(y + i), _mm_packus_epi16(w, w));
    }
    for (; i < n; i++) y[i] = quantize_scalar(x[i], scale, zero_point);
}
#endif

void qk_min_max(const float *x, size_t n, float *lo, float *hi) {
#if defined(__x86_64__) || defined(_M_X64)
    if (qk_cpu_has_avx2_fma_f16c()) {
        min_max_avx2(x, n, lo, hi);
        return;
    }
#endif
    min_max_scalar(x, n, lo, hi);
}

void qk_quantize_u8(const float *x, size_t n, float scale, uint8_t zero_point, uint8_t *y) {
#if defined(__x86_64__) || defined(_M_X64)
    if (qk_cpu_has_avx2_fma_f16c()) {
        quantize_u8_avx2(x, n, scale, zero_point, y);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) y[i] = quantize_scalar(x[i], scale, zero_point);
}
