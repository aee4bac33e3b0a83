#ifndef QWEN_Q4_STRIPS_H
#define QWEN_Q4_STRIPS_H

// How the int4 GEMMs' activations are cut into strips of rows (q4_gemm.c packs them, the kernels
// in q4_shared.h and q4_neon.h read them), and the GEMM driver the x86 and arm64 kernels share.
// Private to CKernels; portable C.

#include <stddef.h>

enum { Q4_MR = 6 };   // rows of the kernel's register block

// A is packed in strips of rows (`qk_q4_pack_a`): the strip of h rows starting at row i holds
// ap[i * kp + k * h + j] = a[i + j][k] (k-major, kp = blocks * 32), so the m rows take m * kp
// floats whatever the strip heights. Strips are 6 rows high except at the end: a strip of h rows
// costs the kernel max(h, 4) cycles per k (2 FMAs per cycle over 2h accumulators, 4 cycles of
// FMA latency per accumulator), so the last 7-9 rows go in two strips (4+3, 4+4, 5+4) and a
// remainder of 4 or 5 rows in one, where a 6-row strip would spend 6 cycles on 1-3 rows.
typedef struct { size_t full, count, tail[2]; } q4_strips;

static inline q4_strips q4_strip_plan(size_t m) {
    q4_strips p = { m / Q4_MR, m / Q4_MR, { 0, 0 } };
    const size_t r = m % Q4_MR;
    if (r == 0) return p;
    if (r >= 4 || m < Q4_MR) { p.tail[0] = r; p.count += 1; return p; }
    p.full -= 1;                                   // 7-9 rows: two strips
    p.tail[0] = (Q4_MR + r + 1) / 2;
    p.tail[1] = (Q4_MR + r) / 2;
    p.count += 1;
    return p;
}

// First row and height of strip s.
static inline size_t q4_strip_row(q4_strips p, size_t s) {
    return s <= p.full ? s * Q4_MR : p.full * Q4_MR + p.tail[0];
}
static inline size_t q4_strip_height(q4_strips p, size_t s) {
    return s < p.full ? Q4_MR : p.tail[s - p.full];
}

// The GEMM's register block: up to 6 rows of A × 16 columns of B, K in chunks of 256 (B's panel
// of 16 × 256 floats, 16 KB, stays in L1).
enum { Q4_NR = 16, Q4_KC = 256 };

// Fills panel[k * 16 + j] for the 32 k of K block `block` and the 16 columns of C from `n` (`nr`
// of them real): the one step in which the two weight layouts' GEMMs differ.
typedef void (*q4_panel_fill)(const void *weights, size_t n, size_t nr, size_t block, float *panel);

// c[0..h) x [0..nr) (+)= the strip of h rows at ap (k-major) · panel[kc][16]; `accumulate` adds
// to c. Every element is one FMA chain over k from zero: the result does not depend on the ISA.
typedef void (*q4_strip_kernel)(size_t h, const float *ap, const float *panel, size_t kc, float *c, size_t ldc,
                                size_t nr, int accumulate);

// Rows [row of strip s0, row of strip s1) x columns [n0, n1) of C = A · Bᵀ, A packed by
// `qk_q4_pack_a` (strips, see above): per 16-column panel and 256-deep K chunk, B dequantized
// into an L1 buffer by `fill` and each of the strips passed over it by `kernel`, as BLAS packs
// its operands. A is packed once per product and shared by the threads, each of which takes a
// range of columns; the caller cuts a long A into blocks of strips.
static inline void q4_gemm_run(q4_panel_fill fill, q4_strip_kernel kernel, const void *weights, size_t blocks,
                               const float *ap, size_t m, size_t s0, size_t s1, size_t n0, size_t n1, float *c,
                               size_t ldc) {
    float panel[Q4_KC * Q4_NR] __attribute__((aligned(64)));
    const q4_strips strips = q4_strip_plan(m);
    if (s1 > strips.count) s1 = strips.count;
    const size_t kp = blocks * 32;
    const size_t blocks_per_chunk = Q4_KC / 32;
    for (size_t n = n0; n < n1; n += Q4_NR) {
        const size_t nr = n1 - n < Q4_NR ? n1 - n : Q4_NR;
        for (size_t b0 = 0; b0 < blocks; b0 += blocks_per_chunk) {
            const size_t nb = blocks - b0 < blocks_per_chunk ? blocks - b0 : blocks_per_chunk;
            const size_t kc = nb * 32, k0 = b0 * 32;
            for (size_t b = 0; b < nb; b++) fill(weights, n, nr, b0 + b, panel + b * 32 * Q4_NR);
            for (size_t s = s0; s < s1; s++) {
                const size_t i = q4_strip_row(strips, s), h = q4_strip_height(strips, s);
                kernel(h, ap + i * kp + k0 * h, panel, kc, c + i * ldc + n, ldc, nr, b0 > 0);
            }
        }
    }
}

#endif
