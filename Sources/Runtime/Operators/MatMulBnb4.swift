import Kernels

/// com.microsoft.MatMulBnb4 (the transformers.js `bnb4` exports, made by onnxruntime's
/// `MatMulBnb4Quantizer`): `Y = A · dequantize(B)ᵀ` with B `[N, K]` in bitsandbytes 4-bit codes
/// (`quant_type` 0 FP4, 1 NF4; two per byte, flat, first in the high nibble), one `absmax` per
/// `block_size` consecutive codes of the flat N·K order. A is float32 (or float16, widened; the
/// result is rounded back), `transB = 1` as ONNX Runtime's CPU kernel requires.
///
/// Single rows (decode) run `qk_bnb4_gemv` over the packed codes; more rows dequantize B a tile
/// of rows at a time (exactly as ONNX Runtime does: code value · absmax) for one BLAS GEMM each.
struct MatMulBnb4Operator: Operator {
    let n: Int, k: Int, blockSize: Int, quantType: Int

    /// Rows of several sequences (a batched decode step), each sequence one or two rows, which
    /// alone take the GEMV: every row still takes it, over the same chunks of B's rows in one
    /// parallel loop (`qk_bnb4_gemv_multi`: each weight row's codes looked up once for up to four
    /// activation rows), so the codes come from memory once for all the rows; each output is one
    /// dot product over K in the GEMV's order, whatever the chunks: the solo results.
    var rowStacking: RowStacking { .firstInput }
    func stacks(_ inputs: [Tensor?]) -> Bool {
        guard let a = inputs.first ?? nil, a.rank >= 2, a.shape.last == k, a.shape[0] > 0 else { return false }
        return a.count / k / a.shape[0] <= 2
    }
    func runStacked(_ inputs: [Tensor?]) throws -> [Tensor] { try compute(inputs, gemvRows: stacks(inputs)) }
    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try compute(inputs, gemvRows: false) }

    /// Rows of B dequantized per GEMM tile (bounds the scratch memory).
    static let tileRows = 256

    static func make(_ ctx: OperatorContext) throws -> MatMulBnb4Operator {
        let node = ctx.node
        guard let k = node.intAttribute("K"), let n = node.intAttribute("N"), k > 0, n > 0 else {
            throw node.invalid("attributes K and N are required and must be positive")
        }
        guard let blockSize = node.intAttribute("block_size"), blockSize > 0 else {
            throw node.invalid("attribute block_size is required and must be positive")
        }
        guard let quantType = node.intAttribute("quant_type"), quantType == 0 || quantType == 1 else {
            throw node.invalid("quant_type must be 0 (FP4) or 1 (NF4), got \(node.intAttribute("quant_type").map(String.init) ?? "none")")
        }
        guard node.intAttribute("transB", default: 1) == 1 else {
            throw node.invalid("transB = 0 is not supported (ONNX Runtime's CPU kernel takes B as [N, K])")
        }
        return MatMulBnb4Operator(n: n, k: k, blockSize: blockSize, quantType: quantType)
    }

    /// `gemvRows`: every row through the GEMV, whatever their number (stacked single rows).
    private func compute(_ inputs: [Tensor?], gemvRows: Bool) throws -> [Tensor] {
        let aIn = try inputs.required(0), b = try inputs.required(1), absmaxIn = try inputs.required(2)
        guard aIn.dtype == .float || aIn.dtype == .float16 else { throw OpError("A must be float32 or float16, got \(aIn.dtype)") }
        guard aIn.rank >= 1, aIn.shape.last == k else { throw OpError("A has shape \(aIn.shape), expected last dimension K = \(k)") }
        let (codes, blocks) = ((n * k + 1) / 2, (n * k + blockSize - 1) / blockSize)
        guard b.dtype == .uint8, b.count == codes else { throw OpError("B has \(b.dtype)\(b.shape), expected \(codes) uint8 (N·K / 2)") }
        guard absmaxIn.dtype == .float || absmaxIn.dtype == .float16, absmaxIn.count == blocks else {
            throw OpError("absmax has \(absmaxIn.dtype)\(absmaxIn.shape), expected \(blocks) float32 values")
        }
        let a = try floatOperand(aIn), absmax = try floatOperand(absmaxIn)
        let m = a.count / k
        let out = Tensor(dtype: .float, shape: Array(aIn.shape.dropLast()) + [n])
        let pa = UnsafePointer(a.pointer(as: Float.self)), po = out.pointer(as: Float.self)
        let pb = UnsafePointer(b.pointer(as: UInt8.self)), ps = UnsafePointer(absmax.pointer(as: Float.self))
        let (k, blockSize, quantType) = (self.k, self.blockSize, Int32(self.quantType))
        if m <= 2 || gemvRows {
            parallelFor(n, minChunk: max(16, (1 << 17) / k)) { rows in
                bnb4Gemv(pb, absmax: ps, blockSize: blockSize, quantType: quantType, k: k, a: pa, m: m, rows: rows,
                         into: po + rows.lowerBound, ldy: n)
            }
        } else {
            let tile = min(MatMulBnb4Operator.tileRows, n)
            let deq = UnsafeMutablePointer<Float>.allocate(capacity: tile * k)
            defer { deq.deallocate() }
            var n0 = 0
            while n0 < n {
                let rows = min(tile, n - n0), start = n0
                parallelFor(rows, minChunk: 16) { r in
                    bnb4Dequantize(pb, absmax: ps, blockSize: blockSize, quantType: quantType, k: k,
                                   rows: (start + r.lowerBound)..<(start + r.upperBound), into: deq + r.lowerBound * k)
                }
                sgemm(transB: true, m: m, n: rows, k: k, a: pa, lda: k, b: deq, ldb: k, c: po + n0, ldc: n)
                n0 += rows
            }
        }
        return [narrowResult(out, to: aIn.dtype)]
    }
}

/// com.microsoft.GatherBlockQuantized (the quantized tied embeddings of onnxruntime-genai's
/// builder): `Gather(dequantize(data), indices, axis 0)` for uint8 `data` holding 4-bit (two per
/// byte, first in the low nibble) or 8-bit values quantized in blocks of `block_size` along the
/// last axis, `scales` (float32 or float16: the output's type) one per block, optional
/// `zero_points` (4-bit packed like the data; default 2^(bits−1)). Only the gathered rows are
/// dequantized: `(q − zero_point) · scale` in float32, rounded once to the output type. An index
/// outside [−rows, rows) gives a row of zeros, as in ONNX Runtime. int4 / uint4 `data` (the
/// typed form) holds one value per element, zero points default 0.
struct GatherBlockQuantizedOperator: Operator {
    let bits: Int, blockSize: Int

    static func make(_ ctx: OperatorContext) throws -> GatherBlockQuantizedOperator {
        let node = ctx.node
        let bits = node.intAttribute("bits", default: 4), blockSize = node.intAttribute("block_size", default: 128)
        guard bits == 4 || bits == 8 else { throw node.invalid("bits = \(bits) is not supported (4 or 8)") }
        guard blockSize >= 16, blockSize & (blockSize - 1) == 0 else { throw node.invalid("block_size must be a power of two ≥ 16, got \(blockSize)") }
        guard node.intAttribute("gather_axis", default: 0) == 0 else { throw node.invalid("gather_axis must be 0 for uint8 data") }
        return GatherBlockQuantizedOperator(bits: bits, blockSize: blockSize)
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let data = try inputs.required(0), indices = try inputs.required(1), scalesIn = try inputs.required(2)
        if data.dtype == .int4 || data.dtype == .uint4 { return try typedFourBit(data, indices, scalesIn, inputs.optional(3)) }
        guard data.dtype == .uint8, data.rank >= 2 else { throw OpError("data must be uint8 of rank ≥ 2 (4- or 8-bit values), got \(data.dtype)\(data.shape)") }
        let perByte = 8 / bits
        let rows = data.shape[0], rowBytes = data.count / max(rows, 1)
        let innerShape = Array(data.shape.dropFirst().dropLast()) + [data.shape.last! * perByte]
        let width = rowBytes * perByte, blocks = (data.shape.last! * perByte + blockSize - 1) / blockSize
        let blocksPerRow = blocks * Tensor.elementCount(Array(data.shape.dropFirst().dropLast()))
        guard scalesIn.dtype == .float || scalesIn.dtype == .float16, scalesIn.count == rows * blocksPerRow,
              scalesIn.rank == data.rank, scalesIn.shape.last == blocks else {
            throw OpError("scales have \(scalesIn.dtype)\(scalesIn.shape), expected float32 or float16 with \(blocks) blocks of \(blockSize) per row of \(data.shape)")
        }
        let scales = try floatOperand(scalesIn)
        var zeroPoints: Tensor?
        if let z = inputs.optional(3) {
            let expected = rows * (blocksPerRow / blocks) * ((blocks + perByte - 1) / perByte)
            guard z.dtype == .uint8, z.count == expected else { throw OpError("zero_points have \(z.dtype)\(z.shape), expected \(expected) uint8") }
            zeroPoints = z
        }
        let ids = try intValues(indices)
        let out = Tensor(dtype: .float, shape: indices.shape + innerShape)
        let pd = data.pointer(as: UInt8.self), ps = scales.pointer(as: Float.self), po = out.pointer(as: Float.self)
        let pz = zeroPoints?.pointer(as: UInt8.self)
        let lineBlocks = blocks, lineBytesOfZeros = (blocks + perByte - 1) / perByte
        let lineWidth = data.shape.last! * perByte, lines = width / max(lineWidth, 1)
        let defaultZero = Float(1 << (bits - 1))
        for (i, raw) in ids.enumerated() {
            let dst = po + i * width
            guard raw >= -rows && raw < rows else {
                dst.initialize(repeating: 0, count: width)
                continue
            }
            let row = raw < 0 ? raw + rows : raw
            for line in 0..<lines {
                let src = pd + row * rowBytes + line * (lineWidth / perByte)
                let scaleLine = (row * lines + line) * lineBlocks
                for c in 0..<lineWidth {
                    let q = bits == 8 ? Float(src[c]) : Float((c & 1) == 0 ? src[c >> 1] & 15 : src[c >> 1] >> 4)
                    let blk = c / blockSize
                    var zero = defaultZero
                    if let pz {
                        let zb = pz[(row * lines + line) * lineBytesOfZeros + (bits == 8 ? blk : blk >> 1)]
                        zero = Float(bits == 8 ? zb : ((blk & 1) == 0 ? zb & 15 : zb >> 4))
                    }
                    dst[line * lineWidth + c] = (q - zero) * ps[scaleLine + blk]
                }
            }
        }
        return [narrowResult(out, to: scalesIn.dtype)]
    }
}

extension GatherBlockQuantizedOperator {
    /// int4 / uint4 `data` (held one value per byte, `DataType.storageSize`) of rank 2, blocks
    /// along the last axis; zero points of the same type and the scales' shape (default 0).
    func typedFourBit(_ data: Tensor, _ indices: Tensor, _ scalesIn: Tensor, _ zeroPoints: Tensor?) throws -> [Tensor] {
        guard data.rank == 2, bits == 4 else { throw OpError("\(data.dtype) data must be [rows, columns] with bits = 4, got \(data.shape), bits \(bits)") }
        let (rows, width) = (data.shape[0], data.shape[1]), blocks = (width + blockSize - 1) / blockSize
        guard scalesIn.dtype == .float || scalesIn.dtype == .float16, scalesIn.shape == [rows, blocks] else {
            throw OpError("scales have \(scalesIn.dtype)\(scalesIn.shape), expected float32 or float16 [\(rows), \(blocks)]")
        }
        if let z = zeroPoints, z.dtype != data.dtype || z.shape != [rows, blocks] {
            throw OpError("zero_points have \(z.dtype)\(z.shape), expected \(data.dtype)[\(rows), \(blocks)]")
        }
        let scales = try floatOperand(scalesIn).floats(), values = try int32Values(data, "data")
        let zeros = try zeroPoints.map { try int32Values($0, "zero_points") }
        let ids = try intValues(indices)
        let out = Tensor(dtype: .float, shape: indices.shape + [width])
        let po = out.pointer(as: Float.self)
        for (i, raw) in ids.enumerated() {
            let dst = po + i * width
            guard raw >= -rows && raw < rows else { dst.initialize(repeating: 0, count: width); continue }
            let row = raw < 0 ? raw + rows : raw
            for c in 0..<width {
                let b = row * blocks + c / blockSize
                dst[c] = Float(values[row * width + c] - (zeros?[b] ?? 0)) * scales[b]
            }
        }
        return [narrowResult(out, to: scalesIn.dtype)]
    }
}

func registerBlockQuantized(_ add: (String, String, ClosedRange<Int>, @escaping OperatorFactory) -> Void) {
    add("MatMulBnb4", "com.microsoft", 1...Int.max) { ctx in try MatMulBnb4Operator.make(ctx) }
    add("GatherBlockQuantized", "com.microsoft", 1...Int.max) { ctx in try GatherBlockQuantizedOperator.make(ctx) }
}
