import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A symmetric 4-bit block-32 weight matrix repacked once, at load, into the "q4x8" layout of
/// `q4x8.c`: rows in groups of 8, each block of a group one record of its 8 scales and its
/// 128 weight bytes, transposed so that one 256-bit load holds a 32-bit word of all 8 rows.
///
/// The decode GEMV then reads one sequential stream (the MatMulNBits layout is read as 8 row
/// streams 448+ bytes apart and needs 12 shuffles per block to transpose), and the prefill
/// GEMM's panel packing needs no gathers. The kernels compute the same products as those of the
/// original layout; the GEMM also sums them in the same order (identical results), the GEMV
/// groups its per-block sums a little differently (float32 rounding differences, ~1e-7 relative).
///
/// Only built for matrices the packed kernels serve: 4 bits, block 32, no zero points (8),
/// N a multiple of 8, on CPUs with AVX2+FMA+F16C.
public final class PackedQ4Matrix: @unchecked Sendable {
    public let n: Int
    public let k: Int
    public let blocksPerRow: Int
    public let floatScales: Bool
    let base: UnsafeRawPointer
    public let byteCount: Int
    /// What keeps `base` alive when it is not this object's own memory (a mapped cache file).
    private let owner: AnyObject?
    /// The instruction-set level the products run at: ``KernelISA/active`` unless lowered (the
    /// tests run every level the CPU has). Every level gives the same floats.
    public internal(set) var isa: KernelISA = .active

    /// Packs `matrix`, or returns nil when the packed kernels do not serve it (see the type's
    /// notes; also when `matrix.allowsNativeKernels` is off) or memory for the copy cannot be had.
    public init?(_ matrix: BlockQuantizedMatrix) {
        guard matrix.allowsNativeKernels, matrix.bits == 4, matrix.blockSize == 32, matrix.n % 8 == 0, matrix.n > 0, KernelISA.active >= .simd,
              case .none = matrix.zeroPoints else { return nil }
        n = matrix.n
        k = matrix.k
        blocksPerRow = matrix.blocksPerRow
        let (s16, s32) = matrix.nativeScales
        floatScales = s32 != nil
        // An empty range packs nothing and says whether the packed kernels run on this CPU.
        guard qk_q4x8_pack(matrix.data, s16, s32, blocksPerRow, 0, 0, nil) != 0 else { return nil }
        byteCount = qk_q4x8_size(n, blocksPerRow, floatScales ? 1 : 0)
        // Every decode step streams the matrix: from 2 MB on it goes in huge pages.
        guard let memory = HugePages.allocate(byteCount) else { return nil }
        base = UnsafeRawPointer(memory)
        owner = nil
        let groups = n / 8, blocks = blocksPerRow, data = matrix.data, out = memory.assumingMemoryBound(to: UInt8.self)
        let groupBytes = byteCount / groups
        // Two threads: besides the copying, each faults in the fresh pages of its own range.
        parallelFor(groups, minChunk: 64) { range in
            _ = qk_q4x8_pack(data, s16, s32, blocks, range.lowerBound, range.upperBound, out + range.lowerBound * groupBytes)
        }
    }

    /// A packed matrix stored elsewhere (`bytes`, e.g. in a mapped cache file that `owner` keeps
    /// alive), for a matrix of `n` rows, `k` columns and the given scale type. Nil when the size
    /// is not the packed size of that shape or the packed kernels do not run here. The contents
    /// are trusted: check them with ``samplesMatch(_:)`` against the original.
    public init?(stored bytes: UnsafeRawBufferPointer, n: Int, k: Int, floatScales: Bool, owner: AnyObject) {
        let blocks = (k + 31) / 32
        guard n > 0, n % 8 == 0, k > 0, KernelISA.active >= .simd, let start = bytes.baseAddress,
              Int(bitPattern: start) % 64 == 0,
              bytes.count == qk_q4x8_size(n, blocks, floatScales ? 1 : 0) else { return nil }
        self.n = n
        self.k = k
        blocksPerRow = blocks
        self.floatScales = floatScales
        base = start
        byteCount = bytes.count
        self.owner = owner
    }

    deinit {
        if owner == nil { free(UnsafeMutableRawPointer(mutating: base)) }
    }

    /// The packed bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: byteCount) }

    /// Whether this packing is that of `matrix`, checked on a sample: the first, middle and last
    /// row groups are packed afresh from `matrix` and compared byte for byte (a stored packing
    /// made from other weights, or damaged, shows there; reading all of it would cost what
    /// packing costs).
    public func samplesMatch(_ matrix: BlockQuantizedMatrix) -> Bool {
        guard matrix.n == n, matrix.k == k, matrix.bits == 4, matrix.blockSize == 32,
              case .none = matrix.zeroPoints else { return false }
        let (s16, s32) = matrix.nativeScales
        guard (s32 != nil) == floatScales else { return false }
        let groups = n / 8, groupBytes = byteCount / groups
        var scratch = [UInt8](repeating: 0, count: groupBytes)
        for g in Set([0, groups / 2, groups - 1]) {
            let same = scratch.withUnsafeMutableBufferPointer { out -> Bool in
                guard qk_q4x8_pack(matrix.data, s16, s32, blocksPerRow, g, g + 1, out.baseAddress!) != 0 else { return false }
                return memcmp(out.baseAddress!, base + g * groupBytes, groupBytes) == 0
            }
            if !same { return false }
        }
        return true
    }

    /// `y[r] = Σ_k W[r, k] · a[k]` for rows `rows` (multiples of 8 at both ends); `a` holds
    /// `blocksPerRow * 32` activations in natural order, zero beyond K. False when the kernel did
    /// not run (rows not whole groups).
    @discardableResult
    public func gemv(_ a: UnsafePointer<Float>, rows: Range<Int>, into y: UnsafeMutablePointer<Float>) -> Bool {
        qk_q4x8_gemv(base, floatScales ? 1 : 0, blocksPerRow, a, rows.lowerBound, rows.upperBound, y) != 0
    }

    /// ``gemv(_:rows:into:)`` for `count` activation rows (`lda` floats apart) at once, row i's
    /// results at `y + i · ldy`: each weight word converted once for two rows, each row's floats
    /// its single-row ones. False when the kernel did not run.
    @discardableResult
    public func gemv(_ a: UnsafePointer<Float>, lda: Int, count: Int, rows: Range<Int>, into y: UnsafeMutablePointer<Float>,
                     ldy: Int) -> Bool {
        qk_q4x8_gemv_multi(base, floatScales ? 1 : 0, blocksPerRow, a, lda, count, rows.lowerBound, rows.upperBound, y, ldy) != 0
    }

    /// Bytes of one activation row quantized to int8 for ``gemvInt8(_:rows:into:)``.
    public var int8ActivationBytes: Int { qk_q8_activation_bytes(blocksPerRow) }

    /// Quantizes one activation row (`blocksPerRow * 32` floats, zero beyond K) to int8 per block
    /// of 32 into `out` (`int8ActivationBytes`). False when the int8 kernels do not run here.
    @discardableResult
    public func quantizeInt8(_ a: UnsafePointer<Float>, into out: UnsafeMutableRawPointer) -> Bool {
        qk_q8_quantize(a, blocksPerRow, out) != 0
    }

    /// The value of each block of 32 of one activation row quantized by ``quantizeInt8(_:into:)``
    /// summed (`scale · Σ q`), into `sums` (`blocksPerRow` floats).
    public func int8BlockSums(_ a8: UnsafeRawPointer, into sums: UnsafeMutablePointer<Float>) {
        // The row's layout (q4x8.c): blocks × 32 int8, then a float scale and an int32 zero-point
        // term 8 · Σ q per block.
        let scales = (a8 + blocksPerRow * 32).assumingMemoryBound(to: Float.self)
        let terms = (a8 + blocksPerRow * 36).assumingMemoryBound(to: Int32.self)
        for b in 0..<blocksPerRow { sums[b] = scales[b] * Float(terms[b] / 8) }
    }

    /// `y[r] = Σ_k W[r, k] · a8[k]` with activations quantized by ``quantizeInt8(_:into:)``
    /// (accuracy level 4: integer products per block, float32 across blocks), rows `rows`
    /// (multiples of 8 at both ends). False when the kernel did not run.
    @discardableResult
    public func gemvInt8(_ a8: UnsafeRawPointer, rows: Range<Int>, into y: UnsafeMutablePointer<Float>) -> Bool {
        qk_q4x8_gemv_q8(base, floatScales ? 1 : 0, blocksPerRow, a8, rows.lowerBound, rows.upperBound, y, isa.level) != 0
    }

    /// ``gemvInt8(_:rows:into:)`` for `count` activation rows `rowBytes` apart (batched decode),
    /// row i's results at `y + i * ldy`: the weights read once for all rows, each row's results
    /// bit for bit those of ``gemvInt8(_:rows:into:)``. False when the kernel did not run.
    @discardableResult
    public func gemvInt8(_ a8: UnsafeRawPointer, rowBytes: Int, count: Int, rows: Range<Int>,
                         into y: UnsafeMutablePointer<Float>, ldy: Int) -> Bool {
        qk_q4x8_gemv_q8_multi(base, floatScales ? 1 : 0, blocksPerRow, a8, rowBytes, count, rows.lowerBound, rows.upperBound,
                              y, ldy, isa.level) != 0
    }

    /// `c[i, j] = Σ_k W[j, k] · a8_i[k]` for `m` activation rows quantized by
    /// ``quantizeInt8(_:into:)`` (`int8ActivationBytes` apart from `a8`) and columns `columns`
    /// (multiples of 8 at both ends), into `c` (row stride `ldc`): the int8 GEMV's products, four
    /// activation rows per pass over the weights. False when the kernel did not run.
    @discardableResult
    public func gemmInt8(_ a8: UnsafeRawPointer, rows m: Int, columns: Range<Int>, into c: UnsafeMutablePointer<Float>,
                         ldc: Int) -> Bool {
        qk_q4x8_gemm_q8(base, floatScales ? 1 : 0, blocksPerRow, a8, m, columns.lowerBound, columns.upperBound, c, ldc,
                        isa.level) != 0
    }

    /// Whether ``quantizeInt16(_:into:)`` and the int16 GEMVs run here (the SIMD level).
    public static var int16ActivationsRun: Bool { KernelISA.active >= .simd }

    /// Whether ``gemm(_:strips:columns:into:ldc:)`` runs here (the SIMD level), computing each
    /// row of a product of many rows as it would with any other number of rows; below it,
    /// MatMulNBits multiplies many rows through OpenBLAS, whose rows' last bits depend on the
    /// row count.
    public static var gemmRuns: Bool { KernelISA.active >= .simd }

    /// Bytes of one activation row quantized to int16 for ``gemvInt16(_:rows:into:)``.
    public var int16ActivationBytes: Int { qk_q16_activation_bytes(blocksPerRow) }

    /// Quantizes one activation row (`blocksPerRow * 32` floats, zero beyond K) to int16 per
    /// block of 32 into `out` (`int16ActivationBytes`). False when the int16 kernels do not run here.
    @discardableResult
    public func quantizeInt16(_ a: UnsafePointer<Float>, into out: UnsafeMutableRawPointer) -> Bool {
        qk_q16_quantize(a, blocksPerRow, out) != 0
    }

    /// `y[r] = Σ_k W[r, k] · a16[k]` with activations quantized by ``quantizeInt16(_:into:)``
    /// (integer products per block, float32 across blocks), rows `rows` (multiples of 8 at both
    /// ends). False when the kernel did not run.
    @discardableResult
    public func gemvInt16(_ a16: UnsafeRawPointer, rows: Range<Int>, into y: UnsafeMutablePointer<Float>) -> Bool {
        qk_q4x8_gemv_q16(base, floatScales ? 1 : 0, blocksPerRow, a16, rows.lowerBound, rows.upperBound, y, isa.level) != 0
    }

    /// ``gemvInt16(_:rows:into:)`` for `count` activation rows `rowBytes` apart (batched decode),
    /// row i's results at `y + i * ldy`: the weights read once for all rows, each row's results
    /// bit for bit those of ``gemvInt16(_:rows:into:)``. False when the kernel did not run.
    @discardableResult
    public func gemvInt16(_ a16: UnsafeRawPointer, rowBytes: Int, count: Int, rows: Range<Int>,
                          into y: UnsafeMutablePointer<Float>, ldy: Int) -> Bool {
        qk_q4x8_gemv_q16_multi(base, floatScales ? 1 : 0, blocksPerRow, a16, rowBytes, count, rows.lowerBound, rows.upperBound,
                               y, ldy, isa.level) != 0
    }

    /// `c[i, j] = Σ_k a[i, k] · W[j, k]` for the activations `a` (packed for this matrix's
    /// blocks), their rows in strips `strips` (one of `a.stripBlocks`) and columns `columns`
    /// (multiples of 8 at both ends), into `c` (row stride `ldc`). False when the kernel did not
    /// run (columns not whole groups, `a` packed for another K).
    @discardableResult
    public func gemm(_ a: GEMMActivations, strips: Range<Int>, columns: Range<Int>, into c: UnsafeMutablePointer<Float>,
                     ldc: Int) -> Bool {
        guard a.blocks == blocksPerRow else { return false }
        return qk_q4x8_gemm(base, floatScales ? 1 : 0, blocksPerRow, a.pointer, a.rows, strips.lowerBound, strips.upperBound,
                            columns.lowerBound, columns.upperBound, c, ldc, isa.level) != 0
    }
}
