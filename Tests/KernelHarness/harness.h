#ifndef QWEN_KERNEL_HARNESS_H
#define QWEN_KERNEL_HARNESS_H

// A C test harness for CKernels, built with the kernels for the host (x86-64) or cross-compiled
// for aarch64 and run under qemu-aarch64 (scripts/test-arm64-kernels). Every case compares the
// kernels with a double-precision reference computed here; cases whose floats are the same on
// every instruction set also print a digest of their output bytes, which the script compares
// between the x86 build and each arm64 CPU model (the NEON kernels compute the AVX2 kernels'
// floats bit for bit).

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qwen_kernels.h"

/// Failed checks so far (the process exits with 1 when any failed).
extern int harness_failures;
/// Checks so far.
extern int harness_checks;

/// A seeded generator (splitmix64), so every build sees the same inputs.
typedef struct { uint64_t state; } harness_rng;

static inline uint64_t rng_next(harness_rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/// Uniform in [lo, hi): lo + (hi − lo)·u rounded once by an explicit fmaf, so that every build
/// makes the same floats (written as a product and a sum, compilers fuse it on arm64 and cannot
/// for x86-64).
static inline float rng_uniform(harness_rng *r, float lo, float hi) {
    return fmaf(hi - lo, (float)((rng_next(r) >> 40) * 0x1p-24), lo);
}
static inline uint8_t rng_byte(harness_rng *r) { return (uint8_t)(rng_next(r) >> 56); }

/// float ↔ IEEE half bits, in portable C (round to nearest even), for building inputs and
/// references independently of the kernels' conversions.
uint16_t harness_f32_to_f16(float f);
float harness_f16_to_f32(uint16_t h);

/// Checks |got[i] - ref[i]| <= abs_tol + rel_tol * scale[i] for every i < n, where scale[i] is
/// `scale` when given (e.g. Σ|terms| of element i) or |ref[i]|. NaN in ref must be NaN in got and
/// infinities must match. Records one check; prints the first few mismatches.
int harness_check_close(const char *name, const float *got, const double *ref, const double *scale, size_t n,
                        double abs_tol, double rel_tol);

/// Checks that two float arrays are equal bit for bit (one check).
int harness_check_same(const char *name, const float *a, const float *b, size_t n);

/// Records one check of `condition`, printing `what` when it fails.
int harness_check(const char *name, int condition, const char *what);

/// Prints "digest NAME HEX" (FNV-1a 64 of the bytes) for the cross-ISA comparison.
void harness_digest(const char *name, const void *bytes, size_t count);

/// The kernel level to run the `isa`-taking kernels at, from highest to portable; the list ends
/// with -1. Covers every level up to qk_isa().
const int *harness_levels(void);

/// Allocation that fails the run cleanly.
void *harness_alloc(size_t bytes);

// Test groups (one file each).
void run_q4_tests(void);
void run_attention_tests(void);
void run_activation_tests(void);
void run_int8_tests(void);

#endif
