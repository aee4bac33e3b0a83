import Foundation
import Testing
import Kernels
@testable import Runtime

/// MatMulNBits against a dequantize-then-matmul reference written from the com.microsoft spec.
@Suite struct MatMulNBitsTests {
    struct Case: CustomStringConvertible, Sendable {
        var m: Int, k: Int, n: Int
        var bits = 4, blockSize = 32
        var zeroPoints = false, bias = false, half = false, rank3 = false
        var description: String {
            "M\(m) K\(k) N\(n) bits\(bits) block\(blockSize)\(zeroPoints ? " zp" : "")\(bias ? " bias" : "")\(half ? " fp16" : "")\(rank3 ? " rank3" : "")"
        }
    }

    static let cases: [Case] = [
        Case(m: 1, k: 64, n: 48),                                   // decode GEMV
        Case(m: 5, k: 64, n: 300),                                  // prefill GEMM path, N past one tile
        Case(m: 1, k: 40, n: 33),                                   // K tail inside the last block
        Case(m: 3, k: 200, n: 20, zeroPoints: true),                // K tail + packed zero points
        Case(m: 1, k: 96, n: 17, zeroPoints: true, bias: true),
        Case(m: 2, k: 64, n: 16, blockSize: 16),                    // block 16 (generic kernel)
        Case(m: 4, k: 256, n: 24, blockSize: 128, bias: true),
        Case(m: 1, k: 64, n: 40, half: true),                       // q4f16: float16 A and scales
        Case(m: 6, k: 72, n: 40, zeroPoints: true, half: true, rank3: true),
        // Rows of whole 64-byte chunks (the SIMD path), with and without a tail.
        Case(m: 1, k: 256, n: 40, half: true),
        Case(m: 4, k: 256, n: 40, half: true),                      // GEMM path, specialised fp16 scales
        Case(m: 3, k: 896, n: 300),                                 // GEMM path, specialised fp32 scales, 2 tiles
        Case(m: 13, k: 896, n: 37),                                 // C GEMM: strips of 6, 4 and 3 rows, 4 K chunks, N tail
        Case(m: 7, k: 600, n: 50, zeroPoints: true, half: true),    // C GEMM with zero points, K tail chunk
        Case(m: 5, k: 512, n: 64, zeroPoints: true),
        Case(m: 1, k: 320, n: 33, blockSize: 64, bias: true),
        Case(m: 3, k: 384, n: 20, blockSize: 16),
        Case(m: 2, k: 1000, n: 24, zeroPoints: true, half: true),
        // Shapes the q4x8 repacked kernels serve when B is constant (N a multiple of 8, no zero points).
        Case(m: 13, k: 896, n: 48),                                 // packed GEMM: strips of 6, 4 and 3 rows, 4 K chunks
        Case(m: 7, k: 600, n: 56, half: true),                      // packed GEMM, K tail, float16
        Case(m: 2, k: 200, n: 24, bias: true),                      // packed GEMV per row, K tail, bias
        // Blocks of 64-256 and zero points on the repacked kernels (SymmetricBlocks32): the
        // symmetric product of the same codes plus the zero points' terms per block of 32.
        Case(m: 1, k: 256, n: 48, blockSize: 64, zeroPoints: true),
        Case(m: 9, k: 512, n: 40, blockSize: 128, zeroPoints: true, half: true),
        Case(m: 1, k: 512, n: 24, blockSize: 256),                  // (generic path too: blocks span two chunks)
        Case(m: 5, k: 512, n: 20, blockSize: 256, zeroPoints: true),
        Case(m: 6, k: 384, n: 32, blockSize: 128, half: true),
        Case(m: 1, k: 64, n: 8, bits: 8),
        Case(m: 3, k: 100, n: 8, bits: 8, zeroPoints: true),
    ]

    /// With `constantWeights`, B and the scales are initializers, so the operator repacks them
    /// at planning time when the packed kernels serve them (`PackedQ4Matrix`).
    @Test(arguments: cases, [false, true])
    func matchesDequantizedReference(_ c: Case, constantWeights: Bool) throws {
        var rng = SeededRandom(seed: UInt64(c.m * 1_000_003 + c.k * 1009 + c.n * 7 + c.bits + c.blockSize))
        let blocks = (c.k + c.blockSize - 1) / c.blockSize
        let levels = 1 << c.bits
        // Quantized values for the whole padded row; padding is random too and must be ignored.
        let q = (0..<(c.n * blocks * c.blockSize)).map { _ in Int.random(in: 0..<levels, using: &rng) }
        let scales = randomFloats(c.n * blocks, &rng, in: 0.01...0.1)
        let zps = (0..<(c.n * blocks)).map { _ in c.zeroPoints ? Int.random(in: 0..<levels, using: &rng) : levels / 2 }
        let bias = randomFloats(c.n, &rng)
        var a = randomFloats(c.m * c.k, &rng)

        // Pack B: [N, blocks, blockSize * bits / 8].
        var packed = [UInt8]()
        for i in 0..<(c.n * blocks) {
            let block = q[(i * c.blockSize)..<((i + 1) * c.blockSize)].map { UInt8($0) }
            if c.bits == 8 {
                packed += block
            } else {
                for j in 0..<(c.blockSize / 2) { packed.append(block[2 * j] | block[2 * j + 1] << 4) }
            }
        }
        var zpPacked = [UInt8]()
        if c.zeroPoints {
            let perRow = (blocks * c.bits + 7) / 8
            for row in 0..<c.n {
                var bytes = [UInt8](repeating: 0, count: perRow)
                for b in 0..<blocks {
                    let z = UInt8(zps[row * blocks + b])
                    if c.bits == 8 { bytes[b] = z } else { bytes[b / 2] |= b % 2 == 0 ? z : z << 4 }
                }
                zpPacked += bytes
            }
        }

        // The inputs as the node sees them; with fp16, A and scales are rounded to float16 first
        // and the reference uses the rounded values.
        var scaleValues = scales
        var aTensor = Tensor(a, shape: c.rank3 ? [1, c.m, c.k] : [c.m, c.k])
        var scaleTensor = Tensor(scales, shape: [c.n, blocks])
        var biasTensor = Tensor(bias, shape: [c.n])
        var biasValues = bias
        if c.half {
            a = a.map { Float(Float16($0)) }
            scaleValues = scales.map { Float(Float16($0)) }
            biasValues = bias.map { Float(Float16($0)) }
            aTensor = Tensor(float16s: a.map { Float16($0) }, shape: aTensor.shape)
            scaleTensor = Tensor(float16s: scaleValues.map { Float16($0) }, shape: [c.n, blocks])
            biasTensor = Tensor(float16s: biasValues.map { Float16($0) }, shape: [c.n])
        }
        let inputs: [Tensor?] = [
            aTensor,
            Tensor(bytes: packed, shape: [c.n, blocks, c.blockSize * c.bits / 8]),
            scaleTensor,
            c.zeroPoints ? Tensor(bytes: zpPacked, shape: [zpPacked.count]) : nil,
            nil,
            c.bias ? biasTensor : nil,
        ]
        func run(_ decode: DecodeActivations) throws -> Tensor {
            var options = SessionOptions()
            options.decodeActivations = decode
            return try runOp("MatMulNBits", domain: "com.microsoft", inputs, attributes: attrs(
                attr("K", int: c.k), attr("N", int: c.n), attr("bits", int: c.bits), attr("block_size", int: c.blockSize)),
                constantInputs: constantWeights ? [1, 2, 3] : [], options: options)[0]
        }
        let y = try run(.float32)
        #expect(y.shape == (c.rank3 ? [1, c.m, c.n] : [c.m, c.n]))
        #expect(y.dtype == (c.half ? .float16 : .float))

        var reference = [Float]()
        for row in 0..<c.m {
            for col in 0..<c.n {
                var sum = 0.0
                for kk in 0..<c.k {
                    let b = kk / c.blockSize
                    let w = Double(q[(col * blocks + b) * c.blockSize + kk % c.blockSize] - zps[col * blocks + b]) * Double(scaleValues[col * blocks + b])
                    sum += Double(a[row * c.k + kk]) * w
                }
                if c.bias { sum += Double(biasValues[col]) }
                reference.append(Float(sum))
            }
        }
        let scale = reference.map(abs).max() ?? 1
        // float32 accumulation over K ≤ 256 terms: ~1e-6 relative; float16 output: half an ulp.
        let tolerance = c.half ? scale * 1e-3 : scale * 2e-6
        #expect(maxAbsDiff(y.floats(), reference) <= tolerance, "\(c) constant weights: \(constantWeights)")
        // The default int16 decode activations (repacked weights, M ≤ 2): within 2^-12 of the scale.
        let int16 = try run(.int16)
        #expect(maxAbsDiff(int16.floats(), reference) <= max(tolerance, scale / 4096), "\(c) int16, constant weights: \(constantWeights)")
    }

    /// Which nodes get repacked weights at planning time: constant symmetric 4-bit block-32 B with
    /// N a multiple of 8, on CPUs where the packed kernels run (PackedQ4Matrix returns nil
    /// elsewhere), and not when `prepackWeights` is off.
    @Test func constantWeightsAreRepackedOnlyWhereThePackedKernelsServe() throws {
        func planned(n: Int, zeroPoints: Bool = false, constant: Bool = true, prepack: Bool = true) throws -> Bool {
            let k = 64, blocks = 2
            var constants: [String: Tensor] = [
                "B": Tensor(bytes: [UInt8](repeating: 0x9A, count: n * blocks * 16), shape: [n, blocks, 16]),
                "scales": Tensor([Float](repeating: 0.5, count: n * blocks), shape: [n, blocks]),
            ]
            var inputs = ["A", "B", "scales"]
            if zeroPoints {
                constants["zp"] = Tensor(bytes: [UInt8](repeating: 0x88, count: n), shape: [n])
                inputs.append("zp")
            }
            var specs = [ValueSpec(name: "A", elementType: .float, shape: nil)]
            if !constant {
                constants["B"] = nil
                specs.append(ValueSpec(name: "B", elementType: .uint8, shape: nil))
            }
            let node = Node(name: "mm", opType: "MatMulNBits", domain: "com.microsoft", inputs: inputs, outputs: ["Y"],
                            attributes: attrs(attr("K", int: k), attr("N", int: n), attr("bits", int: 4), attr("block_size", int: 32)))
            let graph = try Graph(nodes: [node], constants: constants, inputs: specs,
                                  outputs: [ValueSpec(name: "Y", elementType: nil, shape: nil)], opsets: ["": 18, "com.microsoft": 1])
            var options = SessionOptions()
            options.prepackWeights = prepack
            let session = try Session(graph: graph, options: options)
            let op = try #require(session.steps.first?.op as? MatMulNBitsOperator)
            return op.packed != nil
        }
        let data = [UInt8](repeating: 0, count: 128), scales = [Float](repeating: 1, count: 8)
        let serves = data.withUnsafeBufferPointer { d in
            scales.withUnsafeBufferPointer { s in
                PackedQ4Matrix(BlockQuantizedMatrix(n: 8, k: 32, bits: 4, blockSize: 32, data: d.baseAddress!,
                                                    scales: .float(s.baseAddress!), zeroPoints: .none)) != nil
            }
        }
        #expect(try planned(n: 48) == serves)
        #expect(try !planned(n: 44), "N not a multiple of 8")
        // Constant zero points are repacked too (the symmetric product plus their terms).
        #expect(try planned(n: 48, zeroPoints: true) == serves)
        #expect(try !planned(n: 48, constant: false), "B fed at run time")
        #expect(try !planned(n: 48, prepack: false))
    }

    /// A session of one constant-weight 4-bit block-32 MatMulNBits node ([n, blocks] of `b` and
    /// `scales`, float16 when `half`), planned with `options`, and its operator.
    static func constantWeightSession(k: Int, n: Int, b: [UInt8], scales: [Float], half: Bool = false, accuracyLevel: Int? = nil,
                                      options: SessionOptions) throws -> (Session, MatMulNBitsOperator) {
        let blocks = (k + 31) / 32
        var attributes = [attr("K", int: k), attr("N", int: n), attr("bits", int: 4), attr("block_size", int: 32)]
        if let accuracyLevel { attributes.append(attr("accuracy_level", int: accuracyLevel)) }
        let node = Node(name: "mm", opType: "MatMulNBits", domain: "com.microsoft", inputs: ["A", "B", "scales"], outputs: ["Y"],
                        attributes: Dictionary(uniqueKeysWithValues: attributes.map { ($0.name, $0) }))
        let scaleTensor = half ? Tensor(float16s: scales.map { Float16($0) }, shape: [n, blocks]) : Tensor(scales, shape: [n, blocks])
        let graph = try Graph(nodes: [node], constants: ["B": Tensor(bytes: b, shape: [n, blocks, 16]), "scales": scaleTensor],
                              inputs: [ValueSpec(name: "A", elementType: half ? .float16 : .float, shape: nil)],
                              outputs: [ValueSpec(name: "Y", elementType: nil, shape: nil)], opsets: ["": 18, "com.microsoft": 1])
        let session = try Session(graph: graph, options: options)
        return (session, try #require(session.steps.first?.op as? MatMulNBitsOperator))
    }

    /// `accuracy_level = 4` (or `Int8Activations.always`) switches a repacked MatMulNBits to int8
    /// activations: results within the int8 quantization error of the float32 ones, and not
    /// equal to them (the int8 kernel ran); `.never` keeps float32 whatever the node says.
    @Test(arguments: [1, 2, 9])
    func accuracyLevel4SelectsInt8Activations(m: Int) throws {
        let k = 200, n = 48, blocks = 7
        var rng = SeededRandom(seed: UInt64(77 + m))
        let b = (0..<(n * blocks * 16)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let scales = randomFloats(n * blocks, &rng, in: 0.01...0.1)
        let a = randomFloats(m * k, &rng)
        func run(level: Int?, mode: Int8Activations) throws -> (y: [Float], int8: Bool) {
            var options = SessionOptions()
            options.int8Activations = mode
            let (session, op) = try MatMulNBitsTests.constantWeightSession(k: k, n: n, b: b, scales: scales, accuracyLevel: level,
                                                                           options: options)
            return (try session.run(["A": Tensor(a, shape: [m, k])])["Y"]!.floats(), op.int8Activations)
        }
        let float32 = try run(level: nil, mode: .accuracyLevel4)
        #expect(!float32.int8)
        #expect(try run(level: 4, mode: .never) == float32)
        let packedHere = !qk_packedKernelsMissing
        for (level, mode) in [(4, Int8Activations.accuracyLevel4), (0, .always), (nil, .always)] as [(Int?, Int8Activations)] {
            let int8 = try run(level: level, mode: mode)
            #expect(int8.int8 == packedHere, "level \(String(describing: level)) \(mode)")
            guard packedHere else { continue }
            let scale = float32.y.map(abs).max()!
            #expect(maxAbsDiff(int8.y, float32.y) <= 0.02 * scale, "int8 vs float32, level \(String(describing: level)) \(mode)")
            #expect(int8.y != float32.y, "the int8 kernel did not run")
        }
    }

    /// `decodeActivations`: int16 activations in the single-row products (M ≤ 2) with packed
    /// weights, within 2^-12 of the float32 result's scale (int8: 2%); products with more rows are
    /// untouched; `.automatic` picks int16 for float16 nodes only.
    @Test(arguments: [1, 2, 3])
    func decodeActivationsSelectTheInt16GEMV(m: Int) throws {
        let k = 200, n = 48, blocks = 7
        var rng = SeededRandom(seed: UInt64(91 + m))
        let b = (0..<(n * blocks * 16)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let scales = randomFloats(n * blocks, &rng, in: 0.01...0.1)
        let a = randomFloats(m * k, &rng)
        for half in [false, true] {
            var options = SessionOptions()
            options.decodeActivations = .automatic
            let (_, op) = try MatMulNBitsTests.constantWeightSession(k: k, n: n, b: b, scales: scales, half: half, options: options)
            #expect(op.int16Decode == (half && !qk_packedKernelsMissing), "automatic, float16 node: \(half)")
        }
        func run(_ mode: DecodeActivations) throws -> (y: [Float], int16: Bool) {
            var options = SessionOptions()
            options.decodeActivations = mode
            let (session, op) = try MatMulNBitsTests.constantWeightSession(k: k, n: n, b: b, scales: scales, options: options)
            return (try session.run(["A": Tensor(a, shape: [m, k])])["Y"]!.floats(), op.int16Decode)
        }
        let float32 = try run(.float32), int16 = try run(.int16)
        #expect(!float32.int16)
        #expect(int16.int16 == !qk_packedKernelsMissing)
        guard !qk_packedKernelsMissing else { return }
        if m <= 2 {
            let scale = float32.y.map(abs).max()!
            #expect(maxAbsDiff(int16.y, float32.y) <= scale / 4096, "int16 vs float32")
            #expect(int16.y != float32.y, "the int16 kernel did not run")
        } else {
            #expect(int16.y == float32.y, "M > 2 runs the GEMM either way")
        }
    }

    @Test func rejectsMismatchedShapesWithTheNodeName() throws {
        let inputs: [Tensor?] = [Tensor([Float](repeating: 1, count: 32), shape: [1, 32]),
                                 Tensor(bytes: [UInt8](repeating: 0, count: 15), shape: [1, 1, 15]),
                                 Tensor([1], shape: [1, 1])]
        do {
            _ = try runOp("MatMulNBits", domain: "com.microsoft", inputs, attributes: attrs(
                attr("K", int: 32), attr("N", int: 1), attr("bits", int: 4), attr("block_size", int: 32)))
            Issue.record("accepted a B of the wrong size")
        } catch let RuntimeError.nodeFailed(node, opType, reason) {
            #expect(node == "node" && opType == "MatMulNBits")
            #expect(reason.contains("B has"))
        }
    }
}

@Suite struct MatMulTests {
    @Test func batchedMatMulBroadcastsAndPromotes() throws {
        // [2, 2, 3] × [3, 2]
        let a = Tensor((0..<12).map { Float($0) }, shape: [2, 2, 3])
        let b = Tensor([1, 0, 0, 1, 1, 1], shape: [3, 2])
        let y = try runOp("MatMul", [a, b])[0]
        #expect(y.shape == [2, 2, 2])
        #expect(y.floats() == [2, 3, 8, 9, 14, 15, 20, 21])
        // [1, 2, 3] × [2, 3, 1]: batch broadcast of A.
        let b2 = Tensor([1, 1, 1, 2, 2, 2], shape: [2, 3, 1])
        let y2 = try runOp("MatMul", [Tensor([1, 2, 3, 4, 5, 6], shape: [1, 2, 3]), b2])[0]
        #expect(y2.shape == [2, 2, 1] && y2.floats() == [6, 15, 12, 30])
        // 1-D × 2-D
        let v = try runOp("MatMul", [Tensor([1, 2, 3], shape: [3]), b])[0]
        #expect(v.shape == [2] && v.floats() == [4, 5])
        // float16 in and out.
        let h = try runOp("MatMul", [Tensor(float16s: [1, 2], shape: [1, 2]), Tensor(float16s: [3, 4], shape: [2, 1])])[0]
        #expect(h.dtype == .float16 && h.floats() == [11])
    }

    @Test func gemmWithTransposesAndBias() throws {
        let a = Tensor([1, 2, 3, 4], shape: [2, 2]), b = Tensor([1, 0, 1, 1], shape: [2, 2])
        let y = try runOp("Gemm", [a, b, Tensor([10, 20], shape: [2])], attributes: attrs(attr("transB", int: 1), attr("alpha", float: 2)))[0]
        // A·Bᵀ = [[1, 3], [3, 7]]; ×2 + [10, 20]
        #expect(y.floats() == [12, 26, 16, 34])
    }
}
