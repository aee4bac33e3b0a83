import Foundation
import Testing
import CKernels
@testable import Kernels

/// The q4x8 repacked layout (`PackedQ4Matrix`, q4x8.c): its GEMV and GEMM against a scalar
/// dequantize-then-dot reference in double precision, on row ranges and column ranges that are
/// parts of the matrix, K tails, float16 and float32 scales; and which matrices it refuses.
@Suite struct PackedQ4Tests {
    struct Shape: Sendable, CustomStringConvertible {
        let k: Int, n: Int, half: Bool
        var description: String { "K\(k) N\(n)\(half ? " fp16" : " fp32") scales" }
    }

    static let shapes = [
        Shape(k: 896, n: 40, half: true),
        Shape(k: 4864, n: 16, half: true),
        Shape(k: 200, n: 24, half: false),
        Shape(k: 96, n: 8, half: true),
    ]

    /// Random weights, scales and activations for `s`, seeded by the shape.
    struct Case {
        let s: Shape
        let blocks: Int
        let data: [UInt8]
        let scales: [Float]
        let halfScales: [Float16]
        /// m activation rows of K values.
        let a: [[Float]]

        init(_ s: Shape, rows m: Int) {
            self.s = s
            var rng = SeededRandom(seed: UInt64(s.k * 131 + s.n * 7 + m))
            func next() -> UInt64 { rng.next() >> 33 }
            blocks = (s.k + 31) / 32
            data = (0..<(s.n * blocks * 16)).map { _ in UInt8(truncatingIfNeeded: next()) }
            scales = (0..<(s.n * blocks)).map { _ in Float(next() % 1000 + 1) / 20000 }
            halfScales = scales.map { Float16($0) }
            a = (0..<m).map { _ in (0..<s.k).map { _ in Float(Int(next() % 2001) - 1000) / 1000 } }
        }

        /// `other`'s weights with the given activation rows.
        init(_ s: Shape, rows m: Int, activations: [[Float]], from other: Case) {
            self.s = s
            blocks = other.blocks
            data = other.data
            scales = other.scales
            halfScales = other.halfScales
            a = activations
        }

        func reference(row i: Int, column j: Int) -> Double {
            var sum = 0.0
            for k in 0..<s.k {
                let b = k / 32, e = k % 32
                let byte = data[(j * blocks + b) * 16 + e / 2]
                let q = Int(e % 2 == 0 ? byte & 0xF : byte >> 4)
                let scale = s.half ? Double(Float(halfScales[j * blocks + b])) : Double(scales[j * blocks + b])
                sum += Double(q - 8) * scale * Double(a[i][k])
            }
            return sum
        }

        /// Runs `body` with the matrix in the MatMulNBits layout.
        func withMatrix<R>(_ body: (BlockQuantizedMatrix) throws -> R) rethrows -> R {
            try data.withUnsafeBufferPointer { d in
                try scales.withUnsafeBufferPointer { sc in
                    try halfScales.withUnsafeBufferPointer { hs in
                        try body(BlockQuantizedMatrix(n: s.n, k: s.k, bits: 4, blockSize: 32, data: d.baseAddress!,
                                                      scales: s.half ? .half(hs.baseAddress!) : .float(sc.baseAddress!),
                                                      zeroPoints: .none))
                    }
                }
            }
        }

        /// Activation rows zero-padded to whole blocks, one after another.
        var paddedA: [Float] {
            a.flatMap { $0 + [Float](repeating: 0, count: blocks * 32 - s.k) }
        }

        func tolerance(_ r: Double) -> Double { 1e-5 * max(1, abs(r)) + 1e-6 * Double(s.k) }
    }

    static var packedKernelsRunHere: Bool { KernelISA.active >= .simd }

    @Test(arguments: shapes)
    func gemvMatchesTheReferenceOnWholeAndPartialRowRanges(_ s: Shape) throws {
        guard PackedQ4Tests.packedKernelsRunHere else {
            print("SKIPPED PackedQ4Tests.gemv: this CPU has no AVX2/FMA/F16C, the packed layout is not used")
            return
        }
        let c = Case(s, rows: 1)
        let packed = try #require(c.withMatrix { PackedQ4Matrix($0) }, "\(s): not packed")
        #expect(packed.byteCount == s.n / 8 * c.blocks * ((s.half ? 16 : 32) + 128))
        let a = c.paddedA
        for rows in [0..<s.n, 8..<s.n, 0..<8] {
            var y = [Float](repeating: .nan, count: s.n)
            let ran = a.withUnsafeBufferPointer { ap in
                y.withUnsafeMutableBufferPointer { packed.gemv(ap.baseAddress!, rows: rows, into: $0.baseAddress!) }
            }
            #expect(ran)
            for j in 0..<s.n {
                if rows.contains(j) {
                    let r = c.reference(row: 0, column: j)
                    #expect(abs(Double(y[j]) - r) <= c.tolerance(r), "\(s) rows \(rows) row \(j): \(y[j]) vs \(r)")
                } else {
                    #expect(y[j].isNaN, "\(s) rows \(rows): row \(j) outside the range was written")
                }
            }
        }
        // Ranges that are not whole groups of 8 are refused, nothing written.
        var y = [Float](repeating: .nan, count: s.n)
        let ran = a.withUnsafeBufferPointer { ap in
            y.withUnsafeMutableBufferPointer { packed.gemv(ap.baseAddress!, rows: 4..<8, into: $0.baseAddress!) }
        }
        #expect(!ran && y.allSatisfy(\.isNaN))
    }

    /// M from 3 to 13: every way the rows are cut into strips (6s, then 3, 4, 5 or two of 3-5);
    /// 139 and 271: past one and two blocks of rows (132), ending in a strip of 1 and two of 4.
    @Test(arguments: shapes, [3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 139, 271])
    func gemmMatchesTheReferenceOnWholeAndPartialColumnRanges(_ s: Shape, m: Int) throws {
        guard PackedQ4Tests.packedKernelsRunHere else {
            print("SKIPPED PackedQ4Tests.gemm: this CPU has no AVX2/FMA/F16C, the packed layout is not used")
            return
        }
        let c = Case(s, rows: m)
        let packed = try #require(c.withMatrix { PackedQ4Matrix($0) }, "\(s): not packed")
        let lda = c.blocks * 32
        // Packed from the first K columns only: NaN past them must not reach the product.
        var a = c.paddedA
        for i in 0..<m { for e in s.k..<lda { a[i * lda + e] = .nan } }
        let activations = a.withUnsafeBufferPointer {
            GEMMActivations($0.baseAddress!, rows: m, k: s.k, lda: lda, blocks: c.blocks)
        }
        // Blocks of 22 strips: 132 rows each (only the last block holds the 1-5-row tail strips).
        let blocks = activations.stripBlocks
        #expect(blocks.count == (m + 131) / 132 && blocks.first?.lowerBound == 0 && blocks.last?.upperBound == activations.stripCount)
        // Every block, as the runtime runs them; with two or more, also all but the first; at
        // every instruction-set level this CPU has.
        for isa in KernelISA.runnable {
            packed.isa = isa
            for (columns, skipped) in [(0..<s.n, nil), (8..<s.n, nil)] + (s.n > 16 ? [(8..<(s.n - 8), nil)] : []) + (blocks.count > 1 ? [(0..<s.n, 0)] : []) {
                var out = [Float](repeating: .nan, count: m * s.n)
                let ran = out.withUnsafeMutableBufferPointer { o in
                    blocks.indices.allSatisfy { b in
                        b == skipped || packed.gemm(activations, strips: blocks[b], columns: columns, into: o.baseAddress!, ldc: s.n)
                    }
                }
                #expect(ran)
                let skippedRows = skipped.map { b in (132 * b)..<Swift.min(132 * (b + 1), m) } ?? 0..<0
                for i in 0..<m {
                    for j in 0..<s.n {
                        let y = out[i * s.n + j]
                        if columns.contains(j) && !skippedRows.contains(i) {
                            let r = c.reference(row: i, column: j)
                            #expect(abs(Double(y) - r) <= c.tolerance(r), "\(isa) \(s) m \(m) columns \(columns) [\(i), \(j)]: \(y) vs \(r)")
                        } else {
                            #expect(y.isNaN, "\(isa) \(s) m \(m) columns \(columns): [\(i), \(j)] outside the range was written")
                        }
                    }
                }
            }
        }
    }

    /// An integer activation format of the packed GEMVs as the tests read it: per block of 32,
    /// `valueBytes` of quantized values (where element e of block b sits: `value`), then one
    /// float scale per block, then one int32 sum per block. The quantizer's definition: scale
    /// max|a| / levels, q = a · (levels / max|a|) rounded by `rounding`.
    struct IntegerActivations: Sendable, CustomStringConvertible {
        let name: String
        let levels: Float
        let rounding: FloatingPointRoundingRule
        let valueBytes: Int
        let value: @Sendable (_ raw: UnsafeRawBufferPointer, _ block: Int, _ element: Int) -> Int32
        let bytes: @Sendable (PackedQ4Matrix) -> Int
        let quantize: @Sendable (PackedQ4Matrix, UnsafePointer<Float>, UnsafeMutableRawPointer) -> Bool
        /// The GEMV, run at the matrix's `isa`.
        let gemv: @Sendable (PackedQ4Matrix, UnsafeRawPointer, Range<Int>, UnsafeMutablePointer<Float>) -> Bool
        var description: String { name }

        /// int8 (accuracy level 4): per block 32 bytes, for j: a[8j + 0,2,4,6], then a[8j + 1,3,5,7];
        /// rounding half away from zero, as ONNX Runtime's and ggml's quantizers do.
        static let int8 = IntegerActivations(
            name: "int8", levels: 127, rounding: .toNearestOrAwayFromZero, valueBytes: 32,
            value: { raw, b, e in
                let j = e / 8, i = e % 8
                return Int32(raw.load(fromByteOffset: b * 32 + 8 * j + (i % 2 == 0 ? i / 2 : 4 + i / 2), as: Int8.self))
            },
            bytes: { $0.int8ActivationBytes }, quantize: { $0.quantizeInt8($1, into: $2) },
            gemv: { $0.gemvInt8($1, rows: $2, into: $3) })

        /// int16 (decode): per block 16 words, word 4j + i = a[8j + i] | a[8j + 4 + i] << 16;
        /// rounding to nearest even.
        static let int16 = IntegerActivations(
            name: "int16", levels: 32767, rounding: .toNearestOrEven, valueBytes: 64,
            value: { raw, b, e in
                let j = e / 8, i = e % 8
                return Int32(raw.load(fromByteOffset: b * 64 + 4 * (4 * j + i % 4) + (i < 4 ? 0 : 2), as: Int16.self))
            },
            bytes: { $0.int16ActivationBytes }, quantize: { $0.quantizeInt16($1, into: $2) },
            gemv: { $0.gemvInt16($1, rows: $2, into: $3) })
    }

    /// An integer-activation GEMV against the reference evaluated on the dequantized activations
    /// it is given (so only float32 summation error remains), on whole and partial row ranges, and
    /// the quantizer against its definition (including a value near a rounding tie).
    @Test(arguments: shapes, [IntegerActivations.int8, .int16])
    func integerGemvMatchesTheReferenceOnQuantizedActivations(_ s: Shape, format f: IntegerActivations) throws {
        guard PackedQ4Tests.packedKernelsRunHere else {
            print("SKIPPED PackedQ4Tests.\(f) GEMV: this CPU has no AVX2/FMA/F16C, the packed layout is not used")
            return
        }
        let c = Case(s, rows: 1)
        let packed = try #require(c.withMatrix { PackedQ4Matrix($0) })
        var a = c.paddedA
        a[5] = 0.5 * (a.map(abs).max()! / f.levels) * 3   // near a rounding tie (1.5 steps) in block 0
        let bytes = f.bytes(packed)
        #expect(bytes == c.blocks * (f.valueBytes + 8))
        var q = [UInt8](repeating: 0, count: bytes)
        let quantized = a.withUnsafeBufferPointer { ap in q.withUnsafeMutableBytes { f.quantize(packed, ap.baseAddress!, $0.baseAddress!) } }
        #expect(quantized)
        var dequantized = [Float](repeating: 0, count: a.count)
        q.withUnsafeBytes { raw in
            for b in 0..<c.blocks {
                let amax = a[(b * 32)..<(b * 32 + 32)].map(abs).max()!
                let scale = raw.load(fromByteOffset: c.blocks * f.valueBytes + 4 * b, as: Float.self)
                let term = raw.load(fromByteOffset: c.blocks * (f.valueBytes + 4) + 4 * b, as: Int32.self)
                #expect(scale == amax / f.levels, "\(f) block \(b) scale")
                var total: Int32 = 0
                for e in 0..<32 {
                    let v = f.value(raw, b, e)
                    let expected = amax > 0 ? Int32((a[b * 32 + e] * (f.levels / amax)).rounded(f.rounding)) : 0
                    #expect(v == expected, "\(f) block \(b) element \(e): \(v) vs \(expected)")
                    dequantized[b * 32 + e] = Float(v) * scale
                    total += v
                }
                #expect(term == 8 * total, "\(f) block \(b) zero-point term (8 · Σ q)")
            }
        }
        let d = Case(s, rows: 1, activations: [Array(dequantized[0..<s.k])], from: c)
        for isa in KernelISA.runnable {
            packed.isa = isa
            for rows in [0..<s.n, 8..<s.n] {
                var y = [Float](repeating: .nan, count: s.n)
                let ran = q.withUnsafeBytes { qp in y.withUnsafeMutableBufferPointer { f.gemv(packed, qp.baseAddress!, rows, $0.baseAddress!) } }
                #expect(ran)
                for j in 0..<s.n {
                    if rows.contains(j) {
                        let r = d.reference(row: 0, column: j)
                        #expect(abs(Double(y[j]) - r) <= c.tolerance(r), "\(isa) \(s) row \(j): \(f) GEMV \(y[j]) vs \(r)")
                    } else {
                        #expect(y[j].isNaN, "\(isa) \(s) rows \(rows): row \(j) outside the range was written")
                    }
                }
            }
        }
    }

    /// The int8 quantizer on values where the rounding rule shows: with max|a| = 127 the factor
    /// is exactly 1, so ±(k + 0.5) are exact ties (away from zero: ±(k + 1)), the floats next to
    /// 0.5 are not, and -0.0 is 0; a block holding NaN gets a NaN scale and zeros; all against
    /// the definition (Swift's `.toNearestOrAwayFromZero`), with the layout and zero-point terms.
    @Test func int8QuantizerRoundsTiesAwayFromZero() throws {
        guard PackedQ4Tests.packedKernelsRunHere else {
            print("SKIPPED PackedQ4Tests.int8QuantizerRoundsTiesAwayFromZero: this CPU has no AVX2/FMA/F16C")
            return
        }
        var ties: [Float] = [127, -0.5, 0.5, -1.5, 1.5, 2.5, -2.5, 125.5, -125.5, 126.5, -126.5,
                             Float(0.5).nextDown, Float(0.5).nextUp, -Float(0.5).nextDown, -Float(1.5).nextUp, -0.0, 0]
        ties += (0..<(32 - ties.count)).map { Float($0) * 7.5 - 60 }
        var withNaN = [Float](repeating: 3, count: 32)
        withNaN[9] = .nan
        let a = ties + withNaN
        var q = [UInt8](repeating: 0xEE, count: 2 * 40)
        #expect(qk_q8_quantize(a, 2, &q) != 0)
        q.withUnsafeBytes { raw in
            func value(_ b: Int, _ e: Int) -> Int8 {
                let j = e / 8, i = e % 8
                return raw.load(fromByteOffset: b * 32 + 8 * j + (i % 2 == 0 ? i / 2 : 4 + i / 2), as: Int8.self)
            }
            #expect(raw.load(fromByteOffset: 64, as: Float.self) == 1)
            var total: Int32 = 0
            for e in 0..<32 {
                let expected = Int8(ties[e].rounded(.toNearestOrAwayFromZero))
                #expect(value(0, e) == expected, "element \(e) (\(ties[e])): \(value(0, e)) vs \(expected)")
                total += Int32(value(0, e))
            }
            #expect(raw.load(fromByteOffset: 72, as: Int32.self) == 8 * total)
            #expect(raw.load(fromByteOffset: 68, as: Float.self).isNaN)
            #expect((0..<32).allSatisfy { value(1, $0) == 0 } && raw.load(fromByteOffset: 76, as: Int32.self) == 0)
        }
    }

    /// The int8 GEMM (four activation rows per pass, the last pass padded) against the int8 GEMV
    /// row by row, on every ISA here: the same exact integer block products and the same float32
    /// epilogue and order (one sum in block order), so bit for bit (a prompt's rows come out of
    /// prefill as they would out of decode); columns outside the range untouched.
    @Test(arguments: shapes, [3, 5, 9])
    func int8GemmMatchesTheInt8GemvRowByRow(_ s: Shape, m: Int) throws {
        guard PackedQ4Tests.packedKernelsRunHere else {
            print("SKIPPED PackedQ4Tests.int8 GEMM: this CPU has no AVX2/FMA/F16C, the packed layout is not used")
            return
        }
        let c = Case(s, rows: m)
        let packed = try #require(c.withMatrix { PackedQ4Matrix($0) })
        let a = c.paddedA, lda = c.blocks * 32, bytes = packed.int8ActivationBytes
        var q = [UInt8](repeating: 0, count: m * bytes)
        a.withUnsafeBufferPointer { ap in
            q.withUnsafeMutableBytes { qp in
                for i in 0..<m { packed.quantizeInt8(ap.baseAddress! + i * lda, into: qp.baseAddress! + i * bytes) }
            }
        }
        var rowByRow = [Float](repeating: .nan, count: m * s.n)
        q.withUnsafeBytes { qp in
            rowByRow.withUnsafeMutableBufferPointer { y in
                for i in 0..<m { packed.gemvInt8(qp.baseAddress! + i * bytes, rows: 0..<s.n, into: y.baseAddress! + i * s.n) }
            }
        }
        for isa in KernelISA.runnable {
            packed.isa = isa
            for columns in [0..<s.n, 8..<s.n] {
                var out = [Float](repeating: .nan, count: m * s.n)
                let ran = q.withUnsafeBytes { qp in
                    out.withUnsafeMutableBufferPointer { packed.gemmInt8(qp.baseAddress!, rows: m, columns: columns, into: $0.baseAddress!, ldc: s.n) }
                }
                #expect(ran)
                for i in 0..<m {
                    for j in 0..<s.n {
                        let y = out[i * s.n + j], r = Double(rowByRow[i * s.n + j])
                        if columns.contains(j) {
                            #expect(y.bitPattern == rowByRow[i * s.n + j].bitPattern, "\(isa) \(s) m \(m) [\(i), \(j)]: GEMM \(y) vs GEMV \(r)")
                        } else {
                            #expect(y.isNaN, "\(isa) \(s) m \(m) columns \(columns): [\(i), \(j)] outside the range was written")
                        }
                    }
                }
            }
        }
    }

    /// A NaN activation makes the integer GEMVs' outputs NaN, as it makes the float32 one's
    /// (the block maximum carries it into the block's scale), wherever it sits in the block.
    @Test(arguments: [0, 13, 31], [IntegerActivations.int8, .int16])
    func integerGemvsPropagateNaN(position: Int, format f: IntegerActivations) throws {
        guard PackedQ4Tests.packedKernelsRunHere else {
            print("SKIPPED PackedQ4Tests.integerGemvsPropagateNaN: this CPU has no AVX2/FMA/F16C")
            return
        }
        let s = Shape(k: 96, n: 16, half: true)
        let c = Case(s, rows: 1)
        let packed = try #require(c.withMatrix { PackedQ4Matrix($0) })
        var a = c.paddedA
        a[32 + position] = .nan   // block 1
        var q = [UInt8](repeating: 0, count: f.bytes(packed))
        var y = [Float](repeating: 0, count: s.n)
        let ran = a.withUnsafeBufferPointer { ap in q.withUnsafeMutableBytes { f.quantize(packed, ap.baseAddress!, $0.baseAddress!) } }
            && q.withUnsafeBytes { qp in y.withUnsafeMutableBufferPointer { f.gemv(packed, qp.baseAddress!, 0..<s.n, $0.baseAddress!) } }
        let allNaN = y.allSatisfy { $0.isNaN }
        #expect(ran && allNaN, "\(f): NaN at \(32 + position) -> \(y)")
    }

    /// Every instruction-set level this CPU has gives the AVX2 kernels' floats bit for bit
    /// (the same products summed in the same order, q4x8_avx512.c): the float32 GEMM, the int8
    /// GEMM and GEMV, the int16 GEMV, on every shape, with column ranges that end inside a
    /// 32-column panel.
    @Test(arguments: shapes)
    func everyInstructionSetLevelGivesTheSameFloats(_ s: Shape) throws {
        guard PackedQ4Tests.packedKernelsRunHere else {
            print("SKIPPED PackedQ4Tests.everyInstructionSetLevelGivesTheSameFloats: this CPU has no AVX2/FMA/F16C")
            return
        }
        let m = 11
        let c = Case(s, rows: m)
        let packed = try #require(c.withMatrix { PackedQ4Matrix($0) })
        let a = c.paddedA, lda = c.blocks * 32
        let activations = a.withUnsafeBufferPointer { GEMMActivations($0.baseAddress!, rows: m, k: s.k, lda: lda, blocks: c.blocks) }
        let b8 = packed.int8ActivationBytes, b16 = packed.int16ActivationBytes
        var q8 = [UInt8](repeating: 0, count: m * b8), q16 = [UInt8](repeating: 0, count: b16)
        a.withUnsafeBufferPointer { ap in
            q8.withUnsafeMutableBytes { for i in 0..<m { packed.quantizeInt8(ap.baseAddress! + i * lda, into: $0.baseAddress! + i * b8) } }
            q16.withUnsafeMutableBytes { _ = packed.quantizeInt16(ap.baseAddress!, into: $0.baseAddress!) }
        }
        let columns = s.n > 8 ? 8..<s.n : 0..<s.n
        /// The four products' outputs at `isa`, NaN where nothing was written.
        func outputs(_ isa: KernelISA) -> [[Float]] {
            packed.isa = isa
            var gemm = [Float](repeating: .nan, count: m * s.n), gemm8 = gemm
            var gemv8 = [Float](repeating: .nan, count: s.n), gemv16 = gemv8
            gemm.withUnsafeMutableBufferPointer { o in
                for strips in activations.stripBlocks { _ = packed.gemm(activations, strips: strips, columns: columns, into: o.baseAddress!, ldc: s.n) }
            }
            q8.withUnsafeBytes { qp in
                _ = gemm8.withUnsafeMutableBufferPointer { packed.gemmInt8(qp.baseAddress!, rows: m, columns: columns, into: $0.baseAddress!, ldc: s.n) }
                _ = gemv8.withUnsafeMutableBufferPointer { packed.gemvInt8(qp.baseAddress!, rows: columns, into: $0.baseAddress!) }
            }
            q16.withUnsafeBytes { qp in
                _ = gemv16.withUnsafeMutableBufferPointer { packed.gemvInt16(qp.baseAddress!, rows: columns, into: $0.baseAddress!) }
            }
            return [gemm, gemm8, gemv8, gemv16]
        }
        let base = outputs(.simd)
        #expect(base.allSatisfy { $0.contains { !$0.isNaN } })
        for isa in KernelISA.runnable where isa > .simd {
            for (name, (x, y)) in zip(["GEMM", "int8 GEMM", "int8 GEMV", "int16 GEMV"], zip(outputs(isa), base)) {
                let same = zip(x, y).allSatisfy { $0.bitPattern == $1.bitPattern }
                #expect(same, "\(s): the \(name) at \(isa.name) differs from \(KernelISA.simd.name)'s")
            }
        }
    }

    /// The int16 GEMV over several activation rows at once (batched decode) gives each row, bit
    /// for bit, what the single-row int16 GEMV gives it at every level this CPU has — for 1 to 9
    /// rows (passes of four and their tails), column ranges starting past 0, NaN-free outputs.
    @Test(arguments: shapes)
    func multiRowInt16GEMVIsTheSingleRowOne(_ s: Shape) throws {
        guard PackedQ4Tests.packedKernelsRunHere else {
            print("SKIPPED PackedQ4Tests.multiRowInt16GEMVIsTheSingleRowOne: this CPU has no AVX2/FMA/F16C")
            return
        }
        let m = 9
        let c = Case(s, rows: m)
        let packed = try #require(c.withMatrix { PackedQ4Matrix($0) })
        let a = c.paddedA, lda = c.blocks * 32
        let b16 = packed.int16ActivationBytes
        var q16 = [UInt8](repeating: 0, count: m * b16)
        a.withUnsafeBufferPointer { ap in
            q16.withUnsafeMutableBytes { for i in 0..<m { packed.quantizeInt16(ap.baseAddress! + i * lda, into: $0.baseAddress! + i * b16) } }
        }
        let columns = s.n > 8 ? 8..<s.n : 0..<s.n
        for isa in KernelISA.runnable where isa >= .simd {
            packed.isa = isa
            var single = [Float](repeating: .nan, count: m * s.n)
            q16.withUnsafeBytes { qp in
                single.withUnsafeMutableBufferPointer { o in
                    for i in 0..<m { _ = packed.gemvInt16(qp.baseAddress! + i * b16, rows: columns, into: o.baseAddress! + i * s.n) }
                }
            }
            for count in 1...m {
                var multi = [Float](repeating: .nan, count: m * s.n)
                let ran = q16.withUnsafeBytes { qp in
                    multi.withUnsafeMutableBufferPointer { o in
                        packed.gemvInt16(qp.baseAddress!, rowBytes: b16, count: count, rows: columns, into: o.baseAddress!, ldy: s.n)
                    }
                }
                #expect(ran)
                let same = (0..<(count * s.n)).allSatisfy { i in
                    columns.contains(i % s.n) ? multi[i].bitPattern == single[i].bitPattern && !multi[i].isNaN : multi[i].isNaN
                }
                #expect(same, "\(s), \(count) rows at \(isa.name): differs from the single-row GEMV")
                let untouched = multi[(count * s.n)...].allSatisfy { $0.isNaN }
                #expect(untouched, "wrote past row \(count)")
            }
        }
    }

    /// The level the kernels detect agrees with what the kernel (Linux) lists in /proc/cpuinfo,
    /// and without QWEN_ISA the active level is the detected one. Prints the levels the tests
    /// of this suite ran.
    @Test func instructionSetLevelsAgreeWithTheCPUFlags() throws {
        print("PackedQ4Tests: kernel ISA detected \(KernelISA.detected.name), active \(KernelISA.active.name); "
              + "levels tested here: \(KernelISA.runnable.map(\.name).joined(separator: ", "))")
        if ProcessInfo.processInfo.environment["QWEN_ISA"] == nil { #expect(KernelISA.active == KernelISA.detected) }
        #expect(KernelISA.active <= KernelISA.detected)
        let top = try #require(KernelISA.allCases.last)
        #expect(KernelISA(name: top.name) == top && KernelISA(name: top.name.uppercased()) == nil)
        #expect(KernelISA.settingWarning(nil, detected: .simd) == nil)
        #expect(KernelISA.settingWarning(KernelISA.simd.name, detected: top) == nil)
        #expect(KernelISA.settingWarning("avx-512", detected: .simd)?.contains("not a kernel level") == true)
        #expect(KernelISA.settingWarning(top.name, detected: .simd)?.contains("above what this CPU supports") == true)
        #if arch(x86_64) && os(Linux)
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flagsLine = try #require(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") })
        let flags = Set(flagsLine.split(separator: ":")[1].split(separator: " ").map(String.init))
        let expected: KernelISA
        if !flags.isSuperset(of: ["avx2", "fma", "f16c"]) { expected = .portable }
        else if !flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) {
            expected = flags.contains("avx_vnni") ? .avxVNNI : .avx2
        }
        else if !flags.contains("avx512_vnni") { expected = .avx512 }
        else {
            // Zen 4 (AMD family 25) splits 512-bit operations; every other AVX-512 VNNI CPU gets the wide level.
            let field = { (name: String) in
                cpuinfo.split(separator: "\n").first { $0.hasPrefix(name) }.map { $0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces) }
            }
            let zen4 = field("vendor_id") == "AuthenticAMD" && field("cpu family") == "25"
            expected = zen4 ? .avx512VNNI : .avx512Wide
        }
        #expect(KernelISA.detected == expected, "/proc/cpuinfo says \(expected.name)")
        // AVX-VNNI is the one level the ones above it do not imply.
        #expect(KernelISA.avxVNNI.runsHere == flags.contains("avx_vnni"))
        for isa in KernelISA.allCases where isa <= KernelISA.detected && !isa.runsHere {
            #expect(KernelISA.settingWarning(isa.name, detected: KernelISA.detected)?.contains("does not have it") == true)
        }
        #endif
    }

    @Test func matricesThePackedKernelsDoNotServeAreNotPacked() {
        let c = Case(Shape(k: 64, n: 16, half: true), rows: 1)
        c.data.withUnsafeBufferPointer { d in
            c.halfScales.withUnsafeBufferPointer { hs in
                let zp = [UInt8](repeating: 0x88, count: 16)
                zp.withUnsafeBufferPointer { z in
                    let withZeroPoints = BlockQuantizedMatrix(n: 16, k: 64, bits: 4, blockSize: 32, data: d.baseAddress!,
                                                              scales: .half(hs.baseAddress!), zeroPoints: .packed(z.baseAddress!))
                    #expect(PackedQ4Matrix(withZeroPoints) == nil)
                }
                let ragged = BlockQuantizedMatrix(n: 12, k: 64, bits: 4, blockSize: 32, data: d.baseAddress!,
                                                  scales: .half(hs.baseAddress!), zeroPoints: .none)
                #expect(PackedQ4Matrix(ragged) == nil, "N = 12 is not whole groups of 8")
                let block64 = BlockQuantizedMatrix(n: 16, k: 64, bits: 4, blockSize: 64, data: d.baseAddress!,
                                                   scales: .half(hs.baseAddress!), zeroPoints: .none)
                #expect(PackedQ4Matrix(block64) == nil)
                var swiftOnly = BlockQuantizedMatrix(n: 16, k: 64, bits: 4, blockSize: 32, data: d.baseAddress!,
                                                     scales: .half(hs.baseAddress!), zeroPoints: .none)
                swiftOnly.allowsNativeKernels = false
                #expect(PackedQ4Matrix(swiftOnly) == nil)
                let plain = BlockQuantizedMatrix(n: 16, k: 64, bits: 4, blockSize: 32, data: d.baseAddress!,
                                                 scales: .half(hs.baseAddress!), zeroPoints: .none)
                #expect((PackedQ4Matrix(plain) != nil) == PackedQ4Tests.packedKernelsRunHere)
            }
        }
    }
}
