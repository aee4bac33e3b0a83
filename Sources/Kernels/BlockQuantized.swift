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

    /// Writes rows `rows` dequantized to float32 into `dst` (`[rows.count, ld]`, first `k`
    /// columns).
    public func dequantize(rows: Range<Int>, into dst: UnsafeMutablePointer<Float>, ld: Int) {
        for (r, row) in rows.enumerated() {
            let out = dst + r * ld
            for b in 0..<blocksPerRow {
                let s = scale(row, b), z = zeroPoint(row, b)
                let start = b * blockSize, end = min(start + blockSize, k)
                let base = data + (row * blocksPerRow + b) * blockBytes
                if bits == 4 {
                    var col = start
                    while col < end {
                        let byte = base[(col - start) / 2]
                        out[col] = (Float(byte & 0x0F) - z) * s
                        if col + 1 < end { out[col + 1] = (Float(byte >> 4) - z) * s }
                        col += 2
                    }
                } else {
                    for col in start..<end { out[col] = (Float(base[col - start]) - z) * s }
                }
            }
        }
    }
}

/// Activations of one GEMV, laid out once for all rows of a quantized matrix: zero-padded to
/// whole blocks, and for 4 bits de-interleaved per 32 elements (16 even-index values then 16
/// odd-index values) to match the nibble order of the weight bytes.
public struct PackedActivations {
    public let values: [Float]

    public init(_ a: UnsafePointer<Float>, k: Int, blockSize: Int, bits: Int) {
        let padded = (k + blockSize - 1) / blockSize * blockSize
        var v = [Float](repeating: 0, count: padded)
        if bits == 4 && blockSize % 32 == 0 {
            for g in 0..<(padded / 32) {
                for j in 0..<16 {
                    let e = g * 32 + 2 * j, o = e + 1
                    v[g * 32 + j] = e < k ? a[e] : 0
                    v[g * 32 + 16 + j] = o < k ? a[o] : 0
                }
            }
        } else {
            for i in 0..<k { v[i] = a[i] }
        }
        values = v
    }
}

extension BlockQuantizedMatrix {
    /// `y[row] = Σ_k w[row, k] · a[k]` for `row` in `rows` (no bias).
    ///
    /// `packed` must come from ``PackedActivations`` with this matrix's block size and bits.
    public func gemv(_ packed: PackedActivations, rows: Range<Int>, into y: UnsafeMutablePointer<Float>) {
        packed.values.withUnsafeBufferPointer { buf in
            let a = UnsafeRawPointer(buf.baseAddress!)
            if bits == 4 && blockSize % 32 == 0 {
                gemv4(a, rows: rows, into: y)
            } else {
                gemvGeneric(a.assumingMemoryBound(to: Float.self), rows: rows, into: y)
            }
        }
    }

    /// 4-bit blocks of 32·m: 16 bytes (32 nibbles) per step, two 16-lane FMAs.
    @inline(__always)
    private func gemv4(_ a: UnsafeRawPointer, rows: Range<Int>, into y: UnsafeMutablePointer<Float>) {
        let groups = blockSize / 32
        let raw = UnsafeRawPointer(data)
        for row in rows {
            var acc = SIMD16<Float>()
            var rowBase = (row * blocksPerRow) * blockBytes
            for b in 0..<blocksPerRow {
                let zero = SIMD16<Float>(repeating: zeroPoint(row, b))
                var dot = SIMD16<Float>()
                for g in 0..<groups {
                    let bytes = raw.loadUnaligned(fromByteOffset: rowBase + g * 16, as: SIMD16<UInt8>.self)
                    let lo = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: bytes & 0x0F)) - zero
                    let hi = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: bytes &>> 4)) - zero
                    let offset = ((b * groups + g) * 32) * 4
                    dot.addProduct(lo, a.loadUnaligned(fromByteOffset: offset, as: SIMD16<Float>.self))
                    dot.addProduct(hi, a.loadUnaligned(fromByteOffset: offset + 64, as: SIMD16<Float>.self))
                }
                acc.addProduct(dot, SIMD16<Float>(repeating: scale(row, b)))
                rowBase += blockBytes
            }
            y[row] = acc.sum()
        }
    }

    private func gemvGeneric(_ a: UnsafePointer<Float>, rows: Range<Int>, into y: UnsafeMutablePointer<Float>) {
        for row in rows {
            var acc: Float = 0
            for b in 0..<blocksPerRow {
                let z = zeroPoint(row, b)
                var dot: Float = 0
                let start = b * blockSize, end = min(start + blockSize, k)
                for col in start..<end {
                    dot += (Float(quantized(row, col)) - z) * a[col]
                }
                acc += dot * scale(row, b)
            }
            y[row] = acc
        }
    }
}
