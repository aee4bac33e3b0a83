import ONNX
import Kernels
import Testing
@testable import Runtime

/// `ShapeFolding` (shape arithmetic → one `ShapeProgram`) and `CommonSubexpressions`: the folded
/// session computes the same outputs as the op-by-op graph for several batch, sequence and past
/// sizes, fails where it fails, and refuses feeds that disagree on a named dimension.
struct ShapeFoldingTests {
    static func int64s(_ v: [Int64]) -> Tensor { Tensor(int64s: v, shape: [v.count]) }

    /// A decoder's shape chains in miniature, over inputs x [batch, seq, 8], past [batch, 2, past, 4]
    /// and mask [batch, total]: a Reshape to [b, s, 2, -1] from Shape/Gather/Unsqueeze/Concat, a
    /// cache Concat, a Slice whose end is half the cache length (symbolic Div), a Range over that
    /// length, the exports' Expand spelling (ConstantOfShape → Mul(-1) → Equal → Where), the mask
    /// sliced by two "layers" with their own copies of the same constants (merged) and cast, and an int64
    /// graph output computed from shapes alone.
    static func graph() throws -> Graph {
        var one = TensorProto()
        one.dataType = ElementType.int64.rawValue
        one.dims = [1]
        one.payload = .int64s([1])
        var value = AttributeProto()
        value.name = "value"
        value.kind = .tensor
        value.t = one
        var nodes = [
            Node(name: "shape", opType: "Shape", inputs: ["x"], outputs: ["xs"]),
            Node(name: "b", opType: "Gather", inputs: ["xs", "i0"], outputs: ["b"], attributes: attrs(attr("axis", int: 0))),
            Node(name: "s", opType: "Gather", inputs: ["xs", "i1"], outputs: ["s"], attributes: attrs(attr("axis", int: 0))),
            Node(name: "ub", opType: "Unsqueeze", inputs: ["b", "axes0"], outputs: ["ub"]),
            Node(name: "us", opType: "Unsqueeze", inputs: ["s", "axes0"], outputs: ["us"]),
            Node(name: "target", opType: "Concat", inputs: ["ub", "us", "two", "minus1"], outputs: ["target"], attributes: attrs(attr("axis", int: 0))),
            Node(name: "reshape", opType: "Reshape", inputs: ["x", "target"], outputs: ["y"]),
            Node(name: "transpose", opType: "Transpose", inputs: ["y"], outputs: ["yT"], attributes: attrs(attr("perm", ints: [0, 2, 1, 3]))),
            Node(name: "cache", opType: "Concat", inputs: ["past", "yT"], outputs: ["kv"], attributes: attrs(attr("axis", int: 2))),
            Node(name: "kvShape", opType: "Shape", inputs: ["kv"], outputs: ["kvs"]),
            Node(name: "T", opType: "Gather", inputs: ["kvs", "i2"], outputs: ["T"], attributes: attrs(attr("axis", int: 0))),
            Node(name: "half", opType: "Div", inputs: ["T", "two0"], outputs: ["halfT"]),
            Node(name: "uhalf", opType: "Unsqueeze", inputs: ["halfT", "axes0"], outputs: ["uhalf"]),
            Node(name: "slice", opType: "Slice", inputs: ["kv", "zero", "uhalf", "axis2"], outputs: ["sliced"]),
            Node(name: "range", opType: "Range", inputs: ["zero0", "T", "one0"], outputs: ["r"]),
            Node(name: "rangeFloat", opType: "Cast", inputs: ["r"], outputs: ["rf"], attributes: attrs(attr("to", int: 1))),
            Node(name: "targetShape", opType: "Shape", inputs: ["target"], outputs: ["ts"]),
            Node(name: "ones", opType: "ConstantOfShape", inputs: ["ts"], outputs: ["ones"], attributes: ["value": value]),
            Node(name: "negOnes", opType: "Mul", inputs: ["ones", "minus1"], outputs: ["negOnes"]),
            Node(name: "isInferred", opType: "Equal", inputs: ["target", "negOnes"], outputs: ["isInferred"]),
            Node(name: "expandShape", opType: "Where", inputs: ["isInferred", "ones", "target"], outputs: ["expandShape"]),
            Node(name: "expand", opType: "Expand", inputs: ["row", "expandShape"], outputs: ["expanded"]),
            Node(name: "uT", opType: "Unsqueeze", inputs: ["T", "axes0"], outputs: ["uT"]),
            // The lengths of the symbolic Slice and Range, read back through Shape.
            Node(name: "slicedShape", opType: "Shape", inputs: ["sliced"], outputs: ["slicedShape"]),
            Node(name: "rangeShape", opType: "Shape", inputs: ["r"], outputs: ["rangeShape"]),
            Node(name: "lengths", opType: "Concat", inputs: ["ub", "uT", "slicedShape", "rangeShape"], outputs: ["lengths"],
                 attributes: attrs(attr("axis", int: 0))),
        ]
        for layer in 0..<2 {
            nodes.append(Node(name: "mask\(layer)", opType: "Slice", inputs: ["mask", "zero", "uT", "axis1_\(layer)"], outputs: ["maskSlice\(layer)"]))
            nodes.append(Node(name: "maskFloat\(layer)", opType: "Cast", inputs: ["maskSlice\(layer)"], outputs: ["maskFloat\(layer)"],
                              attributes: attrs(attr("to", int: 1))))
        }
        let constants: [String: Tensor] = [
            "i0": Tensor.scalar(Int64(0)), "i1": Tensor.scalar(Int64(1)), "i2": Tensor.scalar(Int64(2)),
            "axes0": int64s([0]), "two": int64s([2]), "minus1": int64s([-1]), "two0": Tensor.scalar(Int64(2)),
            "zero": int64s([0]), "axis2": int64s([2]), "zero0": Tensor.scalar(Int64(0)), "one0": Tensor.scalar(Int64(1)),
            "row": Tensor([1, 2, 3, 4] as [Float], shape: [4]),
            "axis1_0": int64s([1]), "axis1_1": int64s([1]),
        ]
        return try Graph(nodes: nodes, constants: constants,
                         inputs: [ValueSpec(name: "x", elementType: .float, shape: [.param("batch"), .param("seq"), .value(8)]),
                                  ValueSpec(name: "past", elementType: .float, shape: [.param("batch"), .value(2), .param("past"), .value(4)]),
                                  ValueSpec(name: "mask", elementType: .int64, shape: [.param("batch"), .param("total")])],
                         outputs: ["y", "kv", "sliced", "rf", "expanded", "lengths", "maskFloat0", "maskFloat1"].map {
                             ValueSpec(name: $0, elementType: nil, shape: nil)
                         },
                         opsets: ["": 18])
    }

    static func feeds(batch: Int, seq: Int, past: Int) -> [String: Tensor] {
        var rng = SeededRandom(seed: UInt64(batch * 100 + seq * 10 + past))
        return ["x": Tensor(randomFloats(batch * seq * 8, &rng), shape: [batch, seq, 8]),
                "past": Tensor(randomFloats(batch * 2 * past * 4, &rng), shape: [batch, 2, past, 4]),
                "mask": Tensor(int64s: (0..<(batch * (past + seq))).map { Int64($0) }, shape: [batch, past + seq])]
    }

    static func opByOp(_ graph: Graph) throws -> Session {
        var options = SessionOptions()
        options.passes.subtract([.shapeFolding, .commonSubexpressions])
        return try Session(graph: graph, options: options)
    }

    @Test(arguments: [(1, 1, 0), (1, 1, 5), (1, 3, 5), (2, 4, 7), (3, 2, 1)])
    func foldedEqualsTheOpByOpGraph(_ c: (batch: Int, seq: Int, past: Int)) throws {
        let graph = try Self.graph()
        let folded = try Session(graph: graph)
        let ops = folded.graph.nodes.map(\.opType)
        #expect(ops.filter { $0 == ShapeFolding.opType }.count == 1, "\(ops)")
        for gone in ["Shape", "Gather", "Unsqueeze", "Div", "ConstantOfShape", "Equal", "Where"] {
            #expect(!ops.contains(gone), "\(gone) left in \(ops)")
        }
        // The two layers' mask Slices are one node now (their Casts make graph outputs: both
        // stay); the cache Slice stays.
        #expect(ops.filter { $0 == "Slice" }.count == 2, "\(ops)")

        let feeds = Self.feeds(batch: c.batch, seq: c.seq, past: c.past)
        let expected = try Self.opByOp(graph).run(feeds)
        let actual = try folded.run(feeds)
        #expect(Set(actual.keys) == Set(expected.keys))
        for (name, e) in expected {
            let a = try #require(actual[name])
            #expect(a.dtype == e.dtype && a.shape == e.shape, "\(name): \(a.dtype)\(a.shape) vs \(e.dtype)\(e.shape)")
            #expect(Array(UnsafeRawBufferPointer(start: a.rawPointer, count: a.byteCount))
                    == Array(UnsafeRawBufferPointer(start: e.rawPointer, count: e.byteCount)), "\(name)")
        }
        let t = Int64(c.past + c.seq)
        #expect(actual["lengths"]!.int64s() == [Int64(c.batch), t, Int64(c.batch), 2, t / 2, 4, t])
        #expect(actual["sliced"]!.shape == [c.batch, 2, (c.past + c.seq) / 2, 4])
    }

    /// A Reshape that cannot be done (no sequence: -1 of 0 elements) fails in both forms.
    @Test func failuresStayFailures() throws {
        let graph = try Self.graph()
        let feeds = Self.feeds(batch: 1, seq: 0, past: 3)
        #expect(throws: (any Error).self) { try Self.opByOp(graph).run(feeds) }
        #expect(throws: (any Error).self) { try Session(graph: graph).run(feeds) }
    }

    /// A symbolic divisor that is zero at run time: the program fails as Div would.
    @Test func divisionByZeroFails() throws {
        let nodes = [
            Node(name: "shape", opType: "Shape", inputs: ["x"], outputs: ["xs"]),
            Node(name: "a", opType: "Gather", inputs: ["xs", "i0"], outputs: ["a"], attributes: attrs(attr("axis", int: 0))),
            Node(name: "b", opType: "Gather", inputs: ["xs", "i1"], outputs: ["b"], attributes: attrs(attr("axis", int: 0))),
            Node(name: "div", opType: "Div", inputs: ["a", "b"], outputs: ["q"]),
            Node(name: "uq", opType: "Unsqueeze", inputs: ["q", "axes0"], outputs: ["uq"]),
            Node(name: "expand", opType: "Expand", inputs: ["row", "uq"], outputs: ["y"]),
        ]
        let graph = try Graph(nodes: nodes,
                              constants: ["i0": Tensor.scalar(Int64(0)), "i1": Tensor.scalar(Int64(1)), "axes0": Self.int64s([0]),
                                          "row": Tensor([5] as [Float], shape: [1])],
                              inputs: [ValueSpec(name: "x", elementType: .float, shape: [.param("a"), .param("b")])],
                              outputs: [ValueSpec(name: "y", elementType: nil, shape: nil)], opsets: ["": 18])
        let folded = try Session(graph: graph)
        #expect(folded.graph.nodes.map(\.opType) == [ShapeFolding.opType, "Expand"])
        #expect(try folded.run(["x": Tensor.zeros(.float, shape: [6, 2])])["y"]!.floats() == [5, 5, 5])
        #expect(throws: (any Error).self) { try Self.opByOp(graph).run(["x": Tensor.zeros(.float, shape: [3, 0])]) }
        #expect(throws: (any Error).self) { try folded.run(["x": Tensor.zeros(.float, shape: [3, 0])]) }
    }

    /// Feeds declaring the same dimension name with different sizes are refused, naming the input.
    @Test func namedDimensionsMustAgree() throws {
        var feeds = Self.feeds(batch: 1, seq: 2, past: 3)
        feeds["mask"] = Tensor(int64s: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], shape: [2, 5])
        do {
            _ = try Session(graph: try Self.graph()).run(feeds)
            Issue.record("feeds with batch 1 and 2 were accepted")
        } catch RuntimeError.invalidFeed(let name, let reason) {
            #expect(name == "mask" && reason.contains("batch"), "\(name): \(reason)")
        }
    }

    /// ShapeProgram nodes in a model file are checked when the session is planned: a term reading
    /// a later term, a dimension of a missing input, an unknown code, an output too large (its
    /// element count would overflow), an output reading a term that does not exist.
    @Test(arguments: [
        ([0, 7, 0, 0, 3, 0, 1, 0], [7, 1, 1, 1]),
        ([1, 5, 0, 0], [7, 1, 1, 0]),
        ([0, 7, 0, 0, 99, 0, 0, 0], [7, 1, 1, 0]),
        ([0, 7, 0, 0], [7, 8, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 0]),
        ([0, 7, 0, 0], [7, 1, 1, 3]),
    ] as [([Int64], [Int64])])
    func malformedProgramsAreRefused(_ c: (terms: [Int64], outputs: [Int64])) throws {
        var terms = AttributeProto()
        terms.name = "terms"; terms.kind = .ints; terms.ints = c.terms
        var outputs = AttributeProto()
        outputs.name = "outputs"; outputs.kind = .ints; outputs.ints = c.outputs
        let node = Node(name: "program", opType: ShapeFolding.opType, domain: PrivateOps.domain, inputs: ["x"], outputs: ["y"],
                        attributes: ["terms": terms, "outputs": outputs])
        let graph = try Graph(nodes: [node], constants: [:], inputs: [ValueSpec(name: "x", elementType: .float, shape: nil)],
                              outputs: [ValueSpec(name: "y", elementType: nil, shape: nil)], opsets: ["": 18, PrivateOps.domain: 1])
        #expect(throws: RuntimeError.self) { try Session(graph: graph) }
    }
}
