import ONNX
import Kernels
import Testing
@testable import Runtime

/// The exports' rotary embedding, `Add(Mul(x, cos), Mul(Concat(Neg(Slice(x, h, end)), Slice(x, 0, h)), sin))`,
/// against the one `Rotary` node `RotaryFusion` makes of it: bit for bit, with the Slices' bounds
/// given at run time (as the exports compute them), for decode and prefill shapes and several
/// cos/sin layouts, and through the op-by-op fallback when the bounds are not the halves.
struct RotaryTests {
    /// The pattern as HF's `apply_rotary_pos_emb` exports it (operand orders as in the Qwen2 export,
    /// or swapped), plus an extra reader of the Neg's output when `leak` (then it cannot be fused).
    /// With `constantHalf`, the middle bound is a constant (as `ShapeFolding` leaves the exports'):
    /// the operator reads the bounds once when planned.
    static func graph(swapped: Bool = false, leak: Bool = false, constantHalf: Int? = nil) throws -> Graph {
        var nodes = [
            Node(name: "direct", opType: "Mul", inputs: swapped ? ["cos", "x"] : ["x", "cos"], outputs: ["direct"]),
            Node(name: "kept", opType: "Slice", inputs: ["x", "zero", "half", "axis", "one"], outputs: ["kept"]),
            Node(name: "second", opType: "Slice", inputs: ["x", "half", "end", "axis", "one"], outputs: ["second"]),
            Node(name: "neg", opType: "Neg", inputs: ["second"], outputs: ["negated"]),
            Node(name: "concat", opType: "Concat", inputs: ["negated", "kept"], outputs: ["rotated"], attributes: attrs(attr("axis", int: -1))),
            Node(name: "rotatedSin", opType: "Mul", inputs: swapped ? ["sin", "rotated"] : ["rotated", "sin"], outputs: ["rotatedSin"]),
            Node(name: "add", opType: "Add", inputs: swapped ? ["rotatedSin", "direct"] : ["direct", "rotatedSin"], outputs: ["y"]),
        ]
        var outputs = [ValueSpec(name: "y", elementType: .float, shape: nil)]
        if leak {
            nodes.append(Node(name: "leak", opType: "Abs", inputs: ["negated"], outputs: ["leaked"]))
            outputs.append(ValueSpec(name: "leaked", elementType: .float, shape: nil))
        }
        var constants = ["zero": Tensor(int64s: [0], shape: [1]), "end": Tensor(int64s: [Int64.max], shape: [1]),
                         "axis": Tensor(int64s: [3], shape: [1]), "one": Tensor(int64s: [1], shape: [1])]
        var inputs = [ValueSpec(name: "x", elementType: .float, shape: nil), ValueSpec(name: "cos", elementType: .float, shape: nil),
                      ValueSpec(name: "sin", elementType: .float, shape: nil)]
        if let constantHalf {
            constants["half"] = Tensor(int64s: [Int64(constantHalf)], shape: [1])
        } else {
            inputs.append(ValueSpec(name: "half", elementType: .int64, shape: nil))
        }
        return try Graph(nodes: nodes, constants: constants, inputs: inputs, outputs: outputs, opsets: ["": 18])
    }

    static func feeds(heads: Int, s: Int, d: Int, cosShape: [Int], half: Int, seed: UInt64) -> [String: Tensor] {
        var rng = SeededRandom(seed: seed)
        let n = cosShape.reduce(1, *)
        return ["x": Tensor(randomFloats(heads * s * d, &rng, in: -4...4), shape: [1, heads, s, d]),
                "cos": Tensor(randomFloats(n, &rng), shape: cosShape), "sin": Tensor(randomFloats(n, &rng), shape: cosShape),
                "half": Tensor(int64s: [Int64(half)], shape: [1])]
    }

    static func compare(_ graph: Graph, _ feeds: [String: Tensor], fused expectFused: Bool) throws {
        var plain = SessionOptions()
        plain.passes.subtract(GraphPass.fusions)
        let expected = try Session(graph: graph, options: plain).run(feeds)
        let session = try Session(graph: graph)
        let ops = session.graph.nodes.map(\.opType)
        #expect(ops.contains(RotaryFusion.opType) == expectFused, "\(ops)")
        if expectFused { #expect(!ops.contains("Slice") && !ops.contains("Neg") && !ops.contains("Concat"), "\(ops)") }
        let actual = try session.run(feeds)
        #expect(actual["y"]!.shape == expected["y"]!.shape)
        #expect(actual["y"]!.floats() == expected["y"]!.floats())
    }

    /// Decode (one position) and prefill shapes, cos/sin per position broadcast over heads
    /// ([1, 1, S, D]), without the leading ones ([S, D]), or per head ([1, H, S, D]).
    /// (14 heads × 64 positions: 896 rows, two parallel chunks, the second starting mid-tensor.)
    @Test(arguments: [(3, 1, 64), (3, 7, 64), (3, 5, 8), (3, 130, 64), (14, 64, 64)], [false, true])
    func fusedEqualsTheOpByOpForm(_ c: (heads: Int, s: Int, d: Int), swapped: Bool) throws {
        let heads = c.heads
        for cosShape in [[1, 1, c.s, c.d], [c.s, c.d], [1, heads, c.s, c.d]] {
            try Self.compare(try Self.graph(swapped: swapped),
                             Self.feeds(heads: heads, s: c.s, d: c.d, cosShape: cosShape, half: c.d / 2, seed: UInt64(c.s * 100 + c.d)),
                             fused: true)
        }
    }

    /// Constant bounds, read when the session is planned: the halves (fused), and a cut at 3 of 8
    /// (the op-by-op form), for decode and prefill shapes.
    @Test(arguments: [(3, 1, 64), (14, 1, 64), (3, 7, 8)], [true, false])
    func constantBounds(_ c: (heads: Int, s: Int, d: Int), halves: Bool) throws {
        var feeds = Self.feeds(heads: c.heads, s: c.s, d: c.d, cosShape: [1, 1, c.s, c.d], half: 0, seed: UInt64(c.heads + c.d))
        feeds["half"] = nil
        let graph = try Self.graph(constantHalf: halves ? c.d / 2 : 3)
        let op = try #require(try Session(graph: graph).graph.nodes.first { $0.opType == RotaryFusion.opType })
        let rotary = try #require(try OperatorRegistry.make(op, opsets: ["": 18, PrivateOps.domain: 1], constants: graph.constants) as? RotaryOperator)
        #expect(rotary.constantBounds != nil)
        try Self.compare(graph, feeds, fused: true)
    }

    /// Bounds that are not the halves (the Slices cut at 3 of 8): the op-by-op fallback.
    @Test func otherBoundsTakeTheOpByOpForm() throws {
        try Self.compare(try Self.graph(), Self.feeds(heads: 2, s: 3, d: 8, cosShape: [1, 1, 3, 8], half: 3, seed: 4), fused: true)
    }

    /// An intermediate read outside the pattern keeps the op-by-op nodes.
    @Test func intermediatesReadElsewhereAreNotFused() throws {
        try Self.compare(try Self.graph(leak: true), Self.feeds(heads: 2, s: 2, d: 8, cosShape: [1, 1, 2, 8], half: 4, seed: 5),
                         fused: false)
    }
}
