#include "qwen_kernels.h"
#include "cpu.h"

// A for the int4 GEMMs (both weight layouts), in the strips their kernel reads (q4_shared.h:
// mostly 6 rows, k-major, so the kernel's broadcasts read one stream), zero for K <= k < kp.
#include "q4_strips.h"

size_t qk_q4_packed_a_floats(size_t m, size_t blocks) {
    return m * blocks * 32;
}

size_t qk_q4_strip_count(size_t m) {
    return q4_strip_plan(m).count;
}

void qk_q4_pack_a(const float *a, size_t lda, size_t m, size_t k, size_t blocks,
                  size_t strip_begin, size_t strip_end, float *ap) {
    const size_t kp = blocks * 32;
    const q4_strips plan = q4_strip_plan(m);
    for (size_t s = strip_begin; s < strip_end && s < plan.count; s++) {
        const size_t i0 = q4_strip_row(plan, s), h = q4_strip_height(plan, s);
        float *strip = ap + i0 * kp;
        for (size_t i = 0; i < h; i++) {
            const float *row = a + (i0 + i) * lda;
            for (size_t e = 0; e < k; e++) strip[e * h + i] = row[e];
            for (size_t e = k; e < kp; e++) strip[e * h + i] = 0;
        }
    }
}

// C = A · dequantize(B)ᵀ for 4-bit block-32 MatMulNBits weights, M > 2 (prefill). B is
// dequantized (with scale and zero point) a panel of 16 columns × KC depth at a time into an L1
// buffer laid out k-major, then a register-blocked float32 FMA kernel (6 rows × 16) multiplies it with A,
// as BLAS packs its operands, so no float copy of B goes through memory.

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#include "q4_shared.h"
#define AVX2 Q4_AVX2

static inline int zero_point(const uint8_t *zp, size_t blocks, size_t row, size_t b) {
    if (!zp) return 8;
    uint8_t byte = zp[row * ((blocks + 1) / 2) + b / 2];
    return (b & 1) ? (byte >> 4) : (byte & 0x0F);
}

// Dequantizes block b of 8 rows (columns of C) starting at `row` into panel[k * NR + col0 + lane]
// for the block's 32 k. Rows past `rows_valid` are written as zeros.
AVX2 static void pack_block8(const uint8_t *data, const uint16_t *sf16, const float *sf32, const uint8_t *zp,
                             size_t blocks, size_t row, size_t rows_valid, size_t b, float *panel, size_t col0) {
    const size_t row_bytes = blocks * 16;
    float scale[8], offset[8];
    uint32_t words[8][4];
    for (int r = 0; r < 8; r++) {
        if ((size_t)r < rows_valid) {
            float s = sf16 ? _cvtsh_ss(sf16[(row + r) * blocks + b]) : sf32[(row + r) * blocks + b];
            scale[r] = s;
            offset[r] = s * (float)zero_point(zp, blocks, row + r, b);
            memcpy(words[r], data + (row + r) * row_bytes + b * 16, 16);
        } else {
            scale[r] = 0; offset[r] = 0;
            memset(words[r], 0, 16);
        }
    }
    const __m256 s = _mm256_loadu_ps(scale), o = _mm256_loadu_ps(offset);
    const __m256i nibble = _mm256_set1_epi32(0xF);
    for (int j = 0; j < 4; j++) {
        __m256i w = _mm256_setr_epi32((int)words[0][j], (int)words[1][j], (int)words[2][j], (int)words[3][j],
                                      (int)words[4][j], (int)words[5][j], (int)words[6][j], (int)words[7][j]);
        for (int i = 0; i < 8; i++) {
            __m256 q = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(w, 4 * i), nibble));
            _mm256_storeu_ps(panel + (size_t)(8 * j + i) * Q4_NR + col0, _mm256_fmsub_ps(q, s, o));
        }
    }
}

// The MatMulNBits-layout matrix as `q4_gemm` sees it.
typedef struct { const uint8_t *data; const uint16_t *sf16; const float *sf32; const uint8_t *zp; size_t blocks; } q4_weights;

// Block `block` of the 16 rows of B (columns of C) from n, rows past nr as zeros.
AVX2 static void q4_fill(const void *weights, size_t n, size_t nr, size_t block, float *panel) {
    const q4_weights *w = weights;
    pack_block8(w->data, w->sf16, w->sf32, w->zp, w->blocks, n, nr, block, panel, 0);
    pack_block8(w->data, w->sf16, w->sf32, w->zp, w->blocks, n + 8, nr > 8 ? nr - 8 : 0, block, panel, 8);
}

int qk_q4_gemm(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
               const uint8_t *zero_points, size_t blocks, const float *ap, size_t m,
               size_t strip_begin, size_t strip_end, size_t col_begin, size_t col_end, float *c, size_t ldc) {
    if (!qk_cpu_has_avx2_fma_f16c()) return 0;
    if (m == 0 || col_begin >= col_end || strip_begin >= strip_end) return 1;
    const q4_weights w = { data, scales_f16, scales_f32, zero_points, blocks };
    q4_gemm_run(q4_fill, q4_kernel, &w, blocks, ap, m, strip_begin, strip_end, col_begin, col_end, c, ldc);
    return 1;
}

#elif !defined(__aarch64__)   // arm64: q4_neon.c

int qk_q4_gemm(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
               const uint8_t *zero_points, size_t blocks, const float *ap, size_t m,
               size_t strip_begin, size_t strip_end, size_t col_begin, size_t col_end, float *c, size_t ldc) {
    (void)data; (void)scales_f16; (void)scales_f32; (void)zero_points; (void)blocks; (void)ap;
    (void)m; (void)strip_begin; (void)strip_end; (void)col_begin; (void)col_end; (void)c; (void)ldc;
    return 0;
}

#endif
