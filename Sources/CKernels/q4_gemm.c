#include "qwen_kernels.h"

// C = A · dequantize(B)ᵀ for 4-bit block-32 MatMulNBits weights, M > 2 (prefill). B is
// dequantized (with scale and zero point) a panel of 16 columns × KC depth at a time into an L1
// buffer laid out k-major, then a 6×16 register-blocked float32 FMA kernel multiplies it with A,
// as BLAS packs its operands, so no float copy of B goes through memory.

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>
#define AVX2 __attribute__((target("avx2,fma,f16c")))

enum { NR = 16, MR = 6, KC = 256 };

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
            _mm256_storeu_ps(panel + (size_t)(8 * j + i) * NR + col0, _mm256_fmsub_ps(q, s, o));
        }
    }
}

// c[0..mr) x [0..NR) (+)= a[0..mr) x [0..kc) · panel[kc][NR]; `accumulate` adds to c.
AVX2 static void kernel_6x16(const float *a, size_t lda, const float *panel, size_t kc, float *c, size_t ldc,
                             size_t mr, size_t nr, int accumulate) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a0 = a, *a1 = a + (mr > 1 ? lda : 0), *a2 = a + (mr > 2 ? 2 * lda : 0);
    const float *a3 = a + (mr > 3 ? 3 * lda : 0), *a4 = a + (mr > 4 ? 4 * lda : 0), *a5 = a + (mr > 5 ? 5 * lda : 0);
    for (size_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(panel + k * NR), b1 = _mm256_loadu_ps(panel + k * NR + 8);
        __m256 x;
        x = _mm256_broadcast_ss(a0 + k); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a1 + k); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a2 + k); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a3 + k); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a4 + k); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a5 + k); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    __m256 acc[MR][2] = { { c00, c01 }, { c10, c11 }, { c20, c21 }, { c30, c31 }, { c40, c41 }, { c50, c51 } };
    for (size_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (nr == NR) {
            if (accumulate) {
                acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
                acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
            }
            _mm256_storeu_ps(ci, acc[i][0]);
            _mm256_storeu_ps(ci + 8, acc[i][1]);
        } else {
            float t[NR];
            _mm256_storeu_ps(t, acc[i][0]);
            _mm256_storeu_ps(t + 8, acc[i][1]);
            for (size_t j = 0; j < nr; j++) ci[j] = accumulate ? ci[j] + t[j] : t[j];
        }
    }
}

AVX2 static void gemm_avx2(const uint8_t *data, const uint16_t *sf16, const float *sf32, const uint8_t *zp,
                           size_t blocks, const float *a, size_t lda, size_t m, size_t n0, size_t n1,
                           float *c, size_t ldc) {
    float panel[KC * NR] __attribute__((aligned(64)));
    const size_t blocks_per_chunk = KC / 32;
    for (size_t n = n0; n < n1; n += NR) {
        size_t nr = n1 - n < NR ? n1 - n : NR;
        for (size_t b0 = 0; b0 < blocks; b0 += blocks_per_chunk) {
            size_t nb = blocks - b0 < blocks_per_chunk ? blocks - b0 : blocks_per_chunk;
            for (size_t b = 0; b < nb; b++) {
                float *dst = panel + b * 32 * NR;
                pack_block8(data, sf16, sf32, zp, blocks, n, nr, b0 + b, dst, 0);
                pack_block8(data, sf16, sf32, zp, blocks, n + 8, nr > 8 ? nr - 8 : 0, b0 + b, dst, 8);
            }
            size_t kc = nb * 32, k0 = b0 * 32;
            for (size_t i = 0; i < m; i += MR) {
                size_t mr = m - i < MR ? m - i : MR;
                kernel_6x16(a + i * lda + k0, lda, panel, kc, c + i * ldc + n, ldc, mr, nr, b0 > 0);
            }
        }
    }
}

static int gemm_isa(void) {
    static int isa = -1;
    if (isa < 0) {
        __builtin_cpu_init();
        isa = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return isa;
}

int qk_q4_gemm(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
               const uint8_t *zero_points, size_t blocks, const float *a, size_t lda, size_t m,
               size_t col_begin, size_t col_end, float *c, size_t ldc) {
    if (!gemm_isa()) return 0;
    gemm_avx2(data, scales_f16, scales_f32, zero_points, blocks, a, lda, m, col_begin, col_end, c, ldc);
    return 1;
}

#else

int qk_q4_gemm(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
               const uint8_t *zero_points, size_t blocks, const float *a, size_t lda, size_t m,
               size_t col_begin, size_t col_end, float *c, size_t ldc) {
    (void)data; (void)scales_f16; (void)scales_f32; (void)zero_points; (void)blocks; (void)a; (void)lda;
    (void)m; (void)col_begin; (void)col_end; (void)c; (void)ldc;
    return 0;
}

#endif
