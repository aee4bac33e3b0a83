#include "qwen_kernels.h"
#include "cpu.h"

#include <math.h>

// Vectorised logistic sigmoid: 1 / (1 + e^-x) with e^x from simd_exp.h: within 4 ulp of
// expf-based results, as ONNX Runtime's MLAS also approximates (its own polynomial).

static inline float sigmoid_scalar(float x) {
    return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

#if defined(__x86_64__) || defined(_M_X64)
#include "simd_exp.h"
#define AVX2 __attribute__((target("avx2,fma")))

// σ of 8 values: 1 / (1 + e^-v); NaN in, NaN out (exp_avx2's clamp would turn it into a number).
AVX2 static inline __m256 sigmoid8(__m256 v) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), v));
    __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, e));
    return _mm256_blendv_ps(s, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

AVX2 static void sigmoid_avx2(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, sigmoid8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = sigmoid_scalar(x[i]);
}

// y = (x · σ(x)) · u, σ as sigmoid_avx2 computes it and the two products in the exports' order:
// the same values as qk_sigmoid followed by the products, in one pass.
AVX2 static void silu_mul_avx2(const float *x, const float *u, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(v, sigmoid8(v)), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) y[i] = (x[i] * sigmoid_scalar(x[i])) * u[i];
}

#endif

void qk_sigmoid(const float *x, float *y, size_t n) {
#if defined(__x86_64__) || defined(_M_X64)
    if (qk_cpu_has_avx2_fma_f16c()) {
        sigmoid_avx2(x, y, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) y[i] = sigmoid_scalar(x[i]);
}

void qk_silu_mul(const float *x, const float *u, float *y, size_t n) {
#if defined(__x86_64__) || defined(_M_X64)
    if (qk_cpu_has_avx2_fma_f16c()) {
        silu_mul_avx2(x, u, y, n);
        return;
    }
#endif
    float s[256];
    for (size_t i = 0; i < n; i += 256) {
        const size_t c = n - i < 256 ? n - i : 256;
        qk_sigmoid(x + i, s, c);
        // (x · σ(x)) · u: the exports' two products, in their order.
        for (size_t j = 0; j < c; j++) y[i + j] = (x[i + j] * s[j]) * u[i + j];
    }
}

// MARK: float16 rounding

#if defined(__x86_64__) || defined(_M_X64)
__attribute__((target("avx,f16c"))) static void round_half_f16c(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++)
        y[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}
#endif

int qk_round_to_half(const float *x, float *y, size_t n) {
#if defined(__x86_64__) || defined(_M_X64)
    if (qk_cpu_has_avx2_fma_f16c()) {
        round_half_f16c(x, y, n);
        return 1;
    }
#endif
    (void)x; (void)y; (void)n;
    return 0;
}
