#include "qwen_kernels.h"
#include "cpu.h"

// The q4x8-layout kernels (q4x8.c) on arm64. The layout is the same on every CPU (a record's
// word j of the 8 rows is 32 bytes: two 128-bit loads here), and so are the floats: each kernel
// performs its AVX2 twin's operations in the same order, and the integer products are exact
// sums whatever instructions add them (q4_neon.h). Levels (cpu.c): NEON for every kernel; the
// int8 GEMV and GEMM use `sdot` at QK_ISA_NEON_DOTPROD, and the int8 GEMM `smmla` at
// QK_ISA_NEON_I8MM.

#if defined(__aarch64__)
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "q4_neon.h"
#include "q4x8_layout.h"

// The record's 8 weight scales.
static inline f32x8 record_scales(const uint8_t *rec, int f32) {
    return f32 ? f32x8_load((const float *)rec) : f32x8_load_half((const uint16_t *)rec);
}

// Word j of the record's 8 rows.
static inline u32x8 record_word(const uint8_t *q, int j) {
    return (u32x8){ vld1q_u32((const uint32_t *)(q + 32 * j)), vld1q_u32((const uint32_t *)(q + 32 * j + 16)) };
}

static inline void prefetch_record(const uint8_t *r) {
    __builtin_prefetch(r + PREFETCH_AHEAD);
    __builtin_prefetch(r + PREFETCH_AHEAD + 64);
    __builtin_prefetch(r + PREFETCH_AHEAD + 128);
}

// Block b of rows g*8..g*8+7 into one record: scales, then word j of row r at byte 32j + 4r.
// Load-time only, so plain C.
static void pack_groups(const uint8_t *data, const uint16_t *sf16, const float *sf32, size_t blocks, size_t g0,
                        size_t g1, uint8_t *out) {
    const size_t rec = record_bytes(sf16 == NULL), sbytes = sf16 ? 16 : 32, row_bytes = blocks * 16;
    for (size_t g = g0; g < g1; g++) {
        for (size_t b = 0; b < blocks; b++) {
            uint8_t *dst = out + ((g - g0) * blocks + b) * rec;
            for (size_t r = 0; r < 8; r++) {
                const size_t row = g * 8 + r;
                if (sf16) memcpy(dst + 2 * r, sf16 + row * blocks + b, 2);
                else memcpy(dst + 4 * r, sf32 + row * blocks + b, 4);
                for (size_t j = 0; j < 4; j++) memcpy(dst + sbytes + 32 * j + 4 * r, data + row * row_bytes + b * 16 + 4 * j, 4);
            }
        }
    }
}

int qk_q4x8_pack(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32, size_t blocks,
                 size_t group_begin, size_t group_end, uint8_t *out) {
    if (qk_isa() < QK_ISA_NEON || (scales_f16 == NULL) == (scales_f32 == NULL)) return 0;
    pack_groups(data, scales_f16, scales_f32, blocks, group_begin, group_end, out);
    return 1;
}

// --- float32 GEMV ---------------------------------------------------------------------------------

static void gemv_groups(const uint8_t *packed, int f32, size_t blocks, const float *xs, const float *xsum, size_t g0,
                        size_t g1, float *y) {
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16;
    for (size_t g = g0; g < g1; g++) {
        const uint8_t *p = packed + g * blocks * rec;
        f32x8 acc[2] = { f32x8_zero(), f32x8_zero() };
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *r = p + b * rec;
            prefetch_record(r);
            const u32x8 w[4] = { record_word(r + sbytes, 0), record_word(r + sbytes, 1), record_word(r + sbytes, 2),
                                 record_word(r + sbytes, 3) };
            const f32x8 v = f32x8_fnmadd(f32x8_dup(8.0f), f32x8_dup(xsum[b]), q4_block_dot8(w, xs + b * 32));
            acc[b & 1] = f32x8_fmadd(v, record_scales(r, f32), acc[b & 1]);
        }
        f32x8_store(y + g * 8, f32x8_add(acc[0], acc[1]));
    }
}

int qk_q4x8_gemv(const uint8_t *packed, int f32_scales, size_t blocks, const float *a,
                 size_t row_begin, size_t row_end, float *y) {
    if (qk_isa() < QK_ISA_NEON || row_begin % 8 || row_end % 8) return 0;
    float stack[33 * 64];
    float *xs = blocks <= 64 ? stack : malloc(blocks * 33 * sizeof(float));
    if (!xs) return 0;
    q4_prescale_activations(a, blocks, xs, xs + blocks * 32);
    gemv_groups(packed, f32_scales, blocks, xs, xs + blocks * 32, row_begin / 8, row_end / 8, y);
    if (xs != stack) free(xs);
    return 1;
}

// Several activation rows: row by row through `qk_q4x8_gemv` (the same floats as alone; the AVX2
// build shares each weight's conversion between two rows).
int qk_q4x8_gemv_multi(const uint8_t *packed, int f32_scales, size_t blocks, const float *a, size_t lda, size_t m,
                       size_t row_begin, size_t row_end, float *y, size_t ldy) {
    for (size_t i = 0; i < m; i++)
        if (!qk_q4x8_gemv(packed, f32_scales, blocks, a + i * lda, row_begin, row_end, y + i * ldy)) return 0;
    return 1;
}

// --- integer products: shared pieces ----------------------------------------------------------------

// max |x[i]| over a block of 32; NaN when one of them is NaN (q4x8.c's `block_absmax`).
static inline float block_absmax(const float *x) {
    float32x4_t m = vdupq_n_f32(0.0f);
    uint32x4_t nan = vdupq_n_u32(0);
    for (int i = 0; i < 8; i++) {
        const float32x4_t v = vld1q_f32(x + 4 * i);
        nan = vorrq_u32(nan, vmvnq_u32(vceqq_f32(v, v)));
        m = vmaxq_f32(m, vabsq_f32(v));
    }
    return vmaxvq_u32(nan) ? NAN : vmaxvq_f32(m);
}

// The end of a block of the integer GEMVs (q4x8_shared.h's `block_accumulate`): the 8 rows'
// integer sums less the activations' zero-point term (8 × their sum, stored by the quantizer),
// times the activation scale, times the weight scales into the accumulator (one per row, the
// blocks in order, as the int8 GEMM adds them).
static inline f32x8 block_epilogue(int32x4_t dot_lo, int32x4_t dot_hi, int32_t zterm, float ascale, f32x8 ws, f32x8 acc) {
    const int32x4_t z = vdupq_n_s32(zterm);
    const f32x8 d = { vcvtq_f32_s32(vsubq_s32(dot_lo, z)), vcvtq_f32_s32(vsubq_s32(dot_hi, z)) };
    return f32x8_fmadd(f32x8_mul(d, f32x8_dup(ascale)), ws, acc);
}

// --- int8 activations (accuracy level 4) ----------------------------------------------------------
//
// As q4x8.c: activations quantized per block of 32 to int8 (scale max|a| / 127, rounded half away
// from zero: `fcvtas`, which also gives 0 for NaN as x86 does explicitly), laid out so that the
// 4 bytes at 8j are a[8j + 0, 2, 4, 6] and at 8j + 4 a[8j + 1, 3, 5, 7]: the weights of the low
// and high nibbles of word j. Within a 32-bit lane (a row) the four byte products then add into
// the lane: `sdot` does it in one instruction; plain NEON multiplies to int16 (`smlal`: 8
// products of at most 15 · 127 per lane and block, far from overflow) and adds pairs.

static void quantize_activations8(const float *a, size_t blocks, int8_t *q, float *scale, int32_t *zterm) {
    for (size_t b = 0; b < blocks; b++) {
        const float *x = a + b * 32;
        const float amax = block_absmax(x);
        scale[b] = amax / 127.0f;
        const float inv = amax > 0 ? 127.0f / amax : 0.0f;
        int32x4_t total = vdupq_n_s32(0);
        for (int j = 0; j < 4; j++) {
            const int32x4_t lo = vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + 8 * j), inv));
            const int32x4_t hi = vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + 8 * j + 4), inv));
            total = vaddq_s32(total, vaddq_s32(lo, hi));
            // Evens then odds of the 8 values, narrowed to bytes (|q| <= 127).
            const int32x4_t evens = vuzp1q_s32(lo, hi), odds = vuzp2q_s32(lo, hi);
            const int16x8_t pair = vcombine_s16(vmovn_s32(evens), vmovn_s32(odds));
            vst1_s8(q + b * 32 + 8 * j, vmovn_s16(pair));
        }
        zterm[b] = vaddvq_s32(vshlq_n_s32(total, 3));   // 8 Σ q
    }
}

int qk_q8_quantize(const float *a, size_t blocks, void *out) {
    if (qk_isa() < QK_ISA_NEON) return 0;
    int8_t *q = out;
    quantize_activations8(a, blocks, q, (float *)(q + blocks * 32), (int32_t *)(q + blocks * 36));
    return 1;
}

// The integer sums of one block of a record (words at q) against activation block x (32 bytes),
// rows 0-3 and 4-7; `DOT(acc, w, x4)` adds the 4-byte products of each lane of w and x4.
#define Q8_BLOCK_DOTS(DOT, q, x, d_lo, d_hi) do { \
        const uint8x16_t nibbles = vdupq_n_u8(0x0F); \
        _Pragma("unroll") \
        for (int j = 0; j < 4; j++) { \
            const uint8x16_t w0 = vld1q_u8((q) + 32 * j), w1 = vld1q_u8((q) + 32 * j + 16); \
            const int8x16_t xe = vreinterpretq_s8_s32(vld1q_dup_s32((const int32_t *)((x) + 8 * j))); \
            const int8x16_t xo = vreinterpretq_s8_s32(vld1q_dup_s32((const int32_t *)((x) + 8 * j + 4))); \
            d_lo = DOT(d_lo, vreinterpretq_s8_u8(vandq_u8(w0, nibbles)), xe); \
            d_hi = DOT(d_hi, vreinterpretq_s8_u8(vandq_u8(w1, nibbles)), xe); \
            d_lo = DOT(d_lo, vreinterpretq_s8_u8(vshrq_n_u8(w0, 4)), xo); \
            d_hi = DOT(d_hi, vreinterpretq_s8_u8(vshrq_n_u8(w1, 4)), xo); \
        } \
    } while (0)

// Plain NEON: the lane sums of 4 byte products through int16 (`smull`, `smull2`) and pairwise adds.
static inline int32x4_t dot4_neon(int32x4_t acc, int8x16_t w, int8x16_t x) {
    const int16x8_t p01 = vmull_s8(vget_low_s8(w), vget_low_s8(x)), p23 = vmull_high_s8(w, x);
    return vaddq_s32(acc, vpaddq_s32(vpaddlq_s16(p01), vpaddlq_s16(p23)));
}

Q4_DOTPROD static inline int32x4_t dot4_sdot(int32x4_t acc, int8x16_t w, int8x16_t x) { return vdotq_s32(acc, w, x); }

// The int8 GEMV over row groups [g0, g1); `DOT` one of the two above.
#define GEMV_Q8_BODY(DOT) \
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16; \
    for (size_t g = g0; g < g1; g++) { \
        const uint8_t *p = packed + g * blocks * rec; \
        f32x8 acc = f32x8_zero(); \
        for (size_t b = 0; b < blocks; b++) { \
            const uint8_t *r = p + b * rec; \
            prefetch_record(r); \
            int32x4_t d_lo = vdupq_n_s32(0), d_hi = d_lo; \
            Q8_BLOCK_DOTS(DOT, r + sbytes, aq + b * 32, d_lo, d_hi); \
            acc = block_epilogue(d_lo, d_hi, zterm[b], ascale[b], record_scales(r, f32), acc); \
        } \
        f32x8_store(y + g * 8, acc); \
    }

static void gemv_groups_i8(const uint8_t *packed, int f32, size_t blocks, const int8_t *aq, const float *ascale,
                           const int32_t *zterm, size_t g0, size_t g1, float *y) {
    GEMV_Q8_BODY(dot4_neon)
}

Q4_DOTPROD static void gemv_groups_i8_sdot(const uint8_t *packed, int f32, size_t blocks, const int8_t *aq,
                                           const float *ascale, const int32_t *zterm, size_t g0, size_t g1, float *y) {
    GEMV_Q8_BODY(dot4_sdot)
}

int qk_q4x8_gemv_q8(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq,
                    size_t row_begin, size_t row_end, float *y, int isa) {
    isa = qk_isa_clamp(isa);
    if (isa < QK_ISA_NEON || row_begin % 8 || row_end % 8) return 0;
    const int8_t *q = aq;
    (isa >= QK_ISA_NEON_DOTPROD ? gemv_groups_i8_sdot : gemv_groups_i8)(packed, f32_scales, blocks, q,
        (const float *)(q + blocks * 32), (const int32_t *)(q + blocks * 36), row_begin / 8, row_end / 8, y);
    return 1;
}

// Several activation rows against the same weights (batched decode with int8 activations): one
// pass over row group p for up to four rows x[0..rows) (each quantized by `qk_q8_quantize`), row
// r's 8 results to out[r]; the nibbles split once per pass for all its rows. The integer block
// sums are exact and the epilogue is `block_epilogue`'s, the blocks in order: each row's
// floats are `gemv_groups_i8`'s (`_sdot`'s) for that row alone.
#define GEMV_Q8_PASS_BODY(DOT) \
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16; \
    const uint8x16_t nibbles = vdupq_n_u8(0x0F); \
    f32x8 acc[8]; \
    for (int r = 0; r < rows; r++) acc[r] = f32x8_zero(); \
    for (size_t b = 0; b < blocks; b++) { \
        const uint8_t *rb = p + b * rec, *q = rb + sbytes; \
        prefetch_record(rb); \
        int32x4_t d_lo[8], d_hi[8]; \
        for (int r = 0; r < rows; r++) d_lo[r] = d_hi[r] = vdupq_n_s32(0); \
        for (int j = 0; j < 4; j++) { \
            const uint8x16_t w0 = vld1q_u8(q + 32 * j), w1 = vld1q_u8(q + 32 * j + 16); \
            const int8x16_t lo0 = vreinterpretq_s8_u8(vandq_u8(w0, nibbles)), lo1 = vreinterpretq_s8_u8(vandq_u8(w1, nibbles)); \
            const int8x16_t hi0 = vreinterpretq_s8_u8(vshrq_n_u8(w0, 4)), hi1 = vreinterpretq_s8_u8(vshrq_n_u8(w1, 4)); \
            for (int r = 0; r < rows; r++) { \
                const int8_t *xr = x[r] + b * 32; \
                const int8x16_t xe = vreinterpretq_s8_s32(vld1q_dup_s32((const int32_t *)(xr + 8 * j))); \
                const int8x16_t xo = vreinterpretq_s8_s32(vld1q_dup_s32((const int32_t *)(xr + 8 * j + 4))); \
                d_lo[r] = DOT(DOT(d_lo[r], lo0, xe), hi0, xo); \
                d_hi[r] = DOT(DOT(d_hi[r], lo1, xe), hi1, xo); \
            } \
        } \
        const f32x8 ws = record_scales(rb, f32); \
        for (int r = 0; r < rows; r++) { \
            const float *ascale = (const float *)(x[r] + blocks * 32); \
            const int32_t *zterm = (const int32_t *)(x[r] + blocks * 36); \
            acc[r] = block_epilogue(d_lo[r], d_hi[r], zterm[b], ascale[b], ws, acc[r]); \
        } \
    } \
    for (int r = 0; r < rows; r++) f32x8_store(out[r], acc[r]);

static inline __attribute__((always_inline)) void gemv_i8_pass(const uint8_t *p, int f32, size_t blocks,
        const int8_t *const x[8], const int rows, float *const out[8]) {
    GEMV_Q8_PASS_BODY(dot4_neon)
}

Q4_DOTPROD static inline __attribute__((always_inline)) void gemv_i8_pass_sdot(const uint8_t *p, int f32, size_t blocks,
        const int8_t *const x[8], const int rows, float *const out[8]) {
    GEMV_Q8_PASS_BODY(dot4_sdot)
}

// m activation rows (row_bytes apart) against row groups [g0, g1), four rows per pass.
static void gemv_groups_i8_multi(const uint8_t *packed, int f32, size_t blocks, const uint8_t *aq, size_t row_bytes,
                                 size_t m, size_t g0, size_t g1, float *y, size_t ldy) {
    Q4X8_MULTI_ROW_GROUPS(gemv_i8_pass, 4, const int8_t *)
}

Q4_DOTPROD static void gemv_groups_i8_multi_sdot(const uint8_t *packed, int f32, size_t blocks, const uint8_t *aq,
                                                 size_t row_bytes, size_t m, size_t g0, size_t g1, float *y, size_t ldy) {
    Q4X8_MULTI_ROW_GROUPS(gemv_i8_pass_sdot, 4, const int8_t *)
}

int qk_q4x8_gemv_q8_multi(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq, size_t row_bytes,
                          size_t m, size_t row_begin, size_t row_end, float *y, size_t ldy, int isa) {
    isa = qk_isa_clamp(isa);
    if (isa < QK_ISA_NEON || row_begin % 8 || row_end % 8) return 0;
    (isa >= QK_ISA_NEON_DOTPROD ? gemv_groups_i8_multi_sdot : gemv_groups_i8_multi)(packed, f32_scales, blocks, aq,
        row_bytes, m, row_begin / 8, row_end / 8, y, ldy);
    return 1;
}

// The int8 GEMM's group kernel (q4x8.c's `gemm_group_i8x4`): four activation rows against one
// row group; per row one float accumulator over the blocks, the GEMVs' `block_epilogue`.
static inline void gemm_q8_epilogue(const int32x4_t d[4][2], const int8_t *const x[4], size_t blocks, size_t b, f32x8 ws,
                                    f32x8 acc[4]) {
    for (int i = 0; i < 4; i++) {
        const float *scale = (const float *)(x[i] + blocks * 32);
        const int32_t *zterm = (const int32_t *)(x[i] + blocks * 36);
        acc[i] = block_epilogue(d[i][0], d[i][1], zterm[b], scale[b], ws, acc[i]);
    }
}

#define GEMM_Q8_GROUP_BODY(DOT) \
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16; \
    f32x8 acc[4] = { f32x8_zero(), f32x8_zero(), f32x8_zero(), f32x8_zero() }; \
    for (size_t b = 0; b < blocks; b++) { \
        const uint8_t *r = rec0 + b * rec; \
        prefetch_record(r); \
        int32x4_t d[4][2]; \
        for (int i = 0; i < 4; i++) { \
            d[i][0] = d[i][1] = vdupq_n_s32(0); \
            Q8_BLOCK_DOTS(DOT, r + sbytes, x[i] + b * 32, d[i][0], d[i][1]); \
        } \
        gemm_q8_epilogue((const int32x4_t (*)[2])d, x, blocks, b, record_scales(r, f32), acc); \
    } \
    for (int i = 0; i < 4; i++) f32x8_store(out[i], acc[i]);

static void gemm_group_i8x4(const uint8_t *rec0, int f32, size_t blocks, const int8_t *const x[4], float *const out[4]) {
    GEMM_Q8_GROUP_BODY(dot4_neon)
}

Q4_DOTPROD static void gemm_group_i8x4_sdot(const uint8_t *rec0, int f32, size_t blocks, const int8_t *const x[4],
                                            float *const out[4]) {
    GEMM_Q8_GROUP_BODY(dot4_sdot)
}

// With `smmla` (2 × 8 by 8 × 2 int8 products into a 2 × 2 int32 tile): the 8 bytes at 8j of an
// activation block are exactly the k order of the low nibbles then the high nibbles of word j,
// so zipping a row's low and high nibble words gives the same 8 k of a weight row: A = two
// activation rows, B = two weight rows, 32 multiply-adds per instruction (twice `sdot`'s). The
// tiles are regrouped by row at the end of each block; the sums are the same integers.
Q4_I8MM static void gemm_group_i8x4_mmla(const uint8_t *rec0, int f32, size_t blocks, const int8_t *const x[4],
                                         float *const out[4]) {
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16;
    const uint8x16_t nibbles = vdupq_n_u8(0x0F);
    f32x8 acc[4] = { f32x8_zero(), f32x8_zero(), f32x8_zero(), f32x8_zero() };
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *r = rec0 + b * rec, *q = r + sbytes;
        prefetch_record(r);
        // t[p][c]: activation rows 2p, 2p+1 × weight rows 2c, 2c+1.
        int32x4_t t[2][4];
        for (int p = 0; p < 2; p++)
            for (int c = 0; c < 4; c++) t[p][c] = vdupq_n_s32(0);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int8x16_t w[4];
            for (int h = 0; h < 2; h++) {
                const uint8x16_t v = vld1q_u8(q + 32 * j + 16 * h);
                const uint32x4_t lo = vreinterpretq_u32_u8(vandq_u8(v, nibbles)), hi = vreinterpretq_u32_u8(vshrq_n_u8(v, 4));
                w[2 * h] = vreinterpretq_s8_u32(vzip1q_u32(lo, hi));
                w[2 * h + 1] = vreinterpretq_s8_u32(vzip2q_u32(lo, hi));
            }
            for (int p = 0; p < 2; p++) {
                const int8x16_t a = vcombine_s8(vld1_s8(x[2 * p] + b * 32 + 8 * j), vld1_s8(x[2 * p + 1] + b * 32 + 8 * j));
                for (int c = 0; c < 4; c++) t[p][c] = vmmlaq_s32(t[p][c], a, w[c]);
            }
        }
        int32x4_t d[4][2];
        for (int p = 0; p < 2; p++) {
            for (int h = 0; h < 2; h++) {
                const int64x2_t t0 = vreinterpretq_s64_s32(t[p][2 * h]), t1 = vreinterpretq_s64_s32(t[p][2 * h + 1]);
                d[2 * p][h] = vreinterpretq_s32_s64(vzip1q_s64(t0, t1));
                d[2 * p + 1][h] = vreinterpretq_s32_s64(vzip2q_s64(t0, t1));
            }
        }
        gemm_q8_epilogue((const int32x4_t (*)[2])d, x, blocks, b, record_scales(r, f32), acc);
    }
    for (int i = 0; i < 4; i++) f32x8_store(out[i], acc[i]);
}

int qk_q4x8_gemm_q8(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq, size_t m,
                    size_t col_begin, size_t col_end, float *c, size_t ldc, int isa) {
    isa = qk_isa_clamp(isa);
    if (isa < QK_ISA_NEON || col_begin % 8 || col_end % 8) return 0;
    if (m == 0) return 1;
    const q4x8_gemm_q8_group group = isa >= QK_ISA_NEON_I8MM ? gemm_group_i8x4_mmla
                                   : isa >= QK_ISA_NEON_DOTPROD ? gemm_group_i8x4_sdot : gemm_group_i8x4;
    q4x8_gemm_q8_drive(group, packed, f32_scales, blocks, aq, qk_q8_activation_bytes(blocks), m, col_begin, col_end, c, ldc);
    return 1;
}

// --- int16 activations (decode) -------------------------------------------------------------------
//
// As q4x8.c: activations quantized per block to int16 (scale max|a| / 32767, round to nearest even
// with `fcvtns`), word 4j + i = a16[8j + i] | a16[8j + 4 + i] << 16, so the two 16-bit halves of a
// weight word's lane meet their activations in one 32-bit broadcast. NEON has no `vpmaddwd`: each
// nibble (shifted down and masked as int16) is multiplied by the broadcast pair with `smlal` /
// `smlal2` into int32 lanes of (row, half), and the halves are added pairwise at the end of the
// block: the same exact integers as the x86 kernels' pair sums.

static void quantize_activations16(const float *a, size_t blocks, int32_t *q, float *scale, int32_t *zterm) {
    for (size_t b = 0; b < blocks; b++) {
        const float *x = a + b * 32;
        const float amax = block_absmax(x);
        scale[b] = amax / 32767.0f;
        const float inv = amax > 0 ? 32767.0f / amax : 0.0f;
        int32x4_t total = vdupq_n_s32(0);
        for (int j = 0; j < 4; j++) {
            int32x4_t v[2];
            for (int h = 0; h < 2; h++) {
                // A NaN lane (inv is 0 then, and NaN · 0 or ∞ · 0 is NaN) becomes INT_MIN, as x86's
                // `cvtps2dq` makes it: its low half is 0 for the products, and the block's sum, which
                // its NaN scale makes irrelevant to a finite result, is x86's too.
                const float32x4_t p = vmulq_n_f32(vld1q_f32(x + 8 * j + 4 * h), inv);
                v[h] = vbslq_s32(vceqq_f32(p, p), vcvtnq_s32_f32(p), vdupq_n_s32(INT_MIN));
            }
            total = vaddq_s32(total, vaddq_s32(v[0], v[1]));
            const int32x4_t words = vorrq_s32(vandq_s32(v[0], vdupq_n_s32(0xFFFF)), vshlq_n_s32(v[1], 16));
            vst1q_s32(q + b * 16 + 4 * j, words);
        }
        zterm[b] = vaddvq_s32(vshlq_n_s32(total, 3));   // 8 Σ q, wrapping as x86's does
    }
}

int qk_q16_quantize(const float *a, size_t blocks, void *out) {
    if (qk_isa() < QK_ISA_NEON) return 0;
    int32_t *q = out;
    quantize_activations16(a, blocks, q, (float *)(q + blocks * 16), q + blocks * 17);
    return 1;
}

// One pass of the int16 GEMV over row group p for up to four activation rows x[0..rows) (each
// quantized by `qk_q16_quantize`), row r's 8 results to out[r]: the weights' nibbles unpacked once
// per pass for all its rows. Every row's integer block sums are exact and its float epilogue is
// `block_epilogue`'s, so one row alone or among others gives the same floats.
static inline __attribute__((always_inline)) void gemv_i16_pass(const uint8_t *p, int f32, size_t blocks,
        const int32_t *const x[4], const int rows, int prefetch, float *const out[4]) {
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16;
    const uint16x8_t nibble = vdupq_n_u16(0x000F);
    f32x8 acc[4];
    for (int r = 0; r < rows; r++) acc[r] = f32x8_zero();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *rb = p + b * rec;
        if (prefetch) prefetch_record(rb);
        const uint8_t *q = rb + sbytes;
        // d[r][i]: rows 2i, 2i+1 of the group, lanes (row, half).
        int32x4_t d[4][4];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < 4; i++) d[r][i] = vdupq_n_s32(0);
        // Not unrolled: four rows' 16 accumulators and the nibbles fill the registers, and clang
        // spills when it interleaves the words (~140 loads and stores more per block).
        for (int j = 0; j < 4; j++) {
            for (int h = 0; h < 2; h++) {
                const uint16x8_t w = vld1q_u16((const uint16_t *)(q + 32 * j + 16 * h));
                const int16x8_t n[4] = { vreinterpretq_s16_u16(vandq_u16(w, nibble)),
                                         vreinterpretq_s16_u16(vandq_u16(vshrq_n_u16(w, 4), nibble)),
                                         vreinterpretq_s16_u16(vandq_u16(vshrq_n_u16(w, 8), nibble)),
                                         vreinterpretq_s16_u16(vshrq_n_u16(w, 12)) };
                for (int r = 0; r < rows; r++) {
                    const int32_t *xj = x[r] + b * 16 + 4 * j;
                    for (int i = 0; i < 4; i++) {
                        const int16x8_t a = vreinterpretq_s16_s32(vdupq_n_s32(xj[i]));
                        d[r][2 * h] = vmlal_s16(d[r][2 * h], vget_low_s16(n[i]), vget_low_s16(a));
                        d[r][2 * h + 1] = vmlal_high_s16(d[r][2 * h + 1], n[i], a);
                    }
                }
            }
        }
        const f32x8 ws = record_scales(rb, f32);
        for (int r = 0; r < rows; r++) {
            const float *ascale = (const float *)(x[r] + blocks * 16);
            const int32_t *zterm = x[r] + blocks * 17;
            acc[r] = block_epilogue(vpaddq_s32(d[r][0], d[r][1]), vpaddq_s32(d[r][2], d[r][3]), zterm[b], ascale[b], ws, acc[r]);
        }
    }
    for (int r = 0; r < rows; r++) f32x8_store(out[r], acc[r]);
}

// m activation rows (row_bytes apart) against row groups [g0, g1), four rows per pass.
static void gemv_groups_i16(const uint8_t *packed, int f32, size_t blocks, const uint8_t *aq, size_t row_bytes, size_t m,
                            size_t g0, size_t g1, float *y, size_t ldy) {
    const size_t rec = record_bytes(f32);
    for (size_t g = g0; g < g1; g++) {
        const uint8_t *p = packed + g * blocks * rec;
        for (size_t i = 0; i < m; i += 4) {
            const int32_t *x[4];
            float *out[4];
            const int rows = m - i < 4 ? (int)(m - i) : 4;
            for (int r = 0; r < 4; r++) {
                const size_t row = i + (size_t)(r < rows ? r : 0);
                x[r] = (const int32_t *)(aq + row * row_bytes);
                out[r] = y + row * ldy + g * 8;
            }
            switch (rows) {
            case 4: gemv_i16_pass(p, f32, blocks, x, 4, i == 0, out); break;
            case 3: gemv_i16_pass(p, f32, blocks, x, 3, i == 0, out); break;
            case 2: gemv_i16_pass(p, f32, blocks, x, 2, i == 0, out); break;
            default: gemv_i16_pass(p, f32, blocks, x, 1, i == 0, out); break;
            }
        }
    }
}

int qk_q4x8_gemv_q16(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq,
                     size_t row_begin, size_t row_end, float *y, int isa) {
    return qk_q4x8_gemv_q16_multi(packed, f32_scales, blocks, aq, qk_q16_activation_bytes(blocks), 1, row_begin, row_end,
                                  y, 0, isa);
}

int qk_q4x8_gemv_q16_multi(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq, size_t row_bytes,
                           size_t m, size_t row_begin, size_t row_end, float *y, size_t ldy, int isa) {
    isa = qk_isa_clamp(isa);
    if (isa < QK_ISA_NEON || row_begin % 8 || row_end % 8) return 0;
    gemv_groups_i16(packed, f32_scales, blocks, aq, row_bytes, m, row_begin / 8, row_end / 8, y, ldy);
    return 1;
}

// --- float32 GEMM (prefill) ---------------------------------------------------------------------

typedef struct { const uint8_t *packed; int f32; size_t blocks; } q4x8_weights;

// Block `block` of the (one or two) row groups of C's columns n..n+nr into the panel.
static void q4x8_fill(const void *weights, size_t n, size_t nr, size_t block, float *panel) {
    const q4x8_weights *w = weights;
    const size_t rec = record_bytes(w->f32), sbytes = w->f32 ? 32 : 16;
    for (size_t h = 0; h < (nr > 8 ? 2u : 1u); h++) {
        const uint8_t *r = w->packed + ((n / 8 + h) * w->blocks + block) * rec;
        const u32x8 words[4] = { record_word(r + sbytes, 0), record_word(r + sbytes, 1), record_word(r + sbytes, 2),
                                 record_word(r + sbytes, 3) };
        const f32x8 s = record_scales(r, w->f32);
        q4_panel_block8(words, s, f32x8_mul(s, f32x8_dup(8.0f)), panel, 8 * h);
    }
}

int qk_q4x8_gemm(const uint8_t *packed, int f32_scales, size_t blocks, const float *ap, size_t m,
                 size_t strip_begin, size_t strip_end, size_t col_begin, size_t col_end, float *c, size_t ldc, int isa) {
    isa = qk_isa_clamp(isa);
    if (isa < QK_ISA_NEON || col_begin % 8 || col_end % 8) return 0;
    if (m == 0 || col_begin >= col_end || strip_begin >= strip_end) return 1;
    const q4x8_weights w = { packed, f32_scales, blocks };
    q4_gemm_run(q4x8_fill, q4_kernel_neon, &w, blocks, ap, m, strip_begin, strip_end, col_begin, col_end, c, ldc);
    return 1;
}

#endif
