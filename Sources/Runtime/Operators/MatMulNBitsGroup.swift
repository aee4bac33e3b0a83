import Kernels
import ONNX
import Synchronization

/// `qwen.swift` MatMulNBitsGroup (see `MatMulNBitsGrouping`): MatMulNBits nodes that multiply the
/// same activations, run together. Inputs: A, then B, scales and bias ("" for none) of each
/// member; one output per member; attributes those of MatMulNBits, with `Ns` (each member's N) in
/// place of N, and optionally `member_names` (the members' node names, for errors).
///
/// With every member's weights repacked (`PackedQ4Matrix`) and the same activations, A is
/// converted once, then packed once (prefill: `GEMMActivations`) or quantized once (int16 decode
/// rows, int8 rows), and one parallel loop covers all members' columns or rows, each range
/// going through the member's own kernel, so every output element is what the member alone
/// computes. Anything else runs the members one by one, as separate nodes would.
struct MatMulNBitsGroupOperator: Operator {
    let members: [MatMulNBitsOperator]

    var plan: String? {
        "\(members.count) products sharing A: " + members.compactMap(\.plan).joined(separator: "; ")
    }

    static func make(_ ctx: OperatorContext) throws -> MatMulNBitsGroupOperator {
        let node = ctx.node
        guard let ns = node.intsAttribute("Ns"), !ns.isEmpty, node.inputs.count == 1 + 3 * ns.count,
              node.outputs.count == ns.count else {
            throw node.invalid("expected attribute Ns (one N per member), inputs A then B, scales and bias of each member, one output per member")
        }
        let names = node.attributes["member_names"]?.strings.map { String(decoding: $0, as: UTF8.self) }
        let members = try ns.enumerated().map { j, n -> MatMulNBitsOperator in
            var attributes = node.attributes
            attributes["Ns"] = nil
            attributes["member_names"] = nil
            attributes["N"] = .int("N", n)
            let name = names.flatMap { j < $0.count ? $0[j] : nil } ?? "\(node.name)/\(j)"
            let member = Node(name: name, opType: "MatMulNBits", domain: "com.microsoft",
                              inputs: [node.inputs[0], node.inputs[1 + 3 * j], node.inputs[2 + 3 * j], "", "", node.inputs[3 + 3 * j]],
                              outputs: [node.outputs[j]], attributes: attributes)
            var constants: [Int: Tensor] = [:]
            constants[1] = ctx.constantInputs[1 + 3 * j]
            constants[2] = ctx.constantInputs[2 + 3 * j]
            constants[5] = ctx.constantInputs[3 + 3 * j]
            let memberContext = OperatorContext(node: member, opset: ctx.opset, constantInputs: constants, model: ctx.model,
                                                prepackWeights: ctx.prepackWeights, weightCache: ctx.weightCache,
                                                int8Activations: ctx.int8Activations, decodeActivations: ctx.decodeActivations)
            return try MatMulNBitsOperator.make(memberContext)
        }
        guard members.allSatisfy({ $0.k == members[0].k }) else { throw node.invalid("members differ in K") }
        return MatMulNBitsGroupOperator(members: members)
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try compute(inputs, stacked: false) }

    /// As MatMulNBits: stacked rows of several sequences, each computed as it is alone.
    var rowStacking: RowStacking { .firstInput }
    func runStacked(_ inputs: [Tensor?]) throws -> [Tensor] { try compute(inputs, stacked: true) }

    private func compute(_ inputs: [Tensor?], stacked: Bool) throws -> [Tensor] {
        let aIn = try inputs.required(0)
        var weights: [(b: Tensor, scales: Tensor, bias: Tensor?)] = []
        for j in members.indices {
            weights.append((try inputs.required(1 + 3 * j), try inputs.required(2 + 3 * j), inputs.optional(3 + 3 * j)))
        }
        let first = members[0], k = first.k
        let packed = members.indices.compactMap { members[$0].packedMatrix(b: weights[$0].b, scales: weights[$0].scales, zeroPoints: nil) }
        /// Member j as a node of its own.
        func alone(_ j: Int) throws -> Tensor {
            let memberInputs = [aIn, weights[j].b, weights[j].scales, nil, nil, weights[j].bias]
            return try (stacked ? members[j].runStacked(memberInputs) : members[j].run(memberInputs))[0]
        }
        guard packed.count == members.count, aIn.dtype == .float || aIn.dtype == .float16, aIn.rank >= 1, aIn.shape.last == k,
              members.allSatisfy({ $0.rowActivations == first.rowActivations }) else {
            return try members.indices.map(alone)
        }

        let a = try floatOperand(aIn)
        let m = a.count / k
        let outs = members.map { Tensor(dtype: .float, shape: Array(aIn.shape.dropLast()) + [$0.n]) }
        // Stacked rows of several sequences take the single-row kernels; with float32 activations
        // those are one GEMV per row, which the members' own path runs.
        if stacked && m > 1 && first.rowActivations == .float32 { return try members.indices.map(alone) }
        let refused = MatMulNBitsOperator.packedProducts(a.pointer(as: Float.self), rows: m, k: k, packed: packed,
                                                         activations: first.rowActivations, stacked: stacked,
                                                         into: outs.map { $0.pointer(as: Float.self) })
        var results = try members.indices.map { j in
            try members[j].finish(outs[j], bias: weights[j].bias.map(floatOperand), rows: m, resultType: aIn.dtype)
        }
        // A member whose kernel refused a range (none does with repacked weights) runs alone.
        for j in refused { results[j] = try alone(j) }
        return results
    }
}

extension MatMulNBitsOperator {
    /// What the products of decode rows multiply with packed weights: the float32 activations,
    /// or the activations quantized per block of 32 to int16 (`SessionOptions.decodeActivations`)
    /// or to int8 (accuracy level 4, `SessionOptions.int8Activations`; prefill rows too).
    enum RowActivations: Equatable { case float32, int16, int8 }

    var rowActivations: RowActivations { int8Activations ? .int8 : int16Decode ? .int16 : .float32 }

    /// `y_j = a · W_jᵀ` for products sharing the activations `a` (`m` float32 rows of `k`), each
    /// with its repacked weights `packed[j]` and output `outs[j]` (`m` rows of its N): A packed
    /// once for the float32 GEMM (m > 2), or each row zero-padded to whole blocks and, with
    /// `activations` int16 or int8, quantized once for all products; then one parallel loop over
    /// all products' columns (or rows), each range through its product's kernel, so every output
    /// element is what the product alone computes. A single MatMulNBits is the group of one.
    /// Returns the products whose kernel refused a range (none does where repacked weights
    /// exist at the SIMD level); their outputs are incomplete.
    ///
    /// `stacked`: the rows are single rows of several sequences (`Session.runBatch`), each
    /// computed by the decode kernels as it is alone, whatever their number. `int8BlockSums`
    /// (int8 only; `m × blocks` floats): each quantized block's value sum, for zero points' terms.
    static func packedProducts(_ a: UnsafePointer<Float>, rows m: Int, k: Int, packed: [PackedQ4Matrix],
                               activations: RowActivations, stacked: Bool = false,
                               int8BlockSums: UnsafeMutablePointer<Float>? = nil,
                               into outs: [UnsafeMutablePointer<Float>]) -> Set<Int> {
        let ns = packed.map(\.n)
        var offsets = [0]
        for n in ns { offsets.append(offsets.last! + n) }
        let total = offsets.last!
        let refused = Mutex(Set<Int>())
        /// `body(j, range)` for each product's share of the group's columns or rows `range`.
        func forEachProduct(in range: Range<Int>, _ body: (Int, Range<Int>) -> Bool) {
            for j in packed.indices {
                let lower = Swift.max(range.lowerBound, offsets[j]), upper = Swift.min(range.upperBound, offsets[j + 1])
                if lower < upper && !body(j, (lower - offsets[j])..<(upper - offsets[j])) {
                    refused.withLock { _ = $0.insert(j) }
                }
            }
        }

        if m > 2 && !stacked && activations != .int8 {
            // Prefill: panels of B dequantized into L1 and multiplied there (q4_gemm), each
            // thread taking column ranges as it comes free, a block of rows at a time.
            let rowsA = GEMMActivations(a, rows: m, k: k, lda: k, blocks: packed[0].blocksPerRow)
            for strips in rowsA.stripBlocks {
                parallelFor(total, minChunk: 32, granularity: 32, chunksPerThread: 16) { columns in
                    forEachProduct(in: columns) { j, local in
                        packed[j].gemm(rowsA, strips: strips, columns: local, into: outs[j], ldc: ns[j])
                    }
                }
            }
            return refused.withLock { $0 }
        }

        // Each row as whole blocks, zero-padded where K is not a multiple of 32 (the kernels'
        // order is natural; the 0.5B's K are all whole blocks and take `a` as it is), and with
        // int16 or int8 quantized per block once for all products.
        let blocks = packed[0].blocksPerRow, kp = blocks * 32
        var padded: UnsafeMutablePointer<Float>? = nil
        defer { padded?.deallocate() }
        if kp != k {
            let rows = UnsafeMutablePointer<Float>.allocate(capacity: m * kp)
            for row in 0..<m {
                (rows + row * kp).update(from: a + row * k, count: k)
                (rows + row * kp + k).update(repeating: 0, count: kp - k)
            }
            padded = rows
        }
        let rowsA = UnsafePointer(padded) ?? a
        let kind: RowActivations = activations == .int16 && !PackedQ4Matrix.int16ActivationsRun ? .float32 : activations
        let rowBytes = kind == .int8 ? packed[0].int8ActivationBytes : packed[0].int16ActivationBytes
        let quantized = UnsafeMutableRawPointer.allocate(byteCount: kind == .float32 ? 1 : m * rowBytes, alignment: 64)
        defer { quantized.deallocate() }
        if kind != .float32 {
            // Several rows (a batched step, a prompt) are quantized on the pool's threads.
            let done = Atomic<Bool>(true)
            parallelFor(m, minChunk: kind == .int8 && !stacked ? 16 : 1) { rows in
                for row in rows {
                    let ok = kind == .int8 ? packed[0].quantizeInt8(rowsA + row * kp, into: quantized + row * rowBytes)
                                           : packed[0].quantizeInt16(rowsA + row * kp, into: quantized + row * rowBytes)
                    if !ok { done.store(false, ordering: .relaxed) }
                }
            }
            guard done.load(ordering: .relaxed) else { return Set(packed.indices) }
            if let int8BlockSums, kind == .int8 {
                for row in 0..<m { packed[0].int8BlockSums(quantized + row * rowBytes, into: int8BlockSums + row * blocks) }
            }
        }
        // Rows that each take the decode GEMV (a batched step's, or m ≤ 2): one multi-row pass
        // over the weights (float32 rows: each weight converted once for two), each row's floats
        // as alone. Prompts with int8 activations: the int8 GEMM.
        let multi = m > 1 && (m <= 2 || stacked)
        let gemm = kind == .int8 && m > 2 && !stacked
        func products(_ rows: Range<Int>) {
            forEachProduct(in: rows) { j, local in
                switch kind {
                case .int8 where gemm:
                    return packed[j].gemmInt8(quantized, rows: m, columns: local, into: outs[j], ldc: ns[j])
                case .int8 where multi:
                    return packed[j].gemvInt8(quantized, rowBytes: rowBytes, count: m, rows: local, into: outs[j], ldy: ns[j])
                case .int16 where multi:
                    return packed[j].gemvInt16(quantized, rowBytes: rowBytes, count: m, rows: local, into: outs[j], ldy: ns[j])
                case .float32 where multi:
                    return packed[j].gemv(rowsA, lda: kp, count: m, rows: local, into: outs[j], ldy: ns[j])
                default:
                    return (0..<m).allSatisfy { row in
                        let y = outs[j] + row * ns[j], q = quantized + row * rowBytes
                        switch kind {
                        case .int8: return packed[j].gemvInt8(q, rows: local, into: y)
                        case .int16: return packed[j].gemvInt16(q, rows: local, into: y)
                        case .float32: return packed[j].gemv(rowsA + row * kp, rows: local, into: y)
                        }
                    }
                }
            }
        }
        if gemm {
            // Four activation rows per pass over the weights (qk_q4x8_gemm_q8).
            parallelFor(total, minChunk: 32, granularity: 16, chunksPerThread: 16, products)
        } else if multi {
            // m rows' products per weight row: chunks shrinking to an m-th of the one-row
            // minimum, so that the threads finish together.
            parallelForGuided(total, minChunk: Swift.max(32, gemvMinRows(k: k) / m), granularity: 16, products)
        } else {
            parallelFor(total, minChunk: gemvMinRows(k: k), granularity: 16, chunksPerThread: 4, products)
        }
        return refused.withLock { $0 }
    }
}
