import Kernels

// Integer quantization as ONNX defines it and ONNX Runtime's CPU kernels compute it:
// QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear and MatMulInteger — the ops of the
// transformers.js q8 / int8 / uint8 exports, which onnxruntime's `quantize_dynamic` writes as
//
//   x ─ DynamicQuantizeLinear ─► (x_q uint8, x_scale, x_zp) ─ MatMulInteger(x_q, W_q, x_zp, W_zp)
//     ─► int32 ─ Cast(float) ─ Mul(x_scale · W_scale) ─► y
//
// Integer results are exact, so these graphs can match ONNX Runtime bit for bit up to the float
// operations around them.

/// An integer element type quantized tensors use, with its range.
struct QuantizedInteger: Sendable {
    let dataType: DataType
    let range: (min: Float, max: Float)

    init?(_ type: DataType) {
        switch type {
        case .uint8: range = (0, 255)
        case .int8: range = (-128, 127)
        case .uint16: range = (0, 65535)
        case .int16: range = (-32768, 32767)
        case .uint4: range = (0, 15)
        case .int4: range = (-8, 7)
        default: return nil
        }
        dataType = type
    }
}

/// The values of an integer tensor (int8, uint8, int16, uint16, int32) as Int32.
func int32Values(_ t: Tensor, _ what: String) throws -> [Int32] {
    let n = t.count
    switch t.dtype {
    // int4 and uint4 are held one value per byte (`DataType.storageSize`).
    case .int8, .int4: return (0..<n).map { Int32(t.pointer(as: Int8.self)[$0]) }
    case .uint8, .uint4: return (0..<n).map { Int32(t.pointer(as: UInt8.self)[$0]) }
    case .int16: return (0..<n).map { Int32(t.pointer(as: Int16.self)[$0]) }
    case .uint16: return (0..<n).map { Int32(t.pointer(as: UInt16.self)[$0]) }
    case .int32: return Array(UnsafeBufferPointer(start: t.pointer(as: Int32.self), count: n))
    default: throw OpError("\(what) must be int4, uint4, int8, uint8, int16, uint16 or int32, got \(t.dtype)")
    }
}

/// How a scale (and zero point) tensor maps onto the elements of `x`: one value for all
/// (per tensor), one per index along `axis` (per axis), or one per block of `blockSize` indices
/// along `axis` (blocked: the parameter has x's shape with that axis divided, rounded up).
struct QuantizationParameterLayout {
    /// Elements before, along and after the axis.
    let outer: Int, length: Int, inner: Int
    enum Kind { case perTensor, perAxis, blocked(Int) }
    let kind: Kind

    init(x: [Int], parameter p: [Int], axis: Int, blockSize: Int, what: String) throws {
        let count = Tensor.elementCount(p)
        if x.isEmpty || (p.count <= 1 && count == 1 && blockSize == 0) {
            (outer, length, inner, kind) = (Tensor.elementCount(x), 1, 1, .perTensor)
            return
        }
        let a = try normalizeAxis(axis, rank: x.count)
        outer = Tensor.elementCount(Array(x[..<a]))
        length = x[a]
        inner = Tensor.elementCount(Array(x[(a + 1)...]))
        if blockSize > 0 {
            var expected = x
            expected[a] = (x[a] + blockSize - 1) / blockSize
            guard p == expected else { throw OpError("\(what) has shape \(p), expected \(expected) for blocks of \(blockSize) along axis \(a) of \(x)") }
            kind = .blocked(blockSize)
        } else {
            guard p.count == 1, p[0] == x[a] else {
                throw OpError("\(what) has shape \(p): expected one value, or \(x[a]) (one per index of axis \(a) of \(x))")
            }
            kind = .perAxis
        }
    }

    /// Calls `body(element, parameterIndex)` for every element of x, in order.
    @inline(__always)
    func forEach(_ body: (Int, Int) -> Void) {
        switch kind {
        case .perTensor:
            for e in 0..<outer { body(e, 0) }
        case .perAxis:
            var e = 0
            for _ in 0..<outer { for a in 0..<length { for _ in 0..<inner { body(e, a); e += 1 } } }
        case .blocked(let size):
            let blocks = (length + size - 1) / size
            var e = 0
            for o in 0..<outer {
                for a in 0..<length {
                    let base = (o * blocks + a / size) * inner
                    for i in 0..<inner { body(e, base + i); e += 1 }
                }
            }
        }
    }
}

/// ONNX QuantizeLinear: `y = saturate(round_half_to_even(x / scale) + zero_point)`, with the
/// zero point's type (uint8 when there is none, or `output_dtype`), per tensor, per axis or per
/// block. Computed in float32 (float16 x and scales widened exactly), as ONNX Runtime does.
struct QuantizeLinearOperator: Operator {
    let axis: Int, blockSize: Int
    let outputType: DataType?

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try floatOperand(try inputs.required(0)), scaleIn = try inputs.required(1)
        let scale = try floatOperand(scaleIn)
        let zeroPoint = inputs.optional(2)
        let type = zeroPoint?.dtype ?? outputType ?? .uint8
        guard let q = QuantizedInteger(type) else { throw OpError("quantizing to \(type) is not supported (uint8, int8, uint16, int16, uint4, int4)") }
        let layout = try QuantizationParameterLayout(x: x.shape, parameter: scale.shape, axis: axis, blockSize: blockSize, what: "y_scale")
        let zp: [Int32]
        if let zeroPoint {
            guard zeroPoint.shape == scale.shape || (zeroPoint.count == 1 && scale.count == 1) else {
                throw OpError("y_zero_point has shape \(zeroPoint.shape), y_scale \(scale.shape): they must match")
            }
            zp = try int32Values(zeroPoint, "y_zero_point")
        } else {
            zp = [Int32](repeating: 0, count: scale.count)
        }
        let out = Tensor(dtype: q.dataType, shape: x.shape)
        let px = x.pointer(as: Float.self), ps = scale.pointer(as: Float.self)
        let (lo, hi) = q.range
        func quantize(_ e: Int, _ p: Int) -> Float {
            let v = (px[e] / ps[p]).rounded(.toNearestOrEven) + Float(zp[p])
            return v.isNaN ? Float(zp[p]) : Swift.min(Swift.max(v, lo), hi)
        }
        switch q.dataType {
        case .uint8, .uint4: let po = out.pointer(as: UInt8.self); layout.forEach { po[$0] = UInt8(quantize($0, $1)) }
        case .int8, .int4: let po = out.pointer(as: Int8.self); layout.forEach { po[$0] = Int8(quantize($0, $1)) }
        case .uint16: let po = out.pointer(as: UInt16.self); layout.forEach { po[$0] = UInt16(quantize($0, $1)) }
        default: let po = out.pointer(as: Int16.self); layout.forEach { po[$0] = Int16(quantize($0, $1)) }
        }
        return [out]
    }
}

/// ONNX DequantizeLinear: `y = (x − zero_point) · scale` in the scale's type (float32 or
/// float16, computed in float32 and rounded once), per tensor, per axis or per block.
struct DequantizeLinearOperator: Operator {
    let axis: Int, blockSize: Int

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0), scaleIn = try inputs.required(1)
        let scale = try floatOperand(scaleIn)
        let layout = try QuantizationParameterLayout(x: x.shape, parameter: scale.shape, axis: axis, blockSize: blockSize, what: "x_scale")
        // One scale for a whole uint8 / int8 tensor (quantize_dynamic's embeddings, which constant
        // folding dequantizes once: 136 M values on Qwen2.5-0.5B): one pass, no Int32 copy.
        if case .perTensor = layout.kind, x.dtype == .uint8 || x.dtype == .int8 {
            let z = try inputs.optional(2).map { try int32Values($0, "x_zero_point") } ?? [0]
            guard z.count == 1, inputs.optional(2).map({ $0.dtype == x.dtype }) ?? true else {
                throw OpError("x_zero_point must be one \(x.dtype) value for a per-tensor scale")
            }
            let out = Tensor(dtype: .float, shape: x.shape)
            let po = out.pointer(as: Float.self), s = scale.pointer(as: Float.self)[0], zero = z[0], n = x.count
            if x.dtype == .uint8 {
                let px = x.pointer(as: UInt8.self)
                parallelFor(n, minChunk: 1 << 16) { r in for i in r { po[i] = Float(Int32(px[i]) - zero) * s } }
            } else {
                let px = x.pointer(as: Int8.self)
                parallelFor(n, minChunk: 1 << 16) { r in for i in r { po[i] = Float(Int32(px[i]) - zero) * s } }
            }
            return [narrowResult(out, to: scaleIn.dtype)]
        }
        let values = try int32Values(x, "x")
        var zp = [Int32](repeating: 0, count: scale.count)
        if let z = inputs.optional(2) {
            guard z.dtype == x.dtype else { throw OpError("x_zero_point is \(z.dtype) but x is \(x.dtype)") }
            guard z.shape == scale.shape || (z.count == 1 && scale.count == 1) else {
                throw OpError("x_zero_point has shape \(z.shape), x_scale \(scale.shape): they must match")
            }
            zp = try int32Values(z, "x_zero_point")
        }
        let out = Tensor(dtype: .float, shape: x.shape)
        let po = out.pointer(as: Float.self), ps = scale.pointer(as: Float.self)
        layout.forEach { e, p in po[e] = Float(values[e] - zp[p]) * ps[p] }
        return [narrowResult(out, to: scaleIn.dtype)]
    }
}

/// ONNX DynamicQuantizeLinear: uint8 quantization of float32 `x` over the range [min(x, 0),
/// max(x, 0)]: `scale = (max − min) / 255`, `zero_point = saturate(round(0 − min / scale))`,
/// `y = saturate(round(x / scale) + zero_point)`, rounding half to even.
struct DynamicQuantizeLinearOperator: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dtype == .float else { throw OpError("x must be float32, got \(x.dtype)") }
        let n = x.count, px = x.pointer(as: Float.self)
        // The range per chunk, then across them (min and max in any grouping: the same bounds).
        let chunks = n < 1 << 16 ? 1 : min(kernelThreadCount, n >> 15)
        var bounds = [(lo: Float, hi: Float)](repeating: (0, 0), count: chunks)
        bounds.withUnsafeMutableBufferPointer { bounds in
            parallelFor(chunks) { r in
                for c in r {
                    let start = n * c / chunks, end = n * (c + 1) / chunks
                    widenRange(px + start, count: end - start, lo: &bounds[c].lo, hi: &bounds[c].hi)
                }
            }
        }
        var lo: Float = 0, hi: Float = 0
        for b in bounds {
            lo = b.lo < lo ? b.lo : lo
            hi = b.hi >= hi ? b.hi : hi
        }
        let (scale, zeroPoint) = DynamicQuantizeLinearOperator.parameters(min: lo, max: hi)
        let out = Tensor(dtype: .uint8, shape: x.shape)
        let po = out.pointer(as: UInt8.self)
        elementwiseInParallel(n) { r in
            quantizeUInt8(px + r.lowerBound, count: r.count, scale: scale, zeroPoint: zeroPoint, into: po + r.lowerBound)
        }
        return [out, Tensor([scale], shape: []), Tensor(bytes: [zeroPoint], shape: [])]
    }

    /// Scale and zero point for the range [lo, hi] (lo ≤ 0 ≤ hi), as ONNX Runtime's
    /// `GetQuantizationParameter`: an empty range gets scale 1; the zero point is clamped, then
    /// rounded.
    static func parameters(min lo: Float, max hi: Float) -> (scale: Float, zeroPoint: UInt8) {
        let scale = hi == lo ? 1 : (hi - lo) / 255
        let z = Swift.max(0, Swift.min(255, 0 - lo / scale)).rounded(.toNearestOrEven)
        return (scale, z.isNaN ? 0 : UInt8(z))
    }
}

/// ONNX MatMulInteger: `Y = (A − a_zero_point) · (B − b_zero_point)` in int32, NumPy matmul
/// shapes; A and B int8 or uint8; `a_zero_point` a scalar or one per row of A, `b_zero_point` a
/// scalar or one per column of B. Exact: int16 differences times the bytes of B in the
/// `qk_int_gemm` kernel (AVX2 `vpmaddwd`), with `b_zero_point · Σ(A − a_zero_point)` subtracted
/// per output. A constant 2-D B is laid out once at planning, column by column.
struct MatMulIntegerOperator: Operator {
    /// B's columns as contiguous rows of `kp` bytes (zero-padded), for a constant 2-D B.
    struct PackedB: @unchecked Sendable {
        let storage: Tensor
        let k: Int, n: Int, kp: Int
        let signed: Bool
        /// The tensor's address it was packed from.
        let source: Int
    }
    var packed: PackedB?

    /// A constant 2-D B packed for the dot-product kernel (`IntegerDotProducts`: AVX-512 VNNI,
    /// arm64 dot product), where it runs; `packed` is then nil (one copy of the weights).
    struct DotPackedB: @unchecked Sendable {
        /// Panels of 16 columns of B' bytes (`IntegerDotProducts.pack`).
        let storage: Tensor
        /// Σ_k B'[k][j], 16 per panel.
        let columnSums: [Int32]
        let k: Int, n: Int
        let signed: Bool
        /// The tensor's address it was packed from.
        let source: Int
    }
    var dot: DotPackedB?

    static func packDot(_ b: Tensor) -> DotPackedB? {
        guard IntegerDotProducts.available, b.rank == 2, b.dtype == .int8 || b.dtype == .uint8 else { return nil }
        let (k, n) = (b.shape[0], b.shape[1])
        let storage = Tensor.streamedWeights(.int8, shape: [IntegerDotProducts.packedBytes(k: k, n: n)])
        var sums = [Int32](repeating: 0, count: 16 * IntegerDotProducts.panels(n: n))
        sums.withUnsafeMutableBufferPointer { sums in
            IntegerDotProducts.pack(b.pointer(as: UInt8.self), k: k, n: n, signed: b.dtype == .int8,
                                     into: storage.pointer(as: Int8.self), columnSums: sums.baseAddress!)
        }
        return DotPackedB(storage: storage, columnSums: sums, k: k, n: n, signed: b.dtype == .int8,
                           source: Int(bitPattern: b.rawPointer))
    }

    static func pack(_ b: Tensor) -> PackedB? {
        guard b.rank == 2, b.dtype == .int8 || b.dtype == .uint8 else { return nil }
        let (k, n) = (b.shape[0], b.shape[1]), kp = (k + 15) / 16 * 16
        let storage = Tensor.zeros(.uint8, shape: [n, kp])
        let src = b.pointer(as: UInt8.self), dst = storage.pointer(as: UInt8.self)
        parallelFor(n, minChunk: 64) { columns in
            for j in columns {
                for i in 0..<k { dst[j * kp + i] = src[i * n + j] }
            }
        }
        return PackedB(storage: storage, k: k, n: n, kp: kp, signed: b.dtype == .int8, source: Int(bitPattern: b.rawPointer))
    }

    /// Rows of several sequences (`Session.runBatch`): A's rows stacked, `a_zero_point` one per
    /// sequence (each its own DynamicQuantizeLinear's) or shared. They run as one 2-D product with
    /// a zero point per row, B read once for them all; the sums are exact integers, so each row's
    /// are those of its own run whatever the kernel.
    var rowStacking: RowStacking { .firstInputAndValues([2]) }
    func stacks(_ inputs: [Tensor?]) -> Bool {
        guard let a = inputs.first ?? nil, let b = inputs.count > 1 ? inputs[1] : nil else { return false }
        return a.rank >= 2 && b.rank == 2 && a.shape[a.rank - 1] > 0
    }
    func runStacked(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        guard stacks(inputs) else { return try run(inputs) }
        let sequences = a.shape[0], k = a.shape[a.rank - 1], rows = a.count / k
        var matrix = inputs
        matrix[0] = a.reshaped([rows, k])
        if let z = inputs.optional(2), z.rank == 1, z.count == sequences, sequences > 0, rows != sequences {
            // Each sequence's zero point for each of its rows.
            guard z.dtype.storageSize == 1 else { throw OpError("a_zero_point must be int8 or uint8, got \(z.dtype)") }
            let perSequence = rows / sequences, expanded = Tensor(dtype: z.dtype, shape: [rows])
            let source = z.pointer(as: UInt8.self), target = expanded.pointer(as: UInt8.self)
            for i in 0..<sequences { (target + i * perSequence).initialize(repeating: source[i], count: perSequence) }
            matrix[2] = expanded
        }
        let out = try run(matrix)[0]
        return [out.reshaped(Array(a.shape.dropLast()) + [b.shape[1]])]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        for (name, t) in [("A", a), ("B", b)] where t.dtype != .int8 && t.dtype != .uint8 {
            throw OpError("\(name) must be int8 or uint8, got \(t.dtype)")
        }
        guard a.rank >= 1, b.rank >= 1 else { throw OpError("MatMulInteger needs operands of rank ≥ 1") }
        let aShape = a.rank == 1 ? [1, a.shape[0]] : a.shape
        let bShape = b.rank == 1 ? [b.shape[0], 1] : b.shape
        let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1]
        let n = bShape[bShape.count - 1]
        guard bShape[bShape.count - 2] == k else { throw OpError("inner dimensions differ: \(a.shape) × \(b.shape)") }
        let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
        let batch = try Broadcast.shape([aBatch, bBatch])

        // Zero points: A's scalar or per row (of each A matrix), B's scalar or per column.
        var aZero = [Int32](repeating: 0, count: m)
        if let z = inputs.optional(2) {
            guard z.dtype == a.dtype else { throw OpError("a_zero_point is \(z.dtype) but A is \(a.dtype)") }
            let v = try int32Values(z, "a_zero_point")
            if v.count == 1 { aZero = [Int32](repeating: v[0], count: m) }
            else if v.count == m && z.rank == 1 { aZero = v }
            else { throw OpError("a_zero_point has shape \(z.shape): expected a scalar or [\(m)] (one per row of A)") }
        }
        var bZero = [Int32](repeating: 0, count: n)
        if let z = inputs.optional(3) {
            guard z.dtype == b.dtype else { throw OpError("b_zero_point is \(z.dtype) but B is \(b.dtype)") }
            let v = try int32Values(z, "b_zero_point")
            if v.count == 1 { bZero = [Int32](repeating: v[0], count: n) }
            else if v.count == n && z.rank == 1 { bZero = v }
            else { throw OpError("b_zero_point has shape \(z.shape): expected a scalar or [\(n)] (one per column of B)") }
        }

        var outShape = batch + [m, n]
        let out = Tensor(dtype: .int32, shape: outShape)
        if let v = dot, v.source == Int(bitPattern: b.rawPointer), b.rank == 2 {
            runDot(a, v, aZero: aZero, bZero: bZero, m: m, k: k, pairs: Broadcast.matrixPairs(aBatch, bBatch, to: batch), into: out)
            if a.rank == 1 { outShape.remove(at: outShape.count - 2) }
            if b.rank == 1 { outShape.removeLast() }
            return [out.reshaped(outShape)]
        }
        let kp = (k + 15) / 16 * 16
        // A − a_zero_point as int16 rows, with each row's sum.
        let aRows = UnsafeMutablePointer<Int16>.allocate(capacity: max(m * kp, 1))
        defer { aRows.deallocate() }
        var rowSums = [Int32](repeating: 0, count: m)
        let constantB = packed.flatMap { $0.source == Int(bitPattern: b.rawPointer) && b.rank == 2 ? $0 : nil }
        for (bi, (ia, ib)) in Broadcast.matrixPairs(aBatch, bBatch, to: batch).enumerated() {
            let aBytes = a.pointer(as: UInt8.self) + ia * m * k
            for r in 0..<m {
                let row = aRows + r * kp
                rowSums[r] = a.dtype == .int8
                    ? MatMulIntegerOperator.widen(UnsafeRawPointer(aBytes + r * k).assumingMemoryBound(to: Int8.self), count: k,
                                                  minus: aZero[r], into: row)
                    : MatMulIntegerOperator.widen(UnsafePointer(aBytes + r * k), count: k, minus: aZero[r], into: row)
                (row + k).initialize(repeating: 0, count: kp - k)
            }
            let columns = constantB ?? MatMulIntegerOperator.pack(Tensor(dtype: b.dtype, shape: [k, n],
                storage: TensorStorage(borrowing: b.rawPointer + ib * k * n, byteCount: k * n, owner: b.storage)))!
            let pc = out.pointer(as: Int32.self) + bi * m * n
            let pb = UnsafePointer(columns.storage.pointer(as: UInt8.self))
            let pa = UnsafePointer(aRows)
            // Chunks shrinking as the loop goes, claimed as threads come free (exact integer sums:
            // any split gives the same results): the decode step's products stream their weights
            // from memory at rates that differ between the threads, and of equal halves the one
            // done first waits for the other.
            parallelForGuided(n, minChunk: max(16, 65536 / max(kp * max(m, 1), 1)), granularity: 4) { cols in
                intGemm(m: m, n: cols.count, kp: kp, a: pa, lda: kp, b: pb + cols.lowerBound * kp, ldb: kp, bSigned: columns.signed,
                        c: pc + cols.lowerBound, ldc: n)
            }
            if bZero.contains(where: { $0 != 0 }) {
                for r in 0..<m {
                    for j in 0..<n { pc[r * n + j] &-= bZero[j] &* rowSums[r] }
                }
            }
        }
        if a.rank == 1 { outShape.remove(at: outShape.count - 2) }
        if b.rank == 1 { outShape.removeLast() }
        return [out.reshaped(outShape)]
    }
}

extension MatMulIntegerOperator {
    /// `out[i] = a[i] − zero` as int16 (exact: |a − zero| ≤ 255) for `count` values; returns
    /// their sum (wrapping, as ONNX Runtime's int32 sums). One loop per element type, without
    /// checks inside, so that it vectorises.
    @inline(__always)
    static func widen<T: FixedWidthInteger>(_ a: UnsafePointer<T>, count: Int, minus zero: Int32,
                                            into out: UnsafeMutablePointer<Int16>) -> Int32 {
        var sum: Int32 = 0
        for i in 0..<count {
            let v = Int32(truncatingIfNeeded: a[i]) &- zero
            out[i] = Int16(truncatingIfNeeded: v)
            sum &+= v
        }
        return sum
    }

    /// The products with the dot-product kernel, B constant and packed: A's uint8 rows as they are when
    /// k is a multiple of 4 (else copied zero-padded), int8 rows shifted by 128 into uint8 (and
    /// their zero points with them), the column panels split across the threads.
    func runDot(_ a: Tensor, _ v: DotPackedB, aZero: [Int32], bZero: [Int32], m: Int, k: Int,
                 pairs: [(a: Int, b: Int)], into out: Tensor) {
        let n = v.n, panels = IntegerDotProducts.panels(n: n), kp = (k + 3) / 4 * 4
        guard m > 0, n > 0, !pairs.isEmpty else { return }   // an empty product: nothing to write
        let signedA = a.dtype == .int8
        let za = aZero.map { signedA ? $0 &+ 128 : $0 }
        var zb = [Int32](repeating: 0, count: 16 * panels)
        let offset = IntegerDotProducts.bOffset(signed: v.signed)   // B' = B − offset, so zb' too
        for j in 0..<n { zb[j] = bZero[j] &- offset }
        let direct = !signedA && kp == k
        let copy = UnsafeMutablePointer<UInt8>.allocate(capacity: direct ? 1 : max(m * kp, 1))
        defer { copy.deallocate() }
        var rowSums = [Int32](repeating: 0, count: m)
        // Chunks of at least ~64 KB of packed weights, four panels (one register tile) apart.
        let minPanels = max(1, 65536 / max(kp * 16, 1))
        for (bi, (ia, _)) in pairs.enumerated() {
            let source = a.pointer(as: UInt8.self) + ia * m * k
            var rows = UnsafePointer(source)
            if !direct {
                for r in 0..<m {
                    let dst = copy + r * kp, src = source + r * k
                    for c in 0..<k { dst[c] = signedA ? src[c] ^ 0x80 : src[c] }
                    for c in k..<kp { dst[c] = 0 }
                }
                rows = UnsafePointer(copy)
            }
            let pc = out.pointer(as: Int32.self) + bi * m * n
            rowSums.withUnsafeMutableBufferPointer { IntegerDotProducts.rowSums(rows, m: m, k: k, lda: kp, into: $0.baseAddress!) }
            za.withUnsafeBufferPointer { za in
                zb.withUnsafeBufferPointer { zb in
                    rowSums.withUnsafeBufferPointer { sums in
                        v.columnSums.withUnsafeBufferPointer { columnSums in
                            let packed = UnsafePointer(v.storage.pointer(as: Int8.self))
                            parallelFor(panels, minChunk: minPanels, granularity: 4, chunksPerThread: 4) { range in
                                IntegerDotProducts.gemm(m: m, k: k, a: rows, lda: kp, aZero: za.baseAddress!, rowSums: sums.baseAddress!,
                                                         packed: packed, columnSums: columnSums.baseAddress!, bZero: zb.baseAddress!,
                                                         n: n, panels: range, c: pc, ldc: n)
                            }
                        }
                    }
                }
            }
        }
    }
}

func registerQuantization(_ add: (String, String, ClosedRange<Int>, @escaping OperatorFactory) -> Void) {
    add("QuantizeLinear", "", 10...Int.max) { ctx in
        let type = ctx.node.intAttribute("output_dtype").flatMap { $0 == 0 ? nil : Int32(exactly: $0) }.flatMap(DataType.init(rawValue:))
        if let t = ctx.node.intAttribute("output_dtype"), t != 0, type.flatMap(QuantizedInteger.init) == nil {
            throw ctx.node.invalid("output_dtype \(t) is not supported (uint8, int8, uint16, int16, uint4, int4)")
        }
        return QuantizeLinearOperator(axis: ctx.node.intAttribute("axis", default: 1),
                                      blockSize: ctx.node.intAttribute("block_size", default: 0), outputType: type)
    }
    add("DequantizeLinear", "", 10...Int.max) { ctx in
        DequantizeLinearOperator(axis: ctx.node.intAttribute("axis", default: 1), blockSize: ctx.node.intAttribute("block_size", default: 0))
    }
    add("DynamicQuantizeLinear", "", 11...Int.max) { _ in DynamicQuantizeLinearOperator() }
    add("MatMulInteger", "", 10...Int.max) { ctx in
        var op = MatMulIntegerOperator()
        if ctx.prepackWeights, let b = ctx.constantInputs[1] {
            op.dot = MatMulIntegerOperator.packDot(b)
            if op.dot == nil { op.packed = MatMulIntegerOperator.pack(b) }
        }
        return op
    }
}
