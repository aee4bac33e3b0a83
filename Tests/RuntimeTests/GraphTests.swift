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
}
