#include "harness.h"

// The int4 kernels of both weight layouts against double-precision references: MatMulNBits
// (4 bits, block 32, float16 or float32 scales, optional zero points) and the repacked q4x8
// layout, float32, int8 and int16 activations, GEMV and GEMM. Accumulation tolerances are the
// rigorous bound of float32 summation, (terms + 16) · 2^-24 · Σ|terms|: a wrong nibble, row or
// scale is off by whole terms, far outside it.

static const double U = 0x1p-24;

// A random MatMulNBits matrix [n, blocks * 32].
typedef struct {
    size_t n, blocks;
    uint8_t *data, *zp;      // zp null: symmetric (8)
    uint16_t *s16;           // exactly one of s16 / s32
    float *s32;
} q4_matrix;

static q4_matrix make_matrix(harness_rng *g, size_t n, size_t blocks, int f32_scales, int zero_points) {
    q4_matrix m = { n, blocks, harness_alloc(n * blocks * 16), NULL, NULL, NULL };
    for (size_t i = 0; i < n * blocks * 16; i++) m.data[i] = rng_byte(g);
    if (zero_points) {
        m.zp = harness_alloc(n * ((blocks + 1) / 2));
        for (size_t i = 0; i < n * ((blocks + 1) / 2); i++) m.zp[i] = rng_byte(g);
    }
    if (f32_scales) {
        m.s32 = harness_alloc(n * blocks * sizeof(float));
        for (size_t i = 0; i < n * blocks; i++) m.s32[i] = rng_uniform(g, -0.02f, 0.02f);
    } else {
        m.s16 = harness_alloc(n * blocks * sizeof(uint16_t));
        for (size_t i = 0; i < n * blocks; i++) m.s16[i] = harness_f32_to_f16(rng_uniform(g, -0.02f, 0.02f));
    }
    return m;
}

static void free_matrix(q4_matrix *m) { free(m->data); free(m->zp); free(m->s16); free(m->s32); }

static int nibble(const q4_matrix *m, size_t r, size_t k) {
    const uint8_t byte = m->data[r * m->blocks * 16 + k / 2];
    return (k & 1) ? byte >> 4 : byte & 15;
}
static int zero_point(const q4_matrix *m, size_t r, size_t b) {
    if (!m->zp) return 8;
    const uint8_t byte = m->zp[r * ((m->blocks + 1) / 2) + b / 2];
    return (b & 1) ? byte >> 4 : byte & 15;
}
static double scale(const q4_matrix *m, size_t r, size_t b) {
    return m->s16 ? harness_f16_to_f32(m->s16[r * m->blocks + b]) : m->s32[r * m->blocks + b];
}

static float *random_floats(harness_rng *g, size_t count, float amplitude) {
    float *x = harness_alloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++) x[i] = rng_uniform(g, -amplitude, amplitude);
    return x;
}

// y[r] = Σ_k (q - z) s a[k], and the bound's Σ |terms| with the zero point's term counted apart
// (the kernels round q·s and z·s separately).
static void reference_gemv(const q4_matrix *m, const float *a, size_t r0, size_t r1, double *y, double *mag) {
    for (size_t r = r0; r < r1; r++) {
        double sum = 0, abs_sum = 0;
        for (size_t k = 0; k < m->blocks * 32; k++) {
            const double s = scale(m, r, k / 32), q = nibble(m, r, k), z = zero_point(m, r, k / 32);
            sum += (q - z) * s * a[k];
            abs_sum += (fabs(q * s) + fabs(z * s)) * fabs((double)a[k]);
        }
        y[r - r0] = sum;
        mag[r - r0] = abs_sum;
    }
}

static double accumulation_tolerance(size_t k) { return (double)(k + 16) * U; }

// --- MatMulNBits layout ---------------------------------------------------------------------------

static void test_q4_gemv(harness_rng *g, size_t n, size_t blocks, int f32_scales, int zero_points, size_t r0, size_t r1) {
    char name[96];
    snprintf(name, sizeof name, "q4_gemv/n=%zu,blocks=%zu,%s%s,rows=%zu..%zu", n, blocks, f32_scales ? "f32" : "f16",
             zero_points ? ",zp" : "", r0, r1);
    q4_matrix m = make_matrix(g, n, blocks, f32_scales, zero_points);
    float *a = random_floats(g, blocks * 32, 1.0f), *y = harness_alloc(n * sizeof(float));
    double *ref = harness_alloc(n * sizeof(double)), *mag = harness_alloc(n * sizeof(double));
    if (harness_check(name, qk_q4_gemv(m.data, m.s16, m.s32, m.zp, blocks, a, r0, r1, y) == 1, "kernel declined")) {
        reference_gemv(&m, a, r0, r1, ref, mag);
        harness_check_close(name, y + r0, ref, mag, r1 - r0, 0, accumulation_tolerance(blocks * 32));
        harness_digest(name, y + r0, (r1 - r0) * sizeof(float));
    }
    // Dequantized rows: (q - z) · s, one rounding, so exactly the reference rounded to float.
    snprintf(name, sizeof name, "q4_dequantize/n=%zu,blocks=%zu,%s%s", n, blocks, f32_scales ? "f32" : "f16",
             zero_points ? ",zp" : "");
    const size_t k = blocks * 32, ld = k + 3;
    float *w = harness_alloc((r1 - r0) * ld * sizeof(float));
    double *exact = harness_alloc((r1 - r0) * k * sizeof(double));
    float *packed_rows = harness_alloc((r1 - r0) * k * sizeof(float));
    if (harness_check(name, qk_q4_dequantize(m.data, m.s16, m.s32, m.zp, blocks, r0, r1, w, ld) == 1, "kernel declined")) {
        for (size_t r = r0; r < r1; r++)
            for (size_t e = 0; e < k; e++) {
                exact[(r - r0) * k + e] = (float)((nibble(&m, r, e) - zero_point(&m, r, e / 32)) * scale(&m, r, e / 32));
                packed_rows[(r - r0) * k + e] = w[(r - r0) * ld + e];
            }
        harness_check_close(name, packed_rows, exact, NULL, (r1 - r0) * k, 0, 0);
    }
    free(w); free(exact); free(packed_rows);
    free(a); free(y); free(ref); free(mag); free_matrix(&m);
}

// C = A · dequantize(B)ᵀ through `qk_q4_pack_a` and `qk_q4_gemm`, all strips, columns [c0, c1).
static void gemm_reference(const q4_matrix *w, const float *a, size_t m, size_t c0, size_t c1, double *ref, double *mag) {
    const size_t k = w->blocks * 32;
    for (size_t i = 0; i < m; i++)
        for (size_t j = c0; j < c1; j++) {
            double sum = 0, abs_sum = 0;
            for (size_t e = 0; e < k; e++) {
                const double s = scale(w, j, e / 32), q = nibble(w, j, e), z = zero_point(w, j, e / 32);
                sum += (q - z) * s * a[i * k + e];
                abs_sum += (fabs(q * s) + fabs(z * s)) * fabs((double)a[i * k + e]);
            }
            ref[i * (c1 - c0) + j - c0] = sum;
            mag[i * (c1 - c0) + j - c0] = abs_sum;
        }
}

static float *pack_a(const float *a, size_t m, size_t blocks) {
    float *ap = harness_alloc(qk_q4_packed_a_floats(m, blocks) * sizeof(float));
    qk_q4_pack_a(a, blocks * 32, m, blocks * 32, blocks, 0, qk_q4_strip_count(m), ap);
    return ap;
}

static void test_q4_gemm(harness_rng *g, size_t m, size_t n, size_t blocks, int f32_scales, int zero_points) {
    char name[96];
    snprintf(name, sizeof name, "q4_gemm/m=%zu,n=%zu,blocks=%zu,%s%s", m, n, blocks, f32_scales ? "f32" : "f16",
             zero_points ? ",zp" : "");
    q4_matrix w = make_matrix(g, n, blocks, f32_scales, zero_points);
    const size_t k = blocks * 32, c0 = n > 8 ? 3 : 0, c1 = n;    // a column range not starting at 0
    float *a = random_floats(g, m * k, 1.0f), *ap = pack_a(a, m, blocks);
    float *c = harness_alloc(m * n * sizeof(float)), *got = harness_alloc(m * (c1 - c0) * sizeof(float));
    double *ref = harness_alloc(m * (c1 - c0) * sizeof(double)), *mag = harness_alloc(m * (c1 - c0) * sizeof(double));
    if (harness_check(name, qk_q4_gemm(w.data, w.s16, w.s32, w.zp, blocks, ap, m, 0, qk_q4_strip_count(m), c0, c1, c, n) == 1,
                      "kernel declined")) {
        for (size_t i = 0; i < m; i++) memcpy(got + i * (c1 - c0), c + i * n + c0, (c1 - c0) * sizeof(float));
        gemm_reference(&w, a, m, c0, c1, ref, mag);
        harness_check_close(name, got, ref, mag, m * (c1 - c0), 0, 2 * accumulation_tolerance(k));
        harness_digest(name, got, m * (c1 - c0) * sizeof(float));
    }
    free(a); free(ap); free(c); free(got); free(ref); free(mag); free_matrix(&w);
}

// --- q4x8 layout ----------------------------------------------------------------------------------

static uint8_t *pack_q4x8(const q4_matrix *m) {
    uint8_t *p = harness_alloc(qk_q4x8_size(m->n, m->blocks, m->s32 != NULL));
    harness_check("q4x8_pack", qk_q4x8_pack(m->data, m->s16, m->s32, m->blocks, 0, m->n / 8, p) == 1, "kernel declined");
    return p;
}

// The test's own activation quantizers, from the header's definitions: per block of 32, scale =
// max|a| / L (float32), q = a · (L / max|a|) in float32, rounded (int8: half away from zero;
// int16: half to even), 0 for an all-zero block; and the block's zero-point term 8 · Σ q.
static void quantize_reference(const float *a, size_t blocks, int levels, int32_t *q, float *scales, int32_t *zterms) {
    for (size_t b = 0; b < blocks; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(a[b * 32 + i]));
        scales[b] = amax / (float)levels;
        const float inv = amax > 0 ? (float)levels / amax : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            const float v = a[b * 32 + i] * inv;
            q[b * 32 + i] = (int32_t)(levels == 127 ? roundf(v) : rintf(v));
            sum += q[b * 32 + i];
        }
        zterms[b] = 8 * sum;
    }
}

// y[r] = Σ_b ascale_b · s_rb · Σ_k (q_rk - 8) · qa_k: what the integer kernels compute exactly
// before their float epilogue (a few roundings per block).
// A NaN activation makes its block's scale NaN, so every output of its row is NaN.
static void reference_integer_gemv(const q4_matrix *m, const int32_t *qa, const float *ascale, int has_nan, size_t r,
                                   double *y, double *mag) {
    double sum = has_nan ? NAN : 0, abs_sum = 0;
    for (size_t b = 0; b < m->blocks; b++) {
        long long dot = 0, abs_dot = 0;
        for (size_t e = 0; e < 32; e++) {
            dot += (long long)(nibble(m, r, b * 32 + e) - 8) * qa[b * 32 + e];
            abs_dot += llabs((long long)(nibble(m, r, b * 32 + e) - 8) * qa[b * 32 + e]) + 8LL * llabs(qa[b * 32 + e]);
        }
        sum += (double)dot * ascale[b] * scale(m, r, b);
        abs_sum += (double)abs_dot * fabs(ascale[b] * scale(m, r, b));
    }
    *y = sum;
    *mag = abs_sum;
}

typedef int (*multi_gemv)(const uint8_t *, int, size_t, const void *, size_t, size_t, size_t, size_t, float *, size_t, int);
typedef int (*single_gemv)(const uint8_t *, int, size_t, const void *, size_t, size_t, float *, int);

// A multi-row integer GEMV over 1 to `rows` quantized rows (`row_bytes` apart: every pass width
// of every level's kernels) at every level: each row's floats are its single-row GEMV's (y, y2:
// rows × n floats of scratch). The digest is of the `rows`-row run.
static void check_multi_rows(const char *name, multi_gemv multi, single_gemv single, const uint8_t *p, int f32_scales,
                             size_t blocks, const uint8_t *aq, size_t row_bytes, size_t rows, size_t n, float *y, float *y2) {
    const int *levels = harness_levels();
    for (int l = 0; levels[l] > 0; l++) {
        for (size_t m = 1; m <= rows; m++) {
            harness_check(name, multi(p, f32_scales, blocks, aq, row_bytes, m, 0, n, y2, n, levels[l]) == 1, "kernel declined");
            for (size_t i = 0; i < m; i++) {
                single(p, f32_scales, blocks, aq + i * row_bytes, 0, n, y, levels[l]);
                harness_check_same(name, y2 + i * n, y, n);
            }
        }
    }
    harness_digest(name, y2, rows * n * sizeof(float));
}

static void test_q4x8(harness_rng *g, size_t n, size_t blocks, int f32_scales, int with_nan) {
    char name[112], tag[64];
    snprintf(tag, sizeof tag, "n=%zu,blocks=%zu,%s%s", n, blocks, f32_scales ? "f32" : "f16", with_nan ? ",nan" : "");
    q4_matrix m = make_matrix(g, n, blocks, f32_scales, 0);
    uint8_t *p = pack_q4x8(&m);
    const size_t k = blocks * 32;
    enum { MAX_ROWS = 9 };   // the multi-row GEMVs: a pass of 8 rows (VNNI) and one of 1
    float *a = random_floats(g, MAX_ROWS * k, 2.0f);
    a[3 * k / 4] *= 100.0f;                                     // one block with a large range
    if (with_nan) a[5] = NAN;                                   // row 0, block 0
    float *y = harness_alloc(MAX_ROWS * n * sizeof(float)), *y2 = harness_alloc(MAX_ROWS * n * sizeof(float));
    double *ref = harness_alloc(n * sizeof(double)), *mag = harness_alloc(n * sizeof(double));

    // float32 activations.
    snprintf(name, sizeof name, "q4x8_gemv/%s", tag);
    if (harness_check(name, qk_q4x8_gemv(p, f32_scales, blocks, a, 0, n, y) == 1, "kernel declined")) {
        reference_gemv(&m, a, 0, n, ref, mag);
        harness_check_close(name, y, ref, mag, n, 0, accumulation_tolerance(k));
        harness_digest(name, y, n * sizeof(float));
        // All the rows at once, and the rows after the first group: each row's floats its own
        // single-row GEMV's.
        snprintf(name, sizeof name, "q4x8_gemv_multi/%s", tag);
        for (size_t first = 0; first < n; first += n - 8) {
            harness_check(name, qk_q4x8_gemv_multi(p, f32_scales, blocks, a, k, MAX_ROWS, first, n, y2, n) == 1, "kernel declined");
            for (size_t i = 0; i < MAX_ROWS; i++) {
                qk_q4x8_gemv(p, f32_scales, blocks, a + i * k, first, n, y);
                harness_check_same(name, y2 + i * n + first, y + first, n - first);
            }
            if (n <= 8) break;
        }
        harness_digest(name, y2, MAX_ROWS * n * sizeof(float));
    }

    int32_t *qa = harness_alloc(k * sizeof(int32_t)), *zterms = harness_alloc(blocks * sizeof(int32_t));
    float *ascale = harness_alloc(blocks * sizeof(float));
    // int8 activations: the quantized bytes, the GEMV at every level, the GEMM over 1..7 rows.
    {
        const size_t row_bytes = qk_q8_activation_bytes(blocks);
        uint8_t *aq = harness_alloc(MAX_ROWS * row_bytes);
        int quantized = 1;
        for (size_t i = 0; i < MAX_ROWS; i++) quantized &= qk_q8_quantize(a + i * k, blocks, aq + i * row_bytes);
        snprintf(name, sizeof name, "q8_quantize/%s", tag);
        if (harness_check(name, quantized, "kernel declined")) {
            quantize_reference(a, blocks, 127, qa, ascale, zterms);
            // A block holding NaN has a NaN scale (its bytes are then irrelevant): compared from block 1.
            const size_t b0 = with_nan ? 1 : 0;
            int same = memcmp(aq + blocks * 32 + b0 * 4, ascale + b0, (blocks - b0) * sizeof(float)) == 0;
            for (size_t b = b0; b < blocks; b++) {
                const int8_t *qb = (const int8_t *)aq + b * 32;
                for (int j = 0; j < 4; j++)
                    for (int i = 0; i < 4; i++)
                        same &= qb[8 * j + i] == qa[b * 32 + 8 * j + 2 * i] && qb[8 * j + 4 + i] == qa[b * 32 + 8 * j + 2 * i + 1];
                same &= ((const int32_t *)(aq + blocks * 36))[b] == zterms[b];
            }
            harness_check(name, same, "quantized activations differ from the reference quantizer");

            snprintf(name, sizeof name, "q4x8_gemv_q8/%s", tag);
            const int *levels = harness_levels();
            for (int l = 0; levels[l] >= 0 && levels[l] > 0; l++) {
                float *out = l == 0 ? y : y2;
                harness_check(name, qk_q4x8_gemv_q8(p, f32_scales, blocks, aq, 0, n, out, levels[l]) == 1, "kernel declined");
                if (l) harness_check_same(name, y, y2, n);
            }
            for (size_t r = 0; r < n; r++) reference_integer_gemv(&m, qa, ascale, with_nan, r, ref + r, mag + r);
            harness_check_close(name, y, ref, mag, n, 0, accumulation_tolerance(blocks + 8));
            harness_digest(name, y, n * sizeof(float));

            snprintf(name, sizeof name, "q4x8_gemv_q8_multi/%s", tag);
            check_multi_rows(name, qk_q4x8_gemv_q8_multi, qk_q4x8_gemv_q8, p, f32_scales, blocks, aq, row_bytes, MAX_ROWS, n, y, y2);

            for (size_t rows = 1; rows <= MAX_ROWS; rows += 2) {
                snprintf(name, sizeof name, "q4x8_gemm_q8/m=%zu,%s", rows, tag);
                for (int l = 0; levels[l] > 0; l++) {
                    float *out = l == 0 ? y : y2;
                    harness_check(name, qk_q4x8_gemm_q8(p, f32_scales, blocks, aq, rows, 0, n, out, n, levels[l]) == 1,
                                  "kernel declined");
                    if (l) harness_check_same(name, y, y2, rows * n);
                }
                for (size_t i = 0; i < rows; i++) {
                    quantize_reference(a + i * k, blocks, 127, qa, ascale, zterms);
                    for (size_t r = 0; r < n; r++) reference_integer_gemv(&m, qa, ascale, with_nan && i == 0, r, ref + r, mag + r);
                    harness_check_close(name, y + i * n, ref, mag, n, 0, accumulation_tolerance(blocks + 8));
                    // The GEMV's epilogue and block order: row i bit for bit as decode computes it.
                    harness_check(name, qk_q4x8_gemv_q8(p, f32_scales, blocks, aq + i * row_bytes, 0, n, y2, levels[0]) == 1,
                                  "kernel declined");
                    harness_check_same(name, y + i * n, y2, n);
                }
                harness_digest(name, y, rows * n * sizeof(float));
            }
        }
        free(aq);
    }
    // int16 activations: the quantized words, the GEMV at every level, several rows at once.
    {
        const size_t row_bytes = qk_q16_activation_bytes(blocks);
        uint8_t *aq = harness_alloc(MAX_ROWS * row_bytes);
        int quantized = 1;
        for (size_t i = 0; i < MAX_ROWS; i++) quantized &= qk_q16_quantize(a + i * k, blocks, aq + i * row_bytes);
        snprintf(name, sizeof name, "q16_quantize/%s", tag);
        if (harness_check(name, quantized, "kernel declined")) {
            quantize_reference(a, blocks, 32767, qa, ascale, zterms);
            const size_t b0 = with_nan ? 1 : 0;
            int same = memcmp(aq + blocks * 64 + b0 * 4, ascale + b0, (blocks - b0) * sizeof(float)) == 0;
            const uint32_t *words = (const uint32_t *)aq;
            for (size_t b = b0; b < blocks; b++) {
                for (int j = 0; j < 4; j++)
                    for (int i = 0; i < 4; i++) {
                        const uint32_t expect = ((uint32_t)qa[b * 32 + 8 * j + i] & 0xFFFFu) |
                                                (uint32_t)qa[b * 32 + 8 * j + 4 + i] << 16;
                        same &= words[b * 16 + 4 * j + i] == expect;
                    }
                same &= ((const int32_t *)(aq + blocks * 68))[b] == zterms[b];
            }
            harness_check(name, same, "quantized activations differ from the reference quantizer");

            snprintf(name, sizeof name, "q4x8_gemv_q16/%s", tag);
            const int *levels = harness_levels();
            for (int l = 0; levels[l] > 0; l++) {
                float *out = l == 0 ? y : y2;
                harness_check(name, qk_q4x8_gemv_q16(p, f32_scales, blocks, aq, 0, n, out, levels[l]) == 1, "kernel declined");
                if (l) harness_check_same(name, y, y2, n);
            }
            for (size_t r = 0; r < n; r++) reference_integer_gemv(&m, qa, ascale, with_nan, r, ref + r, mag + r);
            harness_check_close(name, y, ref, mag, n, 0, accumulation_tolerance(blocks + 8));
            harness_digest(name, y, n * sizeof(float));

            snprintf(name, sizeof name, "q4x8_gemv_q16_multi/%s", tag);
            check_multi_rows(name, qk_q4x8_gemv_q16_multi, qk_q4x8_gemv_q16, p, f32_scales, blocks, aq, row_bytes, MAX_ROWS, n, y, y2);
        }
        free(aq);
    }
    // float32 GEMM: every level the same floats, the MatMulNBits-layout GEMM's too, the reference.
    for (size_t rows = 3; rows <= MAX_ROWS + 6; rows += 5) {
        snprintf(name, sizeof name, "q4x8_gemm/m=%zu,%s", rows, tag);
        float *ap = pack_a(a, rows < MAX_ROWS ? rows : MAX_ROWS, blocks);
        const size_t mm = rows < MAX_ROWS ? rows : MAX_ROWS;
        const size_t c0 = n > 8 ? 8 : 0;
        const int *levels = harness_levels();
        for (int l = 0; levels[l] > 0; l++) {
            float *out = l == 0 ? y : y2;
            harness_check(name, qk_q4x8_gemm(p, f32_scales, blocks, ap, mm, 0, qk_q4_strip_count(mm), c0, n, out, n,
                                             levels[l]) == 1, "kernel declined");
            if (l) for (size_t i = 0; i < mm; i++) harness_check_same(name, y + i * n + c0, y2 + i * n + c0, n - c0);
        }
        qk_q4_gemm(m.data, m.s16, m.s32, NULL, blocks, ap, mm, 0, qk_q4_strip_count(mm), c0, n, y2, n);
        for (size_t i = 0; i < mm; i++) harness_check_same(name, y + i * n + c0, y2 + i * n + c0, n - c0);
        double *gref = harness_alloc(mm * n * sizeof(double)), *gmag = harness_alloc(mm * n * sizeof(double));
        float *got = harness_alloc(mm * n * sizeof(float));
        gemm_reference(&m, a, mm, c0, n, gref, gmag);
        for (size_t i = 0; i < mm; i++) memcpy(got + i * (n - c0), y + i * n + c0, (n - c0) * sizeof(float));
        harness_check_close(name, got, gref, gmag, mm * (n - c0), 0, 2 * accumulation_tolerance(k));
        harness_digest(name, got, mm * (n - c0) * sizeof(float));
        free(gref); free(gmag); free(got); free(ap);
    }
    free(qa); free(zterms); free(ascale);
    free(a); free(y); free(y2); free(ref); free(mag); free(p); free_matrix(&m);
}

void run_q4_tests(void) {
    harness_rng g = { 20261205 };
    if (qk_isa() == QK_ISA_PORTABLE) {
        // No SIMD kernel: every entry point declines and the Swift kernels do the work.
        q4_matrix m = make_matrix(&g, 8, 1, 0, 0);
        float a[32] = { 0 }, y[8];
        uint8_t packed[8 * 144];
        harness_check("q4/portable declines", !qk_q4_gemv(m.data, m.s16, NULL, NULL, 1, a, 0, 8, y) &&
                      !qk_q4x8_pack(m.data, m.s16, NULL, 1, 0, 1, packed) && !qk_q8_quantize(a, 1, packed) &&
                      !qk_q16_quantize(a, 1, packed), "a kernel ran at the portable level");
        free_matrix(&m);
        return;
    }
    // MatMulNBits layout: groups of 8 rows and tails, float16 runs of 8 blocks and their rest.
    test_q4_gemv(&g, 8, 1, 0, 0, 0, 8);
    test_q4_gemv(&g, 13, 3, 0, 0, 0, 13);
    test_q4_gemv(&g, 24, 28, 0, 0, 0, 24);
    test_q4_gemv(&g, 21, 9, 0, 1, 3, 21);
    test_q4_gemv(&g, 16, 5, 1, 0, 0, 16);
    test_q4_gemv(&g, 19, 4, 1, 1, 2, 19);
    test_q4_gemm(&g, 3, 8, 1, 0, 0);
    test_q4_gemm(&g, 7, 24, 9, 0, 1);
    test_q4_gemm(&g, 13, 40, 3, 1, 0);
    test_q4_gemm(&g, 9, 17, 10, 1, 1);
    // q4x8 layout.
    test_q4x8(&g, 8, 1, 0, 0);
    test_q4x8(&g, 16, 5, 1, 0);
    test_q4x8(&g, 24, 28, 0, 0);
    test_q4x8(&g, 40, 70, 0, 0);     // past the GEMV's 64-block stack buffer
    test_q4x8(&g, 280, 2, 0, 0);     // 35 row groups: the wide kernels' chunk of 32, then a pair and a lone group
    test_q4x8(&g, 16, 3, 0, 1);
}
