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
            var state = UInt64(s.k * 131 + s.n * 7 + m)
            func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
            blocks = (s.k + 31) / 32
            data = (0..<(s.n * blocks * 16)).map { _ in UInt8(truncatingIfNeeded: next()) }
            scales = (0..<(s.n * blocks)).map { _ in Float(next() % 1000 + 1) / 20000 }
            halfScales = scales.map { Float16($0) }
            a = (0..<m).map { _ in (0..<s.k).map { _ in Float(Int(next() % 2001) - 1000) / 1000 } }
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

    static var packedKernelsRunHere: Bool { qk_q4_isa() > 0 }

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

    @Test(arguments: shapes, [3, 7, 13])
    func gemmMatchesTheReferenceOnWholeAndPartialColumnRanges(_ s: Shape, m: Int) throws {
        guard PackedQ4Tests.packedKernelsRunHere else {
            print("SKIPPED PackedQ4Tests.gemm: this CPU has no AVX2/FMA/F16C, the packed layout is not used")
            return
        }
        let c = Case(s, rows: m)
        let packed = try #require(c.withMatrix { PackedQ4Matrix($0) }, "\(s): not packed")
        let a = c.paddedA, lda = c.blocks * 32
        for columns in [0..<s.n, 8..<s.n] {
            var out = [Float](repeating: .nan, count: m * s.n)
            let ran = a.withUnsafeBufferPointer { ap in
                out.withUnsafeMutableBufferPointer {
                    packed.gemm(ap.baseAddress!, rows: m, lda: lda, columns: columns, into: $0.baseAddress!, ldc: s.n)
                }
            }
            #expect(ran)
            for i in 0..<m {
                for j in 0..<s.n {
                    let y = out[i * s.n + j]
                    if columns.contains(j) {
                        let r = c.reference(row: i, column: j)
                        #expect(abs(Double(y) - r) <= c.tolerance(r), "\(s) m \(m) columns \(columns) [\(i), \(j)]: \(y) vs \(r)")
                    } else {
                        #expect(y.isNaN, "\(s) m \(m) columns \(columns): [\(i), \(j)] outside the range was written")
                    }
                }
            }
        }
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
