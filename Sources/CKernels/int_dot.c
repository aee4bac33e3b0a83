#include "qwen_kernels.h"
#include "cpu.h"
#include <string.h>

// MatMulInteger with AVX-512 VNNI (the transformers.js q8 / int8 / uint8 exports on CPUs that have
// it): `vpdpbusd` multiplies unsigned bytes by signed bytes and adds four products into each
// int32 lane, exactly (it does not saturate, unlike `vpmaddubsw`), so the activations' uint8
// bytes and the weights' int8 bytes go in as they are, four k a lane: a quarter of the
// instructions of the int16 `vpmaddwd` kernel (int_gemm.c), which widens both. Signedness and
// zero points are folded into the epilogue: with A' = A (uint8) or A + 128 (int8) and B' = B
// (int8) or B − 128 (uint8),
//
//   Σ_k (A − za)(B − zb) = Σ A'B' − za'·ΣB' − zb'·ΣA' + k·za'·zb',   za' = za (+128), zb' = zb (−128)
//
// in wrapping int32 arithmetic: every term is an exact integer and the true sum fits int32 for
// any k below 33,000 (255 · 255 · k), so the result is the exact one, as the other kernels give.
//
// B is packed once (`qk_mmi_pack`): panels of 16 columns, each panel k-quad by k-quad, a quad
// the 4 k of its 16 columns (64 bytes: one 512-bit load, column-major within it), zero-padded
// to whole panels and quads. A tile of up to 6 rows by 4 panels keeps 24 accumulators: per quad
// 4 panel loads, one broadcast of each row's 4 bytes and 24 `vpdpbusd`.

// On arm64 the same layout feeds `udot` (FEAT_DotProd: uint8 × uint8, four products a lane,
// exact), with B stored unsigned instead: B' = B + 128 for int8, B for uint8. `qk_mmi_b_offset`
// gives the shift o (B' = B − o), which the caller takes off the zero points too (zb' = zb − o).

int32_t qk_mmi_b_offset(int b_signed) {
#if defined(__aarch64__)
    return b_signed ? -128 : 0;
#else
    return b_signed ? 0 : 128;
#endif
}

size_t qk_mmi_packed_bytes(size_t k, size_t n) { return (n + 15) / 16 * ((k + 3) / 4) * 64; }

void qk_mmi_pack(const uint8_t *b, size_t k, size_t n, int b_signed, int8_t *packed, int32_t *col_sums) {
    const size_t quads = (k + 3) / 4, panels = (n + 15) / 16;
    const int offset = qk_mmi_b_offset(b_signed);
    for (size_t j = 0; j < panels * 16; j++) col_sums[j] = 0;
    for (size_t p = 0; p < panels; p++) {
        int8_t *panel = packed + p * quads * 64;
        for (size_t q = 0; q < quads; q++) {
            for (size_t c = 0; c < 16; c++) {
                const size_t j = p * 16 + c;
                for (size_t t = 0; t < 4; t++) {
                    const size_t kk = q * 4 + t;
                    int v = 0;
                    if (kk < k && j < n) v = (b_signed ? (int8_t)b[kk * n + j] : (int)b[kk * n + j]) - offset;
                    panel[q * 64 + c * 4 + t] = (int8_t)(uint8_t)v;   // int8 on x86, the byte of a uint8 on arm64
                    col_sums[j] += v;
                }
            }
        }
    }
}

void qk_u8_row_sums(const uint8_t *a, size_t m, size_t k, size_t lda, int32_t *sums) {
    for (size_t i = 0; i < m; i++) {
        const uint8_t *row = a + i * lda;
        uint32_t s = 0;
        for (size_t t = 0; t < k; t++) s += row[t];
        sums[i] = (int32_t)s;
    }
}

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define VNNI __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

// The MR × NC tile at rows a (lda apart) and panels from bp (`stride` bytes apart): the integer
// sums over every quad, then the epilogue's zero-point terms, stored to c (columns past `cols`
// of the last panel left alone). MR and NC are constants where it is inlined.
VNNI static inline __attribute__((always_inline)) void mmi_tile(const int MR, const int NC, size_t quads, const uint8_t *a,
                                                              size_t lda, const int8_t *bp, size_t stride, int32_t k,
                                                              const int32_t *za, const int32_t *row_sums,
                                                              const int32_t *col_sums, const int32_t *zb, size_t cols,
                                                              int32_t *c, size_t ldc) {
    __m512i acc[6][4];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NC; j++) acc[r][j] = _mm512_setzero_si512();
    for (size_t q = 0; q < quads; q++) {
        __m512i w[4];
        for (int j = 0; j < NC; j++) w[j] = _mm512_loadu_si512((const void *)(bp + j * stride + q * 64));
        for (int r = 0; r < MR; r++) {
            int32_t x4;
            memcpy(&x4, a + r * lda + q * 4, 4);
            const __m512i x = _mm512_set1_epi32(x4);
            for (int j = 0; j < NC; j++) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], x, w[j]);
        }
    }
    for (int j = 0; j < NC; j++) {
        const __m512i cs = _mm512_loadu_si512((const void *)(col_sums + 16 * j));
        const __m512i z = _mm512_loadu_si512((const void *)(zb + 16 * j));
        const size_t left = cols - 16 * (size_t)j;
        const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        for (int r = 0; r < MR; r++) {
            // acc − za'·ΣB' + zb'·(k·za' − ΣA'), wrapping.
            const __m512i t = _mm512_sub_epi32(acc[r][j], _mm512_mullo_epi32(_mm512_set1_epi32(za[r]), cs));
            const __m512i v = _mm512_add_epi32(t, _mm512_mullo_epi32(z, _mm512_set1_epi32((int32_t)((uint32_t)k * (uint32_t)za[r] - (uint32_t)row_sums[r]))));
            _mm512_mask_storeu_epi32(c + r * ldc + 16 * j, mask, v);
        }
    }
}

#define MMI_ROWS(NC) \
    do { \
        size_t i = 0; \
        for (; i + 6 <= m; i += 6) \
            mmi_tile(6, NC, quads, a + i * lda, lda, bp, stride, kk, za + i, row_sums + i, cs, zbp, cols, c + i * ldc + col, ldc); \
        switch (m - i) { \
        case 5: mmi_tile(5, NC, quads, a + i * lda, lda, bp, stride, kk, za + i, row_sums + i, cs, zbp, cols, c + i * ldc + col, ldc); break; \
        case 4: mmi_tile(4, NC, quads, a + i * lda, lda, bp, stride, kk, za + i, row_sums + i, cs, zbp, cols, c + i * ldc + col, ldc); break; \
        case 3: mmi_tile(3, NC, quads, a + i * lda, lda, bp, stride, kk, za + i, row_sums + i, cs, zbp, cols, c + i * ldc + col, ldc); break; \
        case 2: mmi_tile(2, NC, quads, a + i * lda, lda, bp, stride, kk, za + i, row_sums + i, cs, zbp, cols, c + i * ldc + col, ldc); break; \
        case 1: mmi_tile(1, NC, quads, a + i * lda, lda, bp, stride, kk, za + i, row_sums + i, cs, zbp, cols, c + i * ldc + col, ldc); break; \
        default: break; \
        } \
    } while (0)

VNNI static void mmi_gemm_vnni(size_t m, size_t k, const uint8_t *a, size_t lda, const int32_t *za,
                               const int32_t *row_sums, const int8_t *packed, const int32_t *col_sums,
                               const int32_t *zb, size_t n, size_t p0, size_t p1, int32_t *c, size_t ldc) {
    const size_t quads = (k + 3) / 4, stride = quads * 64;
    const int32_t kk = (int32_t)k;
    size_t p = p0;
    for (; p + 4 <= p1; p += 4) {
        const size_t col = p * 16, cols = n - col < 64 ? n - col : 64;
        const int8_t *bp = packed + p * stride;
        const int32_t *cs = col_sums + col, *zbp = zb + col;
        MMI_ROWS(4);
    }
    for (; p < p1; p++) {
        const size_t col = p * 16, cols = n - col < 16 ? n - col : 16;
        const int8_t *bp = packed + p * stride;
        const int32_t *cs = col_sums + col, *zbp = zb + col;
        MMI_ROWS(1);
    }
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>
#define DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

// mmi_tile's arm64 twin: up to 4 rows × 16 columns (one panel), 16 accumulators of 4 lanes; per
// quad 4 loads of the panel (4 columns × 4 k each) and, per row, its 4 bytes as one lane of a
// vector for `udot` by element. Sums of uint8 products wrap in uint32 as the int32 of x86 wrap.
DOTPROD static inline __attribute__((always_inline)) void mmi_tile_udot(const int MR, size_t quads, const uint8_t *a,
                                                                      size_t lda, const uint8_t *bp, int32_t k,
                                                                      const int32_t *za, const int32_t *row_sums,
                                                                      const int32_t *col_sums, const int32_t *zb,
                                                                      size_t cols, int32_t *c, size_t ldc) {
    uint32x4_t acc[4][4];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < 4; j++) acc[r][j] = vdupq_n_u32(0);
    for (size_t q = 0; q < quads; q++) {
        const uint8x16_t w0 = vld1q_u8(bp + q * 64), w1 = vld1q_u8(bp + q * 64 + 16);
        const uint8x16_t w2 = vld1q_u8(bp + q * 64 + 32), w3 = vld1q_u8(bp + q * 64 + 48);
        for (int r = 0; r < MR; r++) {
            uint32_t x4;
            memcpy(&x4, a + r * lda + q * 4, 4);
            const uint8x16_t x = vreinterpretq_u8_u32(vdupq_n_u32(x4));
            acc[r][0] = vdotq_u32(acc[r][0], w0, x);
            acc[r][1] = vdotq_u32(acc[r][1], w1, x);
            acc[r][2] = vdotq_u32(acc[r][2], w2, x);
            acc[r][3] = vdotq_u32(acc[r][3], w3, x);
        }
    }
    for (int r = 0; r < MR; r++) {
        const uint32_t t = (uint32_t)k * (uint32_t)za[r] - (uint32_t)row_sums[r];
        for (int j = 0; j < 4; j++) {
            // acc − za'·ΣB' + zb'·(k·za' − ΣA'), wrapping.
            const uint32x4_t cs = vreinterpretq_u32_s32(vld1q_s32(col_sums + 4 * j));
            const uint32x4_t z = vreinterpretq_u32_s32(vld1q_s32(zb + 4 * j));
            const uint32x4_t v = vmlaq_n_u32(vmlsq_n_u32(acc[r][j], cs, (uint32_t)za[r]), z, t);
            uint32_t out[4];
            vst1q_u32(out, v);
            for (size_t i = 0; i < 4 && 4 * (size_t)j + i < cols; i++) c[r * ldc + 4 * j + i] = (int32_t)out[i];
        }
    }
}

DOTPROD static void mmi_gemm_udot(size_t m, size_t k, const uint8_t *a, size_t lda, const int32_t *za,
                                  const int32_t *row_sums, const int8_t *packed, const int32_t *col_sums,
                                  const int32_t *zb, size_t n, size_t p0, size_t p1, int32_t *c, size_t ldc) {
    const size_t quads = (k + 3) / 4, stride = quads * 64;
    for (size_t p = p0; p < p1; p++) {
        const size_t col = p * 16, cols = n - col < 16 ? n - col : 16;
        const uint8_t *bp = (const uint8_t *)packed + p * stride;
        size_t i = 0;
        for (; i + 4 <= m; i += 4)
            mmi_tile_udot(4, quads, a + i * lda, lda, bp, (int32_t)k, za + i, row_sums + i, col_sums + col, zb + col, cols,
                          c + i * ldc + col, ldc);
        switch (m - i) {
        case 3: mmi_tile_udot(3, quads, a + i * lda, lda, bp, (int32_t)k, za + i, row_sums + i, col_sums + col, zb + col, cols, c + i * ldc + col, ldc); break;
        case 2: mmi_tile_udot(2, quads, a + i * lda, lda, bp, (int32_t)k, za + i, row_sums + i, col_sums + col, zb + col, cols, c + i * ldc + col, ldc); break;
        case 1: mmi_tile_udot(1, quads, a + i * lda, lda, bp, (int32_t)k, za + i, row_sums + i, col_sums + col, zb + col, cols, c + i * ldc + col, ldc); break;
        default: break;
        }
    }
}
#endif

int qk_mmi_available(void) {
#if defined(__x86_64__) || defined(_M_X64)
    return qk_isa() >= QK_ISA_AVX512_VNNI;
#elif defined(__aarch64__)
    return qk_isa() >= QK_ISA_NEON_DOTPROD;
#else
    return 0;
#endif
}

int qk_mmi_gemm(size_t m, size_t k, const uint8_t *a, size_t lda, const int32_t *za, const int32_t *row_sums,
                const int8_t *packed, const int32_t *col_sums, const int32_t *zb, size_t n, size_t p0, size_t p1,
                int32_t *c, size_t ldc) {
#if defined(__x86_64__) || defined(_M_X64)
    if (!qk_mmi_available()) return 0;
    mmi_gemm_vnni(m, k, a, lda, za, row_sums, packed, col_sums, zb, n, p0, p1, c, ldc);
    return 1;
#elif defined(__aarch64__)
    if (!qk_mmi_available()) return 0;
    mmi_gemm_udot(m, k, a, lda, za, row_sums, packed, col_sums, zb, n, p0, p1, c, ldc);
    return 1;
#else
    (void)m; (void)k; (void)a; (void)lda; (void)za; (void)row_sums; (void)packed; (void)col_sums; (void)zb;
    (void)n; (void)p0; (void)p1; (void)c; (void)ldc;
    return 0;
#endif
}
