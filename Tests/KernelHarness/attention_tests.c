#include "harness.h"
#include "float_tests.h"

// qk_softmax_row, qk_attention_row and qk_attention_group against double-precision references
// computed here from the same float inputs. Error bounds, u = 2^-24 (float32's unit roundoff):
// - a score Σ_d q·(k·c): each k·c and each of at most d accumulating operations rounds once, the
//   horizontal sum adds at most 4 more, the mask 1: |error| ≤ (d + 6)·u·Σ|q·k·c| + u·|score|;
// - softmax: input errors ≤ δ move p = e^(x−m) / Σ e^(x−m) by at most 2δ relative; x − m rounds
//   by u·|x − m| ≤ 100u where p matters (for x − m < -87.3, p < 1.2e-38 is under the absolute
//   tolerance: the vector exp flushes it to 0), the exp is within 8u of e^x, the sum of n terms
//   within n·u, 1/sum and the product 2u: rel(p) ≤ 2δ + (110 + n)·u;
// - out[d] = Σ_t p·v: rel(p) plus t + 1 roundings, relative to Σ_t p·|v|.
// The checks allow twice these bounds.

#define U 0x1p-24
#define P_ABS_TOL 1e-37   // p that the vector exp flushes to 0 (< 1.2e-38) or makes subnormal
#define OUT_ABS_TOL 1e-30 // those p times |v| ≤ 100, summed over ≤ 300 keys

enum mask_kind { NO_MASK, RANDOM_MASK, FULLY_MASKED, LOWEST_MASK };
static const char *const mask_names[] = {"nomask", "mask", "masked-row", "lowest-mask"};

// An additive mask: 0 or (one in four) -inf; every entry -inf; or the lowest float instead of
// -inf (torch.finfo(float32).min, as exports write it). The first entry stays unmasked except in
// a fully masked row.
static void fill_mask(harness_rng *rng, float *mask, size_t n, enum mask_kind kind) {
    for (size_t i = 0; i < n; i++) {
        const int masked = kind == FULLY_MASKED || (i > 0 && (rng_next(rng) & 3) == 0);
        mask[i] = !masked ? 0 : kind == LOWEST_MASK ? -3.4028234663852886e38f : -INFINITY;
    }
}

// p = softmax(x) in place as the kernels define it: NaN anywhere makes every p NaN, a row of
// -inf too; NaN → 0 when nan_to_zero. err[t] bounds the error of the float32 x[t] (or null).
// Returns the relative error bound of the float32 p (see the top).
static double ref_softmax(double *x, size_t n, const double *err, int nan_to_zero) {
    double m = -INFINITY;
    int nan = 0;
    for (size_t t = 0; t < n; t++) {
        if (isnan(x[t])) nan = 1;
        else if (x[t] > m) m = x[t];
    }
    double delta = 0, sum = 0;
    for (size_t t = 0; t < n; t++) {
        if (err && isfinite(x[t]) && x[t] >= m - 100 && err[t] > delta) delta = err[t];
        x[t] = nan || m == -INFINITY ? NAN : exp(x[t] - m);
        sum += x[t];
    }
    for (size_t t = 0; t < n; t++) {
        x[t] /= sum;
        if (nan_to_zero && isnan(x[t])) x[t] = 0;
    }
    return 2 * delta + (110.0 + n) * U;
}

static void softmax_case(harness_rng *rng, size_t n, float magnitude, enum mask_kind kind, int nan_to_zero,
                         float special, size_t special_at) {
    float *x = harness_alloc(n * sizeof(float)), *mask = harness_alloc(n * sizeof(float));
    double *ref = harness_alloc(n * sizeof(double)), *err = harness_alloc(n * sizeof(double));
    fill_uniform(rng, x, n, -magnitude, magnitude);
    fill_mask(rng, mask, n, kind);
    if (special_at < n) x[special_at] = special;
    char name[128];
    snprintf(name, sizeof name, "softmax_row/n=%zu,x=%g,%s,nan_to_zero=%d", n, magnitude, mask_names[kind], nan_to_zero);
    if (special_at < n) snprintf(name + strlen(name), sizeof name - strlen(name), ",x[%zu]=%g", special_at, special);
    for (size_t t = 0; t < n; t++) {
        ref[t] = (double)x[t] + (kind == NO_MASK ? 0 : mask[t]);
        err[t] = kind == NO_MASK ? 0 : U * fabs(ref[t]);  // the float32 sum x + mask
    }
    const double rel = ref_softmax(ref, n, err, nan_to_zero);
    qk_softmax_row(x, kind == NO_MASK ? NULL : mask, n, nan_to_zero);
    harness_check_close(name, x, ref, NULL, n, P_ABS_TOL, 2 * rel);
    digest_simd_floats(name, x, n);
    free(x); free(mask); free(ref); free(err);
}

static void run_softmax_tests(void) {
    harness_rng rng = {0x50f7};
    static const size_t sizes[] = {1, 7, 8, 9, 33, 100, 1000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        softmax_case(&rng, sizes[i], 10, NO_MASK, 1, 0, SIZE_MAX);
        softmax_case(&rng, sizes[i], 10, RANDOM_MASK, 1, 0, SIZE_MAX);
        softmax_case(&rng, sizes[i], 1e4f, RANDOM_MASK, 0, 0, SIZE_MAX);  // one-hot rows, big x − m
    }
    for (int z = 0; z <= 1; z++) {
        softmax_case(&rng, 9, 10, FULLY_MASKED, z, 0, SIZE_MAX);
        softmax_case(&rng, 33, 10, FULLY_MASKED, z, 0, SIZE_MAX);
        softmax_case(&rng, 100, 10, LOWEST_MASK, z, 0, SIZE_MAX);
        // NaN in the vector part and in the tail: the scalar path propagates it (or zeroes all).
        softmax_case(&rng, 33, 10, RANDOM_MASK, z, NAN, 3);
        softmax_case(&rng, 33, 10, RANDOM_MASK, z, NAN, 32);
    }
    // +inf: inf − inf makes every p NaN (with nan_to_zero the vector path leaves them NaN, the
    // scalar path zeroes them, so only nan_to_zero = 0 is defined alike).
    softmax_case(&rng, 20, 10, NO_MASK, 0, INFINITY, 5);
    softmax_case(&rng, 20, 10, NO_MASK, 0, INFINITY, 19);
    // -inf scores without a mask, and a large finite one beside them.
    softmax_case(&rng, 17, 10, NO_MASK, 1, -INFINITY, 8);
    softmax_case(&rng, 17, 10, NO_MASK, 1, 3e38f, 2);
}

// One attention row's reference from float k and v (float16 ones already widened): out and the
// scale of its error, Σ_t p·|v|. Returns the relative tolerance of out against that scale.
static double ref_attention_row(const float *q, const float *k, const float *v, size_t t_count, size_t d_count,
                                float scale, const float *mask, int nan_to_zero, double *out, double *out_scale) {
    double *p = harness_alloc((t_count + 1) * sizeof(double)), *err = harness_alloc((t_count + 1) * sizeof(double));
    for (size_t t = 0; t < t_count; t++) {
        double s = 0, magnitude = 0;
        for (size_t d = 0; d < d_count; d++) {
            const double term = (double)q[d] * ((double)k[t * d_count + d] * scale);
            s += term;
            magnitude += fabs(term);
        }
        p[t] = s + (mask ? mask[t] : 0);
        err[t] = (d_count + 6.0) * U * magnitude + U * fabs(p[t]);
    }
    const double rel = ref_softmax(p, t_count, err, nan_to_zero);
    for (size_t d = 0; d < d_count; d++) {
        double sum = 0, magnitude = 0;
        for (size_t t = 0; t < t_count; t++) {
            sum += p[t] * v[t * d_count + d];
            magnitude += fabs(p[t] * v[t * d_count + d]);
        }
        out[d] = sum;
        out_scale[d] = magnitude;
    }
    free(p); free(err);
    return 2 * (rel + (t_count + 1.0) * U);
}

// Keys or values as the kernel reads them: float32, or float16 bits (`values` rounded to them).
static const void *as_kernel_input(float *values, size_t n, int half, uint16_t *bits) {
    if (!half) return values;
    for (size_t i = 0; i < n; i++) {
        bits[i] = harness_f32_to_f16(values[i]);
        values[i] = harness_f16_to_f32(bits[i]);
    }
    return bits;
}

// The vector kernels run (and the floats are the same on every ISA) for D a multiple of 8 up to 256.
static int vectorized(size_t d_count) { return d_count % 8 == 0 && d_count <= 256; }

static void attention_row_case(harness_rng *rng, size_t t_count, size_t d_count, int k_half, int v_half,
                               enum mask_kind kind, int nan_to_zero, float magnitude, int nan_query) {
    float *q = harness_alloc(d_count * sizeof(float)), *mask = harness_alloc((t_count + 1) * sizeof(float));
    float *k = harness_alloc((t_count * d_count + 1) * sizeof(float)), *v = harness_alloc((t_count * d_count + 1) * sizeof(float));
    uint16_t *kh = harness_alloc((t_count * d_count + 1) * 2), *vh = harness_alloc((t_count * d_count + 1) * 2);
    float *scores = harness_alloc((t_count + 1) * sizeof(float)), *out = harness_alloc(d_count * sizeof(float));
    double *ref = harness_alloc(d_count * sizeof(double)), *ref_scale = harness_alloc(d_count * sizeof(double));
    fill_uniform(rng, q, d_count, -magnitude, magnitude);
    fill_uniform(rng, k, t_count * d_count, -magnitude, magnitude);
    fill_uniform(rng, v, t_count * d_count, -4, 4);
    fill_mask(rng, mask, t_count, kind);
    if (nan_query) q[d_count / 2] = NAN;
    const void *kk = as_kernel_input(k, t_count * d_count, k_half, kh), *vv = as_kernel_input(v, t_count * d_count, v_half, vh);
    const float scale = 1 / sqrtf((float)d_count);
    const float *m = kind == NO_MASK ? NULL : mask;
    char name[128];
    snprintf(name, sizeof name, "attention_row/t=%zu,d=%zu,%s,%s,q=%g%s,nan_to_zero=%d", t_count, d_count,
             k_half ? (v_half ? "f16kv" : "f16k") : (v_half ? "f16v" : "f32kv"), mask_names[kind], magnitude,
             nan_query ? ",nan-q" : "", nan_to_zero);
    const double rel = ref_attention_row(q, k, v, t_count, d_count, scale, m, nan_to_zero, ref, ref_scale);
    qk_attention_row(q, kk, k_half, vv, v_half, t_count, d_count, scale, m, nan_to_zero, scores, out);
    harness_check_close(name, out, ref, ref_scale, d_count, OUT_ABS_TOL, rel);
    if (vectorized(d_count)) digest_simd_floats(name, out, d_count);
    free(q); free(mask); free(k); free(v); free(kh); free(vh); free(scores); free(out); free(ref); free(ref_scale);
}

static void run_attention_row_tests(void) {
    harness_rng rng = {0xa77e};
    // D: 64 and 128 (the models'), 8, 24 and 40 (no 16-wide part, or an 8-wide tail), 256 (the
    // vector limit); 264 and 36 and 5 take the scalar path. T: tails of the four-key blocks.
    static const size_t shapes[][2] = {{1, 64}, {7, 64}, {8, 64}, {9, 64}, {33, 64}, {100, 64}, {257, 64},
                                       {37, 128}, {130, 128}, {5, 8}, {13, 24}, {19, 40}, {11, 256}, {6, 264},
                                       {10, 36}, {3, 5}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const size_t t = shapes[i][0], d = shapes[i][1];
        attention_row_case(&rng, t, d, 0, 0, NO_MASK, 1, 1, 0);
        attention_row_case(&rng, t, d, 1, 1, RANDOM_MASK, 1, 1, 0);
        attention_row_case(&rng, t, d, 1, 0, LOWEST_MASK, 0, 3, 0);
        attention_row_case(&rng, t, d, 0, 1, RANDOM_MASK, 0, 30, 0);  // scores in the thousands
    }
    for (int z = 0; z <= 1; z++) {
        attention_row_case(&rng, 9, 64, 0, 0, FULLY_MASKED, z, 1, 0);
        attention_row_case(&rng, 33, 128, 1, 1, FULLY_MASKED, z, 1, 0);
        attention_row_case(&rng, 12, 64, 1, 1, RANDOM_MASK, z, 1, 1);
        attention_row_case(&rng, 7, 40, 0, 0, NO_MASK, z, 1, 1);
    }
    attention_row_case(&rng, 0, 64, 0, 0, NO_MASK, 1, 1, 0);
}

// qk_attention_group for `rows` query rows with strided q, mask and out, keys and values float32
// or float16 (`half`: both, as a float16 KV cache holds them): each row bit for bit
// qk_attention_row's (the header's promise) and within the reference's bounds.
static void attention_group_case(harness_rng *rng, size_t rows, size_t t_count, size_t d_count, enum mask_kind kind,
                                 int nan_to_zero, int half) {
    const size_t q_stride = d_count + 3, mask_stride = t_count + 5, out_stride = d_count + 1;
    float *q = harness_alloc(rows * q_stride * sizeof(float)), *mask = harness_alloc((rows * mask_stride + 1) * sizeof(float));
    float *k = harness_alloc((t_count * d_count + 1) * sizeof(float)), *v = harness_alloc((t_count * d_count + 1) * sizeof(float));
    float *scores = harness_alloc((rows * t_count + 1) * sizeof(float)), *out = harness_alloc(rows * out_stride * sizeof(float));
    float *row_scores = harness_alloc((t_count + 1) * sizeof(float)), *row_out = harness_alloc(d_count * sizeof(float));
    double *ref = harness_alloc(d_count * sizeof(double)), *ref_scale = harness_alloc(d_count * sizeof(double));
    uint16_t *kh = harness_alloc((t_count * d_count + 1) * 2), *vh = harness_alloc((t_count * d_count + 1) * 2);
    fill_uniform(rng, q, rows * q_stride, -1, 1);
    fill_uniform(rng, k, t_count * d_count, -1, 1);
    fill_uniform(rng, v, t_count * d_count, -4, 4);
    for (size_t r = 0; r < rows; r++) fill_mask(rng, mask + r * mask_stride, t_count, kind);
    // k and v rounded to float16 when `half` (the reference reads the rounded floats).
    const void *kk = as_kernel_input(k, t_count * d_count, half, kh), *vv = as_kernel_input(v, t_count * d_count, half, vh);
    const float scale = 1 / sqrtf((float)d_count);
    const float *m = kind == NO_MASK ? NULL : mask;
    char name[128];
    snprintf(name, sizeof name, "attention_group/rows=%zu,t=%zu,d=%zu,%s,%s,nan_to_zero=%d", rows, t_count, d_count,
             half ? "f16kv" : "f32kv", mask_names[kind], nan_to_zero);
    qk_attention_group(q, q_stride, rows, kk, half, vv, half, t_count, d_count, scale, m, mask_stride, nan_to_zero, scores,
                       out, out_stride);
    int same = 1, same_as_float = 1;
    for (size_t r = 0; r < rows; r++) {
        const float *mr = m ? m + r * mask_stride : NULL;
        qk_attention_row(q + r * q_stride, kk, half, vv, half, t_count, d_count, scale, mr, nan_to_zero, row_scores,
                         row_out);
        same &= memcmp(row_out, out + r * out_stride, d_count * sizeof(float)) == 0;
        // float16 keys and values give exactly the floats of their float32 widening.
        qk_attention_row(q + r * q_stride, k, 0, v, 0, t_count, d_count, scale, mr, nan_to_zero, row_scores, row_out);
        same_as_float &= memcmp(row_out, out + r * out_stride, d_count * sizeof(float)) == 0;
        const double rel = ref_attention_row(q + r * q_stride, k, v, t_count, d_count, scale, mr, nan_to_zero, ref, ref_scale);
        harness_check_close(name, out + r * out_stride, ref, ref_scale, d_count, OUT_ABS_TOL, rel);
    }
    harness_check(name, same, "a row differs from qk_attention_row's");
    harness_check(name, same_as_float, "a row differs from the float32 widening's");
    if (vectorized(d_count)) digest_simd_floats(name, out, rows * out_stride);
    free(q); free(mask); free(k); free(v); free(kh); free(vh); free(scores); free(out); free(row_scores); free(row_out);
    free(ref); free(ref_scale);
}

static void run_attention_group_tests(void) {
    harness_rng rng = {0x6a0b};
    // T across the key tiles (64 keys for D ≤ 64, 32 for D = 128), 7 rows as Qwen2-0.5B's groups.
    static const size_t shapes[][3] = {{1, 9, 64}, {2, 64, 64}, {7, 65, 64}, {7, 300, 64}, {7, 33, 128},
                                       {3, 100, 128}, {4, 70, 8}, {2, 21, 40}, {3, 17, 36}};
    for (int half = 0; half <= 1; half++) {
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            attention_group_case(&rng, shapes[i][0], shapes[i][1], shapes[i][2], NO_MASK, 1, half);
            attention_group_case(&rng, shapes[i][0], shapes[i][1], shapes[i][2], RANDOM_MASK, 1, half);
        }
        attention_group_case(&rng, 3, 40, 64, FULLY_MASKED, 0, half);
        attention_group_case(&rng, 3, 40, 64, FULLY_MASKED, 1, half);
        attention_group_case(&rng, 2, 0, 64, NO_MASK, 1, half);
    }
}

void run_attention_tests(void) {
    run_softmax_tests();
    run_attention_row_tests();
    run_attention_group_tests();
}
