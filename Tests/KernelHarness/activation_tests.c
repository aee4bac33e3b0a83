#include "harness.h"
#include "float_tests.h"

// qk_sigmoid, qk_silu_mul, qk_round_to_half, qk_f16_gemv_rows (and _multi), qk_bnb4_gemv (and _multi) and qk_int_gemm
// against references computed here (double precision, or exact integers). u = 2^-24 is float32's
// unit roundoff; each tolerance is twice the error bound stated beside it.

#define U 0x1p-24

// Puts special values (where an exp clamps, flushes or saturates, IEEE specials, ties) over the
// vector part and the tail of x[0..n).
static void put_specials(float *x, size_t n, const float *specials, size_t count) {
    for (size_t j = 0; j < count && j < n; j++) x[(j * 7 + 3) % n] = specials[j];
}

// σ(x) = 1 / (1 + e^-x): the exp within 8u (simd_exp.h; expf on tails within 1u), whose relative
// error 1 / (1 + e) scales by e / (1 + e) < 1, then the add and the division: 10u. Absolute
// 1e-37: below x = -87.3 σ is tiny, and for x < -88.38 the clamped exp leaves 1 / (1 + e^88.38)
// ≈ 4.2e-39 where σ is smaller.
static void sigmoid_case(harness_rng *rng, size_t n, float magnitude) {
    static const float specials[] = {0.0f, -0.0f, 88.3f, -88.3f, 87.4f, -87.4f, 88.5f, -88.5f, 100.0f, -100.0f,
                                     1e30f, -1e30f, 1e-40f, INFINITY, -INFINITY, NAN, 17.0f, -17.0f};
    float *x = harness_alloc(n * sizeof(float)), *y = harness_alloc(n * sizeof(float));
    double *ref = harness_alloc(n * sizeof(double));
    fill_uniform(rng, x, n, -magnitude, magnitude);
    put_specials(x, n, specials, sizeof specials / sizeof specials[0]);
    for (size_t i = 0; i < n; i++) ref[i] = 1 / (1 + exp(-(double)x[i]));
    char name[96];
    snprintf(name, sizeof name, "sigmoid/n=%zu,x=%g", n, magnitude);
    qk_sigmoid(x, y, n);
    harness_check_close(name, y, ref, NULL, n, 1e-37, 2 * 10 * U);
    digest_simd_floats(name, y, n);
    free(x); free(y); free(ref);
}

// (x · σ(x)) · u: σ's 10u and two products: 12u. Absolute: x · σ(x) · u where σ is clamped at
// 4.2e-39 (x < -88.38): at most |x u| · 4.2e-39 ≤ 1000 · 4 · 4.2e-39 for these inputs. x = -inf is
// left out: the vector path gives -inf · 4.2e-39 = -inf where the formula (and the tail) gives NaN.
static void silu_mul_case(harness_rng *rng, size_t n) {
    static const float specials[] = {0.0f, -0.0f, 88.5f, -88.5f, 100.0f, -100.0f, 1000.0f, -1000.0f, 1e30f,
                                     INFINITY, NAN, -17.0f};
    float *x = harness_alloc(n * sizeof(float)), *u = harness_alloc(n * sizeof(float)), *y = harness_alloc(n * sizeof(float));
    double *ref = harness_alloc(n * sizeof(double));
    fill_uniform(rng, x, n, -30, 30);
    fill_uniform(rng, u, n, -4, 4);
    put_specials(x, n, specials, sizeof specials / sizeof specials[0]);
    if (n > 5) u[n - 2] = NAN;
    for (size_t i = 0; i < n; i++) ref[i] = (double)x[i] / (1 + exp(-(double)x[i])) * u[i];
    char name[96];
    snprintf(name, sizeof name, "silu_mul/n=%zu", n);
    qk_silu_mul(x, u, y, n);
    harness_check_close(name, y, ref, NULL, n, 2 * 1000 * 4 * 4.2e-39, 2 * 12 * U);
    digest_simd_floats(name, y, n);
    free(x); free(u); free(y); free(ref);
}

// Rounding to float16 and back is exact: the reference rounds with harness_f32_to_f16 (nearest,
// ties to even) and the result must match bit for bit (any NaN for NaN).
static void round_to_half_case(harness_rng *rng, size_t n, const char *what, float lo, float hi, int random_bits) {
    // Ties (to even): 1 + 2^-11 down to 1, 1 + 3·2^-11 up, 2^-25 down to 0, 1.5·2^-24 up to 2^-23,
    // 1023.5·2^-24 up to the smallest normal 2^-14; the largest half and past it; subnormal floats.
    static const float specials[] = {0x1.002p0f, 0x1.006p0f, 0x1p-25f, 0x1.8p-24f, 0x1.ffcp-15f, 0x1.8p-25f, 0x1p-24f,
                                     0x1p-14f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e6f, 1e-40f, -0.0f,
                                     INFINITY, -INFINITY, NAN};
    float *x = harness_alloc(n * sizeof(float)), *y = harness_alloc(n * sizeof(float)), *expect = harness_alloc(n * sizeof(float));
    if (random_bits)
        for (size_t i = 0; i < n; i++) {
            const uint32_t bits = (uint32_t)rng_next(rng);
            memcpy(&x[i], &bits, 4);
        }
    else fill_uniform(rng, x, n, lo, hi);
    put_specials(x, n, specials, sizeof specials / sizeof specials[0]);
    char name[96];
    snprintf(name, sizeof name, "round_to_half/n=%zu,%s", n, what);
    const int done = qk_round_to_half(x, y, n);
    harness_check(name, done == (qk_isa() > QK_ISA_PORTABLE), "returns 1 exactly when a SIMD level runs");
    if (done) {
        for (size_t i = 0; i < n; i++) {
            expect[i] = harness_f16_to_f32(harness_f32_to_f16(x[i]));
            if (isnan(expect[i]) && isnan(y[i])) expect[i] = y[i];
        }
        harness_check_same(name, y, expect, n);
        digest_simd_floats(name, y, n);
    }
    free(x); free(y); free(expect);
}

// Σ_c a[c] · w[r, c]: per lane at most k/8 FMAs, the horizontal sum 3 adds, the tail at most 7
// FMAs: (k/8 + 11)·u·Σ|a·w|.
static void f16_gemv_case(harness_rng *rng, size_t k, size_t row_begin, size_t row_end, float magnitude) {
    const size_t rows = row_end, count = row_end - row_begin;
    float *a = harness_alloc(k * sizeof(float)), *y = harness_alloc(count * sizeof(float));
    float *w_values = harness_alloc(rows * k * sizeof(float));
    uint16_t *w = harness_alloc(rows * k * sizeof(uint16_t));
    double *ref = harness_alloc(count * sizeof(double)), *scale = harness_alloc(count * sizeof(double));
    fill_uniform(rng, a, k, -magnitude, magnitude);
    fill_uniform(rng, w_values, rows * k, -magnitude, magnitude);
    for (size_t i = 0; i < rows * k; i++) w[i] = harness_f32_to_f16(w_values[i]);
    for (size_t r = row_begin; r < row_end; r++) {
        double sum = 0, magnitude_sum = 0;
        for (size_t c = 0; c < k; c++) {
            const double term = (double)a[c] * harness_f16_to_f32(w[r * k + c]);
            sum += term;
            magnitude_sum += fabs(term);
        }
        ref[r - row_begin] = sum;
        scale[r - row_begin] = magnitude_sum;
    }
    char name[96];
    snprintf(name, sizeof name, "f16_gemv_rows/k=%zu,rows=%zu..%zu,x=%g", k, row_begin, row_end, magnitude);
    const int done = qk_f16_gemv_rows(a, w, k, row_begin, row_end, y);
    harness_check(name, done == (qk_isa() > QK_ISA_PORTABLE), "returns 1 exactly when a SIMD level runs");
    if (done) {
        harness_check_close(name, y, ref, scale, count, 0, 2 * (k / 8 + 11.0) * U);
        digest_simd_floats(name, y, count);
    }
    free(a); free(y); free(w_values); free(w); free(ref); free(scale);
}

// qk_f16_gemv_rows_multi: m activation rows (lda floats apart, padded) at once against rows
// [row_begin, row_end), each row's results bit for bit its qk_f16_gemv_rows ones (which
// f16_gemv_case holds to double sums): the batched decode step's rows are their solo runs'.
static void f16_gemv_multi_case(harness_rng *rng, size_t k, size_t m, size_t row_begin, size_t row_end) {
    const size_t rows = row_end, count = row_end - row_begin, lda = k + 3, ldy = count + 5;
    float *a = harness_alloc(m * lda * sizeof(float)), *y = harness_alloc(m * ldy * sizeof(float));
    float *solo = harness_alloc(count * sizeof(float)), *w_values = harness_alloc(rows * k * sizeof(float));
    uint16_t *w = harness_alloc(rows * k * sizeof(uint16_t));
    fill_uniform(rng, a, m * lda, -1, 1);
    fill_uniform(rng, w_values, rows * k, -1, 1);
    for (size_t i = 0; i < rows * k; i++) w[i] = harness_f32_to_f16(w_values[i]);
    char name[96];
    snprintf(name, sizeof name, "f16_gemv_rows_multi/k=%zu,m=%zu,rows=%zu..%zu", k, m, row_begin, row_end);
    const int done = qk_f16_gemv_rows_multi(a, lda, m, w, k, row_begin, row_end, y, ldy);
    harness_check(name, done == (qk_isa() > QK_ISA_PORTABLE), "returns 1 exactly when a SIMD level runs");
    if (done) {
        for (size_t i = 0; i < m; i++) {
            qk_f16_gemv_rows(a + i * lda, w, k, row_begin, row_end, solo);
            harness_check_same(name, y + i * ldy, solo, count);
        }
        digest_simd_floats(name, y, m * ldy - 5);
    }
    free(a); free(y); free(solo); free(w_values); free(w);
}

// qk_f16_gemm against double sums: m rows (strips of 6, tails of 3-5), columns split in two
// ranges as threads split them (one ending past a whole panel), k past whole blocks of 32.
static void f16_gemm_case(harness_rng *rng, size_t m, size_t n, size_t k) {
    const size_t blocks = (k + 31) / 32, ldc = n + 3;
    float *a = harness_alloc(m * k * sizeof(float)), *ap = harness_alloc(qk_q4_packed_a_floats(m, blocks) * sizeof(float));
    float *w_values = harness_alloc(n * k * sizeof(float)), *c = harness_alloc(m * ldc * sizeof(float));
    uint16_t *w = harness_alloc(n * k * sizeof(uint16_t));
    double *ref = harness_alloc(m * ldc * sizeof(double)), *scale = harness_alloc(m * ldc * sizeof(double));
    fill_uniform(rng, a, m * k, -1, 1);
    fill_uniform(rng, w_values, n * k, -1, 1);
    for (size_t i = 0; i < n * k; i++) w[i] = harness_f32_to_f16(w_values[i]);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < ldc; j++) {
            double sum = 0, magnitude_sum = 0;
            for (size_t t = 0; j < n && t < k; t++) {
                const double term = (double)a[i * k + t] * harness_f16_to_f32(w[j * k + t]);
                sum += term;
                magnitude_sum += fabs(term);
            }
            ref[i * ldc + j] = j < n ? sum : -7;
            scale[i * ldc + j] = magnitude_sum;
            c[i * ldc + j] = -7;
        }
    char name[96];
    snprintf(name, sizeof name, "f16_gemm/m=%zu,n=%zu,k=%zu", m, n, k);
    const size_t strips = qk_q4_strip_count(m);
    qk_q4_pack_a(a, k, m, k, blocks, 0, strips, ap);
    const size_t split = n > 16 ? (n / 2 + 15) / 16 * 16 : n;
    int done = qk_f16_gemm(w, k, ap, m, 0, strips, 0, split, c, ldc);
    if (done && split < n) done = qk_f16_gemm(w, k, ap, m, 0, strips, split, n, c, ldc);
    harness_check(name, done == (qk_isa() > QK_ISA_PORTABLE), "returns 1 exactly when a SIMD level runs");
    if (done) {
        harness_check_close(name, c, ref, scale, m * ldc, 0, 2 * (k + 11.0) * U);
        digest_simd_floats(name, c, m * ldc);
    }
    free(a); free(ap); free(w_values); free(c); free(w); free(ref); free(scale);
}

// ONNX Runtime's bitsandbytes tables (contrib_ops/cpu/quantization/blockwise_quant_block_bnb4.h).
static const float fp4_map[16] = {0.00000000f, 5.208333333e-03f, 0.66666667f, 1.00000000f, 0.33333333f, 0.50000000f,
                                  0.16666667f, 0.25000000f, -0.00000000f, -5.208333333e-03f, -0.66666667f, -1.00000000f,
                                  -0.33333333f, -0.50000000f, -0.16666667f, -0.25000000f};
static const float nf4_map[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                                  -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                                  0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
                                  0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

// Σ_c a[c] · (map[code] · absmax) against weights dequantized here (float products, as ONNX
// Runtime's). The vector path sums a · map per block (block/8 FMAs per lane), scales each block
// with one FMA and adds 3; the portable loop rounds each weight and k sums: (k + 8)·u·Σ|a·w|
// covers both (the weights' own rounding, u·|w|, included). The vector and portable results are
// compared with twice that, both being within it of the reference.
static void bnb4_case(harness_rng *rng, int quant_type, size_t block_size, size_t k, size_t row_begin, size_t row_end) {
    const size_t rows = row_end, count = row_end - row_begin, blocks = (rows * k + block_size - 1) / block_size;
    const float *map = quant_type == 0 ? fp4_map : nf4_map;
    uint8_t *b = harness_alloc((rows * k + 1) / 2);
    float *absmax = harness_alloc(blocks * sizeof(float)), *a = harness_alloc(k * sizeof(float));
    float *y = harness_alloc(count * sizeof(float)), *y_portable = harness_alloc(count * sizeof(float));
    double *ref = harness_alloc(count * sizeof(double)), *scale = harness_alloc(count * sizeof(double));
    double *y_double = harness_alloc(count * sizeof(double));
    for (size_t i = 0; i < (rows * k + 1) / 2; i++) b[i] = rng_byte(rng);
    fill_uniform(rng, absmax, blocks, 0.01f, 2);
    fill_uniform(rng, a, k, -1, 1);
    for (size_t r = row_begin; r < row_end; r++) {
        double sum = 0, magnitude = 0;
        for (size_t c = 0; c < k; c++) {
            const size_t flat = r * k + c;
            const unsigned code = flat % 2 ? b[flat / 2] & 15 : b[flat / 2] >> 4;
            const double term = (double)a[c] * (map[code] * absmax[flat / block_size]);
            sum += term;
            magnitude += fabs(term);
        }
        ref[r - row_begin] = sum;
        scale[r - row_begin] = magnitude;
    }
    const int vector = block_size % 16 == 0 && k % block_size == 0;
    char name[112];
    snprintf(name, sizeof name, "bnb4_gemv/%s,block=%zu,k=%zu,rows=%zu..%zu", quant_type ? "nf4" : "fp4", block_size, k,
             row_begin, row_end);
    qk_bnb4_gemv(b, absmax, block_size, quant_type, k, a, row_begin, row_end, y, 0);
    qk_bnb4_gemv(b, absmax, block_size, quant_type, k, a, row_begin, row_end, y_portable, 1);
    const double rel = 2 * (k + 8.0) * U;
    harness_check_close(name, y, ref, scale, count, 0, rel);
    harness_check_close(name, y_portable, ref, scale, count, 0, rel);
    for (size_t i = 0; i < count; i++) y_double[i] = y_portable[i];
    harness_check_close(name, y, y_double, scale, count, 0, 2 * rel);
    if (vector) digest_simd_floats(name, y, count);
    // Five activation rows at once (qk_bnb4_gemv_multi: a pass of four and one on x86), rows and
    // outputs strided: each row's floats those of qk_bnb4_gemv alone, vector and portable.
    const size_t m = 5, lda = k + 3, ldy = count + 2;
    float *am = harness_alloc(m * lda * sizeof(float)), *ym = harness_alloc(m * ldy * sizeof(float));
    float *ym_portable = harness_alloc(m * ldy * sizeof(float)), *y1 = harness_alloc(count * sizeof(float));
    fill_uniform(rng, am, m * lda, -1, 1);
    qk_bnb4_gemv_multi(b, absmax, block_size, quant_type, k, am, lda, m, row_begin, row_end, ym, ldy, 0);
    qk_bnb4_gemv_multi(b, absmax, block_size, quant_type, k, am, lda, m, row_begin, row_end, ym_portable, ldy, 1);
    for (size_t i = 0; i < m; i++) {
        qk_bnb4_gemv(b, absmax, block_size, quant_type, k, am + i * lda, row_begin, row_end, y1, 0);
        harness_check(name, memcmp(ym + i * ldy, y1, count * sizeof(float)) == 0, "multi-row result differs from the row alone");
        qk_bnb4_gemv(b, absmax, block_size, quant_type, k, am + i * lda, row_begin, row_end, y1, 1);
        harness_check(name, memcmp(ym_portable + i * ldy, y1, count * sizeof(float)) == 0,
                      "portable multi-row result differs from the row alone");
    }
    free(am); free(ym); free(ym_portable); free(y1);
    free(b); free(absmax); free(a); free(y); free(y_portable); free(ref); free(scale); free(y_double);
}

// Exact: int64 sums wrapped to int32 as the kernels' int32 accumulation wraps. The vector and
// portable results must both equal them; the digest is of the same integers on every ISA and level.
static void int_gemm_case(harness_rng *rng, size_t m, size_t n, size_t kp, int b_signed, int a_lo, int a_hi) {
    const size_t lda = kp + 16, ldb = kp + 3, ldc = n + 2;
    int16_t *a = harness_alloc(m * lda * sizeof(int16_t));
    uint8_t *b = harness_alloc(n * ldb);
    int32_t *c = harness_alloc(m * ldc * sizeof(int32_t)), *c_portable = harness_alloc(m * ldc * sizeof(int32_t));
    int32_t *ref = harness_alloc(m * ldc * sizeof(int32_t));
    for (size_t i = 0; i < m * lda; i++) a[i] = (int16_t)(a_lo + (int)(rng_next(rng) % (uint64_t)(a_hi - a_lo + 1)));
    for (size_t i = 0; i < n * ldb; i++) b[i] = rng_byte(rng);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            int64_t sum = 0;
            for (size_t k = 0; k < kp; k++) sum += (int64_t)a[i * lda + k] * (b_signed ? (int8_t)b[j * ldb + k] : b[j * ldb + k]);
            ref[i * ldc + j] = (int32_t)(uint32_t)sum;
        }
    char name[96];
    snprintf(name, sizeof name, "int_gemm/m=%zu,n=%zu,kp=%zu,%s,a=%d..%d", m, n, kp, b_signed ? "s8" : "u8", a_lo, a_hi);
    qk_int_gemm(m, n, kp, a, lda, b, ldb, b_signed, c, ldc, 0);
    qk_int_gemm(m, n, kp, a, lda, b, ldb, b_signed, c_portable, ldc, 1);
    harness_check(name, memcmp(c, ref, m * ldc * sizeof(int32_t)) == 0, "differs from the exact sums");
    harness_check(name, memcmp(c_portable, ref, m * ldc * sizeof(int32_t)) == 0, "portable differs from the exact sums");
    harness_digest(name, c, m * ldc * sizeof(int32_t));
    free(a); free(b); free(c); free(c_portable); free(ref);
}

void run_activation_tests(void) {
    harness_rng rng = {0xac71};
    static const size_t sizes[] = {1, 7, 8, 9, 33, 100, 1027};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        sigmoid_case(&rng, sizes[i], 20);
        silu_mul_case(&rng, sizes[i]);
        round_to_half_case(&rng, sizes[i], "x=70000", -70000, 70000, 0);
    }
    sigmoid_case(&rng, 4096, 120);
    round_to_half_case(&rng, 1000, "x=1", -1, 1, 0);
    round_to_half_case(&rng, 1000, "x=1e-4", -1e-4f, 1e-4f, 0);  // float16 subnormals below 6.1e-5
    round_to_half_case(&rng, 4099, "random-bits", 0, 0, 1);

    static const size_t ks[] = {1, 7, 8, 9, 33, 100, 896};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        f16_gemv_case(&rng, ks[i], 0, 1, 1);
        f16_gemv_case(&rng, ks[i], 3, 7, 1);
        f16_gemv_case(&rng, ks[i], 1, 14, 1);
    }
    f16_gemv_case(&rng, 4864, 2, 11, 1);
    f16_gemv_case(&rng, 200, 0, 6, 60000);
    static const size_t f16_multi_shapes[][4] = {{896, 8, 0, 16}, {896, 2, 3, 10}, {7, 5, 0, 3}, {33, 3, 1, 6},
                                                 {100, 9, 2, 9}, {4864, 4, 0, 5}, {9, 1, 0, 4}};
    for (size_t i = 0; i < sizeof f16_multi_shapes / sizeof f16_multi_shapes[0]; i++)
        f16_gemv_multi_case(&rng, f16_multi_shapes[i][0], f16_multi_shapes[i][1], f16_multi_shapes[i][2], f16_multi_shapes[i][3]);
    static const size_t f16_gemm_shapes[][3] = {{3, 16, 32}, {6, 32, 64}, {7, 40, 100}, {13, 48, 896}, {4, 5, 33}, {9, 64, 300}};
    for (size_t i = 0; i < sizeof f16_gemm_shapes / sizeof f16_gemm_shapes[0]; i++)
        f16_gemm_case(&rng, f16_gemm_shapes[i][0], f16_gemm_shapes[i][1], f16_gemm_shapes[i][2]);

    // Vector shapes (block of 16s, k whole blocks), then a block of 24 and blocks across rows.
    static const size_t bnb4_shapes[][2] = {{16, 16}, {16, 64}, {32, 96}, {64, 896}, {128, 256}, {24, 48}, {64, 100}};
    for (size_t i = 0; i < sizeof bnb4_shapes / sizeof bnb4_shapes[0]; i++)
        for (int quant_type = 0; quant_type <= 1; quant_type++) {
            bnb4_case(&rng, quant_type, bnb4_shapes[i][0], bnb4_shapes[i][1], 0, 3);
            bnb4_case(&rng, quant_type, bnb4_shapes[i][0], bnb4_shapes[i][1], 2, 7);
        }

    // The blocking's edges: a single row with 4 columns and the rest; panels of 8 rows (one, two
    // and a part) in tiles of 4, 3, 2 and 1 rows against column pairs and one column left; kp = 24
    // takes the portable loop. Large positive a against uint8 wraps int32.
    static const size_t gemm_shapes[][3] = {{1, 1, 16}, {1, 5, 32}, {1, 9, 48}, {2, 3, 16}, {4, 2, 64}, {4, 7, 32},
                                            {5, 5, 80}, {7, 5, 48}, {8, 9, 64}, {9, 17, 160}, {6, 3, 896}, {17, 3, 32},
                                            {3, 4, 24}};
    for (size_t i = 0; i < sizeof gemm_shapes / sizeof gemm_shapes[0]; i++)
        for (int s = 0; s <= 1; s++) int_gemm_case(&rng, gemm_shapes[i][0], gemm_shapes[i][1], gemm_shapes[i][2], s, -255, 255);
    int_gemm_case(&rng, 5, 6, 8192, 0, 30000, 32767);
    int_gemm_case(&rng, 5, 6, 8192, 1, -32768, 32767);
}
