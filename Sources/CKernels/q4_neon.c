#include "qwen_kernels.h"

// The MatMulNBits-layout int4 kernels on arm64 (NEON): `qk_q4_gemv`, `qk_q4_dequantize` and
// `qk_q4_gemm`, each the float operations of its AVX2 twin (q4.c, q4_gemm.c) in the same order
// (q4_neon.h), so they return the same floats.

#if defined(__aarch64__)
#include <stdlib.h>
#include <string.h>
#include "q4_neon.h"

static inline float block_scale(const uint16_t *f16, const float *f32, size_t i) {
    return f16 ? f32_from_half(f16[i]) : f32[i];
}

static inline int block_zero_point(const uint8_t *zp, size_t blocks, size_t row, size_t b) {
    if (!zp) return 8;
    const uint8_t byte = zp[row * ((blocks + 1) / 2) + b / 2];
    return (b & 1) ? (byte >> 4) : (byte & 0x0F);
}

// The 32 nibbles of the block at p minus the zero point, as floats in element order (element 2j
// in the low nibble of byte j): q[0..3], q[4..7], ..., q[28..31].
static inline void unpack_block(const uint8_t *p, int zp, float32x4_t q[8]) {
    const uint8x16_t bytes = vld1q_u8(p);
    const uint8x16_t lo = vandq_u8(bytes, vdupq_n_u8(0x0F)), hi = vshrq_n_u8(bytes, 4);
    const int8x16_t z = vdupq_n_s8((int8_t)zp);
    const int8x16_t e0 = vsubq_s8(vreinterpretq_s8_u8(vzip1q_u8(lo, hi)), z);
    const int8x16_t e1 = vsubq_s8(vreinterpretq_s8_u8(vzip2q_u8(lo, hi)), z);
    const int16x8_t h[4] = { vmovl_s8(vget_low_s8(e0)), vmovl_high_s8(e0), vmovl_s8(vget_low_s8(e1)), vmovl_high_s8(e1) };
    for (int i = 0; i < 4; i++) {
        q[2 * i] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(h[i])));
        q[2 * i + 1] = vcvtq_f32_s32(vmovl_high_s16(h[i]));
    }
}

// One row at a time (q4.c's `gemv_avx2`): per block t = q[0..8) · a + q[8..16) · a + ... (one
// product, three FMAs, 8 lanes), then acc += t · scale; the row's y is acc's 8-lane sum.
static void gemv_rows(const uint8_t *data, const uint16_t *sf16, const float *sf32, const uint8_t *zp, size_t blocks,
                      const float *a, size_t r0, size_t r1, float *y) {
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = data + r * blocks * 16;
        f32x8 acc = f32x8_zero();
        for (size_t b = 0; b < blocks; b++) {
            float32x4_t q[8];
            unpack_block(row + b * 16, block_zero_point(zp, blocks, r, b), q);
            const float *ab = a + b * 32;
            f32x8 t = f32x8_mul((f32x8){ q[0], q[1] }, f32x8_load(ab));
            t = f32x8_fmadd((f32x8){ q[2], q[3] }, f32x8_load(ab + 8), t);
            t = f32x8_fmadd((f32x8){ q[4], q[5] }, f32x8_load(ab + 16), t);
            t = f32x8_fmadd((f32x8){ q[6], q[7] }, f32x8_load(ab + 24), t);
            acc = f32x8_fmadd(t, f32x8_dup(block_scale(sf16, sf32, r * blocks + b)), acc);
        }
        y[r] = f32x8_hsum(acc);
    }
}

// Block b's scales and zero points of the 8 rows from `row`.
static inline f32x8 scales8(const uint16_t *sf16, const float *sf32, size_t blocks, size_t row, size_t b) {
    float s[8];
    for (int i = 0; i < 8; i++) s[i] = block_scale(sf16, sf32, (row + i) * blocks + b);
    return f32x8_load(s);
}
static inline f32x8 zero_points8(const uint8_t *zp, size_t blocks, size_t row, size_t b) {
    float z[8];
    for (int i = 0; i < 8; i++) z[i] = (float)block_zero_point(zp, blocks, row + i, b);
    return f32x8_load(z);
}

// Eight rows at a time, lanes = rows (q4.c's `gemv8_avx2`): the block's words transposed, the
// nibbles masked in place against pre-scaled activations, the zero point off through the block's
// activation sum. With float16 scales and no zero points x86 takes the blocks in runs of 8 with two
// accumulators (even and odd blocks), the rest into the first: so here.
static void gemv8(const uint8_t *data, const uint16_t *sf16, const float *sf32, const uint8_t *zp, size_t blocks,
                  const float *xs, const float *xsum, size_t r0, size_t r1, float *y) {
    const size_t row_bytes = blocks * 16;
    const size_t paired = sf16 && !zp ? blocks / 8 * 8 : 0;
    for (size_t r = r0; r < r1; r += 8) {
        const uint8_t *rows = data + r * row_bytes;
        const uint8_t *next = rows + 8 * row_bytes;
        f32x8 acc[2] = { f32x8_zero(), f32x8_zero() };
        for (size_t b = 0; b < blocks; b++) {
            __builtin_prefetch(next + b * 128);
            __builtin_prefetch(next + b * 128 + 64);
            u32x8 w[4];
            q4_transpose_words8(rows + b * 16, row_bytes, w);
            const f32x8 v = f32x8_fnmadd(zero_points8(zp, blocks, r, b), f32x8_dup(xsum[b]), q4_block_dot8(w, xs + b * 32));
            const int odd = b < paired && (b & 1);
            acc[odd] = f32x8_fmadd(v, scales8(sf16, sf32, blocks, r, b), acc[odd]);
        }
        f32x8_store(y + r, f32x8_add(acc[0], acc[1]));
    }
}

int qk_q4_gemv(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
               const uint8_t *zero_points, size_t blocks, const float *a,
               size_t row_begin, size_t row_end, float *y) {
    if (qk_isa() < QK_ISA_NEON) return 0;
    const size_t grouped = (row_end - row_begin) / 8 * 8;
    if (grouped > 0) {
        float *xs = malloc(blocks * 33 * sizeof(float));
        if (xs) {
            q4_prescale_activations(a, blocks, xs, xs + blocks * 32);
            gemv8(data, scales_f16, scales_f32, zero_points, blocks, xs, xs + blocks * 32, row_begin, row_begin + grouped, y);
            free(xs);
            row_begin += grouped;
        }
    }
    if (row_begin < row_end) gemv_rows(data, scales_f16, scales_f32, zero_points, blocks, a, row_begin, row_end, y);
    return 1;
}

int qk_q4_dequantize(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
                     const uint8_t *zero_points, size_t blocks,
                     size_t row_begin, size_t row_end, float *out, size_t ld) {
    if (qk_isa() < QK_ISA_NEON) return 0;
    for (size_t r = row_begin; r < row_end; r++) {
        const uint8_t *row = data + r * blocks * 16;
        float *o = out + (r - row_begin) * ld;
        for (size_t b = 0; b < blocks; b++) {
            float32x4_t q[8];
            unpack_block(row + b * 16, block_zero_point(zero_points, blocks, r, b), q);
            const float32x4_t s = vdupq_n_f32(block_scale(scales_f16, scales_f32, r * blocks + b));
            for (int i = 0; i < 8; i++) vst1q_f32(o + b * 32 + 4 * i, vmulq_f32(q[i], s));
        }
    }
    return 1;
}

// --- GEMM (M > 2) -------------------------------------------------------------------------------

// The MatMulNBits-layout matrix as `q4_gemm_run` sees it.
typedef struct { const uint8_t *data; const uint16_t *sf16; const float *sf32; const uint8_t *zp; size_t blocks; } q4_weights;

// Block b of 8 rows from `row` into panel[k * NR + col0 + lane] as q · s − s · z (q4_gemm.c's
// `pack_block8`); rows past `rows_valid` as zeros.
static void pack_block8(const q4_weights *w, size_t row, size_t rows_valid, size_t b, float *panel, size_t col0) {
    const size_t row_bytes = w->blocks * 16;
    float scale[8], offset[8];
    uint8_t words[8 * 16];
    for (size_t r = 0; r < 8; r++) {
        if (r < rows_valid) {
            const float s = block_scale(w->sf16, w->sf32, (row + r) * w->blocks + b);
            scale[r] = s;
            offset[r] = s * (float)block_zero_point(w->zp, w->blocks, row + r, b);
            memcpy(words + 16 * r, w->data + (row + r) * row_bytes + b * 16, 16);
        } else {
            scale[r] = 0; offset[r] = 0;
            memset(words + 16 * r, 0, 16);
        }
    }
    u32x8 q[4];
    q4_transpose_words8(words, 16, q);
    q4_panel_block8(q, f32x8_load(scale), f32x8_load(offset), panel, col0);
}

static void q4_fill(const void *weights, size_t n, size_t nr, size_t block, float *panel) {
    pack_block8(weights, n, nr, block, panel, 0);
    pack_block8(weights, n + 8, nr > 8 ? nr - 8 : 0, block, panel, 8);
}

int qk_q4_gemm(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
               const uint8_t *zero_points, size_t blocks, const float *ap, size_t m,
               size_t strip_begin, size_t strip_end, size_t col_begin, size_t col_end, float *c, size_t ldc) {
    if (qk_isa() < QK_ISA_NEON) return 0;
    if (m == 0 || col_begin >= col_end || strip_begin >= strip_end) return 1;
    const q4_weights w = { data, scales_f16, scales_f32, zero_points, blocks };
    q4_gemm_run(q4_fill, q4_kernel_neon, &w, blocks, ap, m, strip_begin, strip_end, col_begin, col_end, c, ldc);
    return 1;
}

#endif
