#include "harness.h"

// MatMulInteger's dot-product kernels (`qk_mmi_*`) against exact int64 sums, and DynamicQuantizeLinear's
// passes (`qk_min_max`, `qk_quantize_u8`) against the scalar definitions.

// Exact: Σ (a − za[i]) · (b − zb[j]) over k, wrapped to int32, for every signedness of A and B,
// zero points per row and per column, k not a multiple of 4 (A's rows then zero-padded, as the
// operator pads them), n past whole panels, and a range of panels. Only where the kernel runs
// (AVX-512 VNNI, arm64 dot product); no digest, since the other levels have no such kernel.
static void mmi_case(harness_rng *rng, size_t m, size_t k, size_t n, int a_signed, int b_signed) {
    char name[96];
    snprintf(name, sizeof name, "mmi_gemm/m=%zu,k=%zu,n=%zu,%s%s", m, k, n, a_signed ? "s8" : "u8", b_signed ? "s8" : "u8");
    if (!qk_mmi_available()) return;
    const size_t kp = (k + 3) / 4 * 4, lda = kp + 8, ldc = n + 3, panels = (n + 15) / 16;
    uint8_t *a = harness_alloc(m * lda), *ap = harness_alloc(m * lda), *b = harness_alloc(k * n);
    int32_t *za = harness_alloc(m * 4), *zap = harness_alloc(m * 4), *zb = harness_alloc(panels * 16 * 4);
    int32_t *zbp = harness_alloc(panels * 16 * 4), *sums = harness_alloc(m * 4), *col_sums = harness_alloc(panels * 16 * 4);
    int8_t *packed = harness_alloc(qk_mmi_packed_bytes(k, n));
    int32_t *c = harness_alloc(m * ldc * 4), *ref = harness_alloc(m * ldc * 4);
    for (size_t i = 0; i < m * lda; i++) a[i] = rng_byte(rng);
    for (size_t i = 0; i < k * n; i++) b[i] = rng_byte(rng);
    for (size_t i = 0; i < m; i++) za[i] = a_signed ? (int8_t)rng_byte(rng) : rng_byte(rng);
    for (size_t j = 0; j < panels * 16; j++) zb[j] = j < n ? (b_signed ? (int8_t)rng_byte(rng) : rng_byte(rng)) : 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            int64_t s = 0;
            for (size_t t = 0; t < k; t++) {
                const int64_t x = a_signed ? (int8_t)a[i * lda + t] : a[i * lda + t];
                const int64_t w = b_signed ? (int8_t)b[t * n + j] : b[t * n + j];
                s += (x - za[i]) * (w - zb[j]);
            }
            ref[i * ldc + j] = (int32_t)(uint32_t)s;
        }
    // The operator's operands: A' = A or A + 128 (zero-padded), za' and zb' shifted to match.
    for (size_t i = 0; i < m; i++) {
        for (size_t t = 0; t < lda; t++) ap[i * lda + t] = t < k ? (uint8_t)(a[i * lda + t] ^ (a_signed ? 0x80 : 0)) : 0;
        zap[i] = za[i] + (a_signed ? 128 : 0);
    }
    for (size_t j = 0; j < panels * 16; j++) zbp[j] = j < n ? zb[j] - qk_mmi_b_offset(b_signed) : 0;
    qk_mmi_pack(b, k, n, b_signed, packed, col_sums);
    qk_u8_row_sums(ap, m, k, lda, sums);
    for (size_t i = 0; i < m * ldc; i++) c[i] = 0x5a5a5a5a;
    // Two calls: panels [0, h) and [h, panels), as two threads would split them.
    const size_t h = panels / 2;
    if (h > 0) qk_mmi_gemm(m, k, ap, lda, zap, sums, packed, col_sums, zbp, n, 0, h, c, ldc);
    qk_mmi_gemm(m, k, ap, lda, zap, sums, packed, col_sums, zbp, n, h, panels, c, ldc);
    int ok = 1, untouched = 1;
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) ok &= c[i * ldc + j] == ref[i * ldc + j];
        for (size_t j = n; j < ldc; j++) untouched &= c[i * ldc + j] == 0x5a5a5a5a;
    }
    harness_check(name, ok, "differs from the exact sums");
    harness_check(name, untouched, "wrote past n");
    free(a); free(ap); free(b); free(za); free(zap); free(zb); free(zbp); free(sums); free(col_sums); free(packed);
    free(c); free(ref);
}

static void dynamic_quantize_case(harness_rng *rng, size_t n, float lo, float hi, int specials) {
    char name[96];
    snprintf(name, sizeof name, "dynamic_quantize/n=%zu,x=%g..%g%s", n, lo, hi, specials ? ",nan,inf,-0" : "");
    float *x = harness_alloc(n * sizeof(float));
    uint8_t *y = harness_alloc(n), *ref = harness_alloc(n);
    for (size_t i = 0; i < n; i++) x[i] = rng_uniform(rng, lo, hi);
    if (specials && n >= 4) {
        x[n / 4] = NAN;
        x[n / 2] = -0.0f;
        x[n - 1] = NAN;
    }
    float l = 0, h = 0, rl = 0, rh = 0;
    for (size_t i = 0; i < n; i++) {
        rl = x[i] < rl ? x[i] : rl;
        rh = x[i] >= rh ? x[i] : rh;
    }
    qk_min_max(x, n, &l, &h);
    harness_check(name, l == rl && h == rh, "range differs from the scalar loop");
    const float scale = rh == rl ? 1 : (rh - rl) / 255;
    const float zf = rintf(fmaxf(0, fminf(255, 0 - rl / scale)));
    const uint8_t z = (uint8_t)zf;
    if (specials && n >= 4) x[n / 3] = INFINITY;   // after the range: saturates to 255
    for (size_t i = 0; i < n; i++) {
        const float v = rintf(x[i] / scale) + (float)z;
        ref[i] = v != v ? z : (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    qk_quantize_u8(x, n, scale, z, y);
    harness_check(name, memcmp(y, ref, n) == 0, "bytes differ from the scalar definition");
    harness_digest(name, y, n);
    free(x); free(y); free(ref);
}

void run_int8_tests(void) {
    // Two generators: the MatMulInteger cases draw only where the kernel runs, and the
    // quantization cases' inputs (and digests) must be the same at every level.
    harness_rng rng = {0x1e8}, qrng = {0xd91};
    static const size_t shapes[][3] = {{1, 896, 64}, {1, 4, 16}, {1, 3, 17}, {2, 33, 6}, {5, 100, 65}, {6, 64, 128},
                                       {7, 37, 31}, {13, 896, 80}, {1, 1, 1}, {12, 8, 200}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int s = 0; s < 4; s++) mmi_case(&rng, shapes[i][0], shapes[i][1], shapes[i][2], s & 1, s >> 1);
    static const size_t sizes[] = {1, 7, 8, 9, 100, 4864};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        dynamic_quantize_case(&qrng, sizes[i], -3, 5, 0);
        dynamic_quantize_case(&qrng, sizes[i], 0.5f, 9, 0);     // all positive: min stays 0
        dynamic_quantize_case(&qrng, sizes[i], -40, -1, 1);
    }
}
