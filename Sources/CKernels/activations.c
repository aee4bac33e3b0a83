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

#elif defined(__aarch64__)
#include "simd_exp.h"

// sigmoid8 on four lanes, operation for operation (0 - v, not -v; the same division).
static inline float32x4_t sigmoid4(float32x4_t v) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    const float32x4_t e = exp_neon(vsubq_f32(vdupq_n_f32(0.0f), v));
    return vbslq_f32(vceqq_f32(v, v), vdivq_f32(one, vaddq_f32(one, e)), v);
}

// The NEON twins of sigmoid_avx2 and silu_mul_avx2 take eight values per step as those do, so
// that the same tail takes expf, and return the same floats.
static void sigmoid_neon(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_f32(y + i, sigmoid4(vld1q_f32(x + i)));
        vst1q_f32(y + i + 4, sigmoid4(vld1q_f32(x + i + 4)));
    }
    for (; i < n; i++) y[i] = sigmoid_scalar(x[i]);
}

static inline float32x4_t silu_mul4(float32x4_t v, float32x4_t u) { return vmulq_f32(vmulq_f32(v, sigmoid4(v)), u); }

static void silu_mul_neon(const float *x, const float *u, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_f32(y + i, silu_mul4(vld1q_f32(x + i), vld1q_f32(u + i)));
        vst1q_f32(y + i + 4, silu_mul4(vld1q_f32(x + i + 4), vld1q_f32(u + i + 4)));
    }
    for (; i < n; i++) y[i] = (x[i] * sigmoid_scalar(x[i])) * u[i];
}
#endif

// The SIMD kernels of this build, and whether they run here (either set gives the same floats).
#if defined(__x86_64__) || defined(_M_X64)
#define SIMD_KERNELS 1
#define simd_runs() qk_cpu_has_avx2_fma_f16c()
#define sigmoid_simd sigmoid_avx2
#define silu_mul_simd silu_mul_avx2
#define round_half_simd round_half_f16c
#elif defined(__aarch64__)
#define SIMD_KERNELS 1
#define simd_runs() (qk_isa() >= QK_ISA_NEON)
#define sigmoid_simd sigmoid_neon
#define silu_mul_simd silu_mul_neon
#define round_half_simd round_half_neon
#endif

void qk_sigmoid(const float *x, float *y, size_t n) {
#ifdef SIMD_KERNELS
    if (simd_runs()) {
        sigmoid_simd(x, y, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) y[i] = sigmoid_scalar(x[i]);
}

void qk_silu_mul(const float *x, const float *u, float *y, size_t n) {
#ifdef SIMD_KERNELS
    if (simd_runs()) {
        silu_mul_simd(x, u, y, n);
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
#elif defined(__aarch64__)
// fcvtn / fcvtl: float16 conversions of every AArch64 CPU, rounding to nearest even as F16C
// does here (FPCR's default mode; its flush-to-zero is off), so the same floats.
static inline float32x4_t round_half4(float32x4_t v) { return vcvt_f32_f16(vcvt_f16_f32(v)); }

static void round_half_neon(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, round_half4(vld1q_f32(x + i)));
    for (; i < n; i++) y[i] = vgetq_lane_f32(round_half4(vdupq_n_f32(x[i])), 0);
}
#endif

int qk_round_to_half(const float *x, float *y, size_t n) {
#ifdef SIMD_KERNELS
    if (simd_runs()) {
        round_half_simd(x, y, n);
        return 1;
    }
#endif
    (void)x; (void)y; (void)n;
    return 0;
}
