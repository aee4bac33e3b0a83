#include "qwen_kernels.h"
#include "cpu.h"
#include <math.h>

// MatMul by a constant float16 weight (the fp16 exports'), read as float16: each value converted
// with F16C and multiplied in float32, two bytes per weight from memory.

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma,f16c")))

// A row's result from its 8-lane FMA chain over the first k8 columns: the horizontal sum, then
// the tail's scalar FMAs (columns k8..k of weight row wr).
AVX2 static inline __attribute__((always_inline)) float f16_row_result(__m256 s, const float *a, const uint16_t *wr,
                                                                        size_t k8, size_t k) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float t = _mm_cvtss_f32(h);
    for (size_t c = k8; c < k; c++) t = fmaf(a[c], _cvtsh_ss(wr[c]), t);
    return t;
}

// y[r - row_begin] = Σ_c a[c] · W[r, c] for W float16 [rows, k] (a weight stored transposed, row
// by row): each row one sequential stream, four rows per pass sharing the loads of a.
AVX2 static void f16_gemv_rows_avx2(const float *a, const uint16_t *w, size_t k, size_t r0, size_t r1, float *y) {
    const size_t k8 = k / 8 * 8;
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint16_t *w0 = w + r * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        // The same columns of the rows two passes on, a line per row every 32 columns: the four
        // interleaved streams of a pass are short (1.8 KB a row at K = 896), and the hardware
        // prefetcher alone left the loads waiting (Zen 4, fp16 decode: ~1.07x with this, one
        // pass ahead ~1.09x and two ~1.03x more, medians of 5-6 alternations).
        const size_t ahead = 8 * k;
        for (size_t c = 0; c < k8; c += 8) {
            if (c % 32 == 0 && r + 12 <= r1) {
                _mm_prefetch((const char *)(w0 + ahead + c), _MM_HINT_T0);
                _mm_prefetch((const char *)(w1 + ahead + c), _MM_HINT_T0);
                _mm_prefetch((const char *)(w2 + ahead + c), _MM_HINT_T0);
                _mm_prefetch((const char *)(w3 + ahead + c), _MM_HINT_T0);
            }
            const __m256 x = _mm256_loadu_ps(a + c);
            s0 = _mm256_fmadd_ps(x, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w0 + c))), s0);
            s1 = _mm256_fmadd_ps(x, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w1 + c))), s1);
            s2 = _mm256_fmadd_ps(x, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w2 + c))), s2);
            s3 = _mm256_fmadd_ps(x, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w3 + c))), s3);
        }
        y[r - r0] = f16_row_result(s0, a, w0, k8, k);
        y[r + 1 - r0] = f16_row_result(s1, a, w1, k8, k);
        y[r + 2 - r0] = f16_row_result(s2, a, w2, k8, k);
        y[r + 3 - r0] = f16_row_result(s3, a, w3, k8, k);
    }
    for (; r < r1; r++) {
        const uint16_t *w0 = w + r * k;
        __m256 s0 = _mm256_setzero_ps();
        for (size_t c = 0; c < k8; c += 8) {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w0 + c))), s0);
        }
        y[r - r0] = f16_row_result(s0, a, w0, k8, k);
    }
}

// Several activation rows (a batched decode step's) against weight rows [r0, r1): `nw` weight
// rows (1 or 2) × `na` activation rows (1 to 4) a pass, each weight vector converted once for
// the pass's activation rows (the single-row kernel converts it once per activation row, which
// bound an 8-row step). Per weight row and activation row the single-row kernel's operations in
// its order: one 8-lane FMA chain over the columns from zero, `f16_row_result`. So each row's
// results are its single-row GEMV's, bit for bit, however many rows run together.
AVX2 static inline __attribute__((always_inline)) void f16_multi_pass(const float *a, size_t lda, const int na,
                                                                      const uint16_t *w0, const int nw, size_t k,
                                                                      float *y, size_t ldy) {
    const size_t k8 = k / 8 * 8;
    __m256 s[2][4];
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int i = 0; i < 4; i++) s[j][i] = _mm256_setzero_ps();
    for (size_t c = 0; c < k8; c += 8) {
        // The pass's weight rows are one region (2k bytes a row); asked for 3 KB ahead as one
        // stream, a line per 64 bytes read (as the q8 GEMV, int_gemm.c).
        if (c % (32 / nw) == 0) _mm_prefetch((const char *)(w0 + 1536 + nw * c), _MM_HINT_T0);
        __m256 wv[2];
#pragma unroll
        for (int j = 0; j < 2; j++)
            if (j < nw) wv[j] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w0 + j * k + c)));
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if (i >= na) break;
            const __m256 x = _mm256_loadu_ps(a + i * lda + c);
#pragma unroll
            for (int j = 0; j < 2; j++)
                if (j < nw) s[j][i] = _mm256_fmadd_ps(x, wv[j], s[j][i]);
        }
    }
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int i = 0; i < 4; i++)
            if (j < nw && i < na) y[i * ldy + j] = f16_row_result(s[j][i], a + i * lda, w0 + j * k, k8, k);
}

// y[i·ldy + r − r0] for activation rows i < m: pairs of weight rows, each against the activation
// rows four at a time (the pair stays in L1 meanwhile).
AVX2 static void f16_gemv_rows_multi_avx2(const float *a, size_t lda, size_t m, const uint16_t *w, size_t k, size_t r0,
                                          size_t r1, float *y, size_t ldy) {
    for (size_t r = r0; r < r1; r += 2) {
        const int nw = r + 2 <= r1 ? 2 : 1;
        for (size_t i = 0; i < m; i += 4) {
            const float *ai = a + i * lda;
            float *yi = y + i * ldy + (r - r0);
            const uint16_t *wr = w + r * k;
            switch (m - i >= 4 ? 4 : m - i) {
            case 4: nw == 2 ? f16_multi_pass(ai, lda, 4, wr, 2, k, yi, ldy) : f16_multi_pass(ai, lda, 4, wr, 1, k, yi, ldy); break;
            case 3: nw == 2 ? f16_multi_pass(ai, lda, 3, wr, 2, k, yi, ldy) : f16_multi_pass(ai, lda, 3, wr, 1, k, yi, ldy); break;
            case 2: nw == 2 ? f16_multi_pass(ai, lda, 2, wr, 2, k, yi, ldy) : f16_multi_pass(ai, lda, 2, wr, 1, k, yi, ldy); break;
            default: nw == 2 ? f16_multi_pass(ai, lda, 1, wr, 2, k, yi, ldy) : f16_multi_pass(ai, lda, 1, wr, 1, k, yi, ldy); break;
            }
        }
    }
}
#elif defined(__aarch64__)
#include "simd_neon.h"

// f16_gemv_rows_avx2's NEON twin (simd_neon.h): per row the same eight lanes of FMAs, the same
// horizontal sum (four rows' at once), the same scalar FMAs on the tail, so the same floats.
static void f16_gemv_rows_neon(const float *a, const uint16_t *w, size_t k, size_t r0, size_t r1, float *y) {
    const size_t k8 = k / 8 * 8;
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint16_t *rows[4] = {w + r * k, w + (r + 1) * k, w + (r + 2) * k, w + (r + 3) * k};
        f32x8 s0 = f32x8_dup(0), s1 = s0, s2 = s0, s3 = s0;
        for (size_t c = 0; c < k8; c += 8) {
            const f32x8 x = f32x8_load(a + c);
            s0 = f32x8_fmadd(x, f32x8_load_half(rows[0] + c), s0);
            s1 = f32x8_fmadd(x, f32x8_load_half(rows[1] + c), s1);
            s2 = f32x8_fmadd(x, f32x8_load_half(rows[2] + c), s2);
            s3 = f32x8_fmadd(x, f32x8_load_half(rows[3] + c), s3);
        }
        float t[4];
        vst1q_f32(t, f32x8_hsum4(s0, s1, s2, s3));
        for (int i = 0; i < 4; i++) {
            for (size_t c = k8; c < k; c++) t[i] = fmaf(a[c], f32_from_half(rows[i][c]), t[i]);
            y[r + i - r0] = t[i];
        }
    }
    for (; r < r1; r++) {
        const uint16_t *w0 = w + r * k;
        f32x8 s0 = f32x8_dup(0);
        for (size_t c = 0; c < k8; c += 8) s0 = f32x8_fmadd(f32x8_load(a + c), f32x8_load_half(w0 + c), s0);
        float t = f32x8_hsum(s0);
        for (size_t c = k8; c < k; c++) t = fmaf(a[c], f32_from_half(w0[c]), t);
        y[r - r0] = t;
    }
}
#endif

// --- GEMM (prefill) -------------------------------------------------------------------------
//
// C = A · Wᵀ for M > 2 through the int4 GEMMs' driver and register-blocked kernel (`q4_gemm_run`,
// q4_strips.h; A packed in strips by `qk_q4_pack_a`): W's rows converted from float16 a panel of
// 16 columns (32 with AVX-512: `q4_gemm_run_avx512`) × 32 k at a time into an L1 buffer, k-major,
// instead of widened tiles of 1,024 rows through memory for BLAS. Each element of C is the kernel's FMA chain over k (from zero per
// 256-deep chunk, added to C after the first), whatever M and the rows around it, on every ISA.

typedef struct { const uint16_t *w; size_t k; } f16_weights;

#if defined(__x86_64__) || defined(_M_X64)
#include "q4_shared.h"
#include "q4x8_avx512.h"

// v[i] ← lane i of each of v[0..8) (an 8 × 8 transpose).
AVX2 static inline void transpose8(__m256 v[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    v[0] = _mm256_permute2f128_ps(u0, u4, 0x20); v[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    v[2] = _mm256_permute2f128_ps(u2, u6, 0x20); v[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    v[4] = _mm256_permute2f128_ps(u0, u4, 0x31); v[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    v[6] = _mm256_permute2f128_ps(u2, u6, 0x31); v[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// panel[kk * width + j] = W[n + j, 32 · block + kk] for j < width (16 or 32), zero past nr
// columns and past k.
AVX2 static inline __attribute__((always_inline)) void f16_fill_width(const void *weights, size_t n, size_t nr,
                                                                      size_t block, float *panel, const size_t width) {
    const f16_weights *fw = weights;
    const size_t k = fw->k, k0 = block * 32;
    if (nr == width && k0 + 32 <= k) {
        for (size_t g = 0; g < width; g += 8) {
            const uint16_t *rows = fw->w + (n + g) * k + k0;
            for (size_t t = 0; t < 32; t += 8) {
                __m256 v[8];
                for (int j = 0; j < 8; j++) v[j] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(rows + j * k + t)));
                transpose8(v);
                for (int j = 0; j < 8; j++) _mm256_store_ps(panel + (t + j) * width + g, v[j]);
            }
        }
        return;
    }
    for (size_t kk = 0; kk < 32; kk++)
        for (size_t j = 0; j < width; j++)
            panel[kk * width + j] = j < nr && k0 + kk < k ? _cvtsh_ss(fw->w[(n + j) * k + k0 + kk]) : 0.0f;
}

AVX2 static void f16_fill(const void *weights, size_t n, size_t nr, size_t block, float *panel) {
    f16_fill_width(weights, n, nr, block, panel, 16);
}

// The panels of the AVX-512 kernel (`q4_gemm_run_avx512`): 32 columns.
AVX2 static void f16_fill32(const void *weights, size_t n, size_t nr, size_t block, float *panel) {
    f16_fill_width(weights, n, nr, block, panel, 32);
}
#elif defined(__aarch64__)
#include "q4_neon.h"

static void f16_fill(const void *weights, size_t n, size_t nr, size_t block, float *panel) {
    const f16_weights *fw = weights;
    const size_t k = fw->k, k0 = block * 32;
    const __fp16 *w = (const __fp16 *)fw->w;
    for (size_t kk = 0; kk < 32; kk++)
        for (size_t j = 0; j < 16; j++)
            panel[kk * 16 + j] = j < nr && k0 + kk < k ? (float)w[(n + j) * k + k0 + kk] : 0.0f;
}
#endif

int qk_f16_gemm(const uint16_t *w, size_t k, const float *ap, size_t m, size_t strip_begin, size_t strip_end,
                size_t col_begin, size_t col_end, float *c, size_t ldc) {
    const f16_weights fw = { w, k };
    const size_t blocks = (k + 31) / 32;
#if defined(__x86_64__) || defined(_M_X64)
    if (qk_isa() >= QK_ISA_AVX512) {
        q4_gemm_run_avx512(f16_fill32, &fw, blocks, ap, m, strip_begin, strip_end, col_begin, col_end, c, ldc);
        return 1;
    }
    if (qk_cpu_has_avx2_fma_f16c()) {
        q4_gemm_run(f16_fill, q4_kernel, &fw, blocks, ap, m, strip_begin, strip_end, col_begin, col_end, c, ldc);
        return 1;
    }
#elif defined(__aarch64__)
    if (qk_isa() >= QK_ISA_NEON) {
        q4_gemm_run(f16_fill, q4_kernel_neon, &fw, blocks, ap, m, strip_begin, strip_end, col_begin, col_end, c, ldc);
        return 1;
    }
#endif
    (void)fw; (void)blocks; (void)ap; (void)m; (void)strip_begin; (void)strip_end; (void)col_begin; (void)col_end;
    (void)c; (void)ldc;
    return 0;
}

int qk_f16_gemv_rows_multi(const float *a, size_t lda, size_t m, const uint16_t *w, size_t k, size_t row_begin,
                           size_t row_end, float *y, size_t ldy) {
#if defined(__x86_64__) || defined(_M_X64)
    if (qk_cpu_has_avx2_fma_f16c()) {
        f16_gemv_rows_multi_avx2(a, lda, m, w, k, row_begin, row_end, y, ldy);
        return 1;
    }
#elif defined(__aarch64__)
    if (qk_isa() >= QK_ISA_NEON) {
        for (size_t i = 0; i < m; i++) f16_gemv_rows_neon(a + i * lda, w, k, row_begin, row_end, y + i * ldy);
        return 1;
    }
#endif
    (void)a; (void)lda; (void)m; (void)w; (void)k; (void)row_begin; (void)row_end; (void)y; (void)ldy;
    return 0;
}

int qk_f16_gemv_rows(const float *a, const uint16_t *w, size_t k, size_t row_begin, size_t row_end, float *y) {
#if defined(__x86_64__) || defined(_M_X64)
    if (qk_cpu_has_avx2_fma_f16c()) {
        f16_gemv_rows_avx2(a, w, k, row_begin, row_end, y);
        return 1;
    }
#elif defined(__aarch64__)
    if (qk_isa() >= QK_ISA_NEON) {
        f16_gemv_rows_neon(a, w, k, row_begin, row_end, y);
        return 1;
    }
#endif
    (void)a; (void)w; (void)k; (void)row_begin; (void)row_end; (void)y;
    return 0;
}
