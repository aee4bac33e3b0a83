// Whole-model steps on a decoder export, run through a Session planned the way QwenModel plans it
// (logits of the last position only): a 128-token prefill, one decode token after a 128-token
// context, and one decoder layer's decode step (layer 0's nodes cut out of the graph).
import Benchmark
import Foundation
import ONNX
import Qwen
import Runtime

/// Tokens in the prefill and in the context of the decode steps.
let contextTokens = 128

/// A decoder export loaded once per process and shared by its benchmarks.
final class LoadedDecoder: @unchecked Sendable {
    let label: String
    let config: ModelConfig
    /// The file's graph before any pass (for cutting out a layer).
    let graph: Graph
    /// Planned as QwenModel plans it: `logits` for the last position only.
    let session: Session
    /// (past input, present output) pairs in the graph's order.
    let cache: [(past: String, present: String)]
    let cacheType: DataType
    let kvHeads: Int
    let headDim: Int
    /// Random prompt ids (fixed seed) and the KV cache after prefilling them.
    let promptIds: [Int64]
    private(set) var prefilledCache: [String: Tensor] = [:]

    init(directory: URL, label: String) throws {
        self.label = label
        let dir = try ModelDirectory(url: directory, requireTokenizer: false)
        config = dir.config
        graph = try Graph(model: ONNXModel(path: dir.onnxURL.path))
        var options = SessionOptions()
        options.lastPositionOnlyOutput = "logits"
        session = try Session(graph: graph, options: options)

        var pairs: [(String, String)] = []
        var type = DataType.float
        var heads = config.numKeyValueHeads ?? 0
        var dim = config.headDim ?? ((config.hiddenSize ?? 0) / max(config.numAttentionHeads ?? 1, 1))
        for spec in session.inputs where spec.name.hasPrefix("past_key_values.") {
            pairs.append((spec.name, spec.name.replacingOccurrences(of: "past_key_values.", with: "present.")))
            type = spec.elementType ?? .float
            if let shape = spec.shape, shape.count == 4 {
                if case .value(let h) = shape[1] { heads = Int(h) }
                if case .value(let d) = shape[3] { dim = Int(d) }
            }
        }
        guard !pairs.isEmpty, heads > 0, dim > 0 else {
            throw BenchmarkSetupError("\(label): not a text-generation-with-past export (no past_key_values.* inputs)")
        }
        cache = pairs
        cacheType = type
        kvHeads = heads
        headDim = dim

        let vocab = UInt64(config.vocabSize ?? 512)
        var rng = SeededRandom(seed: 2024)
        promptIds = (0..<contextTokens).map { _ in Int64(rng.next() % vocab) }
        let outputs = try session.run(feeds(ids: promptIds, past: nil))
        var prefilled: [String: Tensor] = [:]
        for (past, present) in cache {
            guard let t = outputs[present] else { throw BenchmarkSetupError("\(label): output \(present) missing") }
            prefilled[past] = t
        }
        prefilledCache = prefilled
    }

    /// The graph feeds for `ids` after the cached positions of `past` (nil: an empty cache).
    func feeds(ids: [Int64], past: [String: Tensor]?) -> [String: Tensor] {
        let pastLength = past?.values.first?.shape[2] ?? 0
        let names = Set(session.inputs.map(\.name))
        var feeds: [String: Tensor] = ["input_ids": Tensor(int64s: ids, shape: [1, ids.count])]
        if names.contains("attention_mask") {
            feeds["attention_mask"] = Tensor(int64s: [Int64](repeating: 1, count: pastLength + ids.count), shape: [1, pastLength + ids.count])
        }
        if names.contains("position_ids") {
            feeds["position_ids"] = Tensor(int64s: (0..<ids.count).map { Int64(pastLength + $0) }, shape: [1, ids.count])
        }
        for (name, _) in cache {
            feeds[name] = past?[name] ?? Tensor(dtype: cacheType, shape: [1, kvHeads, 0, headDim])
        }
        return feeds
    }

    /// The decode step's feeds: one more token after the prefilled context.
    var decodeFeeds: [String: Tensor] {
        feeds(ids: [promptIds[0]], past: prefilledCache)
    }

    // MARK: Shared instances

    private static let lock = NSLock()
    nonisolated(unsafe) private static var loaded: [String: LoadedDecoder] = [:]

    static func shared(directory: URL, label: String) throws -> LoadedDecoder {
        lock.lock()
        defer { lock.unlock() }
        if let d = loaded[directory.path] { return d }
        let d = try LoadedDecoder(directory: directory, label: label)
        loaded[directory.path] = d
        return d
    }
}

struct BenchmarkSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Bytes of the MatMulNBits weights (packed + scales) a run of `graph` reads and its 2·M·N·K
/// FLOPs, `tokens` rows each (one row for an LM head that LastPositionLogits sliced). Grouped
/// nodes (`MatMulNBitsGroup`: A, then B, scales and bias per member; `Ns`) count every member.
func matMulNBitsWork(graph: Graph, tokens: Int) -> Work {
    var bytes = 0.0, flops = 0.0
    for node in graph.nodes where node.opType == "MatMulNBits" || node.opType == "MatMulNBitsGroup" {
        let k = Double(node.attributes["K"]?.i ?? 0)
        let grouped = node.opType == "MatMulNBitsGroup"
        let n = grouped ? Double(node.attributes["Ns"]?.ints.reduce(0, +) ?? 0) : Double(node.attributes["N"]?.i ?? 0)
        let weights = grouped
            ? node.inputs.dropFirst().enumerated().filter { $0.offset % 3 != 2 }.map(\.element)
            : Array(node.inputs.dropFirst().prefix(2))
        for input in weights {
            bytes += Double(graph.constants[input]?.byteCount ?? 0)
        }
        let rows = node.inputs.first?.hasSuffix("::last_position") == true ? 1 : tokens
        flops += 2 * Double(rows) * k * n
    }
    return Work(bytes: bytes, flops: flops, tokens: tokens)
}

/// Layer `index`'s nodes (named `/model/layers.<index>/...` by the optimum exports) as a graph of
/// their own, and its inputs captured from a full decode step: the hidden state, rotary cos/sin,
/// attention mask and the layer's past KV.
///
/// The layer graph gets the session passes on its own, so at its boundary a value may arrive in
/// float16 where the full graph would pass float32 on: a Cast or two more than inside the model.
func decoderLayerGraph(_ decoder: LoadedDecoder, index: Int = 0) throws -> (PlannedGraph, Work) {
    let full = decoder.graph
    let prefix = "/model/layers.\(index)/"
    let layerNodes = full.nodes.filter { $0.name.hasPrefix(prefix) }
    guard !layerNodes.isEmpty else { throw BenchmarkSetupError("\(decoder.label): no nodes named \(prefix)*") }
    let inLayer = Set(layerNodes.map(\.name))
    let produced = Set(layerNodes.flatMap(\.outputs).filter { !$0.isEmpty })

    var external: [String] = []
    var constants: [String: Tensor] = [:]
    for node in layerNodes {
        for v in node.inputs where !v.isEmpty && !produced.contains(v) {
            if let c = full.constants[v] {
                constants[v] = c
            } else if !external.contains(v) {
                external.append(v)
            }
        }
    }
    let graphOutputs = Set(full.outputs.map(\.name))
    var consumedOutside: Set<String> = []
    for node in full.nodes where !inLayer.contains(node.name) {
        for v in node.inputs where produced.contains(v) { consumedOutside.insert(v) }
    }
    let layerOutputs = produced.filter { consumedOutside.contains($0) || graphOutputs.contains($0) }.sorted()

    // Capture the layer's inputs from a full decode step: the same graph with them as outputs.
    let feeds = decoder.decodeFeeds
    let toCapture = external.filter { feeds[$0] == nil }
    var capture = full
    capture.outputs += toCapture.map { ValueSpec(name: $0, elementType: nil, shape: nil) }
    let captured = try Session(graph: capture).run(feeds)
    var layerFeeds: [String: Tensor] = [:]
    for v in external {
        guard let t = feeds[v] ?? captured[v] else { throw BenchmarkSetupError("\(decoder.label): could not capture \(v)") }
        layerFeeds[v] = t
    }

    let layer = try Graph(
        nodes: layerNodes, constants: constants,
        inputs: external.map { ValueSpec(name: $0, elementType: layerFeeds[$0]!.dtype, shape: nil) },
        outputs: layerOutputs.map { ValueSpec(name: $0, elementType: nil, shape: nil) },
        opsets: full.opsets, model: full.model)
    let session = try Session(graph: layer)
    return (PlannedGraph(session: session, feeds: layerFeeds), matMulNBitsWork(graph: session.graph, tokens: 1))
}

func registerModelBenchmarks(directory: URL, label: String) {
    register(
        "Decoder layer 0 decode step [past \(contextTokens)] (\(label))", budget: .model, reportsTokens: true,
        work: { $0.1 },
        setup: { try decoderLayerGraph(LoadedDecoder.shared(directory: directory, label: label)) },
        body: { try $0.0.run() })
    register(
        "Model decode token [past \(contextTokens)] (\(label))", budget: .model, reportsTokens: true,
        work: { $0.1 },
        setup: {
            let d = try LoadedDecoder.shared(directory: directory, label: label)
            return (PlannedGraph(session: d.session, feeds: d.decodeFeeds), matMulNBitsWork(graph: d.session.graph, tokens: 1))
        },
        body: { try $0.0.run() })
    register(
        "Model prefill [\(contextTokens) tokens] (\(label))", budget: .model, reportsTokens: true,
        work: { $0.1 },
        setup: {
            let d = try LoadedDecoder.shared(directory: directory, label: label)
            return (PlannedGraph(session: d.session, feeds: d.feeds(ids: d.promptIds, past: nil)),
                    matMulNBitsWork(graph: d.session.graph, tokens: contextTokens))
        },
        body: { try $0.0.run() })
}

func registerAllModelBenchmarks() {
    registerModelBenchmarks(directory: BenchmarkPaths.tinyFixture, label: "tiny-qwen2 fixture q4f16")
    let real = BenchmarkPaths.realModel
    if FileManager.default.fileExists(atPath: real.appendingPathComponent("config.json").path) {
        registerModelBenchmarks(directory: real, label: "\(real.lastPathComponent) q4f16")
    } else {
        printNote("real model not found at \(real.path) (set QWEN_BENCH_MODEL): its benchmarks are skipped")
    }
}
