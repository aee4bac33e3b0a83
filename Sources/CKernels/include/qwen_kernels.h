#ifndef QWEN_KERNELS_H
#define QWEN_KERNELS_H

// Hot int4 kernels in C with x86 (AVX2, AVX-512) and arm64 (NEON) intrinsics, selected at run
// time by CPU features (as ONNX Runtime's MLAS and ggml do), so the package needs no compiler
// flags. Each entry point returns 0 when no SIMD implementation fits this CPU; the Swift kernels
// then do the work. "SIMD" below means the lowest level with C kernels (QK_ISA_AVX2 on x86-64,
// QK_ISA_NEON on arm64). Every SIMD level of a kernel computes the same floats, and the NEON
// kernels those of the AVX2 ones, bit for bit (Tests/KernelHarness, scripts/test-arm64-kernels).

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set levels of the kernels, each including the ones below it. The numbers are
/// shared by the two architectures; the names are those of the one compiled for.
enum qk_isa_level {
    QK_ISA_PORTABLE = 0,     ///< no C SIMD kernel: the Swift/scalar fallbacks
    QK_ISA_AVX2 = 1,         ///< x86-64: AVX2 + FMA + F16C
    QK_ISA_AVX_VNNI = 2,     ///< x86-64: AVX2 + AVX-VNNI (VEX `vpdpbusd`, `vpdpwssd`), for CPUs without AVX-512:
                             ///< the one level the next ones do not include (their integer kernels are AVX-512
                             ///< VNNI's, or AVX2's at QK_ISA_AVX512); a CPU without AVX-VNNI runs it as AVX2
    QK_ISA_AVX512 = 3,       ///< x86-64: AVX2 + AVX-512 F/BW/VL/DQ
    QK_ISA_AVX512_VNNI = 4,  ///< x86-64: + AVX-512 VNNI (`vpdpbusd`, `vpdpwssd`)
    QK_ISA_AVX512_WIDE = 5,  ///< x86-64: + integer products in 512-bit registers, for CPUs that execute 512-bit
                             ///< operations at full width (every AVX-512 VNNI CPU but AMD Zen 4, which splits them)
    QK_ISA_NEON = 1,         ///< arm64: Advanced SIMD (every AArch64 CPU; float16 conversions included)
    QK_ISA_NEON_DOTPROD = 2, ///< arm64: + the dot product instructions (`sdot`, FEAT_DotProd)
    QK_ISA_NEON_I8MM = 3,    ///< arm64: + the int8 matrix multiply (`smmla`, FEAT_I8MM)
};

/// The highest level this CPU (and its OS, which must save the vector state) supports.
int qk_isa_detected(void);

/// The level the kernels use: `qk_isa_detected()`, lowered by the environment variable QWEN_ISA
/// (x86-64: `portable`, `avx2`, `avxvnni`, `avx512`, `avx512vnni`, `avx512wide`; arm64: `portable`, `neon`, `dotprod`,
/// `i8mm`) when it names a lower one. Read once.
int qk_isa(void);

/// The level named `name` (as QWEN_ISA spells it), or -1.
int qk_isa_parse(const char *name);

/// Whether the kernels of level `isa` (at most `qk_isa()`) run as that level here: 0 for
/// QK_ISA_AVX_VNNI on a CPU without AVX-VNNI (the kernels then run at QK_ISA_AVX2).
int qk_isa_runs(int isa);

/// 1 when this C code was compiled with optimisation (`__OPTIMIZE__`: -O1 and up), 0 for -O0,
/// which SwiftPM uses for C targets in debug builds (the kernels then run ~100× slower). Clang
/// has no per-function way to optimise inside an -O0 build, so the library can only say so.
int qk_kernels_optimized(void);

/// 1 when the code that includes this header is compiled for a CPU with AVX2 and FMA. Swift
/// modules import C headers for their own compilation target, so from Swift this says whether
/// that module was built with `-target-cpu` naming such a CPU (its SIMD loops then use AVX and
/// FMA; for a generic x86-64 target, SSE only). The C kernels do not depend on it.
static inline int qk_caller_compiled_for_avx2(void) {
#if defined(__AVX2__) && defined(__FMA__)
    return 1;
#else
    return 0;
#endif
}

/// y[r] = sum_k (q[r,k] - zp[r,k/32]) * scale[r,k/32] * a[k] for rows [row_begin, row_end).
///
/// Weights in MatMulNBits layout, 4 bits, block 32: `data` is [N, blocks, 16] bytes (element 2j
/// in the low nibble of byte j); `scales` is [N, blocks] float16 (`scales_f16`) or float32
/// (`scales_f32`), exactly one non-null; `zero_points` is null (zero point 8) or packed
/// [N, (blocks + 1) / 2] bytes. `a` holds blocks * 32 floats (zero beyond K).
int qk_q4_gemv(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
               const uint8_t *zero_points, size_t blocks, const float *a,
               size_t row_begin, size_t row_end, float *y);

/// Dequantizes rows [row_begin, row_end) to float32: out[(r - row_begin) * ld + k] for
/// k < blocks * 32. Same layout and arguments as `qk_q4_gemv`.
int qk_q4_dequantize(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
                     const uint8_t *zero_points, size_t blocks,
                     size_t row_begin, size_t row_end, float *out, size_t ld);

/// Floats of the packed form of m activation rows for the GEMMs below (blocks * 32 per row).
size_t qk_q4_packed_a_floats(size_t m, size_t blocks);

/// Strips of rows the m activation rows are packed in (6 rows each, the last one or two 3-5;
/// one strip of m rows when m < 6).
size_t qk_q4_strip_count(size_t m);

/// Packs strips [strip_begin, strip_end) of the m × k activations `a` (row stride lda) for the
/// GEMMs: k-major within a strip, zero for k ≤ column < blocks * 32. Packed once per product,
/// shared by the threads computing its columns.
void qk_q4_pack_a(const float *a, size_t lda, size_t m, size_t k, size_t blocks,
                  size_t strip_begin, size_t strip_end, float *ap);

/// c[i, j] = sum_k a[i, k] * dequantize(B)[j, k] for the rows i of A's strips [strip_begin,
/// strip_end) (of `qk_q4_strip_count(m)`) and columns j in [col_begin, col_end): the M > 2
/// (prefill) product, B dequantized panel by panel into L1 and multiplied with a
/// register-blocked (6 rows × 16) float32 FMA kernel. Same B layout and arguments as `qk_q4_gemv`; `ap` is A packed by
/// `qk_q4_pack_a`; `c` has row stride `ldc`. Returns 0 (nothing written) below the SIMD level.
int qk_q4_gemm(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32,
               const uint8_t *zero_points, size_t blocks, const float *ap, size_t m,
               size_t strip_begin, size_t strip_end, size_t col_begin, size_t col_end, float *c, size_t ldc);

/// The kernels below that take `isa` (a `qk_isa_level`) run the highest implementation up to
/// min(isa, qk_isa()): AVX2, AVX-512 (`qk_q4x8_gemm`) or AVX-512 VNNI (the integer products);
/// NEON, dot product (the int8 products) or I8MM (the int8 GEMM).
/// Every implementation of a kernel returns the same floats (q4x8_avx512.c); `isa` lets tests
/// run each level on one machine.
///
/// The q4x8 layout (q4x8.c): symmetric 4-bit block-32 weights repacked at load, rows in groups
/// of 8, each block of a group one record of its 8 scales followed by its 128 weight bytes with
/// 32-bit word j of row r at byte 32j + 4r. `n` must be a multiple of 8.
/// Bytes of the packed form of an [n, blocks] matrix (float16 scales, or float32 when f32_scales).
size_t qk_q4x8_size(size_t n, size_t blocks, int f32_scales);

/// Packs row groups [group_begin, group_end) (8 rows each) of a MatMulNBits matrix without zero
/// points (`data`, and `scales_f16` or `scales_f32`, exactly one non-null) into `out`, the place
/// of group `group_begin` in the packed matrix. Returns 0 when the packed kernels do not run on
/// this CPU.
int qk_q4x8_pack(const uint8_t *data, const uint16_t *scales_f16, const float *scales_f32, size_t blocks,
                 size_t group_begin, size_t group_end, uint8_t *out);

/// `qk_q4_gemv` over the packed form: y[r] for rows [row_begin, row_end), both multiples of 8.
/// Returns 0 (nothing written) below the SIMD level or when the rows are not whole groups.
int qk_q4x8_gemv(const uint8_t *packed, int f32_scales, size_t blocks, const float *a,
                 size_t row_begin, size_t row_end, float *y);

/// `qk_q4x8_gemv` for m float32 activation rows (`lda` floats apart) at once: y[i·ldy + r] for
/// i < m, each row's results exactly its `qk_q4x8_gemv` ones (AVX2: two rows a pass, each weight
/// word masked and converted once for both; arm64: row by row). Returns 0 (nothing reliable
/// written) below the SIMD level or when the rows are not whole groups.
int qk_q4x8_gemv_multi(const uint8_t *packed, int f32_scales, size_t blocks, const float *a, size_t lda, size_t m,
                       size_t row_begin, size_t row_end, float *y, size_t ldy);

/// Bytes of one activation row quantized for `qk_q4x8_gemv_q8` (`blocks` blocks of 32).
size_t qk_q8_activation_bytes(size_t blocks);

/// Quantizes `a` (blocks * 32 floats, zero beyond K) to int8 per block of 32 (scale max|a|/127,
/// round half away from zero) into `out` (`qk_q8_activation_bytes(blocks)` bytes). Returns 0
/// when the int8 kernels do not run on this CPU.
int qk_q8_quantize(const float *a, size_t blocks, void *out);

/// The int8-activation GEMV (accuracy level 4): y[r] for rows [row_begin, row_end) (multiples of
/// 8) of the packed matrix times activations quantized by `qk_q8_quantize`; integer products
/// within a block, across blocks one float32 sum in block order (the int8 GEMM's, so a row's
/// results equal `qk_q4x8_gemm_q8`'s for it). Returns 0 when it cannot run.
int qk_q4x8_gemv_q8(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq,
                    size_t row_begin, size_t row_end, float *y, int isa);

/// `qk_q4x8_gemv_q8` for `m` activation rows at once (batched decode): rows of `aq` are
/// `row_bytes` apart (each quantized by `qk_q8_quantize`), row i's results go to y + i * ldy.
/// The weights are read once for all rows; each row's results are bit for bit those of
/// `qk_q4x8_gemv_q8` on that row. Same row rules and return values.
int qk_q4x8_gemv_q8_multi(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq, size_t row_bytes,
                          size_t m, size_t row_begin, size_t row_end, float *y, size_t ldy, int isa);

/// The int8-activation GEMM (accuracy level 4, M > 2): c[i, j] for the m activation rows at aq
/// (each quantized by `qk_q8_quantize`, `qk_q8_activation_bytes(blocks)` apart) and columns j in
/// [col_begin, col_end) (multiples of 8); four activation rows per pass over the weights (eight
/// rows against two row groups in 512-bit registers at QK_ISA_AVX512_WIDE). The
/// same integer block products as `qk_q4x8_gemv_q8`; across blocks one float32 sum in block
/// order. Returns 0 when it cannot run.
int qk_q4x8_gemm_q8(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq, size_t m,
                    size_t col_begin, size_t col_end, float *c, size_t ldc, int isa);

/// Bytes of one activation row quantized by `qk_q16_quantize`.
size_t qk_q16_activation_bytes(size_t blocks);

/// Quantizes `blocks` blocks of 32 activations to int16, one float scale per block (scale =
/// max|a| / 32767, q = a · 32767 / max|a| rounded to nearest even), into the layout
/// `qk_q4x8_gemv_q16` reads. Returns 0 below the SIMD level.
int qk_q16_quantize(const float *a, size_t blocks, void *out);

/// `qk_q4x8_gemv` with activations quantized by `qk_q16_quantize`: integer products per block
/// (`vpmaddwd`; `vpdpwssd` at QK_ISA_AVX512_VNNI, in 512-bit registers at QK_ISA_AVX512_WIDE; `smlal` on
/// arm64), float32 across blocks. Same row rules and
/// return values as `qk_q4x8_gemv`.
int qk_q4x8_gemv_q16(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq,
                     size_t row_begin, size_t row_end, float *y, int isa);

/// `qk_q4x8_gemv_q16` for `m` activation rows at once (batched decode): rows of `aq` are
/// `row_bytes` apart (each quantized by `qk_q16_quantize`), row i's results go to y + i * ldy.
/// The weights are read once for all rows; each row's results are bit for bit those of
/// `qk_q4x8_gemv_q16` on that row. Same row rules and return values.
int qk_q4x8_gemv_q16_multi(const uint8_t *packed, int f32_scales, size_t blocks, const void *aq, size_t row_bytes,
                           size_t m, size_t row_begin, size_t row_end, float *y, size_t ldy, int isa);

/// `qk_q4_gemm` over the packed form, columns [col_begin, col_end) multiples of 8. Returns 0
/// (nothing written) below the SIMD level or when the columns are not whole groups.
int qk_q4x8_gemm(const uint8_t *packed, int f32_scales, size_t blocks, const float *ap, size_t m,
                 size_t strip_begin, size_t strip_end, size_t col_begin, size_t col_end, float *c, size_t ldc, int isa);

/// scores[t] = softmax(scores + mask)[t] in place (mask may be null); NaN → 0 when nan_to_zero.
/// The softmax of `qk_attention_row`, for callers that compute the scores themselves.
void qk_softmax_row(float *scores, const float *mask, size_t n, int nan_to_zero);

/// One row of scaled dot-product attention in float32 (the fused form of the exports'
/// MatMul → Add(mask) → Softmax → Where(IsNaN) → MatMul chain):
///   scores[t] = sum_d q[d] * (k[t, d] * scale) + mask[t]   (mask may be null)
///   p = softmax(scores)   (NaN → 0 when nan_to_zero, e.g. a fully masked row)
///   out[d] = sum_t p[t] * v[t, d]
/// `k` and `v` are [t_count, d_count], each float16 (`k_half`, `v_half` != 0) or float32; `scores` is scratch
/// for t_count floats.
void qk_attention_row(const float *q, const void *k, int k_half, const void *v, int v_half, size_t t_count, size_t d_count,
                      float scale, const float *mask, int nan_to_zero, float *scores, float *out);

/// `qk_attention_row` for `rows` query rows that share keys and values (the query heads of one
/// key/value head in grouped-query attention; each float16 or float32 as in qk_attention_row):
/// row r reads q + r * q_stride and mask + r * mask_stride (mask may be null), writes
/// out + r * out_stride, and gets exactly qk_attention_row's floats. The keys and values pass
/// through L1 in tiles, each read from memory once for all rows. `scores` is scratch for
/// rows * t_count floats.
void qk_attention_group(const float *q, size_t q_stride, size_t rows, const void *k, int k_half, const void *v,
                        int v_half, size_t t_count, size_t d_count, float scale, const float *mask, size_t mask_stride,
                        int nan_to_zero, float *scores, float *out, size_t out_stride);

/// A task of a parallel loop: runs item `index` of the loop described by `ctx`.
typedef void (*qk_task_fn)(void *ctx, size_t index);

/// A pool of kernel threads: `threads - 1` persistent workers (started on a first job) that spin
/// ~2 ms after a job, then sleep until the next, plus the thread that submits. One job at a time
/// per pool; a process may hold any number of pools (the library gives each model its own).
typedef struct qk_pool qk_pool;

/// A pool for `threads` threads (no worker is started yet); NULL when out of memory.
qk_pool *qk_pool_create(int threads);

/// Stops and joins the workers and frees the pool. No job may be running on it.
void qk_pool_destroy(qk_pool *pool);

/// The `threads` the pool was created with.
int qk_pool_threads(const qk_pool *pool);

/// Jobs the pool ran, and jobs it declined because another thread's job held it.
void qk_pool_counts(qk_pool *pool, unsigned long *run, unsigned long *declined);

/// Runs fn(ctx, i) for every i < count on the calling thread and the pool's workers and returns
/// when all have finished. Returns 0 without running anything when it cannot take the job:
/// fewer than 2 threads, a call from inside a task (of any pool), or another thread's job in
/// progress (the caller then runs the loop another way).
int qk_pool_run(qk_pool *pool, size_t count, qk_task_fn fn, void *ctx);

/// The calling thread's current pool owner (an opaque pointer the library sets around a
/// session's run, so that its parallel loops find their model's pool), or NULL.
void *qk_pool_current_owner(void);

/// Sets the calling thread's current pool owner; returns the previous one (to restore).
void *qk_pool_set_current_owner(void *owner);

/// y[i] = 1 / (1 + e^-x[i]), vectorised (AVX2, NEON) with a polynomial exp; within 4 ulp of expf.
void qk_sigmoid(const float *x, float *y, size_t n);

/// y[i] = (x[i] · sigmoid(x[i])) · u[i]: SiLU(x) · u with `qk_sigmoid` and the two float32
/// products in that order (the Qwen2/Llama MLP gate); y may alias neither x nor u.
void qk_silu_mul(const float *x, const float *u, float *y, size_t n);

/// y[i] = x[i] rounded to float16 (nearest, ties to even) and widened back, with F16C or NEON's
/// fcvtn; returns 0 (nothing done) below the SIMD level.
int qk_round_to_half(const float *x, float *y, size_t n);

/// Exact integer products for MatMulInteger: c[i·ldc + j] = Σ_{k < kp} a[i·lda + k] · b[j·ldb + k]
/// for i < m, j < n, with int16 `a` (activations minus their zero point) and bytes `b` (B's
/// columns, int8 when `b_signed`, else uint8), both zero-padded to `kp`. AVX2 (`vpmaddwd`; NEON `smlal`) when
/// the CPU has it and kp is a multiple of 16, unless `portable`; the portable loop otherwise. The
/// same int32 results either way.
void qk_int_gemm(size_t m, size_t n, size_t kp, const int16_t *a, size_t lda, const uint8_t *b, size_t ldb,
                 int b_signed, int32_t *c, size_t ldc, int portable);

/// Widens *lo and *hi to the range of x[0 ..< n] as `x < lo ? x : lo` and `x >= hi ? x : hi`
/// (NaNs skipped): DynamicQuantizeLinear's range (AVX2 or scalar).
void qk_min_max(const float *x, size_t n, float *lo, float *hi);

/// y[i] = saturate(round_half_even(x[i] / scale) + zero_point) as uint8, NaN to zero_point:
/// DynamicQuantizeLinear's values (AVX2 or scalar, the same bytes).
void qk_quantize_u8(const float *x, size_t n, float scale, uint8_t zero_point, uint8_t *y);

/// Whether `qk_mmi_gemm` runs here (at the active ISA level: AVX-512 VNNI on x86-64, the dot
/// product on arm64).
int qk_mmi_available(void);

/// The shift o of `qk_mmi_pack`'s B' = B − o, which the caller takes off B's zero points too:
/// x86-64 0 for int8, 128 for uint8 (B' int8 for `vpdpbusd`); arm64 −128 for int8, 0 for uint8
/// (B' uint8 for `udot`).
int32_t qk_mmi_b_offset(int b_signed);

/// Bytes of `qk_mmi_pack`'s layout of a k × n B: panels of 16 columns, k in quads of 4.
size_t qk_mmi_packed_bytes(size_t k, size_t n);

/// Packs B (k × n, row-major, int8 when `b_signed`, else uint8) for `qk_mmi_gemm`: B' = B − o
/// (`qk_mmi_b_offset`) as bytes in panels of 16 columns, each k-quad's 4 values of a column
/// together, zero-padded to whole panels and quads (`qk_mmi_packed_bytes`); col_sums[j] = Σ_k
/// B'[k][j] for j < 16 · panels (0 past n).
void qk_mmi_pack(const uint8_t *b, size_t k, size_t n, int b_signed, int8_t *packed, int32_t *col_sums);

/// sums[i] = Σ_{t < k} a[i·lda + t] over uint8 rows.
void qk_u8_row_sums(const uint8_t *a, size_t m, size_t k, size_t lda, int32_t *sums);

/// Exact MatMulInteger products (AVX-512 VNNI `vpdpbusd`, arm64 `udot`) for B's column panels [p0, p1):
/// c[i·ldc + j] = Σ_k (a[i·lda + k] − za[i]) · (B'[k][j] − zb[j]) in wrapping int32, with `a`
/// uint8 rows whose bytes past k up to a multiple of 4 are zero (A' in the packing's terms),
/// row_sums their sums (`qk_u8_row_sums`), B' and col_sums from `qk_mmi_pack`, zb one per
/// column (16 · panels, zero-padded). The same integers as `qk_int_gemm` of the unpacked
/// operands. Returns 0, doing nothing, where `qk_mmi_available` is 0.
int qk_mmi_gemm(size_t m, size_t k, const uint8_t *a, size_t lda, const int32_t *za, const int32_t *row_sums,
                const int8_t *packed, const int32_t *col_sums, const int32_t *zb, size_t n, size_t p0, size_t p1,
                int32_t *c, size_t ldc);

/// com.microsoft.MatMulBnb4 weights: rows [row_begin, row_end) of B [N, k] (bitsandbytes 4-bit:
/// the flat N·k codes two per byte, first in the high nibble; blocks of `block_size` consecutive
/// flat elements share `absmax`; quant_type 0 FP4, 1 NF4) as float32 rows of k at `dst`, each
/// weight map[code] · absmax as ONNX Runtime dequantizes it.
void qk_bnb4_dequantize(const uint8_t *b, const float *absmax, size_t block_size, int quant_type, size_t k,
                        size_t row_begin, size_t row_end, float *dst);

/// y[r - row_begin] = Σ_c a[c] · B[r, c] for the same B. SIMD (AVX2/FMA, NEON) when the CPU has it, blocks lie
/// within rows (k a multiple of block_size) and block_size is a multiple of 16, unless `portable`:
/// per block Σ a · map[code], times absmax; the portable loop sums a · (map[code] · absmax).
void qk_bnb4_gemv(const uint8_t *b, const float *absmax, size_t block_size, int quant_type, size_t k, const float *a,
                  size_t row_begin, size_t row_end, float *y, int portable);

/// qk_bnb4_gemv for `m` activation rows `lda` apart, row i's results at y + i · ldy: each row's
/// floats those of qk_bnb4_gemv alone; on x86 each weight row's codes are looked up once for up
/// to four activation rows.
void qk_bnb4_gemv_multi(const uint8_t *b, const float *absmax, size_t block_size, int quant_type, size_t k, const float *a,
                        size_t lda, size_t m, size_t row_begin, size_t row_end, float *y, size_t ldy, int portable);

/// y[r − row_begin] = Σ_{c < k} a[c] · W[r, c] for rows [row_begin, row_end) of W float16 bits
/// [rows, k] (a weight stored transposed): sequential rows, four per pass, F16C (NEON fcvtl)
/// conversion and float32 FMA. Returns 0 (nothing written) below the SIMD level.
int qk_f16_gemv_rows(const float *a, const uint16_t *w, size_t k, size_t row_begin, size_t row_end, float *y);

/// `qk_f16_gemv_rows` for m activation rows (`lda` floats apart) at once: y[i·ldy + r − row_begin]
/// for i < m, each row's results exactly its `qk_f16_gemv_rows` ones (AVX2: each weight vector
/// converted once for four activation rows; NEON: row by row). Returns 0 below the SIMD level.
int qk_f16_gemv_rows_multi(const float *a, size_t lda, size_t m, const uint16_t *w, size_t k, size_t row_begin,
                           size_t row_end, float *y, size_t ldy);

/// c[i, j] = Σ_{c < k} a[i, c] · W[j, c] for the rows of A's strips [strip_begin, strip_end) and
/// columns j in [col_begin, col_end), W float16 bits [n, k] as for `qk_f16_gemv_rows`: the M > 2
/// product, W converted a panel of 16 columns × 32 k at a time into L1 and multiplied by the
/// int4 GEMMs' register-blocked float32 kernel (the same floats on every SIMD level). `ap` is A
/// packed by `qk_q4_pack_a` for (k + 31) / 32 blocks; `c` has row stride `ldc`. Returns 0
/// (nothing written) below the SIMD level.
int qk_f16_gemm(const uint16_t *w, size_t k, const float *ap, size_t m, size_t strip_begin, size_t strip_end,
                size_t col_begin, size_t col_end, float *c, size_t ldc);

#ifdef __cplusplus
}
#endif

#endif
