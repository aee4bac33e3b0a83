#include "q4x8_avx512.h"

// AVX-512 kernels over the q4x8 layout (q4x8.c), chosen by q4x8.c's entry points at level
// QK_ISA_AVX512 (the float32 GEMM, also the fp16 one's: half_gemv.c), QK_ISA_AVX512_VNNI (the
// integer GEMVs and GEMM in 256-bit registers: q4x8_vnni256.h) and QK_ISA_AVX512_WIDE (the int8
// GEMM, the multi-row integer GEMVs and the float32 GEMV on two row groups per 512-bit register).
// Each computes exactly the floats of its AVX2 counterpart in q4x8.c: the same products summed in
// the same order (integer sums are exact either way), so the ISA level never changes a result.

#if defined(__x86_64__) || defined(_M_X64)
#include <string.h>
#include "q4x8_shared.h"

#define AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))
#define AVX512_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

// --- float32 GEMM (prefill) -------------------------------------------------------------------
//
// `q4_gemm` (q4_shared.h) with panels of 32 columns (four row groups) in 512-bit registers: the
// same A strips (6 rows, k-major), the same 256-deep K chunks, and per C element the same FMA
// chain from zero over a chunk, added to C after the first chunk. A 6 × 32 register block is 12
// accumulators of 16 lanes: per k 2 loads of the panel, 6 broadcasts and 12 FMAs, twice the
// columns of the AVX2 kernel's step (on CPUs with two 512-bit FMA units, twice the FLOPs per
// cycle; on Zen 4, whose 512-bit operations take both 256-bit halves, half the instructions).

enum { NR = 32 };

// The 32 k of block `block` of the row groups of C's columns n .. n + nr (nr a multiple of 8,
// at most 32) into panel[k * NR + column], columns past nr zero. Two row groups per register:
// the records' words and scales side by side, each lane's value as q4x8.c's `panel_block`
// computes it (q · s − 8 · s, one fused multiply-subtract).
AVX512 static void fill_block(const uint8_t *packed, int f32, size_t blocks, size_t n, size_t nr, size_t block,
                              float *panel) {
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16;
    const __m512i nibble = _mm512_set1_epi32(0xF);
    for (size_t col0 = 0; col0 < NR; col0 += 16) {
        if (col0 >= nr) {
            for (int k = 0; k < 32; k++) _mm512_store_ps(panel + (size_t)k * NR + col0, _mm512_setzero_ps());
            continue;
        }
        const uint8_t *ra = packed + ((n + col0) / 8 * blocks + block) * rec;
        const uint8_t *rb = col0 + 8 < nr ? ra + blocks * rec : NULL;
        __m512 s;
        if (f32) {
            const __m256 hi = rb ? _mm256_loadu_ps((const float *)rb) : _mm256_setzero_ps();
            s = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps((const float *)ra)), hi, 1);
        } else {
            const __m128i hi = rb ? _mm_loadu_si128((const __m128i *)rb) : _mm_setzero_si128();
            s = _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)ra)), hi, 1));
        }
        const __m512 o = _mm512_mul_ps(s, _mm512_set1_ps(8.0f));
        for (int j = 0; j < 4; j++) {
            const __m256i wb = rb ? _mm256_loadu_si256((const __m256i *)(rb + sbytes + 32 * j)) : _mm256_setzero_si256();
            const __m512i w = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(ra + sbytes + 32 * j))), wb, 1);
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const __m512 v = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(w, 4 * i), nibble));
                _mm512_store_ps(panel + (size_t)(8 * j + i) * NR + col0, _mm512_fmsub_ps(v, s, o));
            }
        }
    }
}

// c[0..R) x [0..nr) (+)= strip (k-major, R per k) · panel[kc][32], as q4_kernel_rows does for 16
// columns; columns past nr are neither read nor written.
__attribute__((always_inline)) AVX512 static inline void
kernel_rows(const int R, const float *ap, const float *panel, size_t kc, float *c, size_t ldc, size_t nr,
            int accumulate) {
    __m512 acc[Q4_MR][2];
    for (int i = 0; i < R; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
#pragma clang loop unroll_count(4)
    for (size_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(panel + k * NR), b1 = _mm512_load_ps(panel + k * NR + 16);
        const float *x = ap + k * R;
        for (int i = 0; i < R; i++) {
            const __m512 v = _mm512_set1_ps(x[i]);
            acc[i][0] = _mm512_fmadd_ps(v, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(v, b1, acc[i][1]);
        }
    }
    const __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32 ? 0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    for (int i = 0; i < R; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, ci));
            acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
        _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
    }
}

AVX512 static void kernel(size_t h, const float *ap, const float *panel, size_t kc, float *c, size_t ldc, size_t nr,
                          int accumulate) {
    switch (h) {
    case 6: kernel_rows(6, ap, panel, kc, c, ldc, nr, accumulate); break;
    case 5: kernel_rows(5, ap, panel, kc, c, ldc, nr, accumulate); break;
    case 4: kernel_rows(4, ap, panel, kc, c, ldc, nr, accumulate); break;
    case 3: kernel_rows(3, ap, panel, kc, c, ldc, nr, accumulate); break;
    case 2: kernel_rows(2, ap, panel, kc, c, ldc, nr, accumulate); break;
    default: kernel_rows(1, ap, panel, kc, c, ldc, nr, accumulate); break;
    }
}

// Rows [row of strip s0, row of strip s1) × columns [n0, n1) of C = A · Bᵀ: `q4_gemm_run`
// (q4_strips.h) with 32-column panels, filled by `fill` (panel[k * 32 + j], columns past nr zero).
AVX512 void q4_gemm_run_avx512(q4_panel_fill fill, const void *weights, size_t blocks, const float *ap, size_t m,
                               size_t s0, size_t s1, size_t n0, size_t n1, float *c, size_t ldc) {
    float panel[Q4_KC * NR] __attribute__((aligned(64)));
    const q4_strips strips = q4_strip_plan(m);
    if (s1 > strips.count) s1 = strips.count;
    const size_t kp = blocks * 32, blocks_per_chunk = Q4_KC / 32;
    for (size_t n = n0; n < n1; n += NR) {
        const size_t nr = n1 - n < NR ? n1 - n : NR;
        for (size_t b0 = 0; b0 < blocks; b0 += blocks_per_chunk) {
            const size_t nb = blocks - b0 < blocks_per_chunk ? blocks - b0 : blocks_per_chunk;
            const size_t kc = nb * 32, k0 = b0 * 32;
            for (size_t b = 0; b < nb; b++) fill(weights, n, nr, b0 + b, panel + b * 32 * NR);
            for (size_t s = s0; s < s1; s++) {
                const size_t i = q4_strip_row(strips, s), h = q4_strip_height(strips, s);
                kernel(h, ap + i * kp + k0 * h, panel, kc, c + i * ldc + n, ldc, nr, b0 > 0);
            }
        }
    }
}

typedef struct { const uint8_t *packed; int f32; size_t blocks; } q4x8_weights;

AVX512 static void q4x8_fill(const void *weights, size_t n, size_t nr, size_t block, float *panel) {
    const q4x8_weights *w = weights;
    fill_block(w->packed, w->f32, w->blocks, n, nr, block, panel);
}

void q4x8_gemm_avx512(const uint8_t *packed, int f32, size_t blocks, const float *ap, size_t m, size_t s0,
                      size_t s1, size_t n0, size_t n1, float *c, size_t ldc) {
    const q4x8_weights w = { packed, f32, blocks };
    q4_gemm_run_avx512(q4x8_fill, &w, blocks, ap, m, s0, s1, n0, n1, c, ldc);
}

// --- integer products with VNNI in 256-bit registers (q4x8_vnni256.h) ---------------------------

#define VNNI_ATTR AVX512_VNNI
#define VNNI_DPBUSD _mm256_dpbusd_epi32
#define VNNI_DPWSSD _mm256_dpwssd_epi32
#define VNNI_NAME(name) name##_vnni
#define VNNI_MULTI_ROWS_Q8 8
#define VNNI_MULTI_ROWS_Q16 8
#define VNNI_GEMM_SPLIT 1
#include "q4x8_vnni256.h"

// --- 512-bit integer products (QK_ISA_AVX512_WIDE) ------------------------------------------------
//
// Two row groups side by side in each 512-bit register (lanes 0–7 group g, 8–15 group g + 1): per
// instruction twice the `vpdpbusd` work of the 256-bit kernels, on CPUs that execute 512-bit
// operations whole (Zen 5, Intel; Zen 4 splits them in two halves and keeps the 256-bit kernels).
// Each lane's integer sums and float epilogue are the 256-bit kernels', so are its floats.

#define AVX512_WIDE AVX512_VNNI

// The scales of records ra (lanes 0–7) and rb (lanes 8–15) as floats.
AVX512_WIDE static inline __attribute__((always_inline)) __m512 record_scales2(const uint8_t *ra, const uint8_t *rb,
                                                                              const int f32) {
    if (f32)
        return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps((const float *)ra)),
                                  _mm256_loadu_ps((const float *)rb), 1);
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)ra)),
                                                   _mm_loadu_si128((const __m128i *)rb), 1));
}

// Word j (32 bytes) of records ra and rb in one register.
AVX512_WIDE static inline __attribute__((always_inline)) __m512i record_words2(const uint8_t *qa, const uint8_t *qb, int j) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(qa + 32 * j))),
                              _mm256_loadu_si256((const __m256i *)(qb + 32 * j)), 1);
}

// One pass of R activation rows x[0..R) over two row groups (records from ra0 and rb0; rb0 == ra0
// for a lone last group): row i's 16 results to out[i], or its first 8 when `lone`. The passes'
// body: `SUMS(qa, qb, B, dot)` sets dot[i] (i < R) to row i's integer sums over block B of the two
// records' weights (words at qa and qb), each word pair loaded and split once for all rows; the
// row layout has the blocks' float scales SCALES_AT bytes and zero-point terms ZTERMS_AT bytes
// after the row's start; the epilogue is `block_accumulate` in 16 lanes, so each row's results
// are those of the single-row GEMVs bit for bit.
// The records 8 KB ahead of each of the two streams a pass reads are asked for: with 2 KB (the
// 256-bit kernels' distance, `prefetch_record`) the two streams came from memory slower than one
// (C harness, one thread, Zen 5, 151,936 × 896 from memory, int16 activations, 2 rows a pass:
// 3.0 ms at 2 KB, 2.06 ms at 8 KB, 1.86 ms at 12 KB; the 256-bit kernel 3.3 ms; at K = 4,864
// 8 KB and 12 KB alike).
enum { WIDE_AHEAD = 8192 };
#define WIDE_PREFETCH(r) prefetch_record_at(r, WIDE_AHEAD)
#define Q4X8_WIDE_PASS(SUMS, SCALES_AT, ZTERMS_AT) \
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16, scales_at = (SCALES_AT), zterms_at = (ZTERMS_AT); \
    __m512 acc[8]; \
    for (int i = 0; i < R; i++) acc[i] = _mm512_setzero_ps(); \
    for (size_t b = 0; b < blocks; b++) { \
        const uint8_t *ra = ra0 + b * rec, *rb = rb0 + b * rec; \
        WIDE_PREFETCH(ra); \
        WIDE_PREFETCH(rb); \
        __m512i dot[8]; \
        SUMS(ra + sbytes, rb + sbytes, b, dot) \
        const __m512 ws = record_scales2(ra, rb, f32); \
        for (int i = 0; i < R; i++) { \
            const uint8_t *xi = (const uint8_t *)x[i]; \
            const __m512i d = _mm512_sub_epi32(dot[i], _mm512_set1_epi32(((const int32_t *)(xi + zterms_at))[b])); \
            const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(d), _mm512_set1_ps(((const float *)(xi + scales_at))[b])); \
            acc[i] = _mm512_fmadd_ps(v, ws, acc[i]); \
        } \
    } \
    for (int i = 0; i < R; i++) _mm512_mask_storeu_ps(out[i], lone ? 0x00FF : 0xFFFF, acc[i]);

// int8 activations (`qk_q8_quantize`): `vpdpbusd`, one integer accumulator per row (chains of 8 a
// block: with 8 rows in flight the latency hides, and the registers a split into low- and
// high-nibble sums would take are better spent on rows: C harness, one thread, Zen 5, int8 GEMM
// 128 × 896 × 4864, 4 rows with split sums 617, 8 rows split 643, 8 rows one sum 698 GOP/s,
// the 256-bit kernel 361).
#define Q8_WIDE_SUMS(qa, qb, B, dot) { \
        const __m512i nibbles = _mm512_set1_epi8(0x0F); \
        for (int i = 0; i < R; i++) dot[i] = _mm512_setzero_si512(); \
        _Pragma("unroll") \
        for (int j = 0; j < 4; j++) { \
            const __m512i w = record_words2(qa, qb, j); \
            const __m512i lo = _mm512_and_si512(w, nibbles), hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), nibbles); \
            for (int i = 0; i < R; i++) { \
                const int32_t *xi = (const int32_t *)(x[i] + (B) * 32); \
                dot[i] = _mm512_dpbusd_epi32(dot[i], lo, _mm512_set1_epi32(xi[2 * j])); \
                dot[i] = _mm512_dpbusd_epi32(dot[i], hi, _mm512_set1_epi32(xi[2 * j + 1])); \
            } \
        } \
    }
AVX512_WIDE static inline __attribute__((always_inline)) void q8_wide_pass(const int R, const uint8_t *ra0,
        const uint8_t *rb0, const int f32, size_t blocks, const int8_t *const *x, float *const *out, int lone) {
    Q4X8_WIDE_PASS(Q8_WIDE_SUMS, blocks * 32, blocks * 36)
}

// int16 activations (`qk_q16_quantize`): `Q16_SUMS_VNNI` (q4x8_vnni256.h) in 16 lanes.
#define Q16_WIDE_SUMS(qa, qb, B, dot) { \
        const __m512i nibble = _mm512_set1_epi16(0x000F); \
        for (int i = 0; i < R; i++) dot[i] = _mm512_setzero_si512(); \
        _Pragma("unroll") \
        for (int j = 0; j < 4; j++) { \
            const __m512i w = record_words2(qa, qb, j); \
            const __m512i w0 = _mm512_and_si512(w, nibble), w1 = _mm512_and_si512(_mm512_srli_epi16(w, 4), nibble); \
            const __m512i w2 = _mm512_and_si512(_mm512_srli_epi16(w, 8), nibble), w3 = _mm512_srli_epi16(w, 12); \
            for (int i = 0; i < R; i++) { \
                const int32_t *xj = x[i] + (B) * 16 + 4 * j; \
                dot[i] = _mm512_dpwssd_epi32(dot[i], w0, _mm512_set1_epi32(xj[0])); \
                dot[i] = _mm512_dpwssd_epi32(dot[i], w1, _mm512_set1_epi32(xj[1])); \
                dot[i] = _mm512_dpwssd_epi32(dot[i], w2, _mm512_set1_epi32(xj[2])); \
                dot[i] = _mm512_dpwssd_epi32(dot[i], w3, _mm512_set1_epi32(xj[3])); \
            } \
        } \
    }
AVX512_WIDE static inline __attribute__((always_inline)) void q16_wide_pass(const int R, const uint8_t *ra0,
        const uint8_t *rb0, const int f32, size_t blocks, const int32_t *const *x, float *const *out, int lone) {
    Q4X8_WIDE_PASS(Q16_WIDE_SUMS, blocks * 64, blocks * 68)
}

// Every pair of row groups in [g0, g1) against the m activation rows at aq (`row_bytes` apart,
// of type XTYPE), parameters (packed, f32 — a constant —, blocks, aq, row_bytes, m, g0, g1, y,
// ldy): row i's results at y + i * ldy + 8 g. As `q4x8_gemm_q8_drive`, 32 row groups (~130 KB
// at K = 896) stay in L2 while every row passes over them; 8 rows a pass and the rows past the
// last multiple of 8 in a pass of their own. A batch of up to 8 rows (batched decode) reads
// each record once.
#define Q4X8_WIDE_GROUPS(PASS, XTYPE) { \
        const size_t group_bytes = blocks * record_bytes(f32); \
        for (size_t c0 = g0; c0 < g1; c0 += 32) { \
            const size_t c1 = c0 + 32 < g1 ? c0 + 32 : g1; \
            for (size_t i = 0; i < m; i += 8) { \
                XTYPE x[8]; \
                for (size_t r = 0; r < 8; r++) x[r] = (XTYPE)(aq + (i + r < m ? i + r : i) * row_bytes); \
                for (size_t g = c0; g < c1; g += 2) { \
                    float *out[8]; \
                    for (size_t r = 0; r < 8; r++) out[r] = y + (i + r < m ? i + r : i) * ldy + g * 8; \
                    const uint8_t *ra = packed + g * group_bytes; \
                    const int lone = g + 1 == c1; \
                    const uint8_t *rb = lone ? ra : ra + group_bytes; \
                    switch (m - i >= 8 ? 8 : m - i) { \
                    case 8: PASS(8, ra, rb, f32, blocks, x, out, lone); break; \
                    case 7: PASS(7, ra, rb, f32, blocks, x, out, lone); break; \
                    case 6: PASS(6, ra, rb, f32, blocks, x, out, lone); break; \
                    case 5: PASS(5, ra, rb, f32, blocks, x, out, lone); break; \
                    case 4: PASS(4, ra, rb, f32, blocks, x, out, lone); break; \
                    case 3: PASS(3, ra, rb, f32, blocks, x, out, lone); break; \
                    case 2: PASS(2, ra, rb, f32, blocks, x, out, lone); break; \
                    default: PASS(1, ra, rb, f32, blocks, x, out, lone); break; \
                    } \
                } \
            } \
        } \
    }

// The entry points (`q4x8_q8_wide` serves the int8 GEMM and the int8 multi-row GEMV, whose row
// layouts are the same).
#define Q4X8_WIDE_ENTRY(NAME, PASS, XTYPE) \
    AVX512_WIDE static inline __attribute__((always_inline)) void NAME##_groups(const uint8_t *packed, const int f32, \
            size_t blocks, const uint8_t *aq, size_t row_bytes, size_t m, size_t g0, size_t g1, float *y, size_t ldy) \
        Q4X8_WIDE_GROUPS(PASS, XTYPE) \
    AVX512_WIDE void NAME(const uint8_t *packed, int f32, size_t blocks, const uint8_t *aq, size_t row_bytes, size_t m, \
                          size_t g0, size_t g1, float *y, size_t ldy) { \
        Q4X8_WITH_CONSTANT_SCALES(NAME##_groups, packed, f32, blocks, aq, row_bytes, m, g0, g1, y, ldy); \
    }
Q4X8_WIDE_ENTRY(q4x8_q8_wide, q8_wide_pass, const int8_t *)
Q4X8_WIDE_ENTRY(q4x8_q16_wide, q16_wide_pass, const int32_t *)

// --- float32 decode GEMV on two row groups (QK_ISA_AVX512_WIDE) -----------------------------------
//
// q4x8.c's `gemv_groups` (float32 activations: the q4 exports' decode, `--decode-activations
// float32`) with the records of groups g and g + 1 side by side in 16 lanes (a lone last group
// computed twice, stored once): per lane its AND, convert and FMA sequence, the block's
// ((c0 + c1) + (c2 + c3)), the zero point through the block sum, the even and odd blocks'
// accumulators, so its floats. Half the instructions per weight: that GEMV is compute-bound
// where the integer ones are not (the int16 one, tried the same way, lost: 118–124 against 134–140
// tok/s). Both streams asked for 8 KB ahead (`WIDE_PREFETCH`: at 2 KB the model decoded slower
// than with the 256-bit kernel: `decode-speed --onnx onnx/model_q4.onnx`, Zen 5, 102–106 against
// 109–112 tok/s; at 8 KB 112–141).
AVX512_WIDE static inline __attribute__((always_inline)) void gemv_f32_wide_groups(const uint8_t *packed, const int f32,
        size_t blocks, const float *xs, const float *xsum, size_t g0, size_t g1, float *y) {
    const size_t rec = record_bytes(f32), sbytes = f32 ? 32 : 16, group_bytes = blocks * rec;
    const __m512i m0 = _mm512_set1_epi32(0xF), m1 = _mm512_set1_epi32(0xF0);
    const __m512i m2 = _mm512_set1_epi32(0xF00), m3 = _mm512_set1_epi32(0xF000);
    const __m512 eight = _mm512_set1_ps(8.0f);
#define Q4_STEP16(c, w, m, x) c = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(w, m)), _mm512_set1_ps(*(x)), c)
    for (size_t g = g0; g < g1; g += 2) {
        const uint8_t *pa = packed + g * group_bytes;
        const int lone = g + 1 == g1;
        const uint8_t *pb = lone ? pa : pa + group_bytes;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *ra = pa + b * rec, *rb = pb + b * rec;
            WIDE_PREFETCH(ra);
            WIDE_PREFETCH(rb);
            const float *xb = xs + b * 32;
            __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const __m512i lo = record_words2(ra + sbytes, rb + sbytes, j), hi = _mm512_srli_epi32(lo, 16);
                const float *x = xb + 8 * j;
                Q4_STEP16(c0, lo, m0, x + 0); Q4_STEP16(c1, lo, m1, x + 1); Q4_STEP16(c2, lo, m2, x + 2); Q4_STEP16(c3, lo, m3, x + 3);
                Q4_STEP16(c0, hi, m0, x + 4); Q4_STEP16(c1, hi, m1, x + 5); Q4_STEP16(c2, hi, m2, x + 6); Q4_STEP16(c3, hi, m3, x + 7);
            }
            const __m512 dot = _mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3));
            const __m512 v = _mm512_fnmadd_ps(eight, _mm512_set1_ps(xsum[b]), dot);
            if (b & 1) acc1 = _mm512_fmadd_ps(v, record_scales2(ra, rb, f32), acc1);
            else acc0 = _mm512_fmadd_ps(v, record_scales2(ra, rb, f32), acc0);
        }
        _mm512_mask_storeu_ps(y + g * 8, lone ? 0x00FF : 0xFFFF, _mm512_add_ps(acc0, acc1));
    }
#undef Q4_STEP16
}

AVX512_WIDE void q4x8_gemv_f32_wide(const uint8_t *packed, int f32, size_t blocks, const float *xs, const float *xsum,
                               size_t g0, size_t g1, float *y) {
    Q4X8_WITH_CONSTANT_SCALES(gemv_f32_wide_groups, packed, f32, blocks, xs, xsum, g0, g1, y);
}

#endif
