#ifndef QWEN_Q4_SHARED_H
#define QWEN_Q4_SHARED_H

// Pieces the two int4 layouts' kernels share (q4.c / q4_gemm.c for the MatMulNBits layout, q4x8.c
// for the repacked one) on x86-64: the GEMV's activation pre-scaling and the GEMM's
// register-blocked kernel (run by `q4_gemm_run`, q4_strips.h; A is packed by `qk_q4_pack_a`,
// q4_gemm.c). Private to CKernels; included inside the files' x86 sections (q4_neon.h is the
// arm64 counterpart).

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include "q4_strips.h"

#define Q4_AVX2 __attribute__((target("avx2,fma,f16c")))

// xs[k] = a[k] * 16^-(k mod 4) (exact: powers of two); xsum[b] = sum of block b of a. The GEMVs
// mask nibble i of a 32-bit word in place, leaving q * 16^(i mod 4), and multiply it by xs.
Q4_AVX2 static inline void q4_prescale_activations(const float *a, size_t blocks, float *xs, float *xsum) {
    const __m256 scale = _mm256_setr_ps(1.0f, 0.0625f, 0.00390625f, 0.000244140625f,
                                        1.0f, 0.0625f, 0.00390625f, 0.000244140625f);
    for (size_t b = 0; b < blocks; b++) {
        __m256 s = _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) {
            __m256 v = _mm256_loadu_ps(a + b * 32 + 8 * j);
            s = _mm256_add_ps(s, v);
            _mm256_storeu_ps(xs + b * 32 + 8 * j, _mm256_mul_ps(v, scale));
        }
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        xsum[b] = _mm_cvtss_f32(h);
    }
}

// The 16-byte block at p of 8 rows (row i at p + i * row_bytes) as four vectors, w[j] holding
// 32-bit word j (weights 8j..8j+7) of rows 0..7 in lanes 0..7: four loads and eight unpacks.
// The MatMulNBits-layout GEMV does this per block; the q4x8 layout is this done once, at load.
Q4_AVX2 static inline void q4_transpose_words8(const uint8_t *p, size_t row_bytes, __m256i w[4]) {
#define Q4_ROWS(i) _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + (i) * row_bytes))), \
                                           _mm_loadu_si128((const __m128i *)(p + ((i) + 4) * row_bytes)), 1)
    const __m256i a0 = Q4_ROWS(0), a1 = Q4_ROWS(1), a2 = Q4_ROWS(2), a3 = Q4_ROWS(3);
#undef Q4_ROWS
    const __m256i t0 = _mm256_unpacklo_epi32(a0, a1), t1 = _mm256_unpackhi_epi32(a0, a1);
    const __m256i t2 = _mm256_unpacklo_epi32(a2, a3), t3 = _mm256_unpackhi_epi32(a2, a3);
    w[0] = _mm256_unpacklo_epi64(t0, t2);
    w[1] = _mm256_unpackhi_epi64(t0, t2);
    w[2] = _mm256_unpacklo_epi64(t1, t3);
    w[3] = _mm256_unpackhi_epi64(t1, t3);
}

// c[0..R) x [0..nr) (+)= strip (k-major, R per k) · panel[kc][16]; `accumulate` adds to c. R is a
// constant at every call, so the accumulators are registers (2R of them) and the loops unroll.
__attribute__((always_inline)) Q4_AVX2 static inline void
q4_kernel_rows(const int R, const float *ap, const float *panel, size_t kc, float *c, size_t ldc, size_t nr,
               int accumulate) {
    __m256 acc[Q4_MR][2];
    for (int i = 0; i < R; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    // Unrolled by 4: the rolled loop ran at 63 GFLOP/s on one thread where this runs at 73
    // (C harness, 128 x 896 x 9728, medians of 8 alternations; 2, 4 and 8 measured alike).
#pragma clang loop unroll_count(4)
    for (size_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(panel + k * Q4_NR), b1 = _mm256_load_ps(panel + k * Q4_NR + 8);
        const float *x = ap + k * R;
        for (int i = 0; i < R; i++) {
            const __m256 v = _mm256_broadcast_ss(x + i);
            acc[i][0] = _mm256_fmadd_ps(v, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(v, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < R; i++) {
        float *ci = c + i * ldc;
        if (nr == Q4_NR) {
            if (accumulate) {
                acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
                acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
            }
            _mm256_storeu_ps(ci, acc[i][0]);
            _mm256_storeu_ps(ci + 8, acc[i][1]);
        } else {
            float t[Q4_NR];
            _mm256_storeu_ps(t, acc[i][0]);
            _mm256_storeu_ps(t + 8, acc[i][1]);
            for (size_t j = 0; j < nr; j++) ci[j] = accumulate ? ci[j] + t[j] : t[j];
        }
    }
}

// The strip kernel `q4_gemm_run` calls.
Q4_AVX2 static inline void q4_kernel(size_t h, const float *ap, const float *panel, size_t kc, float *c, size_t ldc,
                                     size_t nr, int accumulate) {
    switch (h) {
    case 6: q4_kernel_rows(6, ap, panel, kc, c, ldc, nr, accumulate); break;
    case 5: q4_kernel_rows(5, ap, panel, kc, c, ldc, nr, accumulate); break;
    case 4: q4_kernel_rows(4, ap, panel, kc, c, ldc, nr, accumulate); break;
    case 3: q4_kernel_rows(3, ap, panel, kc, c, ldc, nr, accumulate); break;
    case 2: q4_kernel_rows(2, ap, panel, kc, c, ldc, nr, accumulate); break;
    default: q4_kernel_rows(1, ap, panel, kc, c, ldc, nr, accumulate); break;
    }
}

#endif
