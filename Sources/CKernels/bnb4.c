#include "qwen_kernels.h"
#include "cpu.h"

// com.microsoft.MatMulBnb4's weights (bitsandbytes 4-bit, as ONNX Runtime's MatMulBnb4Quantizer
// writes them): B is [N, K] flattened, two codes per byte (the first in the high nibble), and
// blocks of `block_size` consecutive elements of that flat order share one absmax. A weight is
// map[code] · absmax[block], map the FP4 or NF4 table below (ONNX Runtime's values).

static const float bnb4_fp4[16] = {0.00000000f, 5.208333333e-03f, 0.66666667f, 1.00000000f,
                                   0.33333333f, 0.50000000f, 0.16666667f, 0.25000000f,
                                   -0.00000000f, -5.208333333e-03f, -0.66666667f, -1.00000000f,
                                   -0.33333333f, -0.50000000f, -0.16666667f, -0.25000000f};
static const float bnb4_nf4[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                                   -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                                   0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f,
                                   0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
                                   0.7229568362236023f, 1.0f};

static inline const float *bnb4_map(int quant_type) { return quant_type == 0 ? bnb4_fp4 : bnb4_nf4; }

static inline unsigned bnb4_code(const uint8_t *b, size_t flat) {
    const uint8_t byte = b[flat >> 1];
    return (flat & 1) ? (byte & 15u) : (byte >> 4);
}

void qk_bnb4_dequantize(const uint8_t *b, const float *absmax, size_t block_size, int quant_type, size_t k,
                        size_t row_begin, size_t row_end, float *dst) {
    const float *map = bnb4_map(quant_type);
    for (size_t r = row_begin; r < row_end; r++) {
        float *out = dst + (r - row_begin) * k;
        for (size_t c = 0; c < k; c++) {
            const size_t flat = r * k + c;
            out[c] = map[bnb4_code(b, flat)] * absmax[flat / block_size];
        }
    }
}

static void bnb4_gemv_portable(const uint8_t *b, const float *absmax, size_t block_size, int quant_type, size_t k,
                               const float *a, size_t row_begin, size_t row_end, float *y) {
    const float *map = bnb4_map(quant_type);
    for (size_t r = row_begin; r < row_end; r++) {
        float sum = 0;
        for (size_t c = 0; c < k; c++) {
            const size_t flat = r * k + c;
            sum += a[c] * (map[bnb4_code(b, flat)] * absmax[flat / block_size]);
        }
        y[r - row_begin] = sum;
    }
}

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))

// Blocks aligned with rows (k a multiple of block_size, block_size of 16): per block, the sum of
// a · map[code] over its 16-weight groups (codes looked up with two 8-entry permutes), times
// the block's absmax. Weight row r against `nrows` activation rows (`lda` apart; results `ldy`
// apart), each with its own accumulators in the order one row alone takes: the codes are looked
// up once for all of them, and each row's floats are its own GEMV's. (The lookups bound a single
// row, not the chain of its FMAs: four weight rows in flight gave the same decode rate.)
#define BNB4_MAX_ROWS 4
AVX2 static inline __attribute__((always_inline)) void bnb4_row_avx2(const uint8_t *b, const float *absmax,
        size_t block_size, const float *map, size_t k, const float *a, size_t lda, int nrows, size_t r, float *y, size_t ldy) {
    const __m256 lo_table = _mm256_loadu_ps(map), hi_table = _mm256_loadu_ps(map + 8);
    const __m128i low_nibble = _mm_set1_epi8(15);
    const __m256i seven = _mm256_set1_epi32(7);
    const size_t blocks = k / block_size;
    const uint8_t *row = b + r * k / 2;
    __m256 total[BNB4_MAX_ROWS];
    for (int i = 0; i < nrows; i++) total[i] = _mm256_setzero_ps();
    for (size_t blk = 0; blk < blocks; blk++) {
        __m256 acc[BNB4_MAX_ROWS];
        for (int i = 0; i < nrows; i++) acc[i] = _mm256_setzero_ps();
        for (size_t c = blk * block_size; c < (blk + 1) * block_size; c += 16) {
            const __m128i bytes = _mm_loadl_epi64((const __m128i *)(row + c / 2));
            const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibble);
            const __m128i codes = _mm_unpacklo_epi8(hi, _mm_and_si128(bytes, low_nibble));  // weight order
            for (int half = 0; half < 2; half++) {
                const __m256i idx = _mm256_cvtepu8_epi32(half ? _mm_srli_si128(codes, 8) : codes);
                const __m256 w = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo_table, idx),
                                                  _mm256_permutevar8x32_ps(hi_table, idx),
                                                  _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, seven)));
                for (int i = 0; i < nrows; i++) acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i * lda + c + 8 * half), w, acc[i]);
            }
        }
        const __m256 scale = _mm256_set1_ps(absmax[r * blocks + blk]);
        for (int i = 0; i < nrows; i++) total[i] = _mm256_fmadd_ps(acc[i], scale, total[i]);
    }
    for (int i = 0; i < nrows; i++) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(total[i]), _mm256_extractf128_ps(total[i], 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        y[i * ldy] = _mm_cvtss_f32(s);
    }
}

// y[i * ldy + (r - row_begin)] for weight rows [row_begin, row_end) and `m` activation rows, up to
// four activation rows a pass.
AVX2 static void bnb4_gemv_avx2(const uint8_t *b, const float *absmax, size_t block_size, int quant_type, size_t k,
                                const float *a, size_t lda, size_t m, size_t row_begin, size_t row_end, float *y, size_t ldy) {
    const float *map = bnb4_map(quant_type);
    for (size_t r = row_begin; r < row_end; r++)
        for (size_t i = 0; i < m; i += BNB4_MAX_ROWS) {
            const float *ai = a + i * lda;
            float *yi = y + i * ldy + (r - row_begin);
            switch (m - i >= BNB4_MAX_ROWS ? BNB4_MAX_ROWS : m - i) {
            case 4: bnb4_row_avx2(b, absmax, block_size, map, k, ai, lda, 4, r, yi, ldy); break;
            case 3: bnb4_row_avx2(b, absmax, block_size, map, k, ai, lda, 3, r, yi, ldy); break;
            case 2: bnb4_row_avx2(b, absmax, block_size, map, k, ai, lda, 2, r, yi, ldy); break;
            default: bnb4_row_avx2(b, absmax, block_size, map, k, ai, lda, 1, r, yi, ldy); break;
            }
        }
}
#elif defined(__aarch64__)
#include "simd_neon.h"

// bnb4_gemv_avx2's NEON twin: the same sums in the same order (simd_neon.h), so the same floats.
// The map is looked up bytewise (tbl over its 64 bytes): each weight of four takes bytes 4·code
// to 4·code + 3, its code's offset copied to four lanes (`pick`: weights 4i to 4i + 3) plus 0..3.
static void bnb4_gemv_neon(const uint8_t *b, const float *absmax, size_t block_size, int quant_type, size_t k,
                           const float *a, size_t row_begin, size_t row_end, float *y) {
    const uint8_t *map = (const uint8_t *)bnb4_map(quant_type);
    const uint8x16x4_t table = {{vld1q_u8(map), vld1q_u8(map + 16), vld1q_u8(map + 32), vld1q_u8(map + 48)}};
    static const uint8_t first_four[16] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
    static const uint8_t byte_in_float[16] = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
    const uint8x16_t pick0 = vld1q_u8(first_four), byte_of = vld1q_u8(byte_in_float), four = vdupq_n_u8(4);
    const size_t blocks = k / block_size;
    for (size_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = b + r * k / 2;
        const float *scales = absmax + r * blocks;
        f32x8 total = f32x8_dup(0);
        for (size_t blk = 0; blk < blocks; blk++) {
            f32x8 acc = f32x8_dup(0);
            for (size_t c = blk * block_size; c < (blk + 1) * block_size; c += 16) {
                const uint8x8_t bytes = vld1_u8(row + c / 2);
                const uint8x8_t hi = vshr_n_u8(bytes, 4), lo = vand_u8(bytes, vdup_n_u8(15));
                const uint8x16_t offsets = vshlq_n_u8(vcombine_u8(vzip1_u8(hi, lo), vzip2_u8(hi, lo)), 2);  // weight order
                float32x4_t w[4];
                uint8x16_t pick = pick0;
                for (int i = 0; i < 4; i++, pick = vaddq_u8(pick, four))
                    w[i] = vreinterpretq_f32_u8(vqtbl4q_u8(table, vorrq_u8(vqtbl1q_u8(offsets, pick), byte_of)));
                acc = f32x8_fmadd(f32x8_load(a + c), (f32x8){w[0], w[1]}, acc);
                acc = f32x8_fmadd(f32x8_load(a + c + 8), (f32x8){w[2], w[3]}, acc);
            }
            total = f32x8_fmadd(acc, f32x8_dup(scales[blk]), total);
        }
        y[r - row_begin] = f32x8_hsum(total);
    }
}
#endif

void qk_bnb4_gemv_multi(const uint8_t *b, const float *absmax, size_t block_size, int quant_type, size_t k, const float *a,
                        size_t lda, size_t m, size_t row_begin, size_t row_end, float *y, size_t ldy, int portable) {
#if defined(__x86_64__) || defined(_M_X64)
    if (!portable && qk_cpu_has_avx2_fma_f16c() && block_size % 16 == 0 && k % block_size == 0) {
        bnb4_gemv_avx2(b, absmax, block_size, quant_type, k, a, lda, m, row_begin, row_end, y, ldy);
        return;
    }
#elif defined(__aarch64__)
    if (!portable && qk_isa() >= QK_ISA_NEON && block_size % 16 == 0 && k % block_size == 0) {
        for (size_t i = 0; i < m; i++)
            bnb4_gemv_neon(b, absmax, block_size, quant_type, k, a + i * lda, row_begin, row_end, y + i * ldy);
        return;
    }
#endif
    for (size_t i = 0; i < m; i++) bnb4_gemv_portable(b, absmax, block_size, quant_type, k, a + i * lda, row_begin, row_end, y + i * ldy);
}

void qk_bnb4_gemv(const uint8_t *b, const float *absmax, size_t block_size, int quant_type, size_t k, const float *a,
                  size_t row_begin, size_t row_end, float *y, int portable) {
    qk_bnb4_gemv_multi(b, absmax, block_size, quant_type, k, a, k, 1, row_begin, row_end, y, row_end - row_begin, portable);
}
