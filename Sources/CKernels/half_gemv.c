#include "qwen_kernels.h"
#include "cpu.h"
#include <math.h>

// y[j] = Σ_k a[k] · B[k, j] for columns j in [col_begin, col_end), B float16 [k, ldb] row-major
// (a MatMul's constant float16 weight as the fp16 exports store it, never widened in memory):
// each row of B is converted 8 values at a time and multiplied in float32, so the product reads
// two bytes per weight. Sums run over k in order for each column (float32, one FMA each).

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static void f16_gemv_avx2(const float *a, const uint16_t *b, size_t ldb, size_t k, size_t j0, size_t j1, float *y) {
    size_t j = j0;
    // 64 columns per pass: 8 accumulators, one broadcast of a[k] each row.
    for (; j + 64 <= j1; j += 64) {
        __m256 acc[8];
        for (int t = 0; t < 8; t++) acc[t] = _mm256_setzero_ps();
        const uint16_t *col = b + j;
        for (size_t r = 0; r < k; r++) {
            const __m256 x = _mm256_set1_ps(a[r]);
            const uint16_t *row = col + r * ldb;
            for (int t = 0; t < 8; t++) {
                const __m256 w = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 8 * t)));
                acc[t] = _mm256_fmadd_ps(x, w, acc[t]);
            }
        }
        for (int t = 0; t < 8; t++) _mm256_storeu_ps(y + (j - j0) + 8 * t, acc[t]);
    }
    for (; j + 8 <= j1; j += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t r = 0; r < k; r++) {
            acc = _mm256_fmadd_ps(_mm256_set1_ps(a[r]), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + r * ldb + j))), acc);
        }
        _mm256_storeu_ps(y + (j - j0), acc);
    }
    for (; j < j1; j++) {
        float s = 0;
        for (size_t r = 0; r < k; r++) s = fmaf(a[r], _cvtsh_ss(b[r * ldb + j]), s);
        y[j - j0] = s;
    }
}
#endif

int qk_f16_gemv(const float *a, const uint16_t *b, size_t ldb, size_t k, size_t col_begin, size_t col_end, float *y) {
#if defined(__x86_64__) || defined(_M_X64)
    if (qk_cpu_has_avx2_fma_f16c()) {
        f16_gemv_avx2(a, b, ldb, k, col_begin, col_end, y);
        return 1;
    }
#endif
    (void)a; (void)b; (void)ldb; (void)k; (void)col_begin; (void)col_end; (void)y;
    return 0;
}
