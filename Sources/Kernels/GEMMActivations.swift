import CKernels

/// The activations of one int4 GEMM (`BlockQuantizedMatrix.gemm`, `PackedQ4Matrix.gemm`) in the
/// order their register-blocked kernel reads them: strips of 6 rows (the last one or two 3-5, or
/// one of all the rows when there are fewer than 6), k-major, zero-padded to whole blocks
/// (`qk_q4_pack_a`). Packed once per product, in parallel, and shared by every thread's range of
/// columns (and by every product of a `MatMulNBitsGroup`).
public final class GEMMActivations: @unchecked Sendable {
    public let rows: Int
    public let blocks: Int
    /// Strips of rows (`qk_q4_strip_count`).
    public let stripCount: Int
    let pointer: UnsafeMutablePointer<Float>

    /// Strips per block of rows: 132 rows (a 128-token prompt is one block).
    public static let stripsPerBlock = 22

    /// The strips in blocks of `stripsPerBlock`, for a product to run one block at a time (each
    /// block's columns one parallel loop, `gemm(_:strips:columns:into:ldc:)`): the threads'
    /// panels then read that block's rows of A, 132 × K floats, which stay in cache from panel
    /// to panel. Run over all the rows at once, every panel read all of A (at 816 rows and
    /// K = 4864, 16 MB per panel); each block dequantizes the panels again, as a 128-row product
    /// does once.
    public var stripBlocks: [Range<Int>] {
        stride(from: 0, to: stripCount, by: Self.stripsPerBlock).map { $0..<Swift.min($0 + Self.stripsPerBlock, stripCount) }
    }

    /// Packs `rows` rows of `k` floats (`lda` apart) from `a` for a matrix of `blocks` blocks of 32 per row.
    public init(_ a: UnsafePointer<Float>, rows: Int, k: Int, lda: Int, blocks: Int) {
        precondition(rows > 0 && k <= blocks * 32 && lda >= k)
        self.rows = rows
        self.blocks = blocks
        stripCount = qk_q4_strip_count(rows)
        pointer = .allocate(capacity: qk_q4_packed_a_floats(rows, blocks))
        let strips = stripCount, p = pointer
        // ~16 K floats per chunk at least: below that a second thread costs more than it saves.
        parallelFor(strips, minChunk: Swift.max(1, (1 << 14) / Swift.max(k * 6, 1))) { s in
            qk_q4_pack_a(a, lda, rows, k, blocks, s.lowerBound, s.upperBound, p)
        }
    }

    deinit { pointer.deallocate() }
}

/// `c[i, j] = Σ_k a[i, k] · W[j, k]` for W float16 bits `[n, k]` (a weight stored transposed,
/// as `halfWeightGemvRows` reads it), the rows of `a`'s strips `strips` (one of `a.stripBlocks`,
/// `a` packed for (k + 31) / 32 blocks) and columns `columns`, into `c` (row stride `ldc`):
/// `qk_f16_gemm`, the int4 GEMMs' kernel over panels converted from float16 in L1. False when
/// it did not run (below the SIMD level, `a` packed for another K).
@discardableResult
public func halfWeightGEMM(_ w: UnsafePointer<UInt16>, k: Int, _ a: GEMMActivations, strips: Range<Int>, columns: Range<Int>,
                           into c: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
    guard a.blocks == (k + 31) / 32 else { return false }
    return qk_f16_gemm(w, k, a.pointer, a.rows, strips.lowerBound, strips.upperBound, columns.lowerBound, columns.upperBound,
                       c, ldc) != 0
}
