#ifndef QWEN_KERNEL_HARNESS_FLOAT_TESTS_H
#define QWEN_KERNEL_HARNESS_FLOAT_TESTS_H

// Helpers of the float kernels' tests (attention_tests.c, activation_tests.c).

#include "harness.h"

/// x[i] uniform in [lo, hi) (`rng_uniform`).
static inline void fill_uniform(harness_rng *rng, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = rng_uniform(rng, lo, hi);
}

/// `harness_digest` of a float kernel's output when a SIMD level runs: the floats the AVX2 and
/// NEON kernels share bit for bit. NaNs are made one pattern first (x86 generates the negative
/// default NaN, arm64 the positive one: the kernels agree on where NaN is, not on its bits).
/// Nothing at the portable level, whose loops round as the compiler contracts them (fused on
/// arm64, not on x86-64).
static inline void digest_simd_floats(const char *name, const float *x, size_t n) {
    if (qk_isa() == QK_ISA_PORTABLE) return;
    float *copy = harness_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) copy[i] = isnan(x[i]) ? NAN : x[i];
    harness_digest(name, copy, n * sizeof(float));
    free(copy);
}

#endif
