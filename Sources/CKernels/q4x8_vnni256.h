// The q4x8 integer kernels with VNNI in 256-bit registers, included once per encoding:
// q4x8_avx512.c (EVEX: AVX-512 VNNI + VL, 32 registers) and q4x8_avxvnni.c (VEX: AVX-VNNI, the
// CPUs with VNNI but no AVX-512, 16 registers). The includer defines
//   VNNI_ATTR         the functions' target attribute
//   VNNI_DPBUSD, VNNI_DPWSSD   the 256-bit `vpdpbusd` / `vpdpwssd` intrinsics of its encoding
//   VNNI_NAME(name)   the exported name of kernel `name` (q4x8_avx512.h declares them)
//   VNNI_MULTI_ROWS_Q8, VNNI_MULTI_ROWS_Q16   activation rows per pass of the multi-row GEMVs
//                     (int8, int16 activations: what the registers allow)
//   VNNI_GEMM_SPLIT   1: the int8 GEMM keeps low- and high-nibble sums apart (two chains a row)
// Private to CKernels; x86-64 only. Every instance computes the AVX2 kernels' floats.

#include "q4x8_shared.h"

#define VNNI_MULTI_ROW_GEMV(NAME, PASS, ROWS, XTYPE) Q4X8_MULTI_ROW_GEMV(VNNI_ATTR, , NAME, PASS, ROWS, XTYPE)

// --- integer products with VNNI ------------------------------------------------------------------
//
// The AVX2 kernels' integer sums, one instruction per step instead of two or three: `vpdpbusd`
// (unsigned weight bytes × signed int8 activations, four products added into each int32 lane)
// replaces `vpmaddubsw` + `vpaddw` (+ the block's `vpmaddwd` widening), `vpdpwssd` (int16 pairs
// into int32) replaces `vpmaddwd` + `vpaddd`. The sums are exact integers either way (no
// saturation in the AVX2 forms: see q4x8.c), so the results are identical. Two or more
// accumulators per row keep the dependency chains short (5-cycle latency).

// One block of `q4x8_gemv_q8_vnni`. One accumulator per word: chains of two `vpdpbusd`, not
// eight (a GEMV has no other rows to hide the latency behind).
VNNI_ATTR static inline __attribute__((always_inline)) __m256i q8_block_dot_vnni(const uint8_t *q, const int32_t *x) {
    const __m256i nibbles = _mm256_set1_epi8(0x0F);
    __m256i d[4];
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const __m256i w = _mm256_loadu_si256((const __m256i *)(q + 32 * j));
        const __m256i lo = _mm256_and_si256(w, nibbles), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibbles);
        d[j] = VNNI_DPBUSD(_mm256_setzero_si256(), lo, _mm256_set1_epi32(x[2 * j]));
        d[j] = VNNI_DPBUSD(d[j], hi, _mm256_set1_epi32(x[2 * j + 1]));
    }
    return _mm256_add_epi32(_mm256_add_epi32(d[0], d[1]), _mm256_add_epi32(d[2], d[3]));
}

VNNI_ATTR static inline __attribute__((always_inline)) void gemv_q8_groups_vnni(const uint8_t *packed, const int f32,
        size_t blocks, const int8_t *aq, const float *ascale, const int32_t *zterm, size_t g0, size_t g1, float *y) {
#define Q8_DOT(q, b) q8_block_dot_vnni(q, (const int32_t *)(aq + (b) * 32))
    Q4X8_GEMV_GROUPS(Q8_DOT)
#undef Q8_DOT
}

VNNI_ATTR void VNNI_NAME(q4x8_gemv_q8)(const uint8_t *packed, int f32, size_t blocks, const int8_t *aq, const float *ascale,
                                   const int32_t *zterm, size_t g0, size_t g1, float *y) {
    Q4X8_WITH_CONSTANT_SCALES(gemv_q8_groups_vnni, packed, f32, blocks, aq, ascale, zterm, g0, g1, y);
}

// q4x8.c's `gemm_group_i8x4` with VNNI (run by `q4x8_gemm_q8_drive`): four activation rows per
// pass over one row group's records; row i's activations at x[i] (blocks × 32 bytes, then scales
// and zero-point terms), its 8 results to out[i].
VNNI_ATTR void VNNI_NAME(q4x8_gemm_group_i8x4)(const uint8_t *rec0, int f32, size_t blocks, const int8_t *const x[4],
                                           float *const out[4]) {
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16;
    const __m256i nibbles = _mm256_set1_epi8(0x0F);
    __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *r = rec0 + b * rec;
        prefetch_record(r);
        const uint8_t *q = r + sbytes;
        const int32_t *p[4];
        for (int i = 0; i < 4; i++) p[i] = (const int32_t *)(x[i] + b * 32);
        __m256i lo_sum[4], hi_sum[4];
        for (int i = 0; i < 4; i++) lo_sum[i] = hi_sum[i] = _mm256_setzero_si256();
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)(q + 32 * j));
            const __m256i lo = _mm256_and_si256(w, nibbles), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibbles);
#pragma unroll
            for (int i = 0; i < 4; i++) {
                lo_sum[i] = VNNI_DPBUSD(lo_sum[i], lo, _mm256_set1_epi32(p[i][2 * j]));
                if (VNNI_GEMM_SPLIT) hi_sum[i] = VNNI_DPBUSD(hi_sum[i], hi, _mm256_set1_epi32(p[i][2 * j + 1]));
                else lo_sum[i] = VNNI_DPBUSD(lo_sum[i], hi, _mm256_set1_epi32(p[i][2 * j + 1]));
            }
        }
        const __m256 ws = record_scales(r, f32);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            // The GEMVs' epilogue: a row's products as decode computes them.
            acc[i] = block_accumulate(VNNI_GEMM_SPLIT ? _mm256_add_epi32(lo_sum[i], hi_sum[i]) : lo_sum[i],
                                      ((const int32_t *)(x[i] + blocks * 36))[b],
                                      (const float *)(x[i] + blocks * 32) + b, ws, acc[i]);
        }
    }
    for (int i = 0; i < 4; i++) _mm256_storeu_ps(out[i], acc[i]);
}

// One block of `q4x8_gemv_q16_vnni`: the integer sums Σ q·a of the record's 8 rows. As q4x8.c:
// nibble 1 summed times 16, nibble 2 times 256, shifted back per block (the sums are exact
// multiples of 16 and 256 however they are split); accumulators for even and odd words, chains
// of two `vpdpwssd` each.
VNNI_ATTR static inline __attribute__((always_inline)) __m256i q16_block_dot_vnni(const uint8_t *q, const int32_t *x) {
    const __m256i nibble0 = _mm256_set1_epi16(0x000F), nibble1 = _mm256_set1_epi16(0x00F0);
    const __m256i nibble2 = _mm256_set1_epi16(0x0F00);
    __m256i d03[2], d16[2], d256[2];
    for (int e = 0; e < 2; e++) d03[e] = d16[e] = d256[e] = _mm256_setzero_si256();
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const __m256i w = _mm256_loadu_si256((const __m256i *)(q + 32 * j));
        const int32_t *xj = x + 4 * j;
        __m256i *a03 = &d03[j & 1];
        *a03 = VNNI_DPWSSD(*a03, _mm256_and_si256(w, nibble0), _mm256_set1_epi32(xj[0]));
        d16[j & 1] = VNNI_DPWSSD(d16[j & 1], _mm256_and_si256(w, nibble1), _mm256_set1_epi32(xj[1]));
        d256[j & 1] = VNNI_DPWSSD(d256[j & 1], _mm256_and_si256(w, nibble2), _mm256_set1_epi32(xj[2]));
        *a03 = VNNI_DPWSSD(*a03, _mm256_srli_epi16(w, 12), _mm256_set1_epi32(xj[3]));
    }
    return _mm256_add_epi32(
        _mm256_add_epi32(d03[0], d03[1]),
        _mm256_add_epi32(_mm256_srai_epi32(_mm256_add_epi32(d16[0], d16[1]), 4),
                         _mm256_srai_epi32(_mm256_add_epi32(d256[0], d256[1]), 8)));
}

VNNI_ATTR static inline __attribute__((always_inline)) void gemv_q16_groups_vnni(const uint8_t *packed, const int f32,
        size_t blocks, const int32_t *aq, const float *ascale, const int32_t *zterm, size_t g0, size_t g1, float *y) {
#define Q16_DOT(q, b) q16_block_dot_vnni(q, aq + (b) * 16)
    Q4X8_GEMV_GROUPS(Q16_DOT)
#undef Q16_DOT
}

VNNI_ATTR void VNNI_NAME(q4x8_gemv_q16)(const uint8_t *packed, int f32, size_t blocks, const int32_t *aq,
                                    const float *ascale, const int32_t *zterm, size_t g0, size_t g1, float *y) {
    Q4X8_WITH_CONSTANT_SCALES(gemv_q16_groups_vnni, packed, f32, blocks, aq, ascale, zterm, g0, g1, y);
}

// `gemv_groups_i16_multi` (q4x8.c) with `vpdpwssd`: with 32 registers (EVEX) eight activation rows
// per pass, with 16 (VEX) four (one integer accumulator per row, a chain of 16 `vpdpwssd` per block; 8 float
// accumulators (16 until session 26: two per row); the 4 unpacked words), so a batch of 8 reads
// each group's records once. Each
// row's exact integer block sums and float epilogue are the AVX2 kernel's, so its floats too.
// Four rows a pass with two accumulators each were the form until session 19: in the C harness
// with the weights in cache the two are alike (2.94 against 2.95 ns per row and block; session 13
// measured 3.15 against 3.33 there), but in the model, whose weights come from memory, eight rows
// a pass gave `decode-speed --batch 8` 1.01–1.04× (4 alternations, Zen 4). (Two row groups per
// 512-bit register were tried in session 13: on Zen 4, which runs them as two 256-bit halves, 4
// rows took 24.7 ms per decode step of the 0.5B against 19.0 ms for the four-row pass.)
#define Q16_SUMS_VNNI(q, B, dot) { \
        const __m256i nibble = _mm256_set1_epi16(0x000F); \
        for (int r = 0; r < rows; r++) dot[r] = _mm256_setzero_si256(); \
        _Pragma("unroll") \
        for (int j = 0; j < 4; j++) { \
            const __m256i w = _mm256_loadu_si256((const __m256i *)((q) + 32 * j)); \
            const __m256i w0 = _mm256_and_si256(w, nibble), w1 = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibble); \
            const __m256i w2 = _mm256_and_si256(_mm256_srli_epi16(w, 8), nibble), w3 = _mm256_srli_epi16(w, 12); \
            for (int r = 0; r < rows; r++) { \
                const int32_t *xj = x[r] + (B) * 16 + 4 * j; \
                dot[r] = VNNI_DPWSSD(dot[r], w0, _mm256_set1_epi32(xj[0])); \
                dot[r] = VNNI_DPWSSD(dot[r], w1, _mm256_set1_epi32(xj[1])); \
                dot[r] = VNNI_DPWSSD(dot[r], w2, _mm256_set1_epi32(xj[2])); \
                dot[r] = VNNI_DPWSSD(dot[r], w3, _mm256_set1_epi32(xj[3])); \
            } \
        } \
    }
VNNI_ATTR static inline __attribute__((always_inline)) void gemv_i16_pass_vnni(const uint8_t *p, int f32, size_t blocks,
        const int32_t *const x[8], const int rows, float *const out[8]) {
    Q4X8_Q16_PASS(Q16_SUMS_VNNI)
}

VNNI_MULTI_ROW_GEMV(VNNI_NAME(q4x8_gemv_q16_multi), gemv_i16_pass_vnni, VNNI_MULTI_ROWS_Q16, const int32_t *)

// `gemv_groups_i8_multi` (q4x8.c) with `vpdpbusd`: with 32 registers (EVEX) eight activation rows
// per pass, with 16 (VEX) four (one integer accumulator per row, 8 float ones, the 2 unpacked words), so a batch of 8
// reads each group's records once: with four rows a pass, the second pass found a group of many
// blocks (21.9 KB at K = 4,864) out of L1 and its first one waited on memory (C harness, one
// thread, 8 rows, weights streamed from memory, ns per row and block: K = 4,864 2.36–2.41 → 1.86–
// 1.88; K = 896 1.90 → 1.93; in cache 1.75 either way). Each row's exact integer block sums and
// float epilogue are the single-row kernel's, so its floats too.
#define Q8_SUMS_VNNI(q, B, dot) { \
        const __m256i nibbles = _mm256_set1_epi8(0x0F); \
        for (int r = 0; r < rows; r++) dot[r] = _mm256_setzero_si256(); \
        _Pragma("unroll") \
        for (int j = 0; j < 4; j++) { \
            const __m256i w = _mm256_loadu_si256((const __m256i *)((q) + 32 * j)); \
            const __m256i lo = _mm256_and_si256(w, nibbles), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nibbles); \
            for (int r = 0; r < rows; r++) { \
                const int32_t *xr = (const int32_t *)(x[r] + (B) * 32); \
                dot[r] = VNNI_DPBUSD(dot[r], lo, _mm256_set1_epi32(xr[2 * j])); \
                dot[r] = VNNI_DPBUSD(dot[r], hi, _mm256_set1_epi32(xr[2 * j + 1])); \
            } \
        } \
    }
VNNI_ATTR static inline __attribute__((always_inline)) void gemv_i8_pass_vnni(const uint8_t *p, int f32, size_t blocks,
        const int8_t *const x[8], const int rows, float *const out[8]) {
    Q4X8_Q8_PASS(Q8_SUMS_VNNI)
}

VNNI_MULTI_ROW_GEMV(VNNI_NAME(q4x8_gemv_q8_multi), gemv_i8_pass_vnni, VNNI_MULTI_ROWS_Q8, const int8_t *)

