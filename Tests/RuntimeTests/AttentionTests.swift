import Foundation
import ONNX
import Kernels
import Testing
@testable import Runtime

/// `AttentionFusion` + `FusedAttentionOperator` against the unfused op-by-op graph the exports
/// contain (run by our executor's plain ops, themselves tested against hand-computed values and
/// ONNX Runtime): same outputs, and the pattern is really replaced.
@Suite struct AttentionTests {
    struct Case: CustomStringConvertible, Sendable {
        let heads: Int, kvHeads: Int, queries: Int, keys: Int, headSize: Int
        let maskRank: Int      // 0 = no mask
        let nanGuard: Bool
        /// What masked keys get: -inf, or float32's lowest as the optimum exports write it.
        var masked: Float = -.infinity
        /// A mask of [1, H, S, T] whose head h masks h mod 3 more keys per row (rank 4 only).
        var perHead = false
        var description: String {
            "H\(heads)/KVH\(kvHeads) S\(queries) T\(keys) D\(headSize) mask rank \(maskRank)\(perHead ? " per head" : "") \(masked)\(nanGuard ? " IsNaN guard" : "")"
        }
    }

    static let cases: [Case] = [
        Case(heads: 4, kvHeads: 2, queries: 3, keys: 5, headSize: 16, maskRank: 4, nanGuard: true),   // GQA, vector path
        Case(heads: 6, kvHeads: 3, queries: 1, keys: 33, headSize: 64, maskRank: 4, nanGuard: true),  // a decode step
        Case(heads: 2, kvHeads: 1, queries: 4, keys: 4, headSize: 6, maskRank: 2, nanGuard: false),   // scalar path
        Case(heads: 3, kvHeads: 3, queries: 2, keys: 7, headSize: 8, maskRank: 0, nanGuard: true),    // no repeat
        Case(heads: 4, kvHeads: 2, queries: 20, keys: 33, headSize: 16, maskRank: 4, nanGuard: true), // prefill: GEMM path
        Case(heads: 2, kvHeads: 2, queries: 300, keys: 300, headSize: 8, maskRank: 2, nanGuard: false), // GEMM, 2 row chunks
        // The 0.5B's heads at a prompt of 100 after 30 cached positions, with the exports' mask
        // value: 4 blocks of positions, each reading only the keys its rows see. With the guard
        // the first row is fully masked by finite values: uniform weights over every key.
        Case(heads: 14, kvHeads: 2, queries: 100, keys: 130, headSize: 64, maskRank: 4, nanGuard: true,
             masked: -Float.greatestFiniteMagnitude),
        Case(heads: 6, kvHeads: 1, queries: 70, keys: 70, headSize: 16, maskRank: 2, nanGuard: false,
             masked: -Float.greatestFiniteMagnitude),
        Case(heads: 6, kvHeads: 2, queries: 90, keys: 95, headSize: 16, maskRank: 4, nanGuard: false,
             masked: -Float.greatestFiniteMagnitude, perHead: true),
    ]

    /// The exports' attention, op by op: Q·(Kᵀ·c) + mask → Softmax → Where(IsNaN) → ·V, with
    /// K and V repeated by Unsqueeze → Expand → Reshape when there are fewer key/value heads.
    static func graph(_ c: Case) throws -> (Graph, [String: Tensor]) {
        var rng = SeededRandom(seed: UInt64(c.heads * 1000 + c.keys * 10 + c.headSize))
        func random(_ shape: [Int], scale: Float = 1) -> Tensor {
            Tensor((0..<shape.reduce(1, *)).map { _ in Float.random(in: -scale...scale, using: &rng) }, shape: shape)
        }
        let rep = c.heads / c.kvHeads
        var nodes: [Node] = []
        let constants: [String: Tensor] = [
            "c": Tensor([Float(1 / Double(c.headSize).squareRoot().squareRoot())], shape: []),
            "zero": Tensor([0], shape: []),
            "axis2": Tensor(int64s: [2], shape: [1]),
            "expandShape": Tensor(int64s: [1, Int64(c.kvHeads), Int64(rep), Int64(c.keys), Int64(c.headSize)], shape: [5]),
            "reshape": Tensor(int64s: [1, Int64(c.heads), Int64(c.keys), Int64(c.headSize)], shape: [4]),
            "gatherIndex": Tensor(int64s: [2], shape: []),
        ]
        var feeds: [String: Tensor] = [
            "q": random([1, c.heads, c.queries, c.headSize], scale: 2),
            "k": random([1, c.kvHeads, c.keys, c.headSize], scale: 2),
            "v": random([1, c.kvHeads, c.keys, c.headSize]),
        ]
        var k = "k", v = "v"
        if rep > 1 {
            for name in ["k", "v"] {
                nodes.append(Node(name: "\(name)/Unsqueeze", opType: "Unsqueeze", inputs: [name, "axis2"], outputs: ["\(name).u"]))
                nodes.append(Node(name: "\(name)/Expand", opType: "Expand", inputs: ["\(name).u", "expandShape"], outputs: ["\(name).e"]))
                nodes.append(Node(name: "\(name)/Reshape", opType: "Reshape", inputs: ["\(name).e", "reshape"], outputs: ["\(name).r"]))
            }
            k = "k.r"; v = "v.r"
            // The exports read the key length off the repeated keys.
            nodes.append(Node(name: "Shape", opType: "Shape", inputs: ["k.r"], outputs: ["k.shape"]))
            nodes.append(Node(name: "Gather", opType: "Gather", inputs: ["k.shape", "gatherIndex"], outputs: ["keyLength"]))
        }
        nodes.append(Node(name: "Transpose", opType: "Transpose", inputs: [k], outputs: ["kt"], attributes: attrs(attr("perm", ints: [0, 1, 3, 2]))))
        nodes.append(Node(name: "ScaleK", opType: "Mul", inputs: ["kt", "c"], outputs: ["kts"]))
        nodes.append(Node(name: "Scores", opType: "MatMul", inputs: ["q", "kts"], outputs: ["scores"]))
        var logits = "scores"
        if c.maskRank > 0 {
            // Causal-style: query i sees keys ≤ keys - queries + i; the first query row sees nothing.
            let maskHeads = c.perHead ? c.heads : 1
            let shape = c.maskRank == 4 ? [1, maskHeads, c.queries, c.keys] : [c.queries, c.keys]
            var m = [Float](repeating: 0, count: maskHeads * c.queries * c.keys)
            for hh in 0..<maskHeads {
                for i in 0..<c.queries {
                    for j in 0..<c.keys where j > c.keys - c.queries + i - hh % 3 || (i == 0 && c.nanGuard) {
                        m[(hh * c.queries + i) * c.keys + j] = c.masked
                    }
                }
            }
            feeds["mask"] = Tensor(m, shape: shape)
            nodes.append(Node(name: "Mask", opType: "Add", inputs: ["scores", "mask"], outputs: ["masked"]))
            logits = "masked"
        }
        nodes.append(Node(name: "Softmax", opType: "Softmax", inputs: [logits], outputs: ["p"], attributes: attrs(attr("axis", int: -1))))
        var p = "p"
        if c.nanGuard {
            nodes.append(Node(name: "IsNaN", opType: "IsNaN", inputs: ["p"], outputs: ["nan"]))
            nodes.append(Node(name: "Guard", opType: "Where", inputs: ["nan", "zero", "p"], outputs: ["pg"]))
            p = "pg"
        }
        nodes.append(Node(name: "Out", opType: "MatMul", inputs: [p, v], outputs: ["out"]))
        var outputs = [ValueSpec(name: "out", elementType: .float, shape: nil)]
        if rep > 1 { outputs.append(ValueSpec(name: "keyLength", elementType: .int64, shape: nil)) }
        let inputs = feeds.keys.sorted().map { ValueSpec(name: $0, elementType: .float, shape: nil) }
        return (try Graph(nodes: nodes, constants: constants, inputs: inputs, outputs: outputs, opsets: ["": 18]), feeds)
    }

    @Test(arguments: cases)
    func fusedEqualsTheOpByOpGraph(_ c: Case) throws {
        let (graph, feeds) = try AttentionTests.graph(c)
        var plain = SessionOptions()
        plain.passes.subtract(GraphPass.fusions)
        let reference = try Session(graph: graph, options: plain)
        #expect(!reference.graph.nodes.contains { $0.opType == "FusedAttention" })
        let fused = try Session(graph: graph)
        #expect(fused.graph.nodes.filter { $0.opType == "FusedAttention" }.count == 1, "\(c): pattern not fused")
        #expect(!fused.graph.nodes.contains { ["Expand", "Softmax", "MatMul", "Transpose"].contains($0.opType) }, "\(c): unfused ops left")

        let expected = try reference.run(feeds), actual = try fused.run(feeds)
        let e = expected["out"]!.floats(), a = actual["out"]!.floats()
        #expect(actual["out"]!.shape == [1, c.heads, c.queries, c.headSize])
        #expect(a.allSatisfy(\.isFinite) || !c.nanGuard)
        // Our kernels scale the sum q·k, the graph scales k first: rounding apart, which grows
        // with the number of products per score (2.4e-6 at D = 64, with or without skipped keys).
        let tolerance = max(2e-6, Float(c.headSize) * 1e-7)
        let d = maxAbsDiff(a, e)
        #expect(d <= tolerance, "\(c): max |Δ| \(d)")
        if c.maskRank > 0 && c.nanGuard && c.masked == -.infinity {
            // The fully masked first query row: zeros, not NaN.
            #expect(a[0..<c.headSize].allSatisfy { $0 == 0 })
        }
        if let length = actual["keyLength"] { #expect(length.int64s() == [Int64(c.keys)]) }

        // A NaN in Q spoils its row's scores: the vectorised softmax hands such rows to the
        // scalar path, so NaN (or 0 behind the guard) lands exactly where the op-by-op graph puts it.
        var poisoned = feeds
        var q = feeds["q"]!.floats()
        q[c.headSize + 1] = .nan
        poisoned["q"] = Tensor(q, shape: feeds["q"]!.shape)
        let e2 = try reference.run(poisoned)["out"]!.floats(), a2 = try fused.run(poisoned)["out"]!.floats()
        #expect(zip(e2, a2).allSatisfy { x, y in x.isNaN ? y.isNaN : (!y.isNaN && abs(x - y) <= tolerance) }, "\(c): NaN row")
    }

    /// The keys a prefill row reads: up to its last key that is not dead, only when the row has a
    /// live key to make the dead ones' weights exactly 0.
    @Test func keysNeededSkipsOnlyTrailingDeadKeys() {
        let lowest = -Float.greatestFiniteMagnitude, inf = -Float.infinity
        let rows: [([Float], Int)] = [
            ([0, 0, lowest, lowest], 2),         // causal, the exports' value
            ([0, inf, inf, inf], 1),             // causal, -inf
            ([0, lowest, 0, lowest], 3),         // a dead key before a live one is kept
            ([0, 0, 0, 0], 4),                   // nothing masked
            ([lowest, lowest, lowest], 3),       // fully masked: every key (uniform weights)
            ([inf, inf], 2),                     // fully masked by -inf: every key (NaN, as the ops give)
            ([-5e36, lowest, lowest], 3),        // no live key: the dead ones might not vanish
            ([0, .nan, lowest], 2),              // a NaN stops the skipping at its key
            ([0, -1e36, -1e36], 3),              // -1e36 is not dead
            ([-65504, -65504, 0], 3),            // float16's lowest is not dead
            ([7], 1),
        ]
        for (mask, expected) in rows {
            let got = mask.withUnsafeBufferPointer { FusedAttentionOperator.keysNeeded(mask: $0.baseAddress!, keys: mask.count) }
            #expect(got == expected, "\(mask)")
        }
    }

    /// float16 keys and values are read as they are: the same result as their exact float32 widening.
    @Test func float16KeysAndValuesEqualTheirFloat32Widening() throws {
        var rng = SeededRandom(seed: 7)
        for (h, kvh, s, t, d) in [(4, 2, 2, 19, 64), (4, 2, 40, 45, 64)] {  // row path, GEMM path
            let q = Tensor((0..<(h * s * d)).map { _ in Float.random(in: -2...2, using: &rng) }, shape: [1, h, s, d])
            let k16 = (0..<(kvh * t * d)).map { _ in Float16(Float.random(in: -2...2, using: &rng)) }
            let v16 = (0..<(kvh * t * d)).map { _ in Float16(Float.random(in: -1...1, using: &rng)) }
            let scale = Tensor([0.35], shape: [])
            let half = try runOp("FusedAttention", domain: PrivateOps.domain,
                                 [q, Tensor(float16s: k16, shape: [1, kvh, t, d]), Tensor(float16s: v16, shape: [1, kvh, t, d]), scale, nil])[0]
            let wide = try runOp("FusedAttention", domain: PrivateOps.domain,
                                 [q, Tensor(k16.map(Float.init), shape: [1, kvh, t, d]), Tensor(v16.map(Float.init), shape: [1, kvh, t, d]), scale, nil])[0]
            #expect(half.floats() == wide.floats())
        }
    }

    /// Several calls at once (a batched run's per-sequence node: decode steps at different
    /// context lengths, with and without a mask, float16 and float32 caches, a prefill among
    /// them, one without keys) give each call's own `run` result, bit for bit.
    @Test func runEachEqualsEachRunAlone() throws {
        var rng = SeededRandom(seed: 11)
        func random(_ n: Int, _ r: ClosedRange<Float>) -> [Float] { (0..<n).map { _ in Float.random(in: r, using: &rng) } }
        var sets = [[Tensor?]]()
        for (h, kvh, s, t, d, half, masked) in [(14, 2, 1, 37, 64, true, false), (14, 2, 1, 5, 64, false, true),
                                                (4, 2, 40, 45, 16, false, true), (14, 2, 1, 130, 64, true, true),
                                                (4, 4, 1, 0, 8, false, false)] {
            let q = Tensor(random(h * s * d, -2...2), shape: [1, h, s, d])
            let kv = (0..<2).map { _ in
                half ? Tensor(float16s: random(kvh * t * d, -2...2).map { Float16($0) }, shape: [1, kvh, t, d])
                     : Tensor(random(kvh * t * d, -2...2), shape: [1, kvh, t, d])
            }
            // Causal over the last s positions, and a dead key in front.
            let mask = masked ? Tensor((0..<(s * t)).map { i in
                let (row, key) = (i / t, i % t)
                return key == 0 || key > t - s + row ? -Float.greatestFiniteMagnitude : 0
            }, shape: [1, 1, s, t]) : nil
            sets.append([q, kv[0], kv[1], Tensor([0.35], shape: []), mask])
        }
        let op = FusedAttentionOperator(nanToZero: true)
        let together = try op.runEach(sets)
        #expect(together.count == sets.count)
        for (i, set) in sets.enumerated() {
            let alone = try op.run(set)[0]
            #expect(together[i][0].shape == alone.shape && together[i][0].floats().map(\.bitPattern) == alone.floats().map(\.bitPattern),
                    "call \(i) differs")
        }
    }

    @Test func badShapesAreNodeErrors() throws {
        let q = Tensor([Float](repeating: 0, count: 3 * 8), shape: [1, 3, 1, 8])
        let k = Tensor([Float](repeating: 0, count: 2 * 4 * 8), shape: [1, 2, 4, 8])
        #expect(throws: RuntimeError.self) { _ = try runOp("FusedAttention", domain: PrivateOps.domain, [q, k, k]) }
        let mask = Tensor([Float](repeating: 0, count: 3), shape: [1, 1, 1, 3])
        let q2 = Tensor([Float](repeating: 0, count: 4 * 8), shape: [1, 4, 1, 8])
        #expect(throws: RuntimeError.self) { _ = try runOp("FusedAttention", domain: PrivateOps.domain, [q2, k, k, nil, mask]) }
    }

    /// The float16 exports' cache growth, Cast(past, fp16) → Concat(axis 2) → Cast(fp32) → present
    /// (plus a Shape reader), against one AppendKV: bit-identical, with past values that float16
    /// cannot hold exactly (so the rounding is exercised).
    @Test(arguments: [0, 1, 37])
    func appendKVEqualsCastConcatCast(_ pastLength: Int) throws {
        var rng = SeededRandom(seed: UInt64(pastLength + 3))
        let (h, d) = (2, 24)
        let past = Tensor((0..<(h * pastLength * d)).map { _ in Float.random(in: -3...3, using: &rng) }, shape: [1, h, pastLength, d])
        let new = Tensor(float16s: (0..<(h * d)).map { _ in Float16(Float.random(in: -3...3, using: &rng)) }, shape: [1, h, 1, d])
        var to16 = AttributeProto(); to16.name = "to"; to16.kind = .int; to16.i = Int64(DataType.float16.rawValue)
        var to32 = AttributeProto(); to32.name = "to"; to32.kind = .int; to32.i = Int64(DataType.float.rawValue)
        let nodes = [
            Node(name: "down", opType: "Cast", inputs: ["past"], outputs: ["past16"], attributes: ["to": to16]),
            Node(name: "concat", opType: "Concat", inputs: ["past16", "new"], outputs: ["all16"], attributes: attrs(attr("axis", int: 2))),
            Node(name: "up", opType: "Cast", inputs: ["all16"], outputs: ["present"], attributes: ["to": to32]),
            Node(name: "shape", opType: "Shape", inputs: ["all16"], outputs: ["shape"]),
        ]
        let graph = try Graph(nodes: nodes, constants: [:],
                              inputs: [ValueSpec(name: "past", elementType: .float, shape: nil), ValueSpec(name: "new", elementType: .float16, shape: nil)],
                              outputs: [ValueSpec(name: "present", elementType: .float, shape: nil), ValueSpec(name: "shape", elementType: .int64, shape: nil)],
                              opsets: ["": 18])
        var plain = SessionOptions()
        plain.passes.subtract(GraphPass.fusions)
        let reference = try Session(graph: graph, options: plain).run(["past": past, "new": new])
        let session = try Session(graph: graph)
        #expect(session.graph.nodes.map(\.opType).sorted() == ["AppendKV", "Shape"])
        let actual = try session.run(["past": past, "new": new])
        #expect(actual["present"]!.shape == [1, h, pastLength + 1, d])
        #expect(actual["present"]!.floats() == reference["present"]!.floats())
        #expect(actual["shape"]!.int64s() == reference["shape"]!.int64s())
    }

    /// The float32 exports' cache growth, Concat(past, new, axis 2) → present (plus a Shape
    /// reader), against one AppendKV that does not round: bit-identical (values float16 cannot
    /// hold), and appending in place when the past is a view with room. 9,000 positions make a
    /// cache of over 2 MB, which is allocated in huge pages (`HugePages`).
    @Test(arguments: [0, 1, 37, 9000])
    func appendKVEqualsFloat32Concat(_ pastLength: Int) throws {
        var rng = SeededRandom(seed: UInt64(pastLength + 5))
        let (h, d) = (2, 24)
        func rows(_ n: Int) -> Tensor {
            Tensor((0..<(h * n * d)).map { _ in Float.random(in: -3...3, using: &rng) }, shape: [1, h, n, d])
        }
        let dims: [ShapeDimension] = [.value(1), .value(Int64(h)), .param("past"), .value(Int64(d))]
        let graph = try Graph(nodes: [
            Node(name: "concat", opType: "Concat", inputs: ["past", "new"], outputs: ["present"], attributes: attrs(attr("axis", int: -2))),
            Node(name: "shape", opType: "Shape", inputs: ["present"], outputs: ["shape"]),
        ], constants: [:],
        inputs: [ValueSpec(name: "past", elementType: .float, shape: dims), ValueSpec(name: "new", elementType: .float, shape: nil)],
        outputs: [ValueSpec(name: "present", elementType: .float, shape: nil), ValueSpec(name: "shape", elementType: .int64, shape: nil)],
        opsets: ["": 18])
        var plain = SessionOptions()
        plain.passes.subtract(GraphPass.fusions)
        let reference = try Session(graph: graph, options: plain), session = try Session(graph: graph)
        #expect(session.graph.nodes.map(\.opType).sorted() == ["AppendKV", "Shape"])
        let past = rows(pastLength), new = rows(1)
        let p1 = try session.run(["past": past, "new": new], keepingCacheViews: true)["present"]!
        #expect(p1.shape == [1, h, pastLength + 1, d] && p1.cacheCapacity != nil && !p1.storesHalf)
        #expect(p1.floats() == (try reference.run(["past": past, "new": new])["present"]!.floats()))
        // The next step appends into the same storage; values as the plain Concat's.
        let n2 = rows(1)
        let p2 = try session.run(["past": p1, "new": n2], keepingCacheViews: true)["present"]!
        #expect(p2.storage === p1.storage && p2.shape == [1, h, pastLength + 2, d])
        #expect(p2.floats() == (try reference.run(["past": p1.contiguous(), "new": n2])["present"]!.floats()))
        // float16 rows are not a float32 Concat's: refused (the feed check names the declared type).
        let half = Tensor(float16s: [Float16](repeating: 1, count: h * d), shape: [1, h, 1, d])
        #expect(throws: (any Error).self) { try session.run(["past": past, "new": half]) }
    }

    /// The in-place KV cache: `present` comes back as a view with room (when asked), feeding it
    /// back appends into that room without moving the history, a past that was already extended
    /// (a repeated step) or a full cache is copied instead, and every value equals the op-by-op
    /// Cast → Concat → Cast graph's on contiguous tensors.
    @Test func appendKVAppendsInPlaceAndCopiesWhenItMust() throws {
        var rng = SeededRandom(seed: 11)
        let (h, d) = (2, 16)
        var to16 = AttributeProto(); to16.name = "to"; to16.kind = .int; to16.i = Int64(DataType.float16.rawValue)
        var to32 = AttributeProto(); to32.name = "to"; to32.kind = .int; to32.i = Int64(DataType.float.rawValue)
        let graph = try Graph(nodes: [
            Node(name: "down", opType: "Cast", inputs: ["past"], outputs: ["past16"], attributes: ["to": to16]),
            Node(name: "concat", opType: "Concat", inputs: ["past16", "new"], outputs: ["all16"], attributes: attrs(attr("axis", int: 2))),
            Node(name: "up", opType: "Cast", inputs: ["all16"], outputs: ["present"], attributes: ["to": to32]),
        ], constants: [:],
        inputs: [ValueSpec(name: "past", elementType: .float, shape: nil), ValueSpec(name: "new", elementType: .float16, shape: nil)],
        outputs: [ValueSpec(name: "present", elementType: .float, shape: nil)], opsets: ["": 18])
        var plain = SessionOptions()
        plain.passes.subtract(GraphPass.fusions)
        let reference = try Session(graph: graph, options: plain), session = try Session(graph: graph)
        func newRows(_ n: Int) -> Tensor {
            Tensor(float16s: (0..<(h * n * d)).map { _ in Float16(Float.random(in: -3...3, using: &rng)) }, shape: [1, h, n, d])
        }
        func expected(_ past: Tensor, _ new: Tensor) throws -> [Float] {
            try reference.run(["past": past.contiguous(), "new": new])["present"]!.floats()
        }

        // A prompt of 5 positions: contiguous by default, a view with room when asked.
        let past0 = Tensor.zeros(.float, shape: [1, h, 0, d]), prompt = newRows(5)
        #expect(try session.run(["past": past0, "new": prompt])["present"]!.isContiguous)
        let p1 = try session.run(["past": past0, "new": prompt], keepingCacheViews: true)["present"]!
        #expect(p1.shape == [1, h, 5, d] && p1.cacheCapacity == AppendKVOperator.capacity(for: 5))
        #expect(try p1.floats() == expected(past0, prompt))
        // Its values are float16 ones: stored as float16, 2 bytes each.
        #expect(p1.storesHalf && p1.storage.byteCount == h * p1.cacheCapacity! * d * 2)

        // The next step appends in place: same storage, values as the reference's.
        let n2 = newRows(1)
        let p2 = try session.run(["past": p1, "new": n2], keepingCacheViews: true)["present"]!
        #expect(p2.storage === p1.storage && p2.shape == [1, h, 6, d])
        let p2Values = try expected(p1, n2)
        #expect(p2.floats() == p2Values)
        #expect(try p1.floats() == expected(past0, prompt), "the shorter view still reads its positions")

        // The same step again from p1 (another continuation): p1's room is taken, so a copy;
        // p2 keeps its values.
        let n3 = newRows(1)
        let p3 = try session.run(["past": p1, "new": n3], keepingCacheViews: true)["present"]!
        #expect(p3.storage !== p1.storage)
        #expect(try p3.floats() == expected(p1, n3))
        #expect(p2.floats() == p2Values)

        // A view cut back to 3 positions (a shared chat prefix) is a view; appending to it copies.
        let cut = p2.sliced(axis: 2, 0..<3)
        #expect(cut.storage === p2.storage && cut.shape == [1, h, 3, d])
        let n4 = newRows(2)
        let p4 = try session.run(["past": cut, "new": n4], keepingCacheViews: true)["present"]!
        #expect(try p4.storage !== p2.storage && p4.floats() == expected(cut, n4))

        // Growing past the room: in place until full, then one copy into a larger cache.
        var cache = p2, copies = 0
        var history = p2.floats()
        while cache.shape[2] < p2.cacheCapacity! + 10 {
            let step = newRows(3)
            let next = try session.run(["past": cache, "new": step], keepingCacheViews: true)["present"]!
            if next.storage !== cache.storage { copies += 1 }
            let want = try expected(cache, step)
            #expect(next.floats() == want)
            // Per head: the old positions, then the new ones.
            #expect(Array(want[0..<(cache.shape[2] * d)]) == Array(history[0..<(cache.shape[2] * d)]))
            history = want
            cache = next
        }
        #expect(copies == 1 && cache.cacheCapacity! >= cache.shape[2])
    }

    /// A KV-cache view fed to an op that does not read views (here Add) reaches it as a
    /// contiguous copy.
    @Test func cacheViewsReachOtherOperatorsContiguous() throws {
        let storage = TensorStorage(byteCount: 2 * 8 * 8 * 4, cacheLength: 3)
        let values = (0..<(2 * 8 * 8)).map { Float($0) / 64 }
        storage.data.copyMemory(from: values, byteCount: values.count * 4)
        let view = Tensor(dtype: .float, cacheShape: [1, 2, 3, 8], capacity: 8, storage: storage)
        // Head 0: positions 0..2 at floats 0..23; head 1 starts at 8 · 8 = 64.
        let contiguous = (Array(0..<24) + Array(64..<88)).map { Float($0) / 64 }
        #expect(view.floats() == contiguous && !view.isContiguous && view.contiguous().isContiguous)
        let graph = try Graph(nodes: [Node(name: "add", opType: "Add", inputs: ["x", "zero"], outputs: ["y"])],
                              constants: ["zero": Tensor([0], shape: [])],
                              inputs: [ValueSpec(name: "x", elementType: .float, shape: nil)],
                              outputs: [ValueSpec(name: "y", elementType: .float, shape: nil)], opsets: ["": 18])
        #expect(try Session(graph: graph).run(["x": view])["y"]!.floats() == contiguous)
        // FusedAttention reads K and V views in place: the same result as from contiguous copies.
        var rng = SeededRandom(seed: 5)
        let q = Tensor((0..<(4 * 1 * 8)).map { _ in Float.random(in: -1...1, using: &rng) }, shape: [1, 4, 1, 8])
        let fromView = try runOp("FusedAttention", domain: PrivateOps.domain, [q, view, view, Tensor([0.5], shape: []), nil])[0]
        let fromCopy = try runOp("FusedAttention", domain: PrivateOps.domain,
                                 [q, view.contiguous(), view.contiguous(), Tensor([0.5], shape: []), nil])[0]
        #expect(fromView.floats() == fromCopy.floats())
        // A view where only contiguous tensors are expected (Q here) is read as its values.
        let qView = try runOp("FusedAttention", domain: PrivateOps.domain,
                              [view, view.contiguous(), view.contiguous(), Tensor([0.5], shape: []), nil])[0]
        let qCopy = try runOp("FusedAttention", domain: PrivateOps.domain,
                              [view.contiguous(), view.contiguous(), view.contiguous(), Tensor([0.5], shape: []), nil])[0]
        #expect(qView.floats() == qCopy.floats())
        // .npy files hold a view's values, not its storage.
        let viewFile = try NumPy.encode(view), copyFile = try NumPy.encode(view.contiguous())
        #expect(viewFile == copyFile)
    }

    /// A KV-cache view stored as float16 (`Tensor.storesHalf`, what a rounding AppendKV makes)
    /// reads as its float32 values everywhere: `floats()`, an operator that takes contiguous
    /// tensors, .npy files, and FusedAttention, which reads the float16 storage in place —
    /// decode (one position, two query heads per key/value head: the keys staged once for both)
    /// and prefill (the GEMM form) — with exactly the results of the widened float32 copy.
    @Test func halfStoredCacheViewsReadAsTheirFloat32Values() throws {
        var rng = SeededRandom(seed: 21)
        let (kvh, t, capacity, d) = (2, 70, 96, 64)
        let halves = (0..<(kvh * capacity * d)).map { _ in Float16(Float.random(in: -2...2, using: &rng)) }
        let storage = TensorStorage(byteCount: halves.count * 2, cacheLength: t)
        storage.data.copyMemory(from: halves, byteCount: halves.count * 2)
        let view = Tensor(dtype: .float, cacheShape: [1, kvh, t, d], capacity: capacity, storage: storage, storesHalf: true)
        var widened: [Float] = []
        for g in 0..<kvh {
            let head = halves[(g * capacity * d)..<(g * capacity * d + t * d)]
            widened += head.map { Float($0) }
        }
        #expect(view.floats() == widened && view.contiguous().isContiguous && !view.contiguous().storesHalf)
        let cut = view.sliced(axis: 2, 0..<9)
        #expect(cut.storesHalf && cut.storage === storage && cut.shape == [1, kvh, 9, d])
        let graph = try Graph(nodes: [Node(name: "add", opType: "Add", inputs: ["x", "zero"], outputs: ["y"])],
                              constants: ["zero": Tensor([0], shape: [])],
                              inputs: [ValueSpec(name: "x", elementType: .float, shape: nil)],
                              outputs: [ValueSpec(name: "y", elementType: .float, shape: nil)], opsets: ["": 18])
        #expect(try Session(graph: graph).run(["x": view])["y"]!.floats() == widened)
        #expect(try NumPy.encode(view) == NumPy.encode(view.contiguous()))
        let copy = view.contiguous(), scale = Tensor([0.35], shape: [])
        for s in [1, 40] {
            let q = Tensor((0..<(4 * s * d)).map { _ in Float.random(in: -2...2, using: &rng) }, shape: [1, 4, s, d])
            let fromView = try runOp("FusedAttention", domain: PrivateOps.domain, [q, view, view, scale, nil])[0]
            let fromCopy = try runOp("FusedAttention", domain: PrivateOps.domain, [q, copy, copy, scale, nil])[0]
            #expect(fromView.floats() == fromCopy.floats(), "\(s) positions")
        }
    }

    /// The MLP gate, op by op (`Mul(Mul(X, Sigmoid(X)), U)`, both operand orders), against the
    /// fused SiLUMul: bit-identical, threaded over a large tensor, broadcasting when shapes differ;
    /// not fused when an intermediate is read elsewhere.
    @Test(arguments: [([1, 128, 4864], [1, 128, 4864], false), ([1, 1, 200], [1, 1, 200], true), ([2, 3, 8], [8], false)])
    func siluMulFusionIsBitIdentical(_ c: (x: [Int], u: [Int], swapped: Bool)) throws {
        var rng = SeededRandom(seed: UInt64(c.x.reduce(1, *)))
        let x = Tensor((0..<c.x.reduce(1, *)).map { _ in Float.random(in: -12...12, using: &rng) }, shape: c.x)
        let u = Tensor((0..<c.u.reduce(1, *)).map { _ in Float.random(in: -3...3, using: &rng) }, shape: c.u)
        func graph(extraOutput: Bool) throws -> Graph {
            let nodes = [
                Node(name: "sig", opType: "Sigmoid", inputs: ["x"], outputs: ["s"]),
                Node(name: "silu", opType: "Mul", inputs: c.swapped ? ["s", "x"] : ["x", "s"], outputs: ["m"]),
                Node(name: "gate", opType: "Mul", inputs: c.swapped ? ["u", "m"] : ["m", "u"], outputs: ["y"]),
            ]
            return try Graph(nodes: nodes, constants: [:],
                             inputs: [ValueSpec(name: "x", elementType: .float, shape: nil), ValueSpec(name: "u", elementType: .float, shape: nil)],
                             outputs: [ValueSpec(name: "y", elementType: .float, shape: nil)]
                                 + (extraOutput ? [ValueSpec(name: "m", elementType: .float, shape: nil)] : []),
                             opsets: ["": 18])
        }
        var plain = SessionOptions()
        plain.passes.subtract(GraphPass.fusions)
        let expected = try Session(graph: graph(extraOutput: false), options: plain).run(["x": x, "u": u])["y"]!
        let session = try Session(graph: graph(extraOutput: false))
        #expect(session.graph.nodes.map(\.opType) == ["SiLUMul"])
        let actual = try session.run(["x": x, "u": u])["y"]!
        #expect(actual.shape == expected.shape)
        #expect(actual.floats() == expected.floats())
        // The product x·σ(x) is a graph output: nothing to fuse.
        #expect(try Session(graph: graph(extraOutput: true)).graph.nodes.map(\.opType) == ["Sigmoid", "Mul", "Mul"])
    }

    /// The exports' RMSNorm, op by op, against the fused RMSNorm: bit-identical (rows four at a
    /// time, and the rows left over, one at a time).
    @Test(arguments: [(1, 896), (5, 64), (3, 7), (9, 896)])
    func rmsNormFusionIsBitIdentical(_ shape: (rows: Int, width: Int)) throws {
        var rng = SeededRandom(seed: UInt64(shape.width))
        let x = Tensor((0..<(shape.rows * shape.width)).map { _ in Float.random(in: -4...4, using: &rng) }, shape: [1, shape.rows, shape.width])
        let w = Tensor((0..<shape.width).map { _ in Float.random(in: 0.5...1.5, using: &rng) }, shape: [shape.width])
        let constants: [String: Tensor] = [
            "two": Tensor([2], shape: []), "axes": Tensor(int64s: [-1], shape: [1]),
            "eps": Tensor([Float(Float16(1e-6))], shape: []), "one": Tensor([1], shape: []), "w": w,
        ]
        let nodes = [
            Node(name: "pow", opType: "Pow", inputs: ["x", "two"], outputs: ["sq"]),
            Node(name: "mean", opType: "ReduceMean", inputs: ["sq", "axes"], outputs: ["ms"], attributes: attrs(attr("keepdims", int: 1))),
            Node(name: "add", opType: "Add", inputs: ["ms", "eps"], outputs: ["mse"]),
            Node(name: "sqrt", opType: "Sqrt", inputs: ["mse"], outputs: ["rms"]),
            Node(name: "div", opType: "Div", inputs: ["one", "rms"], outputs: ["inv"]),
            Node(name: "mul", opType: "Mul", inputs: ["x", "inv"], outputs: ["normed"]),
            Node(name: "scale", opType: "Mul", inputs: ["w", "normed"], outputs: ["y"]),
        ]
        let graph = try Graph(nodes: nodes, constants: constants, inputs: [ValueSpec(name: "x", elementType: .float, shape: nil)],
                              outputs: [ValueSpec(name: "y", elementType: .float, shape: nil)], opsets: ["": 18])
        var plain = SessionOptions()
        plain.passes.subtract(GraphPass.fusions)
        let expected = try Session(graph: graph, options: plain).run(["x": x])["y"]!
        let session = try Session(graph: graph)
        #expect(session.graph.nodes.map(\.opType) == ["RMSNorm"])
        let actual = try session.run(["x": x])["y"]!
        #expect(actual.shape == x.shape)
        #expect(actual.floats() == expected.floats())
    }
}
