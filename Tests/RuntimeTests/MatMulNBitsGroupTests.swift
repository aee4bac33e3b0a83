import ONNX
import Kernels
import Testing
@testable import Runtime

/// MatMulNBits nodes sharing their activations, joined by `MatMulNBitsGrouping` into one
/// `MatMulNBitsGroup`: which nodes join, and that each output is bit for bit what the node alone
/// computes, in decode (one or two rows: int16 or float32 activations) and prefill (the GEMM), on
/// float32 and float16 graphs, and through the one-by-one fallback (int8 activations).
struct MatMulNBitsGroupTests {
    /// Projections of A (N = 96, 16, 24: K/V-like sizes that are not multiples of 16), one with a
    /// bias input, one followed by an `Add` of a bias (as the exports add Q/K/V biases), one of
    /// another input, and one of A with another K layout (block 16): all of A's but the last join.
    static func graph(k: Int, half: Bool, seed: UInt64, qN: Int = 96, computedBias: Bool = false) throws -> Graph {
        var rng = SeededRandom(seed: seed)
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
        projection("q", a: "A", n: qN)
        projection("other", a: "A2", n: 32)
        projection("k", a: "A", n: 16)
        projection("biased", a: "A", n: 40, bias: true)
        projection("v", a: "A", n: 24)
        projection("block16", a: "A", n: 32, blockSize: 16)
        projection("added", a: "A", n: 8)
        if computedBias {
            // A bias computed between the group's first member and this one: "k2" cannot join
            // (the group runs where "q" was, before the bias exists).
            constants["k2.biasIn"] = Tensor(randomFloats(16, &rng), shape: [16])
            nodes.append(Node(name: "k2bias", opType: "Neg", inputs: ["k2.biasIn"], outputs: ["k2.bias"]))
            projection("k2", a: "A", n: 16)
            nodes[nodes.count - 1].inputs += ["", "", "k2.bias"]
        }
        let addBias = randomFloats(8, &rng)
        constants["added.addBias"] = half ? Tensor(float16s: addBias.map { Float16($0) }, shape: [8]) : Tensor(addBias, shape: [8])
        nodes.append(Node(name: "addBias", opType: "Add", inputs: ["added.addBias", "added"], outputs: ["addedOut"]))
        let type: DataType = half ? .float16 : .float
        return try Graph(nodes: nodes, constants: constants,
                         inputs: [ValueSpec(name: "A", elementType: type, shape: nil), ValueSpec(name: "A2", elementType: type, shape: nil)],
                         outputs: (outputNames + (computedBias ? ["k2"] : [])).map { ValueSpec(name: $0, elementType: nil, shape: nil) },
                         opsets: ["": 18, "com.microsoft": 1])
    }

    static let outputNames = ["q", "other", "k", "biased", "v", "block16", "addedOut"]

    /// The Add of a bias becomes the node's bias input, and A's projections with block 32 form
    /// one group. (In the float16 graph the node the Add follows runs in float32, on a widened
    /// copy of A, so it forms no group with the float16 nodes reading A itself.)
    @Test func sharedActivationsJoinOneGroup() throws {
        let session = try Session(graph: try Self.graph(k: 96, half: false, seed: 1))
        let groups = session.graph.nodes.filter { $0.opType == MatMulNBitsGrouping.opType }
        #expect(groups.count == 1)
        #expect(groups.first?.outputs == ["q", "k", "biased", "v", "addedOut"])
        #expect(groups.first?.intsAttribute("Ns") == [96, 16, 40, 24, 8])
        #expect(groups.first?.inputs.last == "added.addBias")
        #expect(!session.graph.nodes.contains { $0.opType == "Add" })
        #expect(session.graph.nodes.filter { $0.opType == "MatMulNBits" }.map(\.outputs) == [["other"], ["block16"]])
    }

    /// Every output equal bit for bit to the ungrouped graph's (fusions off), for each way the
    /// group runs.
    @Test(arguments: [1, 2, 3, 13], [false, true])
    func groupedOutputsEqualTheNodesAlone(m: Int, half: Bool) throws {
        let k = 200
        let graph = try Self.graph(k: k, half: half, seed: UInt64(m * 2 + (half ? 1 : 0)))
        var rng = SeededRandom(seed: UInt64(100 + m))
        func input(_ rows: Int) -> Tensor {
            let values = randomFloats(rows * k, &rng)
            return half ? Tensor(float16s: values.map { Float16($0) }, shape: [1, rows, k]) : Tensor(values, shape: [1, rows, k])
        }
        let feeds = ["A": input(m), "A2": input(m)]
        for decode in DecodeActivations.allCases {
            var plain = SessionOptions(), grouped = SessionOptions()
            plain.passes.subtract(GraphPass.fusions)
            plain.decodeActivations = decode
            grouped.decodeActivations = decode
            let expected = try Session(graph: graph, options: plain).run(feeds)
            let session = try Session(graph: graph, options: grouped)
            #expect(session.graph.nodes.contains { $0.opType == MatMulNBitsGrouping.opType })
            let actual = try session.run(feeds)
            for name in Self.outputNames {
                #expect(actual[name]!.shape == expected[name]!.shape, "\(name) m \(m) half \(half) \(decode)")
                #expect(actual[name]!.floats() == expected[name]!.floats(), "\(name) m \(m) half \(half) \(decode)")
            }
        }
    }

    /// A bias that is computed (not a constant) keeps its node out of the group; with constant
    /// folding off it stays computed. Results as without grouping.
    @Test func computedBiasesStayOut() throws {
        let k = 64
        let graph = try Self.graph(k: k, half: false, seed: 11, computedBias: true)
        var options = SessionOptions()
        options.passes.subtract([.constantFolding, .rmsNorm, .shapeFolding])
        let session = try Session(graph: graph, options: options)
        let group = try #require(session.graph.nodes.first { $0.opType == MatMulNBitsGrouping.opType })
        #expect(!group.outputs.contains("k2"))
        var rng = SeededRandom(seed: 12)
        let feeds = ["A": Tensor(randomFloats(k, &rng), shape: [1, k]), "A2": Tensor(randomFloats(k, &rng), shape: [1, k])]
        var plain = options
        plain.passes.subtract(GraphPass.fusions)
        let expected = try Session(graph: graph, options: plain).run(feeds), actual = try session.run(feeds)
        for name in Self.outputNames + ["k2"] { #expect(actual[name]!.floats() == expected[name]!.floats(), "\(name)") }
    }

    /// K = 4096 lets a decode GEMV split into chunks of 64 rows; with q's 104 rows the chunk
    /// boundary falls inside a member. Results as without grouping.
    @Test func decodeChunksSplitMembers() throws {
        let k = 4096
        let graph = try Self.graph(k: k, half: true, seed: 13, qN: 104)
        var rng = SeededRandom(seed: 14)
        let feeds = ["A": Tensor(float16s: randomFloats(k, &rng).map { Float16($0) }, shape: [1, 1, k]),
                     "A2": Tensor(float16s: randomFloats(k, &rng).map { Float16($0) }, shape: [1, 1, k])]
        var plain = SessionOptions()
        plain.passes.subtract(GraphPass.fusions)
        let expected = try Session(graph: graph, options: plain).run(feeds), actual = try Session(graph: graph).run(feeds)
        for name in Self.outputNames { #expect(actual[name]!.floats() == expected[name]!.floats(), "\(name)") }
    }

    /// With int8 activations the members run one by one: still their own results.
    @Test(arguments: [1, 5])
    func int8MembersRunOneByOne(m: Int) throws {
        let k = 96
        let graph = try Self.graph(k: k, half: false, seed: 9)
        var rng = SeededRandom(seed: 5)
        let feeds = ["A": Tensor(randomFloats(m * k, &rng), shape: [m, k]), "A2": Tensor(randomFloats(m * k, &rng), shape: [m, k])]
        var plain = SessionOptions(), grouped = SessionOptions()
        plain.passes.subtract(GraphPass.fusions)
        plain.int8Activations = .always
        grouped.int8Activations = .always
        let expected = try Session(graph: graph, options: plain).run(feeds)
        let actual = try Session(graph: graph, options: grouped).run(feeds)
        for name in Self.outputNames {
            #expect(actual[name]!.floats() == expected[name]!.floats(), "\(name) m \(m)")
        }
    }
}
