import Kernels

// MatMul, Gemm and com.microsoft.MatMulNBits. float16 operands are widened to float32, multiplied
// with float32 accumulation and rounded once, like ONNX Runtime's CPU kernels.

/// A float32 view of a float32 or float16 tensor (float16 is converted into a new buffer).
func floatOperand(_ t: Tensor) throws -> Tensor {
    switch t.dtype {
    case .float: return t
    case .float16:
        let out = Tensor(dtype: .float, shape: t.shape)
        convertHalfToFloat(t.pointer(as: Float16.self), out.pointer(as: Float.self), t.count)
        return out
    default: throw OpError("expected float32 or float16, got \(t.dtype)")
    }
}

/// Converts a float32 result back to `dtype` (float32 or float16).
func narrowResult(_ t: Tensor, to dtype: DataType) -> Tensor {
    if dtype == .float { return t }
    let out = Tensor(dtype: .float16, shape: t.shape)
    let src = t.pointer(as: Float.self), dst = out.pointer(as: Float16.self)
    elementwiseInParallel(t.count) { r in convertFloatToHalf(src + r.lowerBound, dst + r.lowerBound, r.count) }
    return out
}

/// NumPy matmul semantics: batch dimensions broadcast, 1-D operands promoted and the promoted
/// dimension removed from the result.
func matmul(_ aIn: Tensor, _ bIn: Tensor) throws -> Tensor {
    guard aIn.dtype == bIn.dtype else { throw OpError("operand types differ: \(aIn.dtype) and \(bIn.dtype)") }
    guard aIn.rank >= 1, bIn.rank >= 1 else { throw OpError("MatMul needs operands of rank ≥ 1") }
    let a = try floatOperand(aIn), b = try floatOperand(bIn)
    let aShape = a.rank == 1 ? [1, a.shape[0]] : a.shape
    let bShape = b.rank == 1 ? [b.shape[0], 1] : b.shape
    let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1]
    let kb = bShape[bShape.count - 2], n = bShape[bShape.count - 1]
    guard k == kb else { throw OpError("inner dimensions differ: \(aIn.shape) × \(bIn.shape)") }
    let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
    let batch = try Broadcast.shape([aBatch, bBatch])
    var outShape = batch + [m, n]
    let out = Tensor(dtype: .float, shape: outShape)
    let pa = a.pointer(as: Float.self), pb = b.pointer(as: Float.self), po = out.pointer(as: Float.self)

    if bBatch.allSatisfy({ $0 == 1 }) && Tensor.elementCount(aBatch) == Tensor.elementCount(batch) {
        // One GEMM: the A batches stack into rows.
        sgemm(m: Tensor.elementCount(batch) * m, n: n, k: k, a: pa, lda: k, b: pb, ldb: n, c: po, ldc: n)
    } else {
        for (i, (ia, ib)) in Broadcast.matrixPairs(aBatch, bBatch, to: batch).enumerated() {
            sgemm(m: m, n: n, k: k, a: pa + ia * m * k, lda: k, b: pb + ib * k * n, ldb: n, c: po + i * m * n, ldc: n)
        }
    }
    if aIn.rank == 1 { outShape.remove(at: outShape.count - 2) }
    if bIn.rank == 1 { outShape.removeLast() }
    return narrowResult(out.reshaped(outShape), to: aIn.dtype)
}

/// MatMul. float32 activations times float16 weights (what `Float16Precision` leaves for this op
/// in the fp16 exports when the weights are not repacked into `HalfWeightMatMulOperator`'s rows)
/// multiply in float32, B widened exactly, as `HalfWeightMatMulOperator` does.
struct MatMulOperator: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        func isFloat(_ t: DataType) -> Bool { t == .float || t == .float16 }
        if a.dtype != b.dtype, isFloat(a.dtype), isFloat(b.dtype) {
            return [narrowResult(try matmul(try floatOperand(a), try floatOperand(b)), to: a.dtype)]
        }
        return [try matmul(a, b)]
    }
}

/// MatMul by a constant float16 `B [K, N]` (the fp16 exports' weights, which `Float16Precision`
/// leaves in float16 for this op): A float32 or float16, the product in float32 as ONNX Runtime
/// computes it (B widened exactly), rounded to A's type. B is transposed once at planning into
/// float16 rows `[N, K]`, and the file's pages released: single rows are dot products streaming
/// those rows (`qk_f16_gemv_rows`, two bytes per weight); more rows go through the int4 GEMMs'
/// register-blocked kernel over panels converted from float16 in L1 (`qk_f16_gemm`; below the
/// SIMD level, 1,024 rows widened at a time for a threaded BLAS product). Any other B goes
/// through `matmul`.
struct HalfWeightMatMulOperator: Operator {
    /// Address of the constant B this operator was planned for.
    let weight: Int
    /// B transposed: `[N, K]` float16.
    let rows: Tensor

    /// Rows of Bᵀ widened per GEMM tile (≤ 4 MB of float32 at K = 896, 19 MB at 4864).
    static let tileRows = 1024

    init(_ b: Tensor) {
        weight = Int(bitPattern: b.rawPointer)
        let (k, n) = (b.shape[0], b.shape[1])
        rows = Tensor.streamedWeights(.float16, shape: [n, k])
        let src = UnsafePointer(b.pointer(as: UInt16.self)), dst = rows.pointer(as: UInt16.self)
        parallelFor(n, minChunk: 256) { range in
            // In blocks of 64 × 64 so that both sides stay in cache.
            for j0 in stride(from: range.lowerBound, to: range.upperBound, by: 64) {
                let j1 = Swift.min(j0 + 64, range.upperBound)
                for r0 in stride(from: 0, to: k, by: 64) {
                    for r in r0..<Swift.min(r0 + 64, k) {
                        for j in j0..<j1 { dst[j * k + r] = src[r * n + j] }
                    }
                }
            }
        }
        b.releaseResidentFilePages()
    }

    /// A batched decode step stacks one row per sequence: each row through the single-row GEMV
    /// (`compute(_:stacked:)`), as alone.
    var rowStacking: RowStacking { .firstInput }
    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try compute(inputs, stacked: false) }
    func runStacked(_ inputs: [Tensor?]) throws -> [Tensor] { try compute(inputs, stacked: true) }

    /// Bytes of Bᵀ rows a block of the multi-row GEMV covers: read from memory for the first
    /// activation row, from L2 for the others.
    static let gemvBlockBytes = 256 << 10

    /// The product; with `stacked` (rows of several sequences) every row through the single-row
    /// GEMV whatever their number, so that each row's floats are its own run's.
    func compute(_ inputs: [Tensor?], stacked: Bool) throws -> [Tensor] {
        let aIn = try inputs.required(0), b = try inputs.required(1)
        guard b.dtype == .float16, b.rank == 2, Int(bitPattern: b.rawPointer) == weight,
              aIn.dtype == .float || aIn.dtype == .float16, aIn.rank >= 2, aIn.shape.last == b.shape[0] else {
            return try MatMulOperator().run(inputs)
        }
        let (k, n) = (b.shape[0], b.shape[1])
        let a = try floatOperand(aIn)
        let m = a.count / max(k, 1)
        let out = Tensor(dtype: .float, shape: Array(aIn.shape.dropLast()) + [n])
        let pa = UnsafePointer(a.pointer(as: Float.self)), po = out.pointer(as: Float.self)
        let pw = UnsafePointer(rows.pointer(as: UInt16.self)), ph = UnsafePointer(rows.pointer(as: Float16.self))
        if m <= 2 || stacked {
            // Bᵀ's rows split across the threads. Several activation rows: each weight vector
            // converted once for four of them (`halfWeightGemvRows(_:lda:count:…)`, every row's
            // floats its single-row ones; an 8-row step 2.1× faster on Zen 3 than the blocks
            // below). Below the SIMD level, blocks of rows that every activation row passes over
            // in turn (the weights from memory once). One row takes its whole range in one call,
            // so that the kernel's prefetch runs on across block boundaries.
            if m > 1 && KernelISA.active >= .simd {
                parallelFor(n, minChunk: max(16, (1 << 16) / max(k, 1)), granularity: 4) { range in
                    let ran = halfWeightGemvRows(pa, lda: k, count: m, weights: pw, k: k, rows: range, into: po + range.lowerBound, ldy: n)
                    precondition(ran, "qk_f16_gemv_rows_multi refused at the SIMD level")
                }
                return [narrowResult(out, to: aIn.dtype)]
            }
            let block = m == 1 ? n : Swift.max(4, HalfWeightMatMulOperator.gemvBlockBytes / Swift.max(2 * k, 1) / 4 * 4)
            parallelFor(n, minChunk: max(16, (1 << 16) / max(k, 1)), granularity: 4) { range in
                for j0 in stride(from: range.lowerBound, to: range.upperBound, by: block) {
                    let rows = j0..<Swift.min(j0 + block, range.upperBound)
                    for row in 0..<m {
                        halfWeightGemvRows(pa + row * k, weights: pw, k: k, rows: rows, into: po + row * n + j0)
                    }
                }
            }
        } else if KernelISA.active >= .simd {
            // A packed once, then, a block of rows at a time, each thread's columns: panels of
            // Bᵀ converted into L1 and multiplied there (`qk_f16_gemm`, the int4 GEMMs' kernel).
            let packedA = GEMMActivations(pa, rows: m, k: k, lda: k, blocks: (k + 31) / 32)
            for strips in packedA.stripBlocks {
                parallelFor(n, minChunk: 32, granularity: 16, chunksPerThread: 16) { columns in
                    let ran = halfWeightGEMM(pw, k: k, packedA, strips: strips, columns: columns, into: po, ldc: n)
                    precondition(ran, "qk_f16_gemm refused at the SIMD level")
                }
            }
        } else {
            // Below the SIMD level: a tile of rows widened (both threads), then one threaded BLAS
            // product over it.
            let tile = Swift.min(HalfWeightMatMulOperator.tileRows, n)
            let widened = UnsafeMutablePointer<Float>.allocate(capacity: k * tile)
            defer { widened.deallocate() }
            for j0 in stride(from: 0, to: n, by: tile) {
                let count = Swift.min(tile, n - j0)
                parallelFor(count, minChunk: 64) { r in
                    convertHalfToFloat(ph + (j0 + r.lowerBound) * k, widened + r.lowerBound * k, r.count * k)
                }
                sgemm(transB: true, m: m, n: count, k: k, a: pa, lda: k, b: widened, ldb: k, c: po + j0, ldc: n)
            }
        }
        return [narrowResult(out, to: aIn.dtype)]
    }
}

/// Gemm: `alpha · op(A) · op(B) + beta · C` with 2-D A and B, C unidirectionally broadcast.
struct GemmOperator: Operator {
    let alpha: Float, beta: Float
    let transA: Bool, transB: Bool

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let aIn = try inputs.required(0), bIn = try inputs.required(1)
        guard aIn.rank == 2, bIn.rank == 2 else { throw OpError("Gemm needs 2-D A and B, got \(aIn.shape) and \(bIn.shape)") }
        let a = try floatOperand(aIn), b = try floatOperand(bIn)
        let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
        let kb = transB ? b.shape[1] : b.shape[0], n = transB ? b.shape[0] : b.shape[1]
        guard k == kb else { throw OpError("inner dimensions differ: \(aIn.shape) × \(bIn.shape)") }
        let out = Tensor(dtype: .float, shape: [m, n])
        var beta: Float = 0
        if let cIn = inputs.optional(2), self.beta != 0 {
            let c = try floatOperand(cIn)
            _ = try Broadcast.shape([c.shape, [m, n]])
            stridedCopy(elementSize: 4, shape: [m, n], src: c.rawPointer, srcStrides: Broadcast.strides(c.shape, to: [m, n]), dst: out.rawPointer)
            beta = self.beta
        }
        sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
              a: a.pointer(as: Float.self), lda: a.shape[1], b: b.pointer(as: Float.self), ldb: b.shape[1],
              beta: beta, c: out.pointer(as: Float.self), ldc: n)
        return [narrowResult(out, to: aIn.dtype)]
    }
}

/// com.microsoft.MatMulNBits: `Y = A · dequantize(B)ᵀ + bias`, A `[..., K]` float32/float16,
/// B `[N, k_blocks, block_size · bits / 8]` uint8, scales `[N · k_blocks]`, optional zero points
/// (packed uint8 or typed like A), optional bias `[N]`. `g_idx` (act-order) is not supported.
struct MatMulNBitsOperator: Operator {
    let n: Int, k: Int
    let bits: Int, blockSize: Int
    let nodeName: String
    /// B and its scales repacked at planning time (constant weights the packed kernels serve),
    /// with the addresses they were packed from: used only when the run's inputs are those.
    var packed: Prepacked?
    /// Multiply int8-quantized activations (`accuracy_level = 4` or
    /// `SessionOptions.int8Activations == .always`) with the packed kernels.
    var int8Activations = false
    /// Multiply int16-quantized activations in single-row products (with packed weights only,
    /// where int8 does not apply): see `SessionOptions.decodeActivations`.
    var int16Decode = false
    /// The same int8-quantized activations (per block of 32, as the packed kernels quantize
    /// them) multiplied with the file's own layout where the packed kernels do not serve the
    /// weights: 8 bits, or 4 bits below the SIMD level (`BlockQuantizedMatrix.int8Products`).
    var int8FileLayout = false

    var plan: String? {
        let shape = "\(n)×\(k), \(bits)-bit blocks of \(blockSize)"
        guard let packed else {
            return "\(shape), file layout: " + (int8FileLayout ? "int8 activation products" : "float32 GEMV / dequantize + GEMM")
        }
        let decode = int8Activations ? "int8" : int16Decode ? "int16" : "float32"
        return "\(shape), repacked q4x8 (\(packed.matrix.isa.name)): single row \(decode) GEMV, "
            + "rows \(int8Activations ? "int8" : "float32") GEMM"
    }

    struct Prepacked: Sendable {
        let matrix: PackedQ4Matrix
        /// Addresses of the B and scales tensors packed.
        let data: Int, scales: Int
        /// Address of the zero points tensor packed with them, when the node has one.
        let zeroPoints: Int?
        /// The symmetric blocks-of-32 matrix packed (the node's own when its blocks are 32 and it
        /// has no zero points), with what its zero points add.
        let symmetric: SymmetricBlocks32
    }

    /// Rows of B dequantized per GEMM tile in the M > 1 path (bounds the scratch memory).
    static let tileRows = 256

    /// B, its scales and zero points as a `BlockQuantizedMatrix`, after checking their types and
    /// sizes against N, K and the block layout (and that there is no `g_idx`).
    func weights(_ b: Tensor, _ scales: Tensor, zeroPoints z: Tensor?, gIdx: Tensor?) throws -> BlockQuantizedMatrix {
        let blocks = (k + blockSize - 1) / blockSize
        let blobBytes = blockSize * bits / 8
        guard b.dtype == .uint8, b.count == n * blocks * blobBytes else {
            throw OpError("B has \(b.dtype)\(b.shape), expected uint8 [\(n), \(blocks), \(blobBytes)]")
        }
        // Scales are float32 or float16 (normally A's type; float16 scales also serve a float32 A
        // when a float16 graph runs in float32, which reads them exactly).
        guard scales.dtype == .float || scales.dtype == .float16, scales.count == n * blocks else {
            throw OpError("scales have \(scales.dtype)\(scales.shape), expected float32 or float16 with \(n * blocks) elements")
        }
        if let g = gIdx, g.count > 0 { throw OpError("g_idx (act-order) is not supported") }
        let scaleStorage: BlockQuantizedMatrix.Scales = scales.dtype == .float
            ? .float(scales.pointer(as: Float.self)) : .half(scales.pointer(as: Float16.self))
        var zeroPoints = BlockQuantizedMatrix.ZeroPoints.none
        if let z {
            switch z.dtype {
            case .uint8:
                let expected = n * ((blocks * bits + 7) / 8)
                guard z.count == expected else { throw OpError("packed zero_points have \(z.count) bytes, expected \(expected)") }
                zeroPoints = .packed(z.pointer(as: UInt8.self))
            case .float:
                guard z.count == n * blocks else { throw OpError("zero_points have \(z.count) values, expected \(n * blocks)") }
                zeroPoints = .float(z.pointer(as: Float.self))
            case .float16:
                guard z.count == n * blocks else { throw OpError("zero_points have \(z.count) values, expected \(n * blocks)") }
                zeroPoints = .half(z.pointer(as: Float16.self))
            default:
                throw OpError("zero_points of \(z.dtype) are not supported (uint8, float32 or float16)")
            }
        }
        return BlockQuantizedMatrix(n: n, k: k, bits: bits, blockSize: blockSize, data: b.pointer(as: UInt8.self),
                                    scales: scaleStorage, zeroPoints: zeroPoints)
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try compute(inputs, stacked: false) }

    /// Rows of several sequences (`Session.runBatch`): every row through the kernel a single
    /// row takes (the int16 or int8 GEMV over all rows at once: `PackedQ4Matrix.gemvInt16(_:rowBytes:…)`,
    /// `gemvInt8(_:rowBytes:…)`).
    var rowStacking: RowStacking { .firstInput }
    func runStacked(_ inputs: [Tensor?]) throws -> [Tensor] { try compute(inputs, stacked: true) }

    private func compute(_ inputs: [Tensor?], stacked: Bool) throws -> [Tensor] {
        let aIn = try inputs.required(0), b = try inputs.required(1), scales = try inputs.required(2)
        guard aIn.dtype == .float || aIn.dtype == .float16 else { throw OpError("A must be float32 or float16, got \(aIn.dtype)") }
        guard aIn.rank >= 1, aIn.shape.last == k else { throw OpError("A has shape \(aIn.shape), expected last dimension K = \(k)") }
        let original = try weights(b, scales, zeroPoints: inputs.optional(3), gIdx: inputs.optional(4))
        let bias = try inputs.optional(5).map(floatOperand)
        if let bias, bias.count != n { throw OpError("bias has \(bias.count) elements, expected N = \(n)") }

        let a = try floatOperand(aIn)
        let m = a.count / k
        let outShape = Array(aIn.shape.dropLast()) + [n]
        let out = Tensor(dtype: .float, shape: outShape)
        let pa = a.pointer(as: Float.self), po = out.pointer(as: Float.self)

        // With repacked weights, every product below is of the symmetric blocks-of-32 matrix
        // they were packed from (`SymmetricBlocks32`: the same codes, zero point 8), and the
        // node's zero points, if any, add their terms once all is done.
        let pw = packedMatrix(b: b, scales: scales, zeroPoints: inputs.optional(3))
        let symmetric = pw == nil ? nil : packed?.symmetric
        let w = symmetric?.matrix ?? original
        let quantizedSums = try products(pa, rows: m, w: w, packed: pw, into: po, int8BlockSums: symmetric?.zeroPointTerms != nil,
                                         stacked: stacked)
        if let quantizedSums {
            symmetric?.addZeroPointTerms(blockSums: quantizedSums, rows: m, into: po, ldy: n)
        } else {
            symmetric?.addZeroPointTerms(pa, rows: m, lda: k, into: po, ldy: n)
        }
        return [try finish(out, bias: bias, rows: m, resultType: aIn.dtype)]
    }

    /// `po = pa · wᵀ` for `m` rows: the repacked kernels where `pw` is given (GEMM, int16 or
    /// float32 GEMV, int8 GEMV or GEMM at accuracy level 4), else the original layout's. With int8
    /// activations and `int8BlockSums`, returns the quantized activations' sums per block of 32
    /// (`[m, blocks]`), for the zero points' terms.
    ///
    /// `stacked`: the rows are single rows of several sequences, each computed as it is alone.
    private func products(_ pa: UnsafePointer<Float>, rows m: Int, w: BlockQuantizedMatrix, packed pw: PackedQ4Matrix?,
                          into po: UnsafeMutablePointer<Float>, int8BlockSums: Bool, stacked: Bool = false) throws -> [Float]? {
        // Repacked weights: the group-of-one case of MatMulNBitsGroup (the float32 GEMM, the
        // int8 GEMM, or a GEMV of float32, int16 or int8 activations; stacked rows of several
        // sequences through the decode GEMV of all rows at once). Should a kernel
        // refuse a range (none does where repacked weights exist at the SIMD level), the original
        // layout's kernels below compute the whole product in float32.
        if let pw, !int8FileLayout {
            var sums = int8Activations && int8BlockSums ? [Float](repeating: 0, count: m * pw.blocksPerRow) : []
            let refused = sums.withUnsafeMutableBufferPointer { buffer in
                MatMulNBitsOperator.packedProducts(pa, rows: m, k: k, packed: [pw], activations: rowActivations, stacked: stacked,
                                                   int8BlockSums: buffer.isEmpty ? nil : buffer.baseAddress, into: [po])
            }
            if refused.isEmpty { return sums.isEmpty ? nil : sums }
        }
        if stacked && m > 1 {
            // Each row as it is alone.
            var sums: [Float]?
            for row in 0..<m {
                if let s = try products(pa + row * k, rows: 1, w: w, packed: pw, into: po + row * n, int8BlockSums: int8BlockSums) {
                    sums = (sums ?? []) + s
                }
            }
            return sums
        }
        // int8 activations where no packed matrix serves the run (also should the run's B not be
        // the planned constant): the file layout's integer products.
        if int8FileLayout || (int8Activations && pw == nil), w.int8Products(pa, rows: m, into: po, ldc: n) { return nil }
        // From here: the original layout, float32.
        let kp = w.paddedK
        if m > 2 && w.supportsNativeGEMM {
            // A packed once for the micro-kernel, then, a block of rows at a time, each thread's
            // columns: panels of B dequantized into L1 and multiplied there (q4_gemm).
            let packedA = GEMMActivations(pa, rows: m, k: k, lda: k, blocks: kp / 32)
            for strips in packedA.stripBlocks {
                parallelFor(n, minChunk: 32, granularity: 16, chunksPerThread: 16) { columns in
                    // Checked to run here; should it refuse, BLAS gives the same product (all rows).
                    if !w.gemm(packedA, strips: strips, columns: columns, into: po, ldc: n) {
                        MatMulNBitsOperator.dequantizedGEMM(w, pa, lda: k, m: m, columns: columns, into: po, ldc: n)
                    }
                }
            }
            return nil
        }

        // Activations in the kernels' packed order, zero-padded to whole blocks.
        let activations = UnsafeMutablePointer<Float>.allocate(capacity: m * kp)
        defer { activations.deallocate() }
        for row in 0..<m { w.pack(activations: pa + row * k, into: activations + row * kp) }
        // The float32 GEMV of one activation row: the repacked kernel, else the original layout's
        // (which always runs).
        func floatGEMV(_ a: UnsafePointer<Float>, rows: Range<Int>, into y: UnsafeMutablePointer<Float>) {
            if pw?.gemv(a, rows: rows, into: y) != true { w.gemv(packed: a, rows: rows, into: y) }
        }

        if m <= 2 {
            for row in 0..<m {
                let a = activations + row * kp, y = po + row * n
                parallelFor(n, minChunk: MatMulNBitsOperator.gemvMinRows(k: k), granularity: 16, chunksPerThread: 4) { rows in
                    floatGEMV(a, rows: rows, into: y)
                }
            }
        } else {
            // Dequantize B a tile of rows at a time (in packed order) and multiply with BLAS.
            let tile = Swift.min(MatMulNBitsOperator.tileRows, n)
            let deq = UnsafeMutablePointer<Float>.allocate(capacity: tile * kp)
            defer { deq.deallocate() }
            var n0 = 0
            while n0 < n {
                let rows = Swift.min(tile, n - n0)
                let start = n0
                parallelFor(rows, minChunk: 16) { r in
                    w.dequantize(rows: (start + r.lowerBound)..<(start + r.upperBound), into: deq + r.lowerBound * kp, ld: kp)
                }
                sgemm(transB: true, m: m, n: rows, k: kp, a: activations, lda: kp, b: deq, ldb: kp, c: po + n0, ldc: n)
                n0 += rows
            }
        }
        return nil
    }

    /// The repacked weights, when this run's B and scales are the constants they came from.
    func packedMatrix(b: Tensor, scales: Tensor, zeroPoints: Tensor?) -> PackedQ4Matrix? {
        packed.flatMap { p in
            p.data == Int(bitPattern: b.rawPointer) && p.scales == Int(bitPattern: scales.rawPointer)
                && p.zeroPoints == zeroPoints.map({ Int(bitPattern: $0.rawPointer) }) ? p.matrix : nil
        }
    }

    /// Adds the bias (float32, N values) to every row and converts the result to the activations' type.
    func finish(_ out: Tensor, bias: Tensor?, rows m: Int, resultType: DataType) throws -> Tensor {
        let po = out.pointer(as: Float.self)
        if let bias {
            guard bias.dtype == .float, bias.count == n else { throw OpError("bias has \(bias.dtype)\(bias.shape), expected \(n) values") }
            let pb = bias.pointer(as: Float.self)
            for row in 0..<m {
                for j in 0..<n { po[row * n + j] += pb[j] }
            }
        }
        return narrowResult(out, to: resultType)
    }
}

func registerMatMul(_ add: (String, String, ClosedRange<Int>, @escaping OperatorFactory) -> Void) {
    add("MatMul", "", 1...Int.max) { ctx in
        if ctx.prepackWeights, let b = ctx.constantInputs[1], b.dtype == .float16, b.rank == 2 {
            return HalfWeightMatMulOperator(b)
        }
        return MatMulOperator()
    }
    add("Gemm", "", 1...Int.max) { ctx in
        GemmOperator(alpha: ctx.node.floatAttribute("alpha", default: 1), beta: ctx.node.floatAttribute("beta", default: 1),
                     transA: ctx.node.intAttribute("transA", default: 0) != 0, transB: ctx.node.intAttribute("transB", default: 0) != 0)
    }
    add("MatMulNBits", "com.microsoft", 1...Int.max) { ctx in try MatMulNBitsOperator.make(ctx) }
    add(MatMulNBitsGrouping.opType, PrivateOps.domain, 1...Int.max) { ctx in try MatMulNBitsGroupOperator.make(ctx) }
}

extension MatMulNBitsOperator {
    /// The operator for a MatMulNBits node (attributes checked; weights repacked when constant
    /// and served by the packed kernels; int8/int16 activations chosen per the options).
    static func make(_ ctx: OperatorContext) throws -> MatMulNBitsOperator {
        let node = ctx.node
        guard let k = node.intAttribute("K"), let n = node.intAttribute("N"), k > 0, n > 0 else {
            throw node.invalid("attributes K and N are required and must be positive")
        }
        let bits = node.intAttribute("bits", default: 4)
        guard bits == 4 || bits == 8 else { throw node.invalid("bits = \(bits) is not supported (4 or 8)") }
        guard let blockSize = node.intAttribute("block_size"), blockSize >= 16, blockSize & (blockSize - 1) == 0 else {
            throw node.invalid("block_size must be a power of two ≥ 16")
        }
        var op = MatMulNBitsOperator(n: n, k: k, bits: bits, blockSize: blockSize, nodeName: node.name)
        if ctx.prepackWeights { op.packed = op.prepack(ctx) }
        // ORT's int8 activations at accuracy level 4: the packed kernels' where they serve the
        // weights, else the file layout's integer products (8 bits in blocks of 32; 4 bits below
        // the SIMD level or in a form the kernels do not pack).
        let int8 = switch ctx.int8Activations {
        case .never: false
        case .accuracyLevel4: node.intAttribute("accuracy_level", default: 0) == 4
        case .always: true
        }
        op.int8Activations = int8 && op.packed != nil
        op.int8FileLayout = int8 && op.packed == nil && BlockQuantizedMatrix.int8ProductsServe(bits: bits, blockSize: blockSize)
        switch (ctx.decodeActivations, op.packed) {
        case (_, nil), (.float32, _): op.int16Decode = false
        case (.automatic, let p?): op.int16Decode = !p.matrix.floatScales   // a float16 node
        case (.int16, _): op.int16Decode = true
        }
        return op
    }

    /// Columns `columns` of `m` activation rows (natural order, `lda` apart; the native kernels'
    /// packed order is natural) times B, by dequantizing those rows of B and one BLAS GEMM over
    /// the first K of each row: the way when a C GEMM refuses to run.
    static func dequantizedGEMM(_ w: BlockQuantizedMatrix, _ a: UnsafePointer<Float>, lda: Int, m: Int, columns: Range<Int>,
                                into c: UnsafeMutablePointer<Float>, ldc: Int) {
        let kp = w.paddedK
        let deq = UnsafeMutablePointer<Float>.allocate(capacity: columns.count * kp)
        defer { deq.deallocate() }
        w.dequantize(rows: columns, into: deq, ld: kp)
        sgemm(transB: true, m: m, n: columns.count, k: w.k, a: a, lda: lda, b: deq, ldb: kp, c: c + columns.lowerBound, ldc: ldc)
    }

    /// Weight rows per chunk below which a GEMV is not split further: at least ~256 K weights
    /// (smaller products, such as the 0.5B's K/V projections, 896 × 128, cost less than waking a
    /// second thread). Large GEMVs run in up to 4 chunks per thread, taken as threads come free,
    /// so that a thread slowed by the machine's other work does not hold the other one waiting
    /// (`perf`: the caller's wait at the end of decode GEMVs ~5.7% -> ~2.8% of the samples).
    static func gemvMinRows(k: Int) -> Int { Swift.max(64, (1 << 18) / Swift.max(k, 1)) }

    /// The node's constant B and scales in the q4x8 layout, when the packed kernels serve them
    /// (4 bits, block 32, no zero points, N a multiple of 8, AVX2) and they pass `weights`
    /// (otherwise `run` reports the error). The file pages of the originals are then dropped from
    /// resident memory: the kernels read only the packed copy, so resident memory holds the
    /// weights once.
    func prepack(_ ctx: OperatorContext) -> Prepacked? {
        let inputs = ctx.node.inputs
        func present(_ i: Int) -> Bool { i < inputs.count && !inputs[i].isEmpty }
        let zeroPoints = present(3) ? ctx.constantInputs[3] : nil
        guard bits == 4, !present(4), !present(3) || zeroPoints?.dtype == .uint8,
              let b = ctx.constantInputs[1], let scales = ctx.constantInputs[2],
              let w = try? weights(b, scales, zeroPoints: zeroPoints, gIdx: nil),
              let symmetric = SymmetricBlocks32(w) else { return nil }
        // Blocks of 32 without zero points pack as they are (and keep their cache file name).
        let name = inputs[1] + "|" + inputs[2] + (blockSize == 32 ? "" : "|blocks\(blockSize)")
        guard let matrix = ctx.weightCache.map({ $0.packed(name, symmetric.matrix) }) ?? PackedQ4Matrix(symmetric.matrix) else { return nil }
        b.releaseResidentFilePages()
        scales.releaseResidentFilePages()
        return Prepacked(matrix: matrix, data: Int(bitPattern: b.rawPointer), scales: Int(bitPattern: scales.rawPointer),
                         zeroPoints: zeroPoints.map { Int(bitPattern: $0.rawPointer) }, symmetric: symmetric)
    }
}
