import Foundation
import Runtime
import Synchronization
import Kernels

/// Why generation stopped.
public enum StopReason: String, Sendable, Codable {
    /// A stop (eos) token was produced; it is not part of the text.
    case stopToken
    /// The constrained output is whole (`GenerateParameters.responseFormat`: the JSON object
    /// closed; `outputPattern`: its last part read).
    case formatComplete
    /// One of `GenerateParameters.stopStrings` appeared; the text ends before it.
    case stopString
    case maxTokens
    /// The next token would exceed the model's `max_position_embeddings`.
    case contextLimit
    case cancelled
}

/// Timings and memory of one generation.
public struct GenerationStats: Sendable, Codable, Equatable {
    public var promptTokens: Int
    /// Prompt tokens actually run (fewer when a chat turn reuses the cached prefix).
    public var prefilledTokens: Int
    public var prefillSeconds: Double
    public var generatedTokens: Int
    public var decodeSeconds: Double
    public var peakRSSMegabytes: Double

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(prefilledTokens) / prefillSeconds : 0 }
    /// Decode steps (tokens after the first) per second.
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(max(generatedTokens - 1, 0)) / decodeSeconds : 0 }
}

/// The outcome of one generation.
public struct GenerationResult: Sendable, Equatable {
    public var promptTokenIds: [Int]
    /// Generated ids, including the stop token when there was one.
    public var generatedTokenIds: [Int]
    /// The generated text (special tokens and the stop token left out).
    public var text: String
    public var stopReason: StopReason
    public var stats: GenerationStats
}

/// What a generation stream yields: text as it forms, then the result.
public enum GenerationEvent: Sendable {
    /// A new token and the text it completes (empty while a character is split across tokens).
    case token(id: Int, text: String)
    case finished(GenerationResult)
}

/// How ``QwenModel`` loads a model directory.
public struct LoadOptions: Sendable {
    /// The ONNX file of the directory to run (a name in it or in its `onnx/`); nil: the
    /// directory's default (see ``ModelDirectory``).
    public var onnxFile: String?
    /// Threads for the model's kernels, a pool of its own (so that models loaded side by side do
    /// not wait for each other); nil: `KernelPool.defaultThreadCount` (`QWEN_THREADS`, else the
    /// online processors).
    public var threads: Int?
    /// A directory where repacked weights are kept between loads, so that later loads map them
    /// instead of packing again (~280 MB for the 0.5B); nil (the default): pack at every load and
    /// write nothing. ``defaultWeightCacheDirectory`` is the one `qwen-run` uses.
    public var weightCacheDirectory: String?
    /// Where MatMulNBits multiplies int8-quantized activations (see `Int8Activations`; the default
    /// follows each node's `accuracy_level`, as ONNX Runtime does).
    public var int8Activations: Int8Activations
    /// How the other decode-step products take their activations (`DecodeActivations`).
    public var decodeActivations: DecodeActivations

    public init(onnxFile: String? = nil, threads: Int? = nil, weightCacheDirectory: String? = nil,
                int8Activations: Int8Activations = .accuracyLevel4, decodeActivations: DecodeActivations = .automatic) {
        self.onnxFile = onnxFile
        self.threads = threads
        self.weightCacheDirectory = weightCacheDirectory
        self.int8Activations = int8Activations
        self.decodeActivations = decodeActivations
    }

    /// The weight cache of a command-line tool: `$QWEN_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/qwen-swift`, else `~/.cache/qwen-swift`; nil when `QWEN_WEIGHT_CACHE=0`
    /// or no home is known.
    public static var defaultWeightCacheDirectory: String? {
        let env = ProcessInfo.processInfo.environment
        if let flag = env["QWEN_WEIGHT_CACHE"], ["0", "off", "no", "false"].contains(flag.lowercased()) { return nil }
        if let dir = env["QWEN_CACHE_DIR"], !dir.isEmpty { return dir }
        if let xdg = env["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/qwen-swift" }
        if let home = env["HOME"], home.hasPrefix("/") { return home + "/.cache/qwen-swift" }
        return nil
    }
}

/// A loaded Qwen2 model: weights memory-mapped once, shared by any number of concurrent
/// generations, each with its own KV cache.
///
/// ```swift
/// let model = try await QwenModel.load(directory: URL(fileURLWithPath: "Models/qwen2.5-coder-0.5b-instruct"))
/// for try await event in model.generate(messages: [ChatMessage(role: "user", content: "Hi")]) {
///     if case .token(_, let text) = event { print(text, terminator: "") }
/// }
/// ```
public final class QwenModel: Sendable {
    public let directory: ModelDirectory
    public let tokenizer: Tokenizer
    public let generationConfig: GenerationConfig
    /// Seconds spent in `init` (reading files, mapping weights, planning the graph).
    public let loadSeconds: Double
    /// Ids that end generation by default: generation_config's eos ids, else config.json's,
    /// else the tokenizer's eos token.
    public let eosTokenIds: Set<Int>
    let decoder: GraphDecoder
    /// Stream generations running and finished (read by the tests to see cancellation end a
    /// generation whose consumer has gone).
    let streamActivity = StreamActivity()
    private let tokenBytes = Mutex<TokenBytesIndex?>(nil)
    /// What `promptLogprobs` plans its own session from (every position's logits), on first use.
    private let onnxPath: String
    private let sessionOptions: SessionOptions
    private let scorer = Mutex<GraphDecoder?>(nil)

    /// The tokens' bytes in byte order, for constrained generation: built on first use.
    var tokenBytesIndex: TokenBytesIndex {
        tokenBytes.withLock { index in
            if let index { return index }
            let built = TokenBytesIndex(tokenizer: tokenizer, vocabularySize: decoder.vocabularySize)
            index = built
            return built
        }
    }

    /// Loads a model directory (see ``ModelDirectory``) on a background thread.
    public static func load(directory: URL, options: LoadOptions = LoadOptions()) async throws -> QwenModel {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result { try QwenModel(directory: directory, options: options) })
            }
        }
    }

    /// Loads a model directory (see ``ModelDirectory``) on the calling thread.
    public init(directory url: URL, options: LoadOptions = LoadOptions()) throws {
        let start = Date()
        directory = try ModelDirectory(url: url, onnxFile: options.onnxFile)
        // The directory itself when `url` named one of its .onnx files.
        let root = directory.url
        // The tokenizer (tokenizer.json) loads on another thread while the graph is read, planned
        // and its weights repacked; a tokenizer error is still reported before a graph error.
        nonisolated(unsafe) var loadedTokenizer: Result<Tokenizer, any Error>?
        let tokenizerLoaded = DispatchSemaphore(value: 0)
        DispatchQueue.global(qos: .userInitiated).async {
            let start = Date()
            loadedTokenizer = Result { try Tokenizer(directory: root) }
            if Profiler.isEnabled { Profiler.shared.recordPhase("tokenizer (in parallel)", Date().timeIntervalSince(start)) }
            tokenizerLoaded.signal()
        }
        // Generation reads only the last position's logits: skip the LM head for the others.
        var sessionOptions = SessionOptions()
        sessionOptions.lastPositionOnlyOutput = "logits"
        sessionOptions.packedWeightCacheDirectory = options.weightCacheDirectory
        sessionOptions.int8Activations = options.int8Activations
        sessionOptions.decodeActivations = options.decodeActivations
        sessionOptions.kernelPool = KernelPool(threads: options.threads ?? KernelPool.defaultThreadCount)
        let onnxPath = directory.onnxURL.path
        self.onnxPath = onnxPath
        self.sessionOptions = sessionOptions
        let loadedSession = Result { try Session(path: onnxPath, options: sessionOptions) }
        tokenizerLoaded.wait()
        tokenizer = try loadedTokenizer!.get()
        let session = try loadedSession.get()
        // An onnxruntime-genai directory: its search defaults and the decoder names it gives.
        if let genAI = directory.genAIConfig {
            generationConfig = genAI.generationConfig
        } else {
            generationConfig = try GenerationConfig.load(root.appendingPathComponent("generation_config.json"))
        }
        let layers = directory.config.numHiddenLayers ?? 0
        let names = directory.genAIConfig.map { $0.decoderNames(layers: layers) } ?? DecoderNames()
        let interface = try DecoderInterface(session: session, config: directory.config, names: names)
        let vocab = directory.config.vocabSize ?? tokenizer.vocabularySize
        decoder = GraphDecoder(session: session, interface: interface, vocabularySize: vocab,
                          maxPositions: directory.config.maxPositionEmbeddings ?? 32768)
        var eos = Set(generationConfig.eosTokenId?.ids ?? directory.config.eosTokenId?.ids ?? [])
        if eos.isEmpty, let id = tokenizer.eosTokenID { eos.insert(id) }
        eosTokenIds = eos
        loadSeconds = Date().timeIntervalSince(start)
    }

    public var config: ModelConfig { directory.config }

    /// The log probability of each prompt token after the ones before it, with the `top` most
    /// likely alternatives (nil for the first token, which nothing precedes): what evaluation
    /// harnesses score a text by (OpenAI completions' `echo` with `logprobs`). Runs the prompt
    /// through a second session of the model that keeps every position's logits (planned on first
    /// use: its weights are packed again, or mapped from the weight cache), in chunks of 64
    /// positions; the log probabilities are those of the model's raw logits (`Sampler.logprobs`).
    public func promptLogprobs(_ ids: [Int], top: Int) throws -> [TokenLogprobs?] {
        guard !ids.isEmpty else { throw GenerationError.emptyPrompt }
        guard ids.count <= maxPositions else { throw GenerationError.contextOverflow(tokens: ids.count, limit: maxPositions) }
        let scoring = try scorer.withLock { scorer in
            if let scorer { return scorer }
            var options = sessionOptions
            options.lastPositionOnlyOutput = nil
            let session = try Session(path: onnxPath, options: options)
            let names = directory.genAIConfig.map { $0.decoderNames(layers: directory.config.numHiddenLayers ?? 0) } ?? DecoderNames()
            let built = GraphDecoder(session: session, interface: try DecoderInterface(session: session, config: directory.config, names: names),
                                     vocabularySize: decoder.vocabularySize, maxPositions: decoder.maxPositions)
            scorer = built
            return built
        }
        var cache = KVCache(interface: scoring.interface)
        var result: [TokenLogprobs?] = [nil]
        var start = 0
        while start < ids.count {
            // Chunks of 64; a short rest joins the chunk before it.
            let end = ids.count - start < 64 + Generation.minimumChunk ? ids.count : start + 64
            let rows = try scoring.forwardAll(Array(ids[start..<end]), cache: &cache)
            for (i, row) in rows.enumerated() where start + i + 1 < ids.count {
                result.append(Sampler.logprobs(row, chosen: ids[start + i + 1], top: top))
            }
            start = end
        }
        return result
    }

    /// The context length (max_position_embeddings).
    public var maxPositions: Int { decoder.maxPositions }

    /// An empty KV cache for a new conversation.
    public func makeCache() -> KVCache { KVCache(interface: decoder.interface) }

    // MARK: Prompts

    /// Renders `messages` with the chat template (with the generation prompt) and encodes them.
    public func encode(messages: [ChatMessage]) throws -> [Int] {
        tokenizer.encode(try tokenizer.applyChatTemplate(messages: messages, addGenerationPrompt: true))
    }

    /// The ids for a prompt: as a single user turn (with an optional system message) through the
    /// chat template when the tokenizer has one and `raw` is false, else the text as is.
    public func encode(prompt: String, system: String? = nil, raw: Bool = false) throws -> [Int] {
        if raw || tokenizer.chatTemplate == nil { return tokenizer.encode(prompt) }
        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: prompt))
        return try encode(messages: messages)
    }

    // MARK: Generation

    /// Generates after `promptIds`, calling `onToken(id, text)` for each new token (return false
    /// to stop). `cache` may hold an earlier turn: its longest common prefix with the prompt is
    /// reused and only the rest is run.
    ///
    /// `onPrefillProgress` gets, during the prompt's forward pass, the fraction of the graph run so
    /// far (node by node, on this thread): for a progress display on long prompts.
    public func generate(
        promptIds: [Int], parameters: GenerateParameters = GenerateParameters(), cache: inout KVCache,
        onToken: (Int, String) -> Bool = { _, _ in true },
        onPrefillProgress: ((Double) -> Void)? = nil
    ) throws -> GenerationResult {
        var generation = try Generation(model: self, promptIds: promptIds, parameters: parameters, cache: cache)
        defer { cache = generation.cache }
        while let step = try generation.step(onPrefillProgress: onPrefillProgress) {
            // The stop token adds no text; it only reports text held back until the end.
            if step.isStopToken && step.text.isEmpty { continue }
            if !onToken(step.tokenId, step.text) { generation.cancel() }
        }
        return generation.result
    }

    /// Streams a generation for `prompt` (chat template applied unless `raw`).
    public func generate(prompt: String, system: String? = nil, raw: Bool = false,
                         parameters: GenerateParameters = GenerateParameters()) -> GenerationStream {
        stream(parameters: parameters) { try self.encode(prompt: prompt, system: system, raw: raw) }
    }

    /// Streams a generation for a conversation.
    public func generate(messages: [ChatMessage], parameters: GenerateParameters = GenerateParameters()) -> GenerationStream {
        stream(parameters: parameters) { try self.encode(messages: messages) }
    }

    /// Streams a generation for prompt ids.
    public func generate(promptIds: [Int], parameters: GenerateParameters = GenerateParameters()) -> GenerationStream {
        stream(parameters: parameters) { promptIds }
    }

    private func stream(parameters: GenerateParameters, _ ids: @escaping @Sendable () throws -> [Int]) -> GenerationStream {
        // Set when the stream terminates (consumer cancelled, stream dropped) or its iterator is
        // released (the consumer left the loop, even while the stream value lives on).
        let cancelled = CancellationFlag()
        return GenerationStream(cancelled: cancelled, base: AsyncThrowingStream { continuation in
            continuation.onTermination = { _ in cancelled.set() }
            // Compute runs on its own thread, not on the cooperative pool it would block.
            let activity = self.streamActivity
            activity.started()
            let thread = Thread {
                do {
                    // The KV cache lives in this closure only: it is freed when the generation
                    // ends (finished, cancelled or failed), before the activity is updated.
                    let result = try { () throws -> GenerationResult in
                        var cache = self.makeCache()
                        return try self.generate(promptIds: try ids(), parameters: parameters, cache: &cache) { id, text in
                            continuation.yield(.token(id: id, text: text))
                            activity.yielded()
                            return !cancelled.isSet
                        }
                    }()
                    activity.finished(result.stopReason, tokens: result.generatedTokenIds.count)
                    continuation.yield(.finished(result))
                    continuation.finish()
                } catch {
                    activity.finished(nil, tokens: 0)
                    continuation.finish(throwing: error)
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        })
    }
}

/// The events of one streamed generation (`QwenModel.generate(…)`): `.token`s, then one
/// `.finished` with the result, or an error.
///
/// How it ends, always one of three ways a caller can tell apart:
/// - `.finished(result)`, then the end of the sequence: the generation stopped by itself
///   (`result.stopReason`: a stop token, `maxTokens`, the context limit);
/// - a thrown error: the generation failed (bad prompt, model error);
/// - a thrown `CancellationError`: the consuming task was cancelled before `.finished` arrived.
///   The generation thread is told at once and stops within one token; its KV cache is freed.
///
/// Leaving the loop early (`break`) also stops the generation within one token: the loop's
/// iterator is released there, even if the stream value itself is kept (top-level code).
public struct GenerationStream: AsyncSequence, Sendable {
    public typealias Element = GenerationEvent
    let cancelled: CancellationFlag
    let base: AsyncThrowingStream<GenerationEvent, Error>

    /// Cancels the generation when the last copy of the iterator holding it goes away.
    final class Canceller: Sendable {
        let flag: CancellationFlag
        init(_ flag: CancellationFlag) { self.flag = flag }
        deinit { flag.set() }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<GenerationEvent, Error>.AsyncIterator
        let canceller: Canceller
        var finished = false
        var ended = false

        public mutating func next() async throws -> GenerationEvent? {
            guard !ended else { return nil }
            guard let event = try await base.next() else {
                ended = true
                // A stream that ends without `.finished` and without an error was ended by the
                // consumer's cancellation (AsyncThrowingStream returns nil then): say so.
                if !finished && Task.isCancelled { throw CancellationError() }
                return nil
            }
            if case .finished = event { finished = true }
            return event
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), canceller: Canceller(cancelled))
    }
}

/// A flag set from one thread and read from another.
final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

/// Counts of a model's stream generations: how many run now, and how the finished ones ended;
/// and test hooks into every generation of the model.
final class StreamActivity: @unchecked Sendable {
    struct Snapshot: Sendable, Equatable {
        var running = 0
        /// Finished generations by stop reason (errors are not counted here).
        var stopped: [StopReason: Int] = [:]
        var failed = 0
        /// Tokens generated by the finished generations.
        var generatedTokens = 0
    }
    private let lock = NSLock()
    private var state = Snapshot()
    private var gate: (@Sendable () -> Void)?
    /// Runs `body` on the generation thread after each streamed token, before it checks for
    /// cancellation (tests use it to hold a fast generation until its consumer has gone).
    func setTokenGate(_ body: (@Sendable () -> Void)?) { lock.lock(); gate = body; lock.unlock() }
    func yielded() {
        lock.lock(); let body = gate; lock.unlock()
        body?()
    }
    private var cacheObserver: (@Sendable (KVCache) -> Void)?
    /// Runs `body` with a generation's KV cache after each forward pass (tests use it to hold weak
    /// references to the cache's tensors and see them freed).
    func setCacheObserver(_ body: (@Sendable (KVCache) -> Void)?) { lock.lock(); cacheObserver = body; lock.unlock() }
    func cacheUpdated(_ cache: KVCache) {
        lock.lock(); let body = cacheObserver; lock.unlock()
        body?(cache)
    }
    func started() { lock.lock(); state.running += 1; lock.unlock() }
    func finished(_ reason: StopReason?, tokens: Int) {
        lock.lock()
        state.running -= 1
        if let reason { state.stopped[reason, default: 0] += 1 } else { state.failed += 1 }
        state.generatedTokens += tokens
        lock.unlock()
    }
    var snapshot: Snapshot { lock.lock(); defer { lock.unlock() }; return state }
}

/// Peak resident set size of this process in MB (VmHWM on Linux, ru_maxrss elsewhere).
public func peakResidentMegabytes() -> Double {
    #if os(Linux)
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kb = Double(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? "") {
        return kb / 1024
    }
    #endif
    var usage = rusage()
    #if os(Linux)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
    #else
    getrusage(RUSAGE_SELF, &usage)
    return Double(usage.ru_maxrss) / 1_048_576
    #endif
}

// MARK: - Weight traffic

extension QwenModel {
    /// Bytes of weights one decode step reads: every MatMulNBits' packed weights, scales and zero
    /// points, every constant of MatMul, Gemm, MatMulInteger (the q8 exports: int8 weights and
    /// their zero point) and MatMulBnb4 (codes and absmax), and one row of each Gather'ed
    /// embedding table. The
    /// decode roofline is memory bandwidth divided by this (the KV cache adds its own reads).
    public var weightBytesPerToken: Int {
        let graph = decoder.session.graph
        var bytes = 0
        for node in graph.nodes {
            switch node.opType {
            case "MatMulNBits", "MatMulNBitsGroup":
                for name in node.inputs.dropFirst() where !name.isEmpty { bytes += graph.constants[name]?.byteCount ?? 0 }
            case "MatMul", "Gemm", "MatMulInteger", "MatMulBnb4":
                for name in node.inputs where !name.isEmpty { bytes += graph.constants[name]?.byteCount ?? 0 }
            case "Gather":
                if let table = graph.constants[node.inputs[0]], table.rank == 2 {
                    bytes += table.byteCount / max(table.shape[0], 1)
                }
            default:
                break
            }
        }
        return bytes
    }
}

// MARK: - Prompts in chunks

extension QwenModel {
    /// Whether a prompt run in chunks (`Generation.prefillChunk`) gives, bit for bit, the logits
    /// and caches of one pass: true when every product with constant weights is a MatMulNBits or
    /// a MatMul by a float16 matrix (the fp16 exports': `qk_f16_gemm` since session 20), whose
    /// kernels compute each row independently of how many rows there are (the attention does
    /// too: `FusedAttention`). MatMulBnb4, and float32 or int8 MatMul, Gemm and MatMulInteger
    /// products of many rows go through BLAS or integer GEMMs whose results per row depend on the
    /// row count (OpenBLAS picks its kernels by the rows left): those models prefill in one pass.
    /// So do all models below the SIMD level (`PackedQ4Matrix.gemmRuns`, e.g. `QWEN_ISA=portable`:
    /// MatMulNBits and the float16 MatMul multiply many rows through OpenBLAS too).
    public var chunkedPrefillIsExact: Bool {
        guard PackedQ4Matrix.gemmRuns else { return false }
        let graph = decoder.session.graph
        for node in graph.nodes {
            if node.opType == "MatMulBnb4" { return false }
            guard ["MatMul", "Gemm", "MatMulInteger"].contains(node.opType) else { continue }
            for (i, name) in node.inputs.enumerated() where !name.isEmpty {
                guard let t = graph.constants[name], t.rank >= 2 else { continue }
                // HalfWeightMatMulOperator: B a constant float16 matrix.
                if node.opType == "MatMul" && i == 1 && t.dtype == .float16 && t.rank == 2 { continue }
                return false
            }
        }
        return true
    }
}

// MARK: - Decode speed at a given context length

extension QwenModel {
    /// Decode speed with `position` tokens already in the KV cache: fills a cache with
    /// `position` synthetic positions (all keys and values zero, all attended), then times
    /// `steps` single-token forward passes (token 0) after one untimed warm-up step. The work per
    /// step is what a real conversation at that length costs; the values do not matter.
    /// Returns tokens per second.
    /// With `batch` > 1, `batch` sequences step together through the batched forward pass
    /// (`Session.runBatch`, as continuous batching runs them), each with `position` tokens
    /// cached, and the rate counts every sequence's token.
    @_spi(Benchmarks) public func decodeTokensPerSecond(atPosition position: Int, steps: Int, batch: Int = 1) throws -> Double {
        guard position >= 0, steps > 0, batch > 0 else {
            throw GenerationError.invalidParameters("position must be ≥ 0, steps and batch > 0, got \(position), \(steps) and \(batch)")
        }
        guard position + steps + 1 <= maxPositions else {
            throw GenerationError.contextOverflow(tokens: position + steps + 1, limit: maxPositions)
        }
        var caches = (0..<batch).map { _ in makeCache() }
        for i in caches.indices { caches[i].fillWithZeros(length: position, interface: decoder.interface) }
        let ids = [Int](repeating: 0, count: batch)
        func step() throws {
            if batch == 1 { _ = try decoder.forward(ids, cache: &caches[0]) } else { _ = try decoder.forward(batch: ids, caches: &caches) }
        }
        try step()
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<steps { try step() }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Double(steps * batch) / seconds
    }
}

// MARK: - Teacher-forced logits through the decode path

extension QwenModel {
    /// The logits after each of `ids` (row i: the next-token logits after ids[0...i]), computed
    /// one token at a time through the KV cache, i.e. by the decode step's kernels, not the
    /// prefill's. For measuring decode accuracy against a reference (scripts/int8_accuracy.py).
    @_spi(Benchmarks) public func stepwiseLogits(_ ids: [Int]) throws -> [[Float]] {
        var cache = makeCache()
        return try ids.map { try decoder.forward([$0], cache: &cache) }
    }
}
