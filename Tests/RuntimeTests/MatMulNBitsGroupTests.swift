import ONNX
import Testing
@testable import Runtime

/// MatMulNBits nodes sharing their activations, joined by `MatMulNBitsGrouping` into one
/// `MatMulNBitsGroup`: which nodes join, and that each output is bit for bit what the node alone
/// computes, in decode (one or two rows: int16 or float32 activations) and prefill (the GEMM), on
/// float32 and float16 graphs, and through the one-by-one fallback (int8 activations).
struct MatMulNBitsGroupTests {
    /// Three projections of A (N = 96, 16, 24: K/V-like sizes that are not multiples of 16),
    /// one of another input, one with a bias, and one of A with another K layout (block 16):
    /// only the first three can join.
    static func graph(k: Int, half: Bool, seed: UInt64) throws -> Graph {
        var rng = SeededGenerator(seed: seed)
        var nodes: [Node] = [], constants: [String: Tensor] = [:]
        func projection(_ name: String, a: String, n: Int, blockSize: Int = 32, bias: Bool = false) {
            let blocks = (k + blockSize - 1) / blockSize, bytes = blockSize / 2
            constants[name + ".B"] = Tensor(bytes: (0..<(n * blocks * bytes)).map { _ in UInt8.random(in: 0...255, using: &rng) },
                                            shape: [n, blocks, bytes])
            let scales = randomFloats(n * blocks, &rng, in: 0.01...0.1)
            constants[name + ".scales"] = half ? Tensor(float16s: scales.map { Float16($0) }, shape: [n, blocks])
                                               : Tensor(scales, shape: [n, blocks])
            var inputs = [a, name + ".B", name + ".scales"]
            if bias {
                constants[name + ".bias"] = half ? Tensor(float16s: randomFloats(n, &rng).map { Float16($0) }, shape: [n])
                                                 : Tensor(randomFloats(n, &rng), shape: [n])
                inputs += ["", "", name + ".bias"]
            }
            nodes.append(Node(name: name, opType: "MatMulNBits", domain: "com.microsoft", inputs: inputs, outputs: [name],
                              attributes: attrs(attr("K", int: k), attr("N", int: n), attr("bits", int: 4),
                                                attr("block_size", int: blockSize))))
        }
        projection("q", a: "A", n: 96)
        projection("other", a: "A2", n: 32)
        projection("k", a: "A", n: 16)
        projection("biased", a: "A", n: 40, bias: true)
        projection("v", a: "A", n: 24)
        projection("block16", a: "A", n: 32, blockSize: 16)
        let type: DataType = half ? .float16 : .float
        return try Graph(nodes: nodes, constants: constants,
                         inputs: [ValueSpec(name: "A", elementType: type, shape: nil), ValueSpec(name: "A2", elementType: type, shape: nil)],
                         outputs: ["q", "other", "k", "biased", "v", "block16"].map { ValueSpec(name: $0, elementType: nil, shape: nil) },
                         opsets: ["": 18, "com.microsoft": 1])
    }

    @Test func sharedActivationsJoinOneGroup() throws {
        let session = try Session(graph: try Self.graph(k: 96, half: false, seed: 1))
        let groups = session.graph.nodes.filter { $0.opType == MatMulNBitsGrouping.opType }
        #expect(groups.count == 1)
        #expect(groups.first?.outputs == ["q", "k", "v"])
        #expect(groups.first?.intsAttribute("Ns") == [96, 16, 24])
        #expect(session.graph.nodes.filter { $0.opType == "MatMulNBits" }.map(\.outputs) == [["other"], ["biased"], ["block16"]])
    }

    /// Every output equal bit for bit to the ungrouped graph's (fusions off), for each way the
    /// group runs.
    @Test(arguments: [1, 2, 3, 13], [false, true])
    func groupedOutputsEqualTheNodesAlone(m: Int, half: Bool) throws {
        let k = 200
        let graph = try Self.graph(k: k, half: half, seed: UInt64(m * 2 + (half ? 1 : 0)))
        var rng = SeededGenerator(seed: UInt64(100 + m))
        func input(_ rows: Int) -> Tensor {
            let values = randomFloats(rows * k, &rng)
            return half ? Tensor(float16s: values.map { Float16($0) }, shape: [1, rows, k]) : Tensor(values, shape: [1, rows, k])
        }
        let feeds = ["A": input(m), "A2": input(m)]
        for decode in DecodeActivations.allCases {
            var plain = SessionOptions(), grouped = SessionOptions()
            plain.fuseAttention = false
            plain.decodeActivations = decode
            grouped.decodeActivations = decode
            let expected = try Session(graph: graph, options: plain).run(feeds)
            let session = try Session(graph: graph, options: grouped)
            #expect(session.graph.nodes.contains { $0.opType == MatMulNBitsGrouping.opType })
            let actual = try session.run(feeds)
            for name in ["q", "k", "v", "other", "biased", "block16"] {
                #expect(actual[name]!.shape == expected[name]!.shape, "\(name) m \(m) half \(half) \(decode)")
                #expect(actual[name]!.floats() == expected[name]!.floats(), "\(name) m \(m) half \(half) \(decode)")
            }
        }
    }

    /// With int8 activations the members run one by one: still their own results.
    @Test(arguments: [1, 5])
    func int8MembersRunOneByOne(m: Int) throws {
        let k = 96
        let graph = try Self.graph(k: k, half: false, seed: 9)
        var rng = SeededGenerator(seed: 5)
        let feeds = ["A": Tensor(randomFloats(m * k, &rng), shape: [m, k]), "A2": Tensor(randomFloats(m * k, &rng), shape: [m, k])]
        var plain = SessionOptions(), grouped = SessionOptions()
        plain.fuseAttention = false
        plain.int8Activations = .always
        grouped.int8Activations = .always
        let expected = try Session(graph: graph, options: plain).run(feeds)
        let actual = try Session(graph: graph, options: grouped).run(feeds)
        for name in ["q", "k", "v"] {
            #expect(actual[name]!.floats() == expected[name]!.floats(), "\(name) m \(m)")
        }
    }
}
