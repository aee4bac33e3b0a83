import CKernels

/// The activations of one int4 GEMM (`BlockQuantizedMatrix.gemm`, `PackedQ4Matrix.gemm`) in the
/// order their register-blocked kernel reads them: strips of 6 rows (the last one or two 3-5, or
/// one of all the rows when there are fewer than 6), k-major, zero-padded to whole blocks
/// (`qk_q4_pack_a`). Packed once per product, in parallel, and shared by every thread's range of
/// columns (and by every product of a `MatMulNBitsGroup`).
public final class GEMMActivations: @unchecked Sendable {
    public let rows: Int
    public let blocks: Int
    let pointer: UnsafeMutablePointer<Float>

    /// Packs `rows` rows of `k` floats (`lda` apart) from `a` for a matrix of `blocks` blocks of 32 per row.
    public init(_ a: UnsafePointer<Float>, rows: Int, k: Int, lda: Int, blocks: Int) {
        precondition(rows > 0 && k <= blocks * 32 && lda >= k)
        self.rows = rows
        self.blocks = blocks
        pointer = .allocate(capacity: qk_q4_packed_a_floats(rows, blocks))
        let strips = qk_q4_strip_count(rows), p = pointer
        // ~16 K floats per chunk at least: below that a second thread costs more than it saves.
        parallelFor(strips, minChunk: Swift.max(1, (1 << 14) / Swift.max(k * 6, 1))) { s in
            qk_q4_pack_a(a, lda, rows, k, blocks, s.lowerBound, s.upperBound, p)
        }
    }

    deinit { pointer.deallocate() }
}
