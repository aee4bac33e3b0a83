#ifndef QWEN_Q4_STRIPS_H
#define QWEN_Q4_STRIPS_H

// How the int4 GEMMs' activations are cut into strips of rows (q4_gemm.c packs them, the kernel
// in q4_shared.h reads them). Private to CKernels; portable C.

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

#endif
