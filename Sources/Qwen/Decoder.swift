import Foundation
import Runtime

/// Errors of generation and of the model's graph interface.
public enum GenerationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The graph does not have the inputs/outputs of a text-generation-with-past export.
    case unsupportedGraph(String)
    /// The prompt (plus what is already cached) does not fit the model's context.
    case contextOverflow(tokens: Int, limit: Int)
    case emptyPrompt
    case invalidTokenID(Int, vocabularySize: Int)
    case invalidParameters(String)

    public var description: String {
        switch self {
        case let .unsupportedGraph(reason): "the ONNX graph is not a supported decoder export: \(reason)"
        case let .contextOverflow(tokens, limit): "the prompt needs \(tokens) positions but the model's context is \(limit) (max_position_embeddings)"
        case .emptyPrompt: "the prompt is empty"
        case let .invalidTokenID(id, size): "token id \(id) is outside the vocabulary (0..<\(size))"
        case let .invalidParameters(reason): "invalid generation parameters: \(reason)"
        }
    }
}

/// The interface of an optimum `text-generation-with-past` decoder graph, read from the graph's
/// declared inputs and outputs (names, KV layout), not assumed.
public struct DecoderInterface: Sendable {
    public let inputIDs: String
    public let attentionMask: String?
    public let positionIDs: String?
    /// (past input, matching present output), in layer order.
    public let cache: [(past: String, present: String)]
    public let logits: String
    /// Element type of the KV cache tensors (float32 for the q4f16 exports).
    public let cacheType: DataType
    public let kvHeads: Int
    public let headDim: Int

    init(session: Session, config: ModelConfig, names: DecoderNames = DecoderNames()) throws {
        let inputs = session.inputs, outputs = session.outputs
        func has(_ n: String, _ specs: [ValueSpec]) -> Bool { specs.contains { $0.name == n } }
        guard has(names.inputIDs, inputs) else { throw GenerationError.unsupportedGraph("no '\(names.inputIDs)' input") }
        guard let logits = outputs.first(where: { $0.name == names.logits }) ?? outputs.first else {
            throw GenerationError.unsupportedGraph("no outputs")
        }
        inputIDs = names.inputIDs
        attentionMask = has(names.attentionMask, inputs) ? names.attentionMask : nil
        positionIDs = has(names.positionIDs, inputs) ? names.positionIDs : nil
        self.logits = logits.name
        var pairs: [(String, String)] = []
        var type: DataType = .float
        var heads = config.numKeyValueHeads ?? 0
        var dim = config.headDim ?? 0
        let candidates = names.cache ?? inputs.filter { $0.name.hasPrefix("past_key_values.") }
            .map { ($0.name, $0.name.replacingOccurrences(of: "past_key_values.", with: "present.")) }
        for (past, present) in candidates {
            guard let spec = inputs.first(where: { $0.name == past }) else {
                throw GenerationError.unsupportedGraph("no cache input '\(past)' (inputs: \(inputs.map(\.name).joined(separator: ", ")))")
            }
            guard has(present, outputs) else {
                throw GenerationError.unsupportedGraph("input '\(past)' has no matching output '\(present)'")
            }
            pairs.append((past, present))
            type = spec.elementType ?? .float
            if let shape = spec.shape, shape.count == 4 {
                if case .value(let h) = shape[1] { heads = Int(h) }
                if case .value(let d) = shape[3] { dim = Int(d) }
            }
        }
        guard !pairs.isEmpty else { throw GenerationError.unsupportedGraph("no past_key_values.* inputs (export with --task text-generation-with-past)") }
        guard heads > 0, dim > 0 else { throw GenerationError.unsupportedGraph("cannot tell the KV heads and head size from the graph or config.json") }
        cache = pairs
        cacheType = type
        kvHeads = heads
        headDim = dim
    }

    /// An empty past tensor `[1, kvHeads, 0, headDim]`.
    func emptyPast() -> Tensor { Tensor(dtype: cacheType, shape: [1, kvHeads, 0, headDim]) }
}

/// One sequence's KV cache: the `present.*` tensors of the last run, which become the next run's
/// `past_key_values.*`, and the token ids they hold.
public struct KVCache: Sendable {
    var tensors: [String: Tensor]
    /// The ids whose keys and values are cached, in order.
    public internal(set) var tokens: [Int]

    init(interface: DecoderInterface) {
        tensors = [:]
        for (past, _) in interface.cache { tensors[past] = interface.emptyPast() }
        tokens = []
    }

    public var count: Int { tokens.count }

    /// The bytes of memory its tensors' storage holds (room allocated for in-place growth
    /// included; storage shared with other caches counted in full).
    public var byteCount: Int {
        var seen = Set<ObjectIdentifier>(), bytes = 0
        for t in tensors.values where seen.insert(ObjectIdentifier(t.storage)).inserted { bytes += t.storage.byteCount }
        return bytes
    }

    /// Replaces the cache with `length` positions of zero keys and values (token id 0), for
    /// measuring decode speed at a context length without a prefill.
    mutating func fillWithZeros(length: Int, interface: DecoderInterface) {
        for (past, _) in interface.cache {
            let t = Tensor(dtype: interface.cacheType, shape: [1, interface.kvHeads, length, interface.headDim])
            memset(t.rawPointer, 0, t.byteCount)
            tensors[past] = t
        }
        tokens = [Int](repeating: 0, count: length)
    }

    /// The first `length` positions (views: no copy).
    public func prefix(_ length: Int) -> KVCache {
        var copy = self
        copy.truncate(to: length)
        return copy
    }

    /// Keeps only the first `length` positions (to reuse a common prefix between chat turns).
    mutating func truncate(to length: Int) {
        guard length < tokens.count else { return }
        for (name, t) in tensors {
            tensors[name] = t.sliced(axis: 2, 0..<length)
        }
        tokens.removeLast(tokens.count - length)
    }
}

/// Runs the decoder graph one chunk of tokens at a time against a KV cache.
struct GraphDecoder: Sendable {
    let session: Session
    let interface: DecoderInterface
    let vocabularySize: Int
    let maxPositions: Int

    /// Runs `ids` after the cached tokens and returns the logits of the last position.
    /// `progress` gets the fraction of the graph's nodes run so far (see `Session.run`).
    func forward(_ ids: [Int], cache: inout KVCache, progress: ((Double) -> Void)? = nil) throws -> [Float] {
        let feeds = try self.feeds(ids, cache: cache)
        // The weights are views into the mapped files: refuse to read them if a file was
        // truncated or rewritten in place since loading (SIGBUS or other weights otherwise).
        try session.checkFilesUnchanged()
        // The present caches come back as in-place views: the next run appends to them.
        let outputs = try session.run(feeds, keepingCacheViews: true,
                                      progress: progress.map { report in { done, total in report(Double(done) / Double(total)) } })
        return try absorb(outputs, ids: ids, cache: &cache).lastRow
    }

    /// Runs `ids` after the cached tokens and returns every position's logits (a session planned
    /// without `lastPositionOnlyOutput`).
    func forwardAll(_ ids: [Int], cache: inout KVCache) throws -> [[Float]] {
        let feeds = try self.feeds(ids, cache: cache)
        try session.checkFilesUnchanged()
        let outputs = try session.run(feeds, keepingCacheViews: true)
        let logits = try absorb(outputs, ids: ids, cache: &cache).contiguous()
        guard let vocab = logits.shape.last, logits.count == ids.count * vocab else {
            throw GenerationError.unsupportedGraph("logits of shape \(logits.shape) for \(ids.count) positions")
        }
        let values = logits.floats()
        return (0..<ids.count).map { Array(values[($0 * vocab)..<(($0 + 1) * vocab)]) }
    }

    /// One token after each of several caches, in one batched run (`Session.runBatch`: the
    /// products read their weights once for all sequences); returns each sequence's logits,
    /// exactly those `forward([ids[i]], cache: &caches[i])` returns.
    func forward(batch ids: [Int], caches: inout [KVCache]) throws -> [[Float]] {
        precondition(ids.count == caches.count)
        let feedSets = try ids.indices.map { try feeds([ids[$0]], cache: caches[$0]) }
        try session.checkFilesUnchanged()
        let outputs = try session.runBatch(feedSets, keepingCacheViews: true)
        let logits = try ids.indices.map { try absorb(outputs[$0], ids: [ids[$0]], cache: &caches[$0]) }
        return session.lastRows(of: logits)
    }

    /// The graph's inputs for running `ids` after `cache`.
    private func feeds(_ ids: [Int], cache: KVCache) throws -> [String: Tensor] {
        guard !ids.isEmpty else { throw GenerationError.emptyPrompt }
        let start = cache.count
        guard start + ids.count <= maxPositions else {
            throw GenerationError.contextOverflow(tokens: start + ids.count, limit: maxPositions)
        }
        for id in ids where id < 0 || id >= vocabularySize {
            throw GenerationError.invalidTokenID(id, vocabularySize: vocabularySize)
        }
        var feeds: [String: Tensor] = [
            interface.inputIDs: Tensor(int64s: ids.map(Int64.init), shape: [1, ids.count]),
        ]
        if let mask = interface.attentionMask {
            feeds[mask] = Tensor(int64s: [Int64](repeating: 1, count: start + ids.count), shape: [1, start + ids.count])
        }
        if let positions = interface.positionIDs {
            feeds[positions] = Tensor(int64s: (0..<ids.count).map { Int64(start + $0) }, shape: [1, ids.count])
        }
        for (past, _) in interface.cache { feeds[past] = cache.tensors[past] }
        return feeds
    }

    /// Takes a run's present caches into `cache` and returns the logits (a last axis of at
    /// least one value: the vocabulary).
    private func absorb(_ outputs: [String: Tensor], ids: [Int], cache: inout KVCache) throws -> Tensor {
        for (past, present) in interface.cache {
            guard let t = outputs[present] else { throw GenerationError.unsupportedGraph("output '\(present)' missing") }
            cache.tensors[past] = t
        }
        cache.tokens += ids
        guard let logits = outputs[interface.logits], let vocab = logits.shape.last, vocab > 0, logits.count > 0 else {
            throw GenerationError.unsupportedGraph("no logits output")
        }
        return logits
    }
}
