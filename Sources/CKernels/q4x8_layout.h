#ifndef QWEN_Q4X8_LAYOUT_H
#define QWEN_Q4X8_LAYOUT_H

// The q4x8 record layout (q4x8.c), the int8 GEMM's and the multi-row GEMVs' drivers, in portable C: shared by the x86
// kernels (q4x8_shared.h) and the arm64 ones (q4x8_neon.c). Private to CKernels.

#include <stddef.h>
#include <stdint.h>

// Bytes of one record: the 8 scales (float16 or float32), then 128 bytes of weights.
static inline size_t record_bytes(int f32_scales) { return (f32_scales ? 32 : 16) + 128; }

// Bytes ahead of the record being read that each record's loop asks the memory system for.
enum { PREFETCH_AHEAD = 2048 };

// The int8 GEMM's driver, shared by every ISA's kernels: 32 row groups (256 columns of C; ~130 KB
// of weights at K = 896) stay in L2 while every activation row passes over them, four rows per
// call of `group` (past the last row, m not a multiple of 4, the last row again with its results
// discarded). Rows of `aq` are `row_bytes` apart; columns [col_begin, col_end) whole groups.
typedef void (*q4x8_gemm_q8_group)(const uint8_t *rec0, int f32, size_t blocks, const int8_t *const x[4],
                                   float *const out[4]);

static inline void q4x8_gemm_q8_drive(q4x8_gemm_q8_group group, const uint8_t *packed, int f32, size_t blocks,
                                      const int8_t *aq, size_t row_bytes, size_t m, size_t col_begin, size_t col_end,
                                      float *c, size_t ldc) {
    const size_t rec = record_bytes(f32);
    float discard[8];
    for (size_t g0 = col_begin / 8; g0 < col_end / 8; g0 += 32) {
        const size_t g1 = g0 + 32 < col_end / 8 ? g0 + 32 : col_end / 8;
        for (size_t i = 0; i < m; i += 4) {
            const int8_t *x[4];
            for (size_t r = 0; r < 4; r++) x[r] = aq + (i + r < m ? i + r : m - 1) * row_bytes;
            for (size_t g = g0; g < g1; g++) {
                float *out[4];
                for (size_t r = 0; r < 4; r++) out[r] = i + r < m ? c + (i + r) * ldc + g * 8 : discard;
                group(packed + g * blocks * rec, f32, blocks, x, out);
            }
        }
    }
}

// The multi-row GEMVs' drivers: every row group of [g0, g1) against the m activation rows at aq
// (`row_bytes` apart, of type XTYPE), up to MAX (at most 8) rows a pass: `PASS(p, f32, blocks, x,
// rows, out)` with `rows` a constant in each call (one expansion per count), x the pass's rows
// (past m, the pass's first again, unread), out[r] = y + (i + r) * ldy + g * 8. Each group's
// records (~4 KB at K = 896) come from memory in the first pass, from L1 or L2 in the others (a
// batch of up to MAX rows makes one pass). Parameters (packed, f32
// — a constant: `Q4X8_WITH_CONSTANT_SCALES` —, blocks, aq, row_bytes, m, g0, g1, y, ldy).
#define Q4X8_MULTI_ROW_GROUPS(PASS, MAX, XTYPE) { \
        const size_t group_bytes = blocks * record_bytes(f32); \
        for (size_t g = g0; g < g1; g++) { \
            const uint8_t *p = packed + g * group_bytes; \
            for (size_t i = 0; i < m; i += (MAX)) { \
                XTYPE x[8]; \
                float *out[8]; \
                for (size_t r = 0; r < (MAX); r++) { \
                    x[r] = (XTYPE)(aq + (i + r < m ? i + r : i) * row_bytes); \
                    out[r] = y + (i + r) * ldy + g * 8; \
                } \
                switch (m - i >= (MAX) ? (MAX) : m - i) { \
                case 8: PASS(p, f32, blocks, x, 8, out); break; \
                case 7: PASS(p, f32, blocks, x, 7, out); break; \
                case 6: PASS(p, f32, blocks, x, 6, out); break; \
                case 5: PASS(p, f32, blocks, x, 5, out); break; \
                case 4: PASS(p, f32, blocks, x, 4, out); break; \
                case 3: PASS(p, f32, blocks, x, 3, out); break; \
                case 2: PASS(p, f32, blocks, x, 2, out); break; \
                default: PASS(p, f32, blocks, x, 1, out); break; \
                } \
            } \
        } \
    }

#endif
