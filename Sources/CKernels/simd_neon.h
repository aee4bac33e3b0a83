#ifndef QWEN_SIMD_NEON_H
#define QWEN_SIMD_NEON_H

// Eight float32 lanes as two NEON registers (lanes 0-3 and 4-7): the __m256 of the AVX2 kernels,
// for their NEON twins, which perform the same float operations in the same order and so return
// the same floats bit for bit. Private to CKernels.
//
// GCC implements vmulq_f32 and vaddq_f32 as C operators and, at its default -ffp-contract=fast,
// fuses a product that feeds a sum into one FMA (clang does not across statements): in the twins
// a product feeds an addition only where the x86 code fuses them too (vfmaq), else the floats
// would depend on the compiler.

#include <arm_neon.h>

typedef struct { float32x4_t lo, hi; } f32x8;

static inline f32x8 f32x8_zero(void) { return (f32x8){vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}; }
static inline f32x8 f32x8_dup(float x) { return (f32x8){vdupq_n_f32(x), vdupq_n_f32(x)}; }
static inline f32x8 f32x8_load(const float *p) { return (f32x8){vld1q_f32(p), vld1q_f32(p + 4)}; }

/// Eight float16 (bits) widened to float32, exactly (`vcvtph2ps`).
static inline f32x8 f32x8_load_half(const uint16_t *p) {
    return (f32x8){vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + 4)))};
}

static inline void f32x8_store(float *p, f32x8 v) {
    vst1q_f32(p, v.lo);
    vst1q_f32(p + 4, v.hi);
}

static inline f32x8 f32x8_add(f32x8 a, f32x8 b) { return (f32x8){vaddq_f32(a.lo, b.lo), vaddq_f32(a.hi, b.hi)}; }
static inline f32x8 f32x8_mul(f32x8 a, f32x8 b) { return (f32x8){vmulq_f32(a.lo, b.lo), vmulq_f32(a.hi, b.hi)}; }

/// a > b ? a : b per lane: `_mm256_max_ps(a, b)`, which gives b when either is NaN and for two
/// zeros (vmaxq gives NaN, and +0 for ±0).
static inline f32x8 f32x8_max(f32x8 a, f32x8 b) {
    return (f32x8){vbslq_f32(vcgtq_f32(a.lo, b.lo), a.lo, b.lo), vbslq_f32(vcgtq_f32(a.hi, b.hi), a.hi, b.hi)};
}

/// a · b + c rounded once: `_mm256_fmadd_ps(a, b, c)`.
static inline f32x8 f32x8_fmadd(f32x8 a, f32x8 b, f32x8 c) {
    return (f32x8){vfmaq_f32(c.lo, a.lo, b.lo), vfmaq_f32(c.hi, a.hi, b.hi)};
}

/// c − a · b rounded once: `_mm256_fnmadd_ps(a, b, c)`.
static inline f32x8 f32x8_fnmadd(f32x8 a, f32x8 b, f32x8 c) {
    return (f32x8){vfmsq_f32(c.lo, a.lo, b.lo), vfmsq_f32(c.hi, a.hi, b.hi)};
}

/// a · b − c rounded once: `_mm256_fmsub_ps(a, b, c)` (a · b + (−c): the same single rounding).
static inline f32x8 f32x8_fmsub(f32x8 a, f32x8 b, f32x8 c) {
    return (f32x8){vfmaq_f32(vnegq_f32(c.lo), a.lo, b.lo), vfmaq_f32(vnegq_f32(c.hi), a.hi, b.hi)};
}

/// The sum of the lanes in the AVX2 kernels' order (high 128 bits onto low, movehl, movehdup):
/// ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)).
static inline float f32x8_hsum(f32x8 v) {
    const float32x4_t h = vaddq_f32(v.lo, v.hi);
    return vpadds_f32(vadd_f32(vget_low_f32(h), vget_high_f32(h)));
}

/// Four `f32x8_hsum`s at once, lane i that of v_i: the same additions, paired across registers.
static inline float32x4_t f32x8_hsum4(f32x8 v0, f32x8 v1, f32x8 v2, f32x8 v3) {
    const float32x4_t h0 = vaddq_f32(v0.lo, v0.hi), h1 = vaddq_f32(v1.lo, v1.hi);
    const float32x4_t h2 = vaddq_f32(v2.lo, v2.hi), h3 = vaddq_f32(v3.lo, v3.hi);
    // [h0_0 + h0_2, h0_1 + h0_3, h1_0 + h1_2, h1_1 + h1_3], then the adjacent pairs.
    const float32x4_t s01 = vaddq_f32(vcombine_f32(vget_low_f32(h0), vget_low_f32(h1)),
                                      vcombine_f32(vget_high_f32(h0), vget_high_f32(h1)));
    const float32x4_t s23 = vaddq_f32(vcombine_f32(vget_low_f32(h2), vget_low_f32(h3)),
                                      vcombine_f32(vget_high_f32(h2), vget_high_f32(h3)));
    return vpaddq_f32(s01, s23);
}

/// One float16 (bits) widened to float32, exactly (`_cvtsh_ss`).
static inline float f32_from_half(uint16_t h) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

#endif
