import CKernels

/// A weight matrix quantized in blocks along K, in the layout of ONNX Runtime's
/// `com.microsoft.MatMulNBits`:
///
/// - `data`: `[N, blocksPerRow, blockSize * bits / 8]` uint8. For 4 bits, element `2j` of a block
///   is the low nibble of byte `j` and element `2j + 1` the high nibble; for 8 bits, element `j`
///   is byte `j`.
/// - `scales`: `[N, blocksPerRow]`, float32 or float16.
/// - zero points: absent (then `2^(bits-1)`: 8 for 4 bits), packed like the data
///   (`[N, ceil(blocksPerRow * bits / 8)]` uint8), or one typed value per block.
///
/// Weight `w[n, k] = (q[n, k] - zeroPoint[n, k / blockSize]) * scale[n, k / blockSize]`.
public struct BlockQuantizedMatrix: @unchecked Sendable {
    public enum Scales {
        case float(UnsafePointer<Float>)
        case half(UnsafePointer<Float16>)
    }

    public enum ZeroPoints {
        /// The symmetric default, `2^(bits-1)`.
        case none
        /// Packed like the weights, `ceil(blocksPerRow * bits / 8)` bytes per row.
        case packed(UnsafePointer<UInt8>)
        case float(UnsafePointer<Float>)
        case half(UnsafePointer<Float16>)
    }

    public let n: Int
    public let k: Int
    public let bits: Int
    public let blockSize: Int
    public let data: UnsafePointer<UInt8>
    public let scales: Scales
    public let zeroPoints: ZeroPoints
    /// Use the C kernels when they fit (false forces the portable Swift kernels, for tests).
    public var allowsNativeKernels = true

    public var blocksPerRow: Int { (k + blockSize - 1) / blockSize }
    /// Bytes of one block of one row.
    public var blockBytes: Int { blockSize * bits / 8 }

    public init(n: Int, k: Int, bits: Int, blockSize: Int, data: UnsafePointer<UInt8>, scales: Scales, zeroPoints: ZeroPoints) {
        precondition(bits == 4 || bits == 8, "only 4- and 8-bit blocks are implemented")
        precondition(blockSize >= 16 && blockSize & (blockSize - 1) == 0, "block size must be a power of two ≥ 16")
        self.n = n
        self.k = k
        self.bits = bits
        self.blockSize = blockSize
        self.data = data
        self.scales = scales
        self.zeroPoints = zeroPoints
    }

    @inline(__always)
    func scale(_ row: Int, _ block: Int) -> Float {
        switch scales {
        case .float(let p): p[row * blocksPerRow + block]
        case .half(let p): Float(p[row * blocksPerRow + block])
        }
    }

    @inline(__always)
    func zeroPoint(_ row: Int, _ block: Int) -> Float {
        switch zeroPoints {
        case .none:
            return Float(1 << (bits - 1))
        case .packed(let p):
            if bits == 8 { return Float(p[row * blocksPerRow + block]) }
            let rowBytes = (blocksPerRow + 1) / 2
            let byte = p[row * rowBytes + block / 2]
            return Float(block & 1 == 0 ? byte & 0x0F : byte >> 4)
        case .float(let p):
            return p[row * blocksPerRow + block]
        case .half(let p):
            return Float(p[row * blocksPerRow + block])
        }
    }

    /// The quantized value of element `col` of `row`.
    @inline(__always)
    func quantized(_ row: Int, _ col: Int) -> UInt8 {
        let block = col / blockSize, j = col % blockSize
        let base = data + (row * blocksPerRow + block) * blockBytes
        if bits == 8 { return base[j] }
        let byte = base[j / 2]
        return j & 1 == 0 ? byte & 0x0F : byte >> 4
    }

    /// Bytes of one row of `data`.
    public var rowBytes: Int { blocksPerRow * blockBytes }
    /// K padded to whole blocks: the length of packed activation and dequantized rows.
    public var paddedK: Int { blocksPerRow * blockSize }
    /// Whole 64-byte chunks (128 four-bit weights) per row, walked by the SIMD kernels.
    public var chunksPerRow: Int { bits == 4 ? rowBytes / 64 : 0 }
    /// Lanes of a 16-lane chunk vector that share one block (lane j covers weights 8j..8j+7).
    var lanesPerBlock: Int { min(16, blockSize / 8) }

    /// Whether the C kernels (AVX-512 or AVX2, chosen at run time) serve this matrix: 4 bits,
    /// block 32, symmetric or packed zero points. They take activations in natural order.
    public var usesNativeKernels: Bool {
        guard allowsNativeKernels, bits == 4, blockSize == 32, KernelISA.active >= .simd else { return false }
        switch zeroPoints {
        case .none, .packed: return true
        default: return false
        }
    }

    /// The C kernels' arguments for this matrix.
    @inline(__always)
    private func withNativeArguments<R>(_ body: (UnsafePointer<UInt16>?, UnsafePointer<Float>?, UnsafePointer<UInt8>?) -> R) -> R {
        var zp: UnsafePointer<UInt8>?
        if case .packed(let p) = zeroPoints { zp = p }
        let (half, float) = nativeScales
        return body(half, float, zp)
    }

    /// The scales as the C kernels take them: float16 bits or float32, exactly one non-nil.
    var nativeScales: (half: UnsafePointer<UInt16>?, float: UnsafePointer<Float>?) {
        switch scales {
        case .half(let p): (UnsafeRawPointer(p).assumingMemoryBound(to: UInt16.self), nil)
        case .float(let p): (nil, p)
        }
    }
}

// MARK: - Packed order
//
// The 4-bit kernels read a row 64 bytes at a time as 16 little-endian UInt32 lanes: lane j holds
// bytes 4j..4j+3, i.e. weights 8j..8j+7 of the chunk. Shifting by 8k (+4 for the high nibble)
// and masking gives, in every lane at once, weight 8j + v with v = 2k (+1). So the kernels see a
// chunk's 128 weights in "packed order" p = 16·v + j ↔ weight 8j + v. Activations are laid out
// once in the same order (and dequantized tiles for the GEMM path are written in it), so no
// shuffles are needed; a dot product does not care about the order of its terms. Elements past
// the last whole chunk (a row tail of fewer than 64 bytes) stay in natural order.

extension BlockQuantizedMatrix {
    /// Lays out one activation row `a` (`k` values) in packed order into `dst` (`paddedK`
    /// values, zero beyond `k`).
    public func pack(activations a: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        if usesNativeKernels {
            dst.update(from: a, count: k)
            (dst + k).update(repeating: 0, count: paddedK - k)
            return
        }
        let chunked = chunksPerRow * 128
        for c in 0..<chunksPerRow {
            let e0 = c * 128
            for v in 0..<8 {
                for j in 0..<16 {
                    let e = e0 + 8 * j + v
                    dst[e0 + 16 * v + j] = e < k ? a[e] : 0
                }
            }
        }
        for e in chunked..<paddedK { dst[e] = e < k ? a[e] : 0 }
    }

    /// The symmetric default zero point plus 2^23, as a lane offset.
    private var defaultOffset: ConstantLanes { ConstantLanes(value: 8_388_608 + Float(1 << (bits - 1))) }

    /// Scales and zero-point offsets for any storage and block size, one value per block.
    private var genericSources: (GenericLanes, GenericLanes) {
        let lpb = lanesPerBlock, bpr = blocksPerRow
        let scaleSource: GenericLanes
        switch scales {
        case .half(let p): scaleSource = GenericLanes(lanesPerBlock: lpb) { Float(p[$0]) }
        case .float(let p): scaleSource = GenericLanes(lanesPerBlock: lpb) { p[$0] }
        }
        return (scaleSource, GenericLanes(lanesPerBlock: lpb) { block in 8_388_608 + self.zeroPoint(block / bpr, block % bpr) })
    }

    /// Dot products of rows `rows` with one packed activation row (`pack`), into `y[row]`.
    public func gemv(packed a: UnsafePointer<Float>, rows: Range<Int>, into y: UnsafeMutablePointer<Float>) {
        if usesNativeKernels {
            let done = withNativeArguments { s16, s32, zp in
                qk_q4_gemv(data, s16, s32, zp, blocksPerRow, a, rows.lowerBound, rows.upperBound, y)
            }
            if done != 0 { return }
        }
        // Specialised for the q4f16 / q4 exports (block 32, symmetric); anything else is generic.
        switch (scales, zeroPoints, lanesPerBlock) {
        case (.half(let p), .none, 4): gemvKernel(HalfLanes4(p: p), defaultOffset, packed: a, rows: rows, into: y)
        case (.float(let p), .none, 4): gemvKernel(FloatLanes4(p: p), defaultOffset, packed: a, rows: rows, into: y)
        default:
            let (s, z) = genericSources
            gemvKernel(s, z, packed: a, rows: rows, into: y)
        }
    }

    @inline(__always)
    private func gemvKernel<S: LaneSource, Z: LaneSource>(_ scales: S, _ offsets: Z, packed a: UnsafePointer<Float>,
                                                         rows: Range<Int>, into y: UnsafeMutablePointer<Float>) {
        let chunks = chunksPerRow
        let raw = UnsafeRawPointer(data)
        let ap = UnsafeRawPointer(a)
        for row in rows {
            var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
            let rowBase = row * rowBytes
            for c in 0..<chunks {
                // The chunk's first block (blocks above 128 span several chunks).
                let firstBlock = row * blocksPerRow + c * 128 / blockSize
                let w = raw.loadUnaligned(fromByteOffset: rowBase + c * 64, as: SIMD16<UInt32>.self)
                let offset = offsets.lanes(firstBlock)
                let av = ap + c * 512
                @inline(__always) func term(_ shift: UInt32, _ v: Int) -> SIMD16<Float> {
                    let q = unsafeBitCast(((w &>> shift) & 0xF) | 0x4B00_0000, to: SIMD16<Float>.self) - offset
                    return q * av.loadUnaligned(fromByteOffset: v * 64, as: SIMD16<Float>.self)
                }
                // Weight v of every lane is nibble v of the lane's 32 bits; two chains for ILP.
                var t0 = term(0, 0), t1 = term(4, 1)
                t0 += term(8, 2); t1 += term(12, 3)
                t0 += term(16, 4); t1 += term(20, 5)
                t0 += term(24, 6); t1 += term(28, 7)
                let s = scales.lanes(firstBlock)
                acc0.addProduct(t0, s)
                acc1.addProduct(t1, s)
            }
            var sum = (acc0 + acc1).sum()
            if chunks * 128 < paddedK {
                sum += tailDot(row: row, a: a, from: chunks * 128)
            }
            y[row] = sum
        }
    }

    /// Natural-order dot product of elements `from..<paddedK` of `row` (rows whose byte length
    /// is not a multiple of 64, and 8-bit weights).
    private func tailDot(row: Int, a: UnsafePointer<Float>, from: Int) -> Float {
        var acc: Float = 0
        var block = from / blockSize
        var e = from
        while e < paddedK {
            let z = zeroPoint(row, block), s = scale(row, block)
            var dot: Float = 0
            let end = (block + 1) * blockSize
            while e < end {
                dot += (Float(quantized(row, e)) - z) * a[e]
                e += 1
            }
            acc += dot * s
            block += 1
        }
        return acc
    }

    /// Whether `gemm` serves this matrix on this CPU (block 32, 4 bits, AVX2+FMA+F16C).
    public var supportsNativeGEMM: Bool {
        guard usesNativeKernels else { return false }
        // An empty product does no work and reports whether the kernel runs here.
        return withNativeArguments { s16, s32, zp in qk_q4_gemm(data, s16, s32, zp, blocksPerRow, nil, 0, 0, 0, 0, 0, nil, 0) } != 0
    }

    /// `c[i, j] = Σ_k a[i, k] · W[j, k]` for the activations `a` (packed for this matrix's
    /// blocks), their rows in strips `strips` (one of `a.stripBlocks`) and the rows `columns` of
    /// this matrix, into `c` (row stride `ldc`), with the C kernel that dequantizes panels into
    /// L1 (`qk_q4_gemm`). Returns false (nothing written) when that kernel does not serve this
    /// matrix or CPU (`supportsNativeGEMM`).
    public func gemm(_ a: GEMMActivations, strips: Range<Int>, columns: Range<Int>, into c: UnsafeMutablePointer<Float>,
                     ldc: Int) -> Bool {
        guard usesNativeKernels, a.blocks == blocksPerRow else { return false }
        return withNativeArguments { s16, s32, zp in
            qk_q4_gemm(data, s16, s32, zp, blocksPerRow, a.pointer, a.rows, strips.lowerBound, strips.upperBound,
                       columns.lowerBound, columns.upperBound, c, ldc)
        } != 0
    }

    /// Writes rows `rows` dequantized to float32 in packed order into `dst` (`[rows.count, ld]`,
    /// `paddedK` values per row), for a GEMM against activations laid out with `pack`.
    public func dequantize(rows: Range<Int>, into dst: UnsafeMutablePointer<Float>, ld: Int) {
        if usesNativeKernels {
            let done = withNativeArguments { s16, s32, zp in
                qk_q4_dequantize(data, s16, s32, zp, blocksPerRow, rows.lowerBound, rows.upperBound, dst, ld)
            }
            if done != 0 { return }
        }
        switch (scales, zeroPoints, lanesPerBlock) {
        case (.half(let p), .none, 4): dequantizeKernel(HalfLanes4(p: p), defaultOffset, rows: rows, into: dst, ld: ld)
        case (.float(let p), .none, 4): dequantizeKernel(FloatLanes4(p: p), defaultOffset, rows: rows, into: dst, ld: ld)
        default:
            let (s, z) = genericSources
            dequantizeKernel(s, z, rows: rows, into: dst, ld: ld)
        }
    }

    @inline(__always)
    private func dequantizeKernel<S: LaneSource, Z: LaneSource>(_ scales: S, _ offsets: Z, rows: Range<Int>,
                                                               into dst: UnsafeMutablePointer<Float>, ld: Int) {
        let chunks = chunksPerRow
        let raw = UnsafeRawPointer(data)
        for (r, row) in rows.enumerated() {
            let out = UnsafeMutableRawPointer(dst + r * ld)
            let rowBase = row * rowBytes
            for c in 0..<chunks {
                // The chunk's first block (blocks above 128 span several chunks).
                let firstBlock = row * blocksPerRow + c * 128 / blockSize
                let w = raw.loadUnaligned(fromByteOffset: rowBase + c * 64, as: SIMD16<UInt32>.self)
                let offset = offsets.lanes(firstBlock)
                let scale = scales.lanes(firstBlock)
                @inline(__always) func store(_ shift: UInt32, _ v: Int) {
                    let q = unsafeBitCast(((w &>> shift) & 0xF) | 0x4B00_0000, to: SIMD16<Float>.self) - offset
                    out.storeBytes(of: q * scale, toByteOffset: (c * 128 + v * 16) * 4, as: SIMD16<Float>.self)
                }
                store(0, 0); store(4, 1); store(8, 2); store(12, 3)
                store(16, 4); store(20, 5); store(24, 6); store(28, 7)
            }
            let o = dst + r * ld
            for e in (chunks * 128)..<paddedK {
                let b = e / blockSize
                o[e] = (Float(quantized(row, e)) - zeroPoint(row, b)) * scale(row, b)
            }
        }
    }
}

/// Per-block values (scales, zero-point offsets) spread over the 16 lanes of a chunk vector,
/// given the absolute index of the chunk's first block.
protocol LaneSource {
    func lanes(_ firstBlock: Int) -> SIMD16<Float>
}

struct ConstantLanes: LaneSource {
    let value: Float
    @inline(__always) func lanes(_ firstBlock: Int) -> SIMD16<Float> { SIMD16(repeating: value) }
}

/// float16 scales, block 32: four blocks per chunk, four lanes each.
struct HalfLanes4: LaneSource {
    let p: UnsafePointer<Float16>
    @inline(__always) func lanes(_ firstBlock: Int) -> SIMD16<Float> {
        let f = SIMD4<Float>(UnsafeRawPointer(p + firstBlock).loadUnaligned(as: SIMD4<Float16>.self))
        return SIMD16(f[0], f[0], f[0], f[0], f[1], f[1], f[1], f[1], f[2], f[2], f[2], f[2], f[3], f[3], f[3], f[3])
    }
}

/// float32 scales, block 32.
struct FloatLanes4: LaneSource {
    let p: UnsafePointer<Float>
    @inline(__always) func lanes(_ firstBlock: Int) -> SIMD16<Float> {
        let f = UnsafeRawPointer(p + firstBlock).loadUnaligned(as: SIMD4<Float>.self)
        return SIMD16(f[0], f[0], f[0], f[0], f[1], f[1], f[1], f[1], f[2], f[2], f[2], f[2], f[3], f[3], f[3], f[3])
    }
}

/// Any block size and storage, one value per block through a closure.
struct GenericLanes: LaneSource {
    let lanesPerBlock: Int
    let value: (Int) -> Float
    @inline(__always) func lanes(_ firstBlock: Int) -> SIMD16<Float> {
        if lanesPerBlock == 16 { return SIMD16(repeating: value(firstBlock)) }
        var v = SIMD16<Float>()
        for j in 0..<16 { v[j] = value(firstBlock + j / lanesPerBlock) }
        return v
    }
}

/// A 4-bit matrix with blocks of a multiple of 32 or zero points, seen as the blocks-of-32,
/// zero-point-8 matrix the packed kernels (`PackedQ4Matrix`) serve, plus what the zero points add:
///
///   w[n, k] = (q − z) · s = (q − 8) · s + (8 − z) · s
///
/// so `y = A · Wᵀ` is the symmetric product of the same codes plus, per block of 32 of K,
/// `(8 − z[n, b]) · s[n, b]` (`zeroPointTerms`, `[N, K/32]`) times the block's activation sum
/// (`addZeroPointTerms`). A block of 64, 128 or 256 is that many blocks of 32 with the same
/// scale, and its codes lie in the same bytes, so only the scales are repeated (needs K a
/// multiple of the block, or blocks of 32). The results are the original matrix's up to float32
/// rounding (the terms are summed apart).
public final class SymmetricBlocks32: @unchecked Sendable {
    public let matrix: BlockQuantizedMatrix
    /// `(8 − z) · s` per row and block of 32 (`[n, k / 32]`), when the original had zero points.
    public let zeroPointTerms: UnsafeMutablePointer<Float>?
    private let repeatedScales: UnsafeMutableRawPointer?

    /// Nil when the packed kernels cannot take the matrix this way (not 4 bits, blocks not a
    /// multiple of 32, K not a multiple of a block above 32, zero points not packed 4-bit).
    public init?(_ m: BlockQuantizedMatrix) {
        guard m.bits == 4, m.blockSize % 32 == 0, m.blockSize == 32 || m.k % m.blockSize == 0 else { return nil }
        let repeats = m.blockSize / 32, blocks = m.blocksPerRow * repeats, n = m.n
        var zeroPoints: UnsafePointer<UInt8>?
        switch m.zeroPoints {
        case .none: break
        case .packed(let p): zeroPoints = p
        case .float, .half: return nil
        }
        // Scales repeated for each block of 32 (as they are when the blocks are 32 already).
        var scales = m.scales
        if repeats > 1 {
            switch m.scales {
            case .float(let p):
                let r = UnsafeMutablePointer<Float>.allocate(capacity: n * blocks)
                for i in 0..<(n * blocks) { r[i] = p[i / repeats] }
                scales = .float(r)
                repeatedScales = UnsafeMutableRawPointer(r)
            case .half(let p):
                let r = UnsafeMutablePointer<Float16>.allocate(capacity: n * blocks)
                for i in 0..<(n * blocks) { r[i] = p[i / repeats] }
                scales = .half(r)
                repeatedScales = UnsafeMutableRawPointer(r)
            }
        } else {
            repeatedScales = nil
        }
        if zeroPoints != nil {
            let terms = UnsafeMutablePointer<Float>.allocate(capacity: n * blocks)
            for row in 0..<n {
                for b in 0..<blocks {
                    terms[row * blocks + b] = (8 - m.zeroPoint(row, b / repeats)) * m.scale(row, b / repeats)
                }
            }
            zeroPointTerms = terms
        } else {
            zeroPointTerms = nil
        }
        var symmetric = BlockQuantizedMatrix(n: n, k: m.k, bits: 4, blockSize: 32, data: m.data, scales: scales, zeroPoints: .none)
        symmetric.allowsNativeKernels = m.allowsNativeKernels
        matrix = symmetric
    }

    deinit {
        repeatedScales?.deallocate()
        zeroPointTerms?.deallocate()
    }

    /// `y[i, j] += Σ_b zeroPointTerms[j, b] · Σ_{k in block b} a[i, k]` for `m` rows of `a`
    /// (`lda` apart, K values each) into `y` (`ldy` apart): what the zero points add to the
    /// symmetric product. Nothing without zero points.
    public func addZeroPointTerms(_ a: UnsafePointer<Float>, rows m: Int, lda: Int, into y: UnsafeMutablePointer<Float>, ldy: Int) {
        guard zeroPointTerms != nil, m > 0 else { return }
        let blocks = matrix.blocksPerRow, k = matrix.k
        var sums = [Float](repeating: 0, count: m * blocks)
        for i in 0..<m {
            for b in 0..<blocks {
                var s: Float = 0
                for j in (b * 32)..<Swift.min(k, b * 32 + 32) { s += a[i * lda + j] }
                sums[i * blocks + b] = s
            }
        }
        addZeroPointTerms(blockSums: sums, rows: m, into: y, ldy: ldy)
    }

    /// The same with the activations' sums per block of 32 given (`[m, k / 32]`): with int8
    /// activations, those of the quantized values (as ONNX Runtime's int8 kernels subtract
    /// `zero point · Σ q_a`), from ``PackedQ4Matrix/int8BlockSums(_:into:)``.
    public func addZeroPointTerms(blockSums sums: [Float], rows m: Int, into y: UnsafeMutablePointer<Float>, ldy: Int) {
        guard let terms = zeroPointTerms, m > 0 else { return }
        let blocks = matrix.blocksPerRow
        precondition(sums.count == m * blocks, "\(sums.count) block sums for \(m) rows of \(blocks) blocks")
        sums.withUnsafeBufferPointer { s in
            sgemm(transB: true, m: m, n: matrix.n, k: blocks, a: s.baseAddress!, lda: blocks, b: terms, ldb: blocks, beta: 1, c: y, ldc: ldy)
        }
    }
}

extension BlockQuantizedMatrix {
    /// Whether `int8Products` computes a matrix of these bits and blocks: 8 bits in blocks of 32
    /// (ONNX Runtime's 8-bit int8 kernel), 4 bits in blocks of a multiple of 32.
    public static func int8ProductsServe(bits: Int, blockSize: Int) -> Bool {
        bits == 8 ? blockSize == 32 : bits == 4 && blockSize % 32 == 0
    }

    /// `c[i, j] = Σ_s s_a[i, s] · s_w[j, s] · Σ_{k in s} q_a[i, k] · (q_w[j, k] − z[j, s])` over the
    /// blocks s of 32 of the `m` rows of `a` (K floats each), quantized to int8 per block of 32 as
    /// the packed kernels quantize them (`s_a = max|a| / 127`, `q_a = round(a · 127 / max|a|)`,
    /// half away from zero); integer products per block of 32, float32 across blocks. ONNX
    /// Runtime's MatMulNBits at `accuracy_level = 4`: for 8-bit weights its own kernel's form, for
    /// 4-bit ones the portable form of the packed int8 kernels (`qk_q4x8_gemv_q8`), for CPUs
    /// without them. False (nothing written) unless `int8ProductsServe(bits:blockSize:)` and the
    /// zero points are absent or packed integers.
    public func int8Products(_ a: UnsafePointer<Float>, rows m: Int, into c: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
        guard BlockQuantizedMatrix.int8ProductsServe(bits: bits, blockSize: blockSize) else { return false }
        switch zeroPoints {
        case .none, .packed: break
        case .float, .half: return false
        }
        let kp = paddedK, blocks = kp / 32, perBlock = blockSize / 32
        var qa = [Int8](repeating: 0, count: m * kp)
        var sa = [Float](repeating: 0, count: m * blocks)
        for i in 0..<m {
            for b in 0..<blocks {
                let range = (b * 32)..<Swift.min(k, b * 32 + 32)
                var amax: Float = 0
                for e in range { amax = Swift.max(amax, abs(a[i * k + e])) }
                sa[i * blocks + b] = amax / 127
                let inverse: Float = amax > 0 ? 127 / amax : 0
                for e in range { qa[i * kp + e] = Int8((a[i * k + e] * inverse).rounded(.toNearestOrAwayFromZero)) }
            }
        }
        qa.withUnsafeBufferPointer { qa in
            sa.withUnsafeBufferPointer { sa in
                parallelFor(n, minChunk: 16) { columns in
                    var qw = [Int32](repeating: 0, count: 32), sums = [Float](repeating: 0, count: m)
                    for j in columns {
                        for i in 0..<m { sums[i] = 0 }
                        for b in 0..<blocks {
                            // Block b of 32 lies in the weights' block b / perBlock, at element 32 · (b % perBlock).
                            let wb = b / perBlock, offset = 32 * (b % perBlock)
                            let z = Int32(zeroPoint(j, wb)), ws = scale(j, wb), codes = data + (j * blocksPerRow + wb) * blockBytes
                            if bits == 8 {
                                for e in 0..<32 { qw[e] = Int32(codes[offset + e]) &- z }
                            } else {
                                for t in 0..<16 {
                                    let byte = codes[offset / 2 + t]
                                    qw[2 * t] = Int32(byte & 0x0F) &- z
                                    qw[2 * t + 1] = Int32(byte >> 4) &- z
                                }
                            }
                            for i in 0..<m {
                                let x = qa.baseAddress! + i * kp + b * 32
                                var dot: Int32 = 0
                                for e in 0..<32 { dot &+= Int32(x[e]) &* qw[e] }
                                sums[i] += Float(dot) * (sa[i * blocks + b] * ws)
                            }
                        }
                        for i in 0..<m { c[i * ldc + j] = sums[i] }
                    }
                }
            }
        }
        return true
    }
}
