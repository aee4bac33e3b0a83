#include "qwen_kernels.h"
#include "cpu.h"

// The "q4x8" layout: symmetric 4-bit block-32 MatMulNBits weights repacked once at load so that
// the decode GEMV reads one sequential stream and needs no shuffles.
//
// Rows go in groups of 8. A group is `blocks` records; record b holds block b of the 8 rows:
//   - the 8 scales (8 float16 = 16 bytes, or 8 float32 = 32 bytes), row r at position r;
//   - 128 bytes of weights: 32-bit word j (weights 8j..8j+7 of the block, weight 8j+i in bits
//     4i..4i+3, as in the original layout) of row r at byte 32j + 4r.
// So a 256-bit load gives word j of all eight rows (lanes = rows), exactly what the MatMulNBits
// layout gave after four loads and eight unpacks per block; the scales sit next to the weights
// they scale. The GEMM's panel packing reads the same records.

#include "q4x8_layout.h"

size_t qk_q4x8_size(size_t n, size_t blocks, int f32_scales) {
    return (n / 8) * blocks * record_bytes(f32_scales);
}

// Per block: 32 int8 activations, then (after all blocks) the blocks' float scales and int32
// zero-point terms (8 × the block's Σ q: what the symmetric zero point 8 takes off its products).
size_t qk_q8_activation_bytes(size_t blocks) { return blocks * (32 + sizeof(float) + sizeof(int32_t)); }

// Per block: 16 words of two int16 activations, then the blocks' float scales and int32 zero-point
// terms (8 × Σ q).
size_t qk_q16_activation_bytes(size_t blocks) { return blocks * (64 + sizeof(float) + sizeof(int32_t)); }

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "q4x8_shared.h"
#include "q4x8_avx512.h"
#define AVX2 Q4_AVX2

// Block b of rows g*8..g*8+7 into one record: the four 32-bit words of each row's 16 bytes
// transposed so that word j of the 8 rows is 32 contiguous bytes.
AVX2 static void pack_groups(const uint8_t *data, const uint16_t *sf16, const float *sf32, size_t blocks,
                             size_t g0, size_t g1, uint8_t *out) {
    const size_t rec = record_bytes(sf16 == NULL), sbytes = sf16 ? 16 : 32, row_bytes = blocks * 16;
    for (size_t g = g0; g < g1; g++) {
        const uint8_t *rows = data + g * 8 * row_bytes;
        for (size_t b = 0; b < blocks; b++) {
            uint8_t *dst = out + ((g - g0) * blocks + b) * rec;
            for (size_t r = 0; r < 8; r++) {
                if (sf16) memcpy(dst + 2 * r, sf16 + (g * 8 + r) * blocks + b, 2);
                else memcpy(dst + 4 * r, sf32 + (g * 8 + r) * blocks + b, 4);
            }
            __m256i w[4];
            q4_transpose_words8(rows + b * 16, row_bytes, w);
            for (int j = 0; j < 4; j++) _mm256_storeu_si256((__m256i *)(dst + sbytes) + j, w[j]);
        }
    }
}

int qk_q4x8_pack(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32, size_t blocks,
                 size_t group_begin, size_t group_end, uint8_t *out) {
    if (!qk_cpu_has_avx2_fma_f16c() || (scales_f16 == NULL) == (scales_f32 == NULL)) return 0;
    pack_groups(data, scales_f16, scales_f32, blocks, group_begin, group_end, out);
    return 1;
}

// --- GEMV -------------------------------------------------------------------------------------
//
// As in q4.c's 8-row kernel: masking nibble i of a word (0xF << 4i, after a 16-bit shift for
// i >= 4) leaves q * 16^(i mod 4), which converts to float exactly; the activations are
// pre-scaled by 16^-(k mod 4) (powers of two, exact), so one AND, one convert and one FMA per
// 8 weights give q * a. The symmetric zero point 8 comes off per block through the block's
// activation sum: sum (q - 8) a = sum q a - 8 sum a.

#define Q4_STEP(c, w, m, x) c = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(w, m)), _mm256_broadcast_ss(x), c)

AVX2 static void gemv_groups(const uint8_t *packed, int f32, size_t blocks, const float *xs, const float *xsum,
                             size_t g0, size_t g1, float *y) {
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16;
    const __m256i m0 = _mm256_set1_epi32(0xF), m1 = _mm256_set1_epi32(0xF0);
    const __m256i m2 = _mm256_set1_epi32(0xF00), m3 = _mm256_set1_epi32(0xF000);
    const __m256 eight = _mm256_set1_ps(8.0f);
    for (size_t g = g0; g < g1; g++) {
        const uint8_t *p = packed + g * blocks * rec;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *r = p + b * rec;
            prefetch_record(r);
            const uint8_t *q = r + sbytes;
            const float *xb = xs + b * 32;
            __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
            // Unrolled here (SwiftPM builds C at -O2, which leaves these loops rolled).
#pragma unroll
            for (int j = 0; j < 4; j++) {
                __m256i lo = _mm256_loadu_si256((const __m256i *)(q + 32 * j)), hi = _mm256_srli_epi32(lo, 16);
                const float *x = xb + 8 * j;
                Q4_STEP(c0, lo, m0, x + 0); Q4_STEP(c1, lo, m1, x + 1); Q4_STEP(c2, lo, m2, x + 2); Q4_STEP(c3, lo, m3, x + 3);
                Q4_STEP(c0, hi, m0, x + 4); Q4_STEP(c1, hi, m1, x + 5); Q4_STEP(c2, hi, m2, x + 6); Q4_STEP(c3, hi, m3, x + 7);
            }
            __m256 dot = _mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3));
            __m256 v = _mm256_fnmadd_ps(eight, _mm256_broadcast_ss(xsum + b), dot);
            if (b & 1) acc1 = _mm256_fmadd_ps(v, record_scales(r, f32), acc1);
            else acc0 = _mm256_fmadd_ps(v, record_scales(r, f32), acc0);
        }
        _mm256_storeu_ps(y + g * 8, _mm256_add_ps(acc0, acc1));
    }
}

// Several float32 activation rows (a batched decode step of a float32 graph) against the same
// weights, two rows a pass: each masked word converted once for both rows (the single-row
// GEMV converts it once per row, half of its operations). Per row the single-row kernel's
// operations in its order: the four partial sums of a block in the same Q4_STEP sequence,
// ((c0 + c1) + (c2 + c3)), the zero point through the block's activation sum, and the even and
// odd blocks' accumulators; so each row's results are `gemv_groups`' bit for bit. Row r's
// prescaled activations (`q4_prescale_activations`: 32 · blocks floats, then the block sums) at
// x[r].
#define Q4_STEP_ROWS(c, w, m, o) { \
        const __m256 v_ = _mm256_cvtepi32_ps(_mm256_and_si256(w, m)); \
        for (int r = 0; r < rows; r++) c[r] = _mm256_fmadd_ps(v_, _mm256_broadcast_ss(x[r] + b * 32 + 8 * j + (o)), c[r]); \
    }
AVX2 static inline __attribute__((always_inline)) void gemv_f32_pass(const uint8_t *p, int f32, size_t blocks,
        const float *const x[8], const int rows, float *const out[8]) {
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16;
    const __m256i m0 = _mm256_set1_epi32(0xF), m1 = _mm256_set1_epi32(0xF0);
    const __m256i m2 = _mm256_set1_epi32(0xF00), m3 = _mm256_set1_epi32(0xF000);
    const __m256 eight = _mm256_set1_ps(8.0f);
    __m256 acc0[8], acc1[8];   // 8: the driver expands every row count; 2 run
    for (int r = 0; r < rows; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *rb = p + b * rec;
        prefetch_record(rb);
        const uint8_t *q = rb + sbytes;
        __m256 c0[8], c1[8], c2[8], c3[8];
        for (int r = 0; r < rows; r++) c0[r] = c1[r] = c2[r] = c3[r] = _mm256_setzero_ps();
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const __m256i lo = _mm256_loadu_si256((const __m256i *)(q + 32 * j)), hi = _mm256_srli_epi32(lo, 16);
            Q4_STEP_ROWS(c0, lo, m0, 0) Q4_STEP_ROWS(c1, lo, m1, 1) Q4_STEP_ROWS(c2, lo, m2, 2) Q4_STEP_ROWS(c3, lo, m3, 3)
            Q4_STEP_ROWS(c0, hi, m0, 4) Q4_STEP_ROWS(c1, hi, m1, 5) Q4_STEP_ROWS(c2, hi, m2, 6) Q4_STEP_ROWS(c3, hi, m3, 7)
        }
        const __m256 ws = record_scales(rb, f32);
        for (int r = 0; r < rows; r++) {
            const __m256 dot = _mm256_add_ps(_mm256_add_ps(c0[r], c1[r]), _mm256_add_ps(c2[r], c3[r]));
            const __m256 v = _mm256_fnmadd_ps(eight, _mm256_broadcast_ss(x[r] + blocks * 32 + b), dot);
            if (b & 1) acc1[r] = _mm256_fmadd_ps(v, ws, acc1[r]);
            else acc0[r] = _mm256_fmadd_ps(v, ws, acc0[r]);
        }
    }
    for (int r = 0; r < rows; r++) _mm256_storeu_ps(out[r], _mm256_add_ps(acc0[r], acc1[r]));
}
#undef Q4_STEP_ROWS

Q4X8_MULTI_ROW_GEMV(AVX2, static, gemv_groups_f32_multi, gemv_f32_pass, 2, const float *)
#undef Q4_STEP

int qk_q4x8_gemv_multi(const uint8_t *packed, int f32_scales, size_t blocks, const float *a, size_t lda, size_t m,
                       size_t row_begin, size_t row_end, float *y, size_t ldy) {
    if (!qk_cpu_has_avx2_fma_f16c() || row_begin % 8 || row_end % 8) return 0;
    const size_t row_floats = blocks * 33;
    float *xs = malloc((m ? m : 1) * row_floats * sizeof(float));
    if (!xs) return 0;
    for (size_t i = 0; i < m; i++) q4_prescale_activations(a + i * lda, blocks, xs + i * row_floats, xs + i * row_floats + blocks * 32);
    gemv_groups_f32_multi(packed, f32_scales, blocks, (const uint8_t *)xs, row_floats * sizeof(float), m, row_begin / 8,
                          row_end / 8, y, ldy);
    free(xs);
    return 1;
}

int qk_q4x8_gemv(const uint8_t *packed, int f32_scales, size_t blocks, const float *a,
                 size_t row_begin, size_t row_end, float *y) {
    if (!qk_cpu_has_avx2_fma_f16c() || row_begin % 8 || row_end % 8) return 0;
    float stack[33 * 64];
    float *xs = blocks <= 64 ? stack : malloc(blocks * 33 * sizeof(float));
    if (!xs) return 0;
    q4_prescale_activations(a, blocks, xs, xs + blocks * 32);
    (qk_isa() >= QK_ISA_AVX512_WIDE ? q4x8_gemv_f32_wide : gemv_groups)(packed, f32_scales, blocks, xs, xs + blocks * 32,
                                                                         row_begin / 8, row_end / 8, y);
    if (xs != stack) free(xs);
    return 1;
}

// --- int8 activations (accuracy level 4) --------------------------------------------------------
//
// The activations are quantized per block of 32 to int8 with one float scale (q8 = round(a /
// s), s = max|a| / 127), as ONNX Runtime's MatMulNBits does at accuracy_level 4 and llama.cpp's
// Q8_0 does. Then the products are integer: within 32-bit lane r (row r of the group), the
// bytes of (word & 0x0F0F0F0F) are weights 8j, 8j+2, 8j+4, 8j+6 and those of (word >> 4 &
// 0x0F0F0F0F) weights 8j+1, 8j+3, 8j+5, 8j+7; the activations are laid out so that one 32-bit
// broadcast holds the four matching int8 values. `vpmaddubsw` (unsigned weight × signed
// activation, pairs summed to int16) then does 32 multiply-adds per instruction; the 8 results
// of a block add up in int16 without overflow (16 products of at most 15 × 127 per half-lane =
// 30,480), one `vpmaddwd` with ones widens them to int32, the zero point comes off as 8 × the
// block's activation sum (the zero-point term the quantizer stores), and one FMA applies the
// weight scales × the activation scale.

// Activation block layout for the int8 kernel: per block 32 bytes, for j = 0..3: the 4 bytes of
// a[8j + {0,2,4,6}], then the 4 bytes of a[8j + {1,3,5,7}].
// max |x[i]| over the 32 values of a block; NaN when one of them is NaN (the block's scale is
// then NaN, so the products it enters come out NaN, as the float32 kernels' would: `max_ps`
// alone would drop a NaN it met first).
AVX2 static inline float block_absmax(const float *x) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
        const __m256 v = _mm256_loadu_ps(x + 8 * i);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        m = _mm256_max_ps(m, _mm256_and_ps(v, abs_mask));
    }
    if (_mm256_movemask_ps(nan)) return NAN;
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

// Each lane rounded half away from zero (`lroundf`), as ONNX Runtime's and ggml's quantizers
// do; NaN lanes give 0. Exact for |v| < 2^23: the integer part t and the fraction v - t are
// exact, and t ± 1 is.
AVX2 static inline __m256i round_half_away(__m256 v) {
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000));
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 f = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 away = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign));   // copysign(1, v)
    __m256 r = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ), away));
    r = _mm256_and_ps(r, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    return _mm256_cvttps_epi32(r);
}

// Per block of 32: scale max|a| / 127, q = a · 127 / max|a| rounded half away from zero (0 for
// a block of zeros or one holding NaN, whose scale is then NaN), bytes 8j..8j+3 = q[8j + 0, 2, 4,
// 6] and 8j+4..8j+7 = q[8j + 1, 3, 5, 7] (the layout `gemv_groups_i8` reads), and the block's
// zero-point term 8 · Σ q (|8 Σ q| <= 32,512). Vectorised: 8 lanes rounded at once, each group's
// evens and odds gathered by one permute, the 32 values packed to bytes with saturating packs
// (|q| <= 127 never saturates).
AVX2 static void quantize_activations(const float *a, size_t blocks, int8_t *q, float *scale, int32_t *zterm) {
    const __m256i evens_odds = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    // packs work within 128-bit lanes: after two of them the 4-byte units are
    // g0[0..3] g1[0..3] g2[0..3] g3[0..3] g0[4..7] g1[4..7] g2[4..7] g3[4..7].
    const __m256i unpack_lanes = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t b = 0; b < blocks; b++) {
        const float *x = a + b * 32;
        const float amax = block_absmax(x);
        scale[b] = amax / 127.0f;
        const __m256 inv = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
        __m256i g[4];
        __m256i total = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i r = round_half_away(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), inv));
            total = _mm256_add_epi32(total, r);
            g[j] = _mm256_permutevar8x32_epi32(r, evens_odds);
        }
        const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(g[0], g[1]), _mm256_packs_epi32(g[2], g[3]));
        _mm256_storeu_si256((__m256i *)(q + b * 32), _mm256_permutevar8x32_epi32(bytes, unpack_lanes));
        __m128i t = _mm_add_epi32(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
        zterm[b] = _mm_cvtsi128_si32(_mm_slli_epi32(t, 3));   // 8 Σ q, wrapping as the vector adds do
    }
}

// One block of `gemv_groups_i8`: `vpmaddubsw` pairs of products in int16 (no saturation: see
// above), widened by the block's one `vpmaddwd`.
AVX2 static inline __attribute__((always_inline)) __m256i q8_block_dot(const uint8_t *q, const int32_t *x) {
    const __m256i nibbles = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256i d0 = _mm256_setzero_si256(), d1 = d0;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        __m256i w = _mm256_loadu_si256((const __m256i *)(q + 32 * j));
        __m256i lo = _mm256_and_si256(w, nibbles), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibbles);
        d0 = _mm256_add_epi16(d0, _mm256_maddubs_epi16(lo, _mm256_set1_epi32(x[2 * j])));
        d1 = _mm256_add_epi16(d1, _mm256_maddubs_epi16(hi, _mm256_set1_epi32(x[2 * j + 1])));
    }
    return _mm256_madd_epi16(_mm256_add_epi16(d0, d1), ones);
}

AVX2 static inline __attribute__((always_inline)) void gemv_groups_i8_scales(const uint8_t *packed, const int f32,
        size_t blocks, const int8_t *aq, const float *ascale, const int32_t *zterm, size_t g0, size_t g1, float *y) {
#define Q8_DOT(q, b) q8_block_dot(q, (const int32_t *)(aq + (b) * 32))
    Q4X8_GEMV_GROUPS(Q8_DOT)
#undef Q8_DOT
}

AVX2 static void gemv_groups_i8(const uint8_t *packed, int f32, size_t blocks, const int8_t *aq, const float *ascale,
                                const int32_t *zterm, size_t g0, size_t g1, float *y) {
    Q4X8_WITH_CONSTANT_SCALES(gemv_groups_i8_scales, packed, f32, blocks, aq, ascale, zterm, g0, g1, y);
}

// Several activation rows against the same weights (batched decode with int8 activations): the
// pass is `Q4X8_GEMV_ROWS_PASS` (q4x8_shared.h), four rows a pass (8 float and 4 int16
// accumulators, the 2 unpacked words and the masks fill the 16 registers; the compiler keeps the
// rest in L1). Row r's block sums as `q8_block_dot` forms them: `vpmaddubsw` pairs in int16 (a
// block's 8 results per row stay below 30,481 in any order), widened by one `vpmaddwd`. Four rows
// rather than two (Zen 4 at QWEN_ISA=avx2, C harness, one thread, 8 rows, ns per row and block):
// weights in cache 2.82–2.84 → 2.64–2.65; streamed from memory, K = 4,864 3.48–3.49 → 2.94–3.02,
// K = 896 2.92–2.94 → 2.83–3.21; `decode-speed --batch 8` of the GenAI int4 0.5B at that level,
// three alternations: 253–258 → 270–277 tok/s. (The int16 pass keeps two: four gave 4.35 →
// 4.46–4.49 ns in cache.)
#define Q8_SUMS_MADDUBS(q, B, dot) { \
        const __m256i nibbles = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1); \
        __m256i d[8]; \
        _Pragma("unroll") \
        for (int j = 0; j < 4; j++) { \
            const __m256i w = _mm256_loadu_si256((const __m256i *)((q) + 32 * j)); \
            const __m256i lo = _mm256_and_si256(w, nibbles), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibbles); \
            for (int r = 0; r < rows; r++) { \
                const int32_t *xr = (const int32_t *)(x[r] + (B) * 32); \
                const __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(xr[2 * j])), \
                                                   _mm256_maddubs_epi16(hi, _mm256_set1_epi32(xr[2 * j + 1]))); \
                d[r] = j == 0 ? s : _mm256_add_epi16(d[r], s); \
            } \
        } \
        for (int r = 0; r < rows; r++) dot[r] = _mm256_madd_epi16(d[r], ones); \
    }
AVX2 static inline __attribute__((always_inline)) void gemv_i8_pass(const uint8_t *p, int f32, size_t blocks,
        const int8_t *const x[8], const int rows, float *const out[8]) {
    Q4X8_Q8_PASS(Q8_SUMS_MADDUBS)
}

Q4X8_MULTI_ROW_GEMV(AVX2, static, gemv_groups_i8_multi, gemv_i8_pass, 4, const int8_t *)

// The int8 GEMM (M > 2): the same products as the GEMV, four activation rows per pass over the
// weights, so each weight word is loaded and split into nibbles once for four rows. Per row one
// int16 accumulator per block (a block's 8 `vpmaddubsw` results stay below 30,481, as above) and
// one float accumulator. Row i's activations are at x[i] (`blocks` blocks, then their scales and
// sums), its 8 results go to out[i].
AVX2 static void gemm_group_i8x4(const uint8_t *rec0, int f32, size_t blocks, const int8_t *const x[4], float *const out[4]) {
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16;
    const __m256i nibbles = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *r = rec0 + b * rec;
        prefetch_record(r);
        const uint8_t *q = r + sbytes;
        const int32_t *p0 = (const int32_t *)(x[0] + b * 32), *p1 = (const int32_t *)(x[1] + b * 32);
        const int32_t *p2 = (const int32_t *)(x[2] + b * 32), *p3 = (const int32_t *)(x[3] + b * 32);
        __m256i d0 = _mm256_setzero_si256(), d1 = d0, d2 = d0, d3 = d0;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)(q + 32 * j));
            const __m256i lo = _mm256_and_si256(w, nibbles), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibbles);
#define Q8_PAIR(p) _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(p[2 * j])), \
                                    _mm256_maddubs_epi16(hi, _mm256_set1_epi32(p[2 * j + 1])))
            d0 = _mm256_add_epi16(d0, Q8_PAIR(p0));
            d1 = _mm256_add_epi16(d1, Q8_PAIR(p1));
            d2 = _mm256_add_epi16(d2, Q8_PAIR(p2));
            d3 = _mm256_add_epi16(d3, Q8_PAIR(p3));
#undef Q8_PAIR
        }
        const __m256 ws = record_scales(r, f32);
        // The GEMVs' epilogue (`block_accumulate`): a row's products as decode computes them.
#define Q8_ROW(d, i, acc) \
        acc = block_accumulate(_mm256_madd_epi16(d, ones), ((const int32_t *)(x[i] + blocks * 36))[b], \
                               (const float *)(x[i] + blocks * 32) + b, ws, acc)
        Q8_ROW(d0, 0, a0); Q8_ROW(d1, 1, a1); Q8_ROW(d2, 2, a2); Q8_ROW(d3, 3, a3);
#undef Q8_ROW
    }
    _mm256_storeu_ps(out[0], a0);
    _mm256_storeu_ps(out[1], a1);
    _mm256_storeu_ps(out[2], a2);
    _mm256_storeu_ps(out[3], a3);
}

int qk_q4x8_gemm_q8(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq, size_t m,
                    size_t col_begin, size_t col_end, float *c, size_t ldc, int isa) {
    isa = qk_isa_clamp(isa);
    if (isa < QK_ISA_AVX2 || col_begin % 8 || col_end % 8) return 0;
    if (m == 0) return 1;
    const size_t row_bytes = qk_q8_activation_bytes(blocks);
    if (isa >= QK_ISA_AVX512_WIDE) {
        q4x8_q8_wide(packed, f32_scales, blocks, aq, row_bytes, m, col_begin / 8, col_end / 8, c, ldc);
        return 1;
    }
    q4x8_gemm_q8_drive(isa >= QK_ISA_AVX512_VNNI ? q4x8_gemm_group_i8x4_vnni
                       : isa == QK_ISA_AVX_VNNI ? q4x8_gemm_group_i8x4_avxvnni : gemm_group_i8x4, packed, f32_scales,
                       blocks, aq, row_bytes, m, col_begin, col_end, c, ldc);
    return 1;
}

int qk_q8_quantize(const float *a, size_t blocks, void *out) {
    if (!qk_cpu_has_avx2_fma_f16c()) return 0;
    int8_t *q = out;
    quantize_activations(a, blocks, q, (float *)(q + blocks * 32), (int32_t *)(q + blocks * 36));
    return 1;
}

int qk_q4x8_gemv_q8(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq,
                    size_t row_begin, size_t row_end, float *y, int isa) {
    isa = qk_isa_clamp(isa);
    if (isa < QK_ISA_AVX2 || row_begin % 8 || row_end % 8) return 0;
    const int8_t *q = aq;
    (isa >= QK_ISA_AVX512_VNNI ? q4x8_gemv_q8_vnni : isa == QK_ISA_AVX_VNNI ? q4x8_gemv_q8_avxvnni : gemv_groups_i8)(packed, f32_scales, blocks, q, (const float *)(q + blocks * 32), (const int32_t *)(q + blocks * 36),
                   row_begin / 8, row_end / 8, y);
    return 1;
}

int qk_q4x8_gemv_q8_multi(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq, size_t row_bytes,
                          size_t m, size_t row_begin, size_t row_end, float *y, size_t ldy, int isa) {
    isa = qk_isa_clamp(isa);
    if (isa < QK_ISA_AVX2 || row_begin % 8 || row_end % 8) return 0;
    (isa >= QK_ISA_AVX512_WIDE && m > 1 ? q4x8_q8_wide : isa >= QK_ISA_AVX512_VNNI ? q4x8_gemv_q8_multi_vnni
     : isa == QK_ISA_AVX_VNNI ? q4x8_gemv_q8_multi_avxvnni : gemv_groups_i8_multi)(
        packed, f32_scales, blocks, aq, row_bytes, m, row_begin / 8, row_end / 8, y, ldy);
    return 1;
}

// --- int16 activations (decode) ------------------------------------------------------------------
//
// The float32 GEMV spends three vector operations on 8 weights (AND, convert, FMA) and is
// compute-bound here; with the activations quantized per block of 32 to int16 (q = a · 32767 /
// max|a|, rounded to nearest even: at most 2^-16 of the block's largest value off, far below the
// float16 rounding the exports apply to every MatMulNBits output) the products are integer:
// within 32-bit lane r (row r of the group) the two 16-bit halves of word j hold weights
// 8j..8j+3 and 8j+4..8j+7, so (word >> 4i) & 0x000F per 16-bit half gives weights 8j+i and
// 8j+4+i, and one `vpmaddwd` with a broadcast of the pair (a[8j+i], a[8j+4+i]) adds both products
// in int32: 16 multiply-adds per instruction, about half the float kernel's instructions per
// weight. Nibbles 1 and 2 are masked in place instead (& 0x00F0, & 0x0F00: 16 q and 256 q, still
// positive int16) and summed in accumulators of their own, which are exact multiples of 16 and
// 256 and are shifted back once per block (nibble 3 needs its shift: 4096 q is not an int16): two
// shifts fewer per word, 8 vector operations per block less the 3 added to recombine. The largest
// sum, 256 · 8 products of 15 · 32767 per lane, stays below 2^30, and all sums are exact
// integers, so the result is that of shifting every nibble down. The zero point 8 comes off as 8 × the block's activation sum, and one FMA per block
// applies the weight scales × the activation scale.

// Activation block layout: 16 words per block, word 4j + i = a16[8j + i] | a16[8j + 4 + i] << 16;
// then the blocks' float scales and int32 zero-point terms 8 · Σ q.
AVX2 static void quantize_activations16(const float *a, size_t blocks, int32_t *q, float *scale, int32_t *zterm) {
    const __m128i low16 = _mm_set1_epi32(0xFFFF);
    for (size_t b = 0; b < blocks; b++) {
        const float *x = a + b * 32;
        const float amax = block_absmax(x);
        scale[b] = amax / 32767.0f;
        const __m256 inv = _mm256_set1_ps(amax > 0 ? 32767.0f / amax : 0.0f);
        __m256i total = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            // Round to nearest even (the default rounding mode); |a · inv| <= 32767.
            const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), inv));
            total = _mm256_add_epi32(total, v);
            const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
            _mm_storeu_si128((__m128i *)(q + b * 16 + 4 * j), _mm_or_si128(_mm_and_si128(lo, low16), _mm_slli_epi32(hi, 16)));
        }
        __m128i t = _mm_add_epi32(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
        zterm[b] = _mm_cvtsi128_si32(_mm_slli_epi32(t, 3));   // 8 Σ q, wrapping as the vector adds do
    }
}

// One block of `gemv_groups_i16`: the integer sums Σ q·a of the record's 8 rows at q. d03: nibbles
// 0 and 3; d16: nibble 1 times 16; d256: nibble 2 times 256.
AVX2 static inline __attribute__((always_inline)) __m256i q16_block_dot(const uint8_t *q, const int32_t *x) {
    const __m256i nibble0 = _mm256_set1_epi16(0x000F), nibble1 = _mm256_set1_epi16(0x00F0);
    const __m256i nibble2 = _mm256_set1_epi16(0x0F00);
    __m256i d03 = _mm256_setzero_si256(), d16 = d03, d256 = d03;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const __m256i w = _mm256_loadu_si256((const __m256i *)(q + 32 * j));
        const int32_t *xj = x + 4 * j;
        d03 = _mm256_add_epi32(d03, _mm256_madd_epi16(_mm256_and_si256(w, nibble0), _mm256_set1_epi32(xj[0])));
        d16 = _mm256_add_epi32(d16, _mm256_madd_epi16(_mm256_and_si256(w, nibble1), _mm256_set1_epi32(xj[1])));
        d256 = _mm256_add_epi32(d256, _mm256_madd_epi16(_mm256_and_si256(w, nibble2), _mm256_set1_epi32(xj[2])));
        d03 = _mm256_add_epi32(d03, _mm256_madd_epi16(_mm256_srli_epi16(w, 12), _mm256_set1_epi32(xj[3])));
    }
    return _mm256_add_epi32(d03, _mm256_add_epi32(_mm256_srai_epi32(d16, 4), _mm256_srai_epi32(d256, 8)));
}

AVX2 static inline __attribute__((always_inline)) void gemv_groups_i16_scales(const uint8_t *packed, const int f32,
        size_t blocks, const int32_t *aq, const float *ascale, const int32_t *zterm, size_t g0, size_t g1, float *y) {
#define Q16_DOT(q, b) q16_block_dot(q, aq + (b) * 16)
    Q4X8_GEMV_GROUPS(Q16_DOT)
#undef Q16_DOT
}

AVX2 static void gemv_groups_i16(const uint8_t *packed, int f32, size_t blocks, const int32_t *aq, const float *ascale,
                                 const int32_t *zterm, size_t g0, size_t g1, float *y) {
    Q4X8_WITH_CONSTANT_SCALES(gemv_groups_i16_scales, packed, f32, blocks, aq, ascale, zterm, g0, g1, y);
}

int qk_q16_quantize(const float *a, size_t blocks, void *out) {
    if (!qk_cpu_has_avx2_fma_f16c()) return 0;
    int32_t *q = out;
    quantize_activations16(a, blocks, q, (float *)(q + blocks * 16), q + blocks * 17);
    return 1;
}

// Several activation rows against the same weights (batched decode: one row per sequence). Each
// group's records (8 weight rows, ~4 KB at K = 896) are read from memory once and by every pass of
// up to `rows` activation rows from L1; the pass is `Q4X8_GEMV_ROWS_PASS` (q4x8_shared.h), with
// two integer accumulators per row (nibbles 0, 2 and 1, 3), each product pair `vpmaddwd` then an
// add. Every row's integer block sums are exact, so they equal `gemv_groups_i16`'s however the
// products are split, and its float epilogue is the same: each row's y is, bit for bit, what the
// single-row GEMV gives (whose floats the AVX-512 VNNI kernel gives too).
#define Q16_SUMS_MADD(q, B, dot) { \
        const __m256i nibble = _mm256_set1_epi16(0x000F); \
        __m256i da[8], db[8]; \
        for (int r = 0; r < rows; r++) da[r] = db[r] = _mm256_setzero_si256(); \
        _Pragma("unroll") \
        for (int j = 0; j < 4; j++) { \
            const __m256i w = _mm256_loadu_si256((const __m256i *)((q) + 32 * j)); \
            const __m256i w0 = _mm256_and_si256(w, nibble), w1 = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibble); \
            const __m256i w2 = _mm256_and_si256(_mm256_srli_epi16(w, 8), nibble), w3 = _mm256_srli_epi16(w, 12); \
            for (int r = 0; r < rows; r++) { \
                const int32_t *xj = x[r] + (B) * 16 + 4 * j; \
                da[r] = _mm256_add_epi32(da[r], _mm256_madd_epi16(w0, _mm256_set1_epi32(xj[0]))); \
                db[r] = _mm256_add_epi32(db[r], _mm256_madd_epi16(w1, _mm256_set1_epi32(xj[1]))); \
                da[r] = _mm256_add_epi32(da[r], _mm256_madd_epi16(w2, _mm256_set1_epi32(xj[2]))); \
                db[r] = _mm256_add_epi32(db[r], _mm256_madd_epi16(w3, _mm256_set1_epi32(xj[3]))); \
            } \
        } \
        for (int r = 0; r < rows; r++) dot[r] = _mm256_add_epi32(da[r], db[r]); \
    }
AVX2 static inline __attribute__((always_inline)) void gemv_i16_pass(const uint8_t *p, int f32, size_t blocks,
        const int32_t *const x[8], const int rows, float *const out[8]) {
    Q4X8_Q16_PASS(Q16_SUMS_MADD)
}

// Two rows a pass: 4 integer and 4 float accumulators, the 4 unpacked words, the mask and the
// scales fill the 16 registers.
Q4X8_MULTI_ROW_GEMV(AVX2, static, gemv_groups_i16_multi, gemv_i16_pass, 2, const int32_t *)

int qk_q4x8_gemv_q16_multi(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq, size_t row_bytes,
                           size_t m, size_t row_begin, size_t row_end, float *y, size_t ldy, int isa) {
    isa = qk_isa_clamp(isa);
    if (isa < QK_ISA_AVX2 || row_begin % 8 || row_end % 8) return 0;
    (isa >= QK_ISA_AVX512_WIDE && m > 1 ? q4x8_q16_wide : isa >= QK_ISA_AVX512_VNNI ? q4x8_gemv_q16_multi_vnni
     : isa == QK_ISA_AVX_VNNI ? q4x8_gemv_q16_multi_avxvnni : gemv_groups_i16_multi)(
        packed, f32_scales, blocks, aq, row_bytes, m, row_begin / 8, row_end / 8, y, ldy);
    return 1;
}

int qk_q4x8_gemv_q16(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq,
                     size_t row_begin, size_t row_end, float *y, int isa) {
    isa = qk_isa_clamp(isa);
    if (isa < QK_ISA_AVX2 || row_begin % 8 || row_end % 8) return 0;
    const int32_t *q = aq;
    (isa >= QK_ISA_AVX512_VNNI ? q4x8_gemv_q16_vnni : isa == QK_ISA_AVX_VNNI ? q4x8_gemv_q16_avxvnni : gemv_groups_i16)(packed, f32_scales, blocks, q, (const float *)(q + blocks * 16), q + blocks * 17,
                    row_begin / 8, row_end / 8, y);
    return 1;
}

// --- GEMM -------------------------------------------------------------------------------------
//
// C = A · dequantize(B)ᵀ for M > 2 (prefill) through `q4_gemm` (q4_shared.h): B dequantized a
// panel of 16 columns (two row groups) × 256 deep at a time into an L1 buffer, k-major.

// Block b of one group into panel[k * NR + col0 + r] for the block's 32 k.
AVX2 static void panel_block(const uint8_t *rec, int f32, float *panel, size_t col0) {
    const __m256 s = record_scales(rec, f32), o = _mm256_mul_ps(s, _mm256_set1_ps(8.0f));
    const __m256i nibble = _mm256_set1_epi32(0xF);
    const uint8_t *q = rec + (f32 ? 32 : 16);
    for (int j = 0; j < 4; j++) {
        __m256i w = _mm256_loadu_si256((const __m256i *)(q + 32 * j));
        for (int i = 0; i < 8; i++) {
            __m256 v = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(w, 4 * i), nibble));
            _mm256_store_ps(panel + (size_t)(8 * j + i) * Q4_NR + col0, _mm256_fmsub_ps(v, s, o));
        }
    }
}

// The packed matrix as `q4_gemm` sees it.
typedef struct { const uint8_t *packed; int f32; size_t blocks; } q4x8_weights;

// Block `block` of the (one or two) row groups of C's columns n..n+nr.
AVX2 static void q4x8_fill(const void *weights, size_t n, size_t nr, size_t block, float *panel) {
    const q4x8_weights *w = weights;
    const size_t rec = record_bytes(w->f32);
    panel_block(w->packed + ((n / 8) * w->blocks + block) * rec, w->f32, panel, 0);
    if (nr > 8) panel_block(w->packed + ((n / 8 + 1) * w->blocks + block) * rec, w->f32, panel, 8);
}

int qk_q4x8_gemm(const uint8_t *packed, int f32_scales, size_t blocks, const float *ap, size_t m,
                 size_t strip_begin, size_t strip_end, size_t col_begin, size_t col_end, float *c, size_t ldc, int isa) {
    isa = qk_isa_clamp(isa);
    if (isa < QK_ISA_AVX2 || col_begin % 8 || col_end % 8) return 0;
    if (m == 0 || col_begin >= col_end || strip_begin >= strip_end) return 1;
    if (isa >= QK_ISA_AVX512) {
        q4x8_gemm_avx512(packed, f32_scales, blocks, ap, m, strip_begin, strip_end, col_begin, col_end, c, ldc);
        return 1;
    }
    const q4x8_weights w = { packed, f32_scales, blocks };
    q4_gemm_run(q4x8_fill, q4_kernel, &w, blocks, ap, m, strip_begin, strip_end, col_begin, col_end, c, ldc);
    return 1;
}

#elif !defined(__aarch64__)   // arm64: q4x8_neon.c

int qk_q4x8_pack(const uint8_t *d, const uint16_t *s16, const float *s32, size_t b, size_t g0, size_t g1, uint8_t *o) {
    (void)d; (void)s16; (void)s32; (void)b; (void)g0; (void)g1; (void)o; return 0;
}
int qk_q4x8_gemv(const uint8_t *p, int f, size_t b, const float *a, size_t r0, size_t r1, float *y) {
    (void)p; (void)f; (void)b; (void)a; (void)r0; (void)r1; (void)y; return 0;
}
int qk_q4x8_gemv_multi(const uint8_t *p, int f, size_t b, const float *a, size_t lda, size_t m, size_t r0, size_t r1,
                       float *y, size_t ldy) {
    (void)p; (void)f; (void)b; (void)a; (void)lda; (void)m; (void)r0; (void)r1; (void)y; (void)ldy; return 0;
}
int qk_q4x8_gemm(const uint8_t *p, int f, size_t b, const float *ap, size_t m, size_t s0, size_t s1, size_t c0,
                 size_t c1, float *c, size_t ldc, int isa) {
    (void)isa; (void)p; (void)f; (void)b; (void)ap; (void)m; (void)s0; (void)s1; (void)c0; (void)c1; (void)c; (void)ldc; return 0;
}
int qk_q16_quantize(const float *a, size_t blocks, void *out) { (void)a; (void)blocks; (void)out; return 0; }
int qk_q4x8_gemv_q16(const uint8_t *p, int f, size_t b, const void *aq, size_t r0, size_t r1, float *y, int isa) {
    (void)isa; (void)p; (void)f; (void)b; (void)aq; (void)r0; (void)r1; (void)y; return 0;
}
int qk_q4x8_gemv_q16_multi(const uint8_t *p, int f, size_t b, const void *aq, size_t rb, size_t m, size_t r0, size_t r1,
                           float *y, size_t ldy, int isa) {
    (void)isa; (void)p; (void)f; (void)b; (void)aq; (void)rb; (void)m; (void)r0; (void)r1; (void)y; (void)ldy; return 0;
}
int qk_q8_quantize(const float *a, size_t blocks, void *out) { (void)a; (void)blocks; (void)out; return 0; }
int qk_q4x8_gemv_q8(const uint8_t *p, int f, size_t b, const void *aq, size_t r0, size_t r1, float *y, int isa) {
    (void)isa; (void)p; (void)f; (void)b; (void)aq; (void)r0; (void)r1; (void)y; return 0;
}
int qk_q4x8_gemv_q8_multi(const uint8_t *p, int f, size_t b, const void *aq, size_t rb, size_t m, size_t r0, size_t r1,
                          float *y, size_t ldy, int isa) {
    (void)isa; (void)p; (void)f; (void)b; (void)aq; (void)rb; (void)m; (void)r0; (void)r1; (void)y; (void)ldy; return 0;
}
int qk_q4x8_gemm_q8(const uint8_t *p, int f, size_t b, const void *aq, size_t m, size_t c0, size_t c1, float *c, size_t ldc,
                    int isa) {
    (void)isa; (void)p; (void)f; (void)b; (void)aq; (void)m; (void)c0; (void)c1; (void)c; (void)ldc; return 0;
}

#endif
