import Foundation
import Testing
@testable import Runtime

@Suite struct GraphTests {
    func spec(_ name: String) -> ValueSpec { ValueSpec(name: name, elementType: .float, shape: nil) }

    @Test func nodesOutOfOrderAreSortedAndIntermediatesReleased() throws {
        // y = (x + x) * x, written consumer first.
        let nodes = [
            Node(name: "mul", opType: "Mul", inputs: ["s", "x"], outputs: ["y"]),
            Node(name: "add", opType: "Add", inputs: ["x", "x"], outputs: ["s"]),
        ]
        let g = try Graph(nodes: nodes, constants: [:], inputs: [spec("x")], outputs: [spec("y")], opsets: ["": 18])
        #expect(g.nodes.map(\.name) == ["add", "mul"])
        let session = try Session(graph: g)
        let y = try session.run(["x": Tensor([1, 2], shape: [2])])["y"]!
        #expect(y.floats() == [2, 8])
        // After "mul", both "s" (intermediate) and "x" (input, last read here) are released.
        #expect(session.steps[1].releases.count == 2)
    }

    @Test func cyclesUndefinedInputsAndDuplicateOutputsAreRefused() throws {
        let cycle = [
            Node(name: "a", opType: "Neg", inputs: ["b_out"], outputs: ["a_out"]),
            Node(name: "b", opType: "Neg", inputs: ["a_out"], outputs: ["b_out"]),
        ]
        #expect(throws: RuntimeError.self) { try Graph(nodes: cycle, constants: [:], inputs: [], outputs: [spec("a_out")], opsets: ["": 18]) }
        let undefined = [Node(name: "a", opType: "Neg", inputs: ["nowhere"], outputs: ["y"])]
        #expect(throws: RuntimeError.self) { try Graph(nodes: undefined, constants: [:], inputs: [], outputs: [spec("y")], opsets: ["": 18]) }
        let duplicate = [
            Node(name: "a", opType: "Neg", inputs: ["x"], outputs: ["y"]),
            Node(name: "b", opType: "Neg", inputs: ["x"], outputs: ["y"]),
        ]
        #expect(throws: RuntimeError.self) { try Graph(nodes: duplicate, constants: [:], inputs: [spec("x")], outputs: [spec("y")], opsets: ["": 18]) }
    }

    @Test func unsupportedOperatorNamesTypeDomainNodeAndOpset() throws {
        let nodes = [Node(name: "mystery", opType: "FancyAttention", domain: "com.example", inputs: ["x"], outputs: ["y"])]
        let g = try Graph(nodes: nodes, constants: [:], inputs: [spec("x")], outputs: [spec("y")], opsets: ["": 18, "com.example": 3])
        do {
            _ = try Session(graph: g)
            Issue.record("an unknown op was accepted")
        } catch let e as RuntimeError {
            let text = "\(e)"
            #expect(text.contains("FancyAttention") && text.contains("com.example") && text.contains("mystery") && text.contains("opset 3"))
        }
    }

    /// An ai.onnx opset newer than any that exists is refused for every op, even one registered
    /// without an upper bound (its semantics there are unknown); the newest one still runs.
    @Test func opsetsNewerThanONNXAreRefused() throws {
        let nodes = [Node(name: "neg", opType: "Neg", inputs: ["x"], outputs: ["y"])]
        func session(_ opset: Int) throws -> Session {
            try Session(graph: try Graph(nodes: nodes, constants: [:], inputs: [spec("x")], outputs: [spec("y")], opsets: ["": opset]))
        }
        #expect(try session(OperatorRegistry.newestONNXOpset).run(["x": Tensor([1], shape: [1])])["y"]!.floats() == [-1])
        do {
            _ = try session(OperatorRegistry.newestONNXOpset + 1)
            Issue.record("opset \(OperatorRegistry.newestONNXOpset + 1) was accepted")
        } catch let e as RuntimeError {
            #expect("\(e)" == "unsupported operator ai.onnx::Neg (opset \(OperatorRegistry.newestONNXOpset + 1)) at node 'neg'")
        }
        #expect(!OperatorRegistry.supports(opType: "Neg", domain: "ai.onnx", opset: 99))
        #expect(OperatorRegistry.supports(opType: "Neg", domain: "ai.onnx", opset: 18))
    }

    @Test func feedsAreCheckedAgainstDeclaredTypesAndRanks() throws {
        let nodes = [Node(name: "n", opType: "Neg", inputs: ["x"], outputs: ["y"])]
        let x = ValueSpec(name: "x", elementType: .float, shape: [.param("batch"), .value(2)])
        let session = try Session(graph: try Graph(nodes: nodes, constants: [:], inputs: [x], outputs: [spec("y")], opsets: ["": 18]))
        #expect(throws: RuntimeError.self) { try session.run(["x": Tensor(int64s: [1, 2], shape: [1, 2])]) }
        #expect(throws: RuntimeError.self) { try session.run(["x": Tensor([1, 2], shape: [2])]) }
        #expect(throws: RuntimeError.self) { try session.run(["x": Tensor([1, 2, 3], shape: [1, 3])]) }
        #expect(throws: RuntimeError.self) { try session.run([:]) }
        #expect(try session.run(["x": Tensor([1, 2, 3, 4], shape: [2, 2])])["y"]!.floats() == [-1, -2, -3, -4])
    }

    @Test func constantSubgraphsAreFoldedAtPlanningTime() throws {
        // shape(c) -> gather -> used as Reshape target: all constant, folded away.
        let c = Tensor([Float](repeating: 0, count: 6), shape: [2, 3])
        let nodes = [
            Node(name: "shape", opType: "Shape", inputs: ["c"], outputs: ["s"]),
            Node(name: "reshape", opType: "Reshape", inputs: ["x", "s"], outputs: ["y"]),
        ]
        let g = try Graph(nodes: nodes, constants: ["c": c], inputs: [spec("x")], outputs: [spec("y")], opsets: ["": 18])
        let session = try Session(graph: g)
        #expect(session.graph.nodes.map(\.name) == ["reshape"])
        #expect(try session.run(["x": Tensor((0..<6).map { Float($0) }, shape: [6])])["y"]!.shape == [2, 3])
    }

    /// Constants live apart from a run's values (`Session.constantSlot`): one read by a node
    /// (alone and with rows of several sequences stacked), one that is itself a graph output, and
    /// an initializer that is also a declared input, where the feed is what the nodes read.
    @Test func constantsAsOperandsOutputsAndShadowedInputs() throws {
        let nodes = [
            Node(name: "add", opType: "Add", inputs: ["x", "c"], outputs: ["y"]),
            Node(name: "mul", opType: "Mul", inputs: ["y", "w"], outputs: ["z"]),
        ]
        let g = try Graph(nodes: nodes,
                          constants: ["c": Tensor([10, 20], shape: [2]), "w": Tensor([5, 5], shape: [2]),
                                      "k": Tensor([7], shape: [1])],
                          inputs: [spec("x"), spec("w")], outputs: [spec("z"), spec("k")], opsets: ["": 18])
        var plain = SessionOptions()
        plain.passes = []
        for session in [try Session(graph: g), try Session(graph: g, options: plain)] {
            let w = Tensor([2, 3], shape: [2])
            let out = try session.run(["x": Tensor([1, 2], shape: [1, 2]), "w": w])
            #expect(out["z"]!.floats() == [22, 66] && out["k"]!.floats() == [7])
            let batch = try session.runBatch([["x": Tensor([1, 2], shape: [1, 2]), "w": w],
                                              ["x": Tensor([3, 4], shape: [1, 2]), "w": w]])
            #expect(batch.map { $0["z"]!.floats() } == [[22, 66], [26, 72]])
            #expect(batch.map { $0["k"]!.floats() } == [[7], [7]])
        }
    }
}

@Suite struct Float16NumericsTests {
    /// y = (x + c) + c with x = 1, c = 2⁻¹¹, all float16. Rounding after each Add gives 1 (1 + 2⁻¹¹
    /// ties to even), then 1 again; ONNX Runtime runs both Adds in float32 (no float16 Add kernel
    /// on CPU) and rounds once at the graph output: 1 + 2⁻¹⁰.
    @Test func chainsOfFloat32OpsRoundOnceLikeONNXRuntime() throws {
        let nodes = [
            Node(name: "add1", opType: "Add", inputs: ["x", "c"], outputs: ["s"]),
            Node(name: "add2", opType: "Add", inputs: ["s", "c"], outputs: ["y"]),
        ]
        let c = Tensor(float16s: [Float16(Float(0x1p-11))], shape: [1])
        let g = try Graph(nodes: nodes, constants: ["c": c], inputs: [ValueSpec(name: "x", elementType: .float16, shape: nil)],
                          outputs: [ValueSpec(name: "y", elementType: .float16, shape: nil)], opsets: ["": 18])
        let x = Tensor(float16s: [1], shape: [1])
        var literal = SessionOptions()
        literal.float16Numerics = .roundEveryOp
        let yLiteral = try Session(graph: g, options: literal).run(["x": x])["y"]!
        let yORT = try Session(graph: g).run(["x": x])["y"]!
        #expect(yLiteral.dtype == .float16 && yLiteral.floats() == [1])
        #expect(yORT.dtype == .float16 && yORT.floats() == [1 + Float(0x1p-10)])
    }

    /// The three graphs below were run with ONNX Runtime 1.31.1 (ORT_DISABLE_ALL, x = [1, 1]
    /// float16, c = 2⁻¹¹): the expected values are its outputs.
    func run(_ nodes: [Node], inputs: [String]) throws -> [Float] {
        let c = Tensor(float16s: [Float16(Float(0x1p-11))], shape: [1])
        let g = try Graph(nodes: nodes, constants: ["c": c, "shape": Tensor(int64s: [2], shape: [1])],
                          inputs: inputs.map { ValueSpec(name: $0, elementType: .float16, shape: nil) },
                          outputs: [ValueSpec(name: "y", elementType: .float16, shape: nil)], opsets: ["": 18])
        var feeds: [String: Tensor] = [:]
        for name in inputs { feeds[name] = Tensor(float16s: [1, 1], shape: [2]) }
        return try Session(graph: g).run(feeds)["y"]!.floats()
    }

    @Test func float16CapableOpsBetweenFloat32OpsRunInFloat32() throws {
        // Add → Concat(s, x) → Add: ORT gives [1+2⁻¹⁰, 1+2⁻¹⁰, 1, 1] (s is not rounded at the Concat).
        let y1 = try run([
            Node(name: "add1", opType: "Add", inputs: ["x", "c"], outputs: ["s"]),
            Node(name: "concat", opType: "Concat", inputs: ["s", "x"], outputs: ["r"], attributes: ["axis": attr("axis", int: 0)]),
            Node(name: "add2", opType: "Add", inputs: ["r", "c"], outputs: ["y"]),
        ], inputs: ["x"])
        let up = 1 + Float(0x1p-10)
        #expect(y1 == [up, up, 1, 1])
        // With a Reshape of a second input feeding the Concat: the same.
        let y2 = try run([
            Node(name: "add1", opType: "Add", inputs: ["x", "c"], outputs: ["s"]),
            Node(name: "reshape", opType: "Reshape", inputs: ["x2", "shape"], outputs: ["q"]),
            Node(name: "concat", opType: "Concat", inputs: ["s", "q"], outputs: ["r"], attributes: ["axis": attr("axis", int: 0)]),
            Node(name: "add2", opType: "Add", inputs: ["r", "c"], outputs: ["y"]),
        ], inputs: ["x", "x2"])
        #expect(y2 == [up, up, 1, 1])
    }

    @Test func float16OpsFeedingGraphOutputsRound() throws {
        // Add → Concat(s, x) as the graph output: the Concat stays float16 and rounds s to 1.
        let y = try run([
            Node(name: "add1", opType: "Add", inputs: ["x", "c"], outputs: ["s"]),
            Node(name: "concat", opType: "Concat", inputs: ["s", "x"], outputs: ["y"], attributes: ["axis": attr("axis", int: 0)]),
        ], inputs: ["x"])
        #expect(y == [1, 1, 1, 1])
    }
}
