#include "qwen_kernels.h"
#include "cpu.h"

// Exact integer products for MatMulInteger (the transformers.js q8/int8/uint8 exports):
//
//   c[i][j] = Σ_k a[i][k] · b[j][k]      i < m, j < n, k < kp (kp a multiple of 16)
//
// a: int16 rows `lda` apart (activations minus their zero point, zero-padded to kp);
// b: bytes rows `ldb` apart, B's columns (int8 when b_signed, else uint8), zero-padded to kp.
// Products are at most 255 · 255 and pairs of them fit int32, so `vpmaddwd` sums exactly;
// the int32 accumulation wraps like ONNX Runtime's (it cannot for K below 16,000).

static void int_gemm_portable(size_t m, size_t n, size_t kp, const int16_t *a, size_t lda, const uint8_t *b,
                              size_t ldb, int b_signed, int32_t *c, size_t ldc) {
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            const int16_t *ar = a + i * lda;
            const uint8_t *br = b + j * ldb;
            uint32_t sum = 0;  // wraps like int32 without undefined behaviour
            if (b_signed) {
                for (size_t k = 0; k < kp; k++) sum += (uint32_t)((int32_t)ar[k] * (int32_t)(int8_t)br[k]);
            } else {
                for (size_t k = 0; k < kp; k++) sum += (uint32_t)((int32_t)ar[k] * (int32_t)br[k]);
            }
            c[i * ldc + j] = (int32_t)sum;
        }
    }
}

// Two or more rows: panels of up to eight rows (a batched decode step is one panel), and in
// each panel B's columns in pairs against up to four rows at a time (`TILE(rows, cols, i, j)`,
// sizes constant in each call): a pair of columns comes from memory once for all the panel's
// rows, its other uses hit L1. (Row groups outside and columns inside, as before, read all of B
// once per four rows: for 8 rows of the LM head twice from memory.)
#define INT_GEMM_PANELS(TILE) \
    for (size_t i0 = 0; i0 < m; i0 += 8) { \
        const size_t i1 = m - i0 < 8 ? m : i0 + 8; \
        size_t j = 0; \
        for (; j + 2 <= n; j += 2) { \
            size_t i = i0; \
            for (; i + 4 <= i1; i += 4) TILE(4, 2, i, j); \
            switch (i1 - i) { case 3: TILE(3, 2, i, j); break; case 2: TILE(2, 2, i, j); break; case 1: TILE(1, 2, i, j); break; } \
        } \
        if (j < n) { \
            size_t i = i0; \
            for (; i + 4 <= i1; i += 4) TILE(4, 1, i, j); \
            switch (i1 - i) { case 3: TILE(3, 1, i, j); break; case 2: TILE(2, 1, i, j); break; case 1: TILE(1, 1, i, j); break; } \
        } \
    }

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2")))

__attribute__((always_inline)) AVX2 static inline __m256i widen16(const uint8_t *p, int b_signed) {
    const __m128i v = _mm_loadu_si128((const __m128i *)p);
    return b_signed ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v);
}

AVX2 static inline int32_t hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

// c for `rows` rows of A from `a` and `cols` columns of B from `b` (at most 4 × 2), one
// accumulator each: each B load (widened once) serves every row, each A load every column.
// Inlined with constant sizes, so the accumulators stay in registers.
__attribute__((always_inline)) AVX2 static inline void int_gemm_tile(size_t rows, size_t cols, size_t kp, const int16_t *a,
                                                                     size_t lda, const uint8_t *b, size_t ldb, int b_signed,
                                                                     int32_t *c, size_t ldc) {
    __m256i acc[4][2];
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) acc[i][j] = _mm256_setzero_si256();
    for (size_t k = 0; k < kp; k += 16) {
        // The columns are one region (ldb = kp as packed), asked for as one stream 2 KB ahead
        // (C harness, one thread, 8 rows of 896 × 4,864 int8 from memory: ~710 → ~490 µs).
        _mm_prefetch((const char *)b + 2048 + cols * k, _MM_HINT_T0);
        __m256i w[2];
        for (size_t j = 0; j < cols; j++) w[j] = widen16(b + j * ldb + k, b_signed);
        for (size_t i = 0; i < rows; i++) {
            const __m256i x = _mm256_loadu_si256((const __m256i *)(a + i * lda + k));
            for (size_t j = 0; j < cols; j++) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(x, w[j]));
        }
    }
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) c[i * ldc + j] = hsum(acc[i][j]);
}

// A single row (decode) against four columns per pass, the rest one by one; more rows in
// `INT_GEMM_PANELS`. Inlined into one function per signedness of B, so that the widening is
// chosen once, not per load.
__attribute__((always_inline)) AVX2 static inline void int_gemm_avx2(size_t m, size_t n, size_t kp, const int16_t *a,
                                                                     size_t lda, const uint8_t *b, size_t ldb,
                                                                     const int b_signed, int32_t *c, size_t ldc) {
    if (m == 1) {
        size_t j = 0;
        for (; j + 4 <= n; j += 4) {
            const uint8_t *b0 = b + j * ldb;
            __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
            for (size_t k = 0; k < kp; k += 16) {
                // The four columns are one region (ldb = kp as packed), read at four points a column
                // apart; it is asked for as one sequential stream 3 KB ahead of the group's start, a line
                // per step (the 64 bytes a step reads). Against the next groups' columns asked for at
                // each step's k (and the hardware prefetchers alone before that: 7.7 GB/s a thread on
                // the LM head), a single-row pass over the 0.5B's 169 products (494 MB, every shape
                // from 896 × 128 to the LM head, 2 threads, Zen 3, best of 12): 22.6–28.4 → 19.2–20.8 ms.
                _mm_prefetch((const char *)b0 + 3072 + 4 * k, _MM_HINT_T0);
                const __m256i x = _mm256_loadu_si256((const __m256i *)(a + k));
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(x, widen16(b0 + k, b_signed)));
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(x, widen16(b0 + ldb + k, b_signed)));
                s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(x, widen16(b0 + 2 * ldb + k, b_signed)));
                s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(x, widen16(b0 + 3 * ldb + k, b_signed)));
            }
            c[j] = hsum(s0); c[j + 1] = hsum(s1); c[j + 2] = hsum(s2); c[j + 3] = hsum(s3);
        }
        for (; j < n; j++) int_gemm_tile(1, 1, kp, a, lda, b + j * ldb, ldb, b_signed, c + j, ldc);
        return;
    }
#define AVX2_TILE(rows, cols, i, j) int_gemm_tile(rows, cols, kp, a + (i) * lda, lda, b + (j) * ldb, ldb, b_signed, c + (i) * ldc + (j), ldc)
    INT_GEMM_PANELS(AVX2_TILE)
#undef AVX2_TILE
}
AVX2 static void int_gemm_avx2_s8(size_t m, size_t n, size_t kp, const int16_t *a, size_t lda, const uint8_t *b,
                                  size_t ldb, int32_t *c, size_t ldc) {
    int_gemm_avx2(m, n, kp, a, lda, b, ldb, 1, c, ldc);
}

AVX2 static void int_gemm_avx2_u8(size_t m, size_t n, size_t kp, const int16_t *a, size_t lda, const uint8_t *b,
                                  size_t ldb, int32_t *c, size_t ldc) {
    int_gemm_avx2(m, n, kp, a, lda, b, ldb, 0, c, ldc);
}
#elif defined(__aarch64__)
#include <arm_neon.h>

// Sixteen bytes of B widened to int16, as int8 or uint8.
__attribute__((always_inline)) static inline int16x8x2_t widen16(const uint8_t *p, int b_signed) {
    const uint8x16_t v = vld1q_u8(p);
    if (b_signed)
        return (int16x8x2_t){{vmovl_s8(vget_low_s8(vreinterpretq_s8_u8(v))), vmovl_high_s8(vreinterpretq_s8_u8(v))}};
    return (int16x8x2_t){{vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(v))), vreinterpretq_s16_u16(vmovl_high_u8(v))}};
}

// acc + a[0..16) · w per lane: `vmlal` multiplies int16 exactly into int32 and adds, wrapping.
__attribute__((always_inline)) static inline int32x4_t mla16(int32x4_t acc, const int16_t *a, int16x8x2_t w) {
    const int16x8_t x0 = vld1q_s16(a), x1 = vld1q_s16(a + 8);
    acc = vmlal_s16(acc, vget_low_s16(x0), vget_low_s16(w.val[0]));
    acc = vmlal_high_s16(acc, x0, w.val[0]);
    acc = vmlal_s16(acc, vget_low_s16(x1), vget_low_s16(w.val[1]));
    return vmlal_high_s16(acc, x1, w.val[1]);
}

// c for `rows` rows of A from `a` and `cols` columns of B from `b` (at most 4 × 2 or 1 × 4), one
// accumulator each: each B load serves every row, each A load every column. Inlined with
// constant sizes, so the accumulators stay in registers.
__attribute__((always_inline)) static inline void int_gemm_tile(size_t rows, size_t cols, size_t kp, const int16_t *a,
                                                                size_t lda, const uint8_t *b, size_t ldb, int b_signed,
                                                                int32_t *c, size_t ldc) {
    int32x4_t acc[4][4];
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) acc[i][j] = vdupq_n_s32(0);
    for (size_t k = 0; k < kp; k += 16) {
        int16x8x2_t w[4];
        for (size_t j = 0; j < cols; j++) w[j] = widen16(b + j * ldb + k, b_signed);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++) acc[i][j] = mla16(acc[i][j], a + i * lda + k, w[j]);
    }
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) c[i * ldc + j] = vaddvq_s32(acc[i][j]);
}

// int_gemm_avx2's blocking: a single row against four columns, more rows in `INT_GEMM_PANELS`.
// Integer sums, so the results are the portable loop's exactly.
__attribute__((always_inline)) static inline void int_gemm_neon(size_t m, size_t n, size_t kp, const int16_t *a,
                                                                size_t lda, const uint8_t *b, size_t ldb,
                                                                const int b_signed, int32_t *c, size_t ldc) {
    if (m == 1) {
        size_t j = 0;
        for (; j + 4 <= n; j += 4) int_gemm_tile(1, 4, kp, a, lda, b + j * ldb, ldb, b_signed, c + j, ldc);
        for (; j < n; j++) int_gemm_tile(1, 1, kp, a, lda, b + j * ldb, ldb, b_signed, c + j, ldc);
        return;
    }
#define NEON_TILE(rows, cols, i, j) int_gemm_tile(rows, cols, kp, a + (i) * lda, lda, b + (j) * ldb, ldb, b_signed, c + (i) * ldc + (j), ldc)
    INT_GEMM_PANELS(NEON_TILE)
#undef NEON_TILE
}

static void int_gemm_neon_s8(size_t m, size_t n, size_t kp, const int16_t *a, size_t lda, const uint8_t *b,
                             size_t ldb, int32_t *c, size_t ldc) {
    int_gemm_neon(m, n, kp, a, lda, b, ldb, 1, c, ldc);
}

static void int_gemm_neon_u8(size_t m, size_t n, size_t kp, const int16_t *a, size_t lda, const uint8_t *b,
                             size_t ldb, int32_t *c, size_t ldc) {
    int_gemm_neon(m, n, kp, a, lda, b, ldb, 0, c, ldc);
}
#endif

void qk_int_gemm(size_t m, size_t n, size_t kp, const int16_t *a, size_t lda, const uint8_t *b, size_t ldb,
                 int b_signed, int32_t *c, size_t ldc, int portable) {
#if defined(__x86_64__) || defined(_M_X64)
    if (!portable && qk_cpu_has_avx2_fma_f16c() && kp % 16 == 0) {
        if (b_signed) int_gemm_avx2_s8(m, n, kp, a, lda, b, ldb, c, ldc);
        else int_gemm_avx2_u8(m, n, kp, a, lda, b, ldb, c, ldc);
        return;
    }
#elif defined(__aarch64__)
    if (!portable && qk_isa() >= QK_ISA_NEON && kp % 16 == 0) {
        if (b_signed) int_gemm_neon_s8(m, n, kp, a, lda, b, ldb, c, ldc);
        else int_gemm_neon_u8(m, n, kp, a, lda, b, ldb, c, ldc);
        return;
    }
#endif
    int_gemm_portable(m, n, kp, a, lda, b, ldb, b_signed, c, ldc);
}
