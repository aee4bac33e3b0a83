#ifndef QWEN_Q4_NEON_H
#define QWEN_Q4_NEON_H

// The arm64 counterpart of q4_shared.h: pieces the int4 kernels of both layouts share on NEON
// (q4_neon.c for the MatMulNBits layout, q4x8_neon.c for the repacked one). Private to CKernels;
// aarch64 only.
//
// Every arm64 kernel performs its AVX2 twin's float operations in the same order: an 8-lane
// AVX2 vector is a pair of NEON vectors (`f32x8`, simd_neon.h), horizontal sums follow the AVX2
// reduction tree, and integer sums are exact whichever instructions add them. So the arm64 kernels return the x86
// kernels' floats bit for bit (Tests/KernelHarness compares their digests).

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>
#include "q4_strips.h"
#include "simd_neon.h"

// The dot product (`sdot`, FEAT_DotProd) and int8 matrix multiply (`smmla`, FEAT_I8MM) kernels
// are compiled for those extensions and run only when the CPU has them (cpu.c).
#define Q4_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#define Q4_I8MM __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))

// Eight uint32 lanes: word j of the 8 rows of a group.
typedef struct { uint32x4_t lo, hi; } u32x8;

/// The lanes of w selected by `mask` (bits kept in place), as floats (exact: below 2^16).
static inline f32x8 u32x8_masked_float(u32x8 w, uint32x4_t mask) {
    return (f32x8){ vcvtq_f32_u32(vandq_u32(w.lo, mask)), vcvtq_f32_u32(vandq_u32(w.hi, mask)) };
}
static inline u32x8 u32x8_shr16(u32x8 w) { return (u32x8){ vshrq_n_u32(w.lo, 16), vshrq_n_u32(w.hi, 16) }; }

/// xs[k] = a[k] · 16^-(k mod 4) (exact: powers of two); xsum[b] = the sum of block b of a, in
/// q4_shared.h's order. The GEMVs mask nibble i of a word in place (q · 16^(i mod 4)).
static inline void q4_prescale_activations(const float *a, size_t blocks, float *xs, float *xsum) {
    static const float pattern[8] = { 1.0f, 0.0625f, 0.00390625f, 0.000244140625f,
                                      1.0f, 0.0625f, 0.00390625f, 0.000244140625f };
    const f32x8 scale = f32x8_load(pattern);
    for (size_t b = 0; b < blocks; b++) {
        f32x8 s = f32x8_zero();
        for (int j = 0; j < 4; j++) {
            const f32x8 v = f32x8_load(a + b * 32 + 8 * j);
            s = f32x8_add(s, v);
            f32x8_store(xs + b * 32 + 8 * j, f32x8_mul(v, scale));
        }
        xsum[b] = f32x8_hsum(s);
    }
}

/// The 32 nibbles of words w (word j of 8 rows, one per lane) times the pre-scaled activations
/// xs of their block: Σ q · a per row (before the zero point), as q4_shared.h's `block_dot8`
/// and q4x8.c's GEMV: four accumulators by nibble position mod 4, summed (c0 + c1) + (c2 + c3).
static inline f32x8 q4_block_dot8(const u32x8 w[4], const float *xs) {
    const uint32x4_t m0 = vdupq_n_u32(0xF), m1 = vdupq_n_u32(0xF0), m2 = vdupq_n_u32(0xF00), m3 = vdupq_n_u32(0xF000);
    f32x8 c0 = f32x8_zero(), c1 = c0, c2 = c0, c3 = c0;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const u32x8 lo = w[j], hi = u32x8_shr16(w[j]);
        const float *x = xs + 8 * j;
        c0 = f32x8_fmadd(u32x8_masked_float(lo, m0), f32x8_dup(x[0]), c0);
        c1 = f32x8_fmadd(u32x8_masked_float(lo, m1), f32x8_dup(x[1]), c1);
        c2 = f32x8_fmadd(u32x8_masked_float(lo, m2), f32x8_dup(x[2]), c2);
        c3 = f32x8_fmadd(u32x8_masked_float(lo, m3), f32x8_dup(x[3]), c3);
        c0 = f32x8_fmadd(u32x8_masked_float(hi, m0), f32x8_dup(x[4]), c0);
        c1 = f32x8_fmadd(u32x8_masked_float(hi, m1), f32x8_dup(x[5]), c1);
        c2 = f32x8_fmadd(u32x8_masked_float(hi, m2), f32x8_dup(x[6]), c2);
        c3 = f32x8_fmadd(u32x8_masked_float(hi, m3), f32x8_dup(x[7]), c3);
    }
    return f32x8_add(f32x8_add(c0, c1), f32x8_add(c2, c3));
}

/// panel[(8j + i) · Q4_NR + col0 + r] = q · s[r] − o[r] for nibble i of word j of row r: block of
/// 8 rows dequantized into the GEMM's panel (one fused multiply-subtract, as on x86).
static inline void q4_panel_block8(const u32x8 w[4], f32x8 s, f32x8 o, float *panel, size_t col0) {
    const uint32x4_t nibble = vdupq_n_u32(0xF);
    for (int j = 0; j < 4; j++) {
        u32x8 v = w[j];
        for (int i = 0; i < 8; i++) {
            f32x8_store(panel + (size_t)(8 * j + i) * Q4_NR + col0, f32x8_fmsub(u32x8_masked_float(v, nibble), s, o));
            v.lo = vshrq_n_u32(v.lo, 4);
            v.hi = vshrq_n_u32(v.hi, 4);
        }
    }
}

/// The 16-byte block at p of 8 rows (row i at p + i · row_bytes) as w[j] = 32-bit word j of
/// rows 0..7 (a 4 × 4 transpose per half).
static inline void q4_transpose_words8(const uint8_t *p, size_t row_bytes, u32x8 w[4]) {
    for (int half = 0; half < 2; half++) {
        const uint8_t *q = p + (size_t)(4 * half) * row_bytes;
        const uint32x4_t r0 = vld1q_u32((const uint32_t *)q), r1 = vld1q_u32((const uint32_t *)(q + row_bytes));
        const uint32x4_t r2 = vld1q_u32((const uint32_t *)(q + 2 * row_bytes));
        const uint32x4_t r3 = vld1q_u32((const uint32_t *)(q + 3 * row_bytes));
        const uint64x2_t t0 = vreinterpretq_u64_u32(vtrn1q_u32(r0, r1)), t1 = vreinterpretq_u64_u32(vtrn2q_u32(r0, r1));
        const uint64x2_t t2 = vreinterpretq_u64_u32(vtrn1q_u32(r2, r3)), t3 = vreinterpretq_u64_u32(vtrn2q_u32(r2, r3));
        const uint32x4_t words[4] = { vreinterpretq_u32_u64(vtrn1q_u64(t0, t2)), vreinterpretq_u32_u64(vtrn1q_u64(t1, t3)),
                                      vreinterpretq_u32_u64(vtrn2q_u64(t0, t2)), vreinterpretq_u32_u64(vtrn2q_u64(t1, t3)) };
        for (int j = 0; j < 4; j++) {
            if (half) w[j].hi = words[j];
            else w[j].lo = words[j];
        }
    }
}

/// c[0..R) x [0..nr) (+)= strip (k-major, R per k) · panel[kc][16], the AVX2 kernel's FMA chain
/// per element: 4R accumulators of 4 lanes (24 of the 32 registers at R = 6).
__attribute__((always_inline)) static inline void q4_kernel_rows_neon(const int R, const float *ap, const float *panel,
                                                                      size_t kc, float *c, size_t ldc, size_t nr,
                                                                      int accumulate) {
    float32x4_t acc[Q4_MR][4];
    for (int i = 0; i < R; i++)
        for (int q = 0; q < 4; q++) acc[i][q] = vdupq_n_f32(0.0f);
    for (size_t k = 0; k < kc; k++) {
        const float *pk = panel + k * Q4_NR;
        const float32x4_t b0 = vld1q_f32(pk), b1 = vld1q_f32(pk + 4), b2 = vld1q_f32(pk + 8), b3 = vld1q_f32(pk + 12);
        const float *x = ap + k * R;
        for (int i = 0; i < R; i++) {
            const float32x4_t v = vld1q_dup_f32(x + i);
            acc[i][0] = vfmaq_f32(acc[i][0], v, b0);
            acc[i][1] = vfmaq_f32(acc[i][1], v, b1);
            acc[i][2] = vfmaq_f32(acc[i][2], v, b2);
            acc[i][3] = vfmaq_f32(acc[i][3], v, b3);
        }
    }
    for (int i = 0; i < R; i++) {
        float *ci = c + i * ldc;
        if (nr == Q4_NR) {
            for (int q = 0; q < 4; q++) vst1q_f32(ci + 4 * q, accumulate ? vaddq_f32(acc[i][q], vld1q_f32(ci + 4 * q)) : acc[i][q]);
        } else {
            float t[Q4_NR];
            for (int q = 0; q < 4; q++) vst1q_f32(t + 4 * q, acc[i][q]);
            for (size_t j = 0; j < nr; j++) ci[j] = accumulate ? ci[j] + t[j] : t[j];
        }
    }
}

/// The strip kernel `q4_gemm_run` calls.
static inline void q4_kernel_neon(size_t h, const float *ap, const float *panel, size_t kc, float *c, size_t ldc, size_t nr,
                           int accumulate) {
    switch (h) {
    case 6: q4_kernel_rows_neon(6, ap, panel, kc, c, ldc, nr, accumulate); break;
    case 5: q4_kernel_rows_neon(5, ap, panel, kc, c, ldc, nr, accumulate); break;
    case 4: q4_kernel_rows_neon(4, ap, panel, kc, c, ldc, nr, accumulate); break;
    case 3: q4_kernel_rows_neon(3, ap, panel, kc, c, ldc, nr, accumulate); break;
    case 2: q4_kernel_rows_neon(2, ap, panel, kc, c, ldc, nr, accumulate); break;
    default: q4_kernel_rows_neon(1, ap, panel, kc, c, ldc, nr, accumulate); break;
    }
}

#endif
