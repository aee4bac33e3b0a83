#include "harness.h"

int harness_failures = 0;
int harness_checks = 0;

uint16_t harness_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t abs = x & 0x7FFFFFFFu;
    if (abs >= 0x7F800000u) return (uint16_t)(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0));
    if (abs >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);          // rounds to infinity
    if (abs < 0x38800000u) {                                            // subnormal half or zero
        if (abs < 0x33000000u) return (uint16_t)sign;                   // below half of the smallest
        const uint32_t mant = (abs & 0x007FFFFFu) | 0x00800000u;
        const int shift = 126 - (int)(abs >> 23);                        // 14..24
        uint32_t h = mant >> shift;
        const uint32_t rest = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((abs >> 13) - (112u << 10));
    const uint32_t rest = abs & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float harness_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    float f;
    if (e == 0) {
        f = ldexpf((float)m, -24);
        if (sign) f = -f;
        return f;
    }
    uint32_t x;
    if (e == 31) x = sign | 0x7F800000u | (m << 13);
    else x = sign | ((e + 112u) << 23) | (m << 13);
    memcpy(&f, &x, 4);
    return f;
}

int harness_check(const char *name, int condition, const char *what) {
    harness_checks++;
    if (condition) return 1;
    harness_failures++;
    printf("FAIL %s: %s\n", name, what);
    return 0;
}

int harness_check_close(const char *name, const float *got, const double *ref, const double *scale, size_t n,
                        double abs_tol, double rel_tol) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const double g = got[i], r = ref[i];
        int ok;
        if (isnan(r)) ok = isnan(g);
        else if (isinf(r)) ok = g == r;
        else {
            const double s = scale ? scale[i] : fabs(r);
            ok = !isnan(g) && fabs(g - r) <= abs_tol + rel_tol * s;
        }
        if (!ok) {
            if (bad < 4) printf("FAIL %s: [%zu] got %.9g, reference %.9g\n", name, i, g, r);
            bad++;
        }
    }
    harness_checks++;
    if (bad) {
        harness_failures++;
        printf("FAIL %s: %zu of %zu values outside tolerance\n", name, bad, n);
        return 0;
    }
    return 1;
}

int harness_check_same(const char *name, const float *a, const float *b, size_t n) {
    harness_checks++;
    if (memcmp(a, b, n * sizeof(float)) == 0) return 1;
    size_t i = 0;
    while (i < n && memcmp(a + i, b + i, sizeof(float)) == 0) i++;
    harness_failures++;
    printf("FAIL %s: differ first at [%zu]: %.9g vs %.9g\n", name, i, a[i], b[i]);
    return 0;
}

void harness_digest(const char *name, const void *bytes, size_t count) {
    uint64_t h = 0xcbf29ce484222325ull;
    const uint8_t *p = bytes;
    for (size_t i = 0; i < count; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    printf("digest %s %016llx\n", name, (unsigned long long)h);
}

const int *harness_levels(void) {
    static int levels[8];
    int n = 0;
    for (int isa = qk_isa(); isa >= 0; isa--)
        if (qk_isa_runs(isa)) levels[n++] = isa;
    levels[n] = -1;
    return levels;
}

void *harness_alloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) {
        printf("FAIL out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

int main(void) {
    static const char *const names[2][6] = {{"portable", "avx2", "avxvnni", "avx512", "avx512vnni", "avx512wide"},
                                            {"portable", "neon", "dotprod", "i8mm", "?", "?"}};
#if defined(__aarch64__)
    const int arm = 1;
#else
    const int arm = 0;
#endif
    printf("kernels: detected %s, running at %s\n", names[arm][qk_isa_detected()], names[arm][qk_isa()]);
    run_q4_tests();
    run_attention_tests();
    run_activation_tests();
    run_int8_tests();
    printf("%d checks, %d failed\n", harness_checks, harness_failures);
    return harness_failures ? 1 : 0;
}
