#include "qwen_kernels.h"

// C = A · dequantize(B)ᵀ for 4-bit block-32 MatMulNBits weights, M > 2 (prefill). B is
// dequantized (with scale and zero point) a panel of 16 columns × KC depth at a time into an L1
// buffer laid out k-major, then a 6×16 register-blocked float32 FMA kernel multiplies it with A,
// as BLAS packs its operands, so no float copy of B goes through memory.

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <stdlib.h>
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

AVX2 static int gemm_avx2(const uint8_t *data, const uint16_t *sf16, const float *sf32, const uint8_t *zp,
                          size_t blocks, const float *a, size_t lda, size_t m, size_t n0, size_t n1,
                          float *c, size_t ldc) {
    float panel[Q4_KC * Q4_NR] __attribute__((aligned(64)));
    const size_t strips = (m + Q4_MR - 1) / Q4_MR, kp = blocks * 32;
    float *ap = aligned_alloc(64, strips * Q4_MR * kp * sizeof(float));
    if (!ap) return 0;
    q4_pack_a(a, lda, m, kp, ap);
    const size_t blocks_per_chunk = Q4_KC / 32;
    for (size_t n = n0; n < n1; n += Q4_NR) {
        size_t nr = n1 - n < Q4_NR ? n1 - n : Q4_NR;
        for (size_t b0 = 0; b0 < blocks; b0 += blocks_per_chunk) {
            size_t nb = blocks - b0 < blocks_per_chunk ? blocks - b0 : blocks_per_chunk;
            for (size_t b = 0; b < nb; b++) {
                float *dst = panel + b * 32 * Q4_NR;
                pack_block8(data, sf16, sf32, zp, blocks, n, nr, b0 + b, dst, 0);
                pack_block8(data, sf16, sf32, zp, blocks, n + 8, nr > 8 ? nr - 8 : 0, b0 + b, dst, 8);
            }
            size_t kc = nb * 32, k0 = b0 * 32;
            for (size_t s = 0; s < strips; s++) {
                const size_t i = s * Q4_MR, mr = m - i < Q4_MR ? m - i : Q4_MR;
                q4_kernel_6x16(ap + s * Q4_MR * kp + k0 * Q4_MR, panel, kc, c + i * ldc + n, ldc, mr, nr, b0 > 0);
            }
        }
    }
    free(ap);
    return 1;
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
    if (m == 0 || col_begin >= col_end) return 1;
    return gemm_avx2(data, scales_f16, scales_f32, zero_points, blocks, a, lda, m, col_begin, col_end, c, ldc);
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
