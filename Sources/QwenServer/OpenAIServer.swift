import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Prometheus
import Qwen
import ServiceLifecycle

/// Settings of an `OpenAIServer`.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// The name clients give as `model`; nil: the model directory's name.
    public var modelID: String?
    /// Sequences generated at the same time; more requests wait in the queue.
    public var maxBatch = 8
    /// Requests that may wait for a free sequence; beyond that, 429.
    public var maxQueue = 64
    /// Prompt tokens run between two decode steps of the running sequences: while others are
    /// decoding, a prompt runs in chunks of this size (at least 3: see
    /// `Generation.prefillChunk`), so running streams pause for one chunk at a time; 0 runs every
    /// prompt in one pass, as does a prompt with no stream waiting on it. Only where chunks leave
    /// every result unchanged (`QwenModel.chunkedPrefillIsExact`: the 4-bit MatMulNBits forms);
    /// other models run prompts in one pass.
    public var prefillChunk = 128
    /// Bytes of KV cache kept from earlier prompts (`PromptCache`: a prompt that begins like an
    /// earlier one runs only the rest, with the same results); 0 keeps none. Only where prompt
    /// chunks are exact (`QwenModel.chunkedPrefillIsExact`).
    public var promptCacheBytes = 256 << 20
    /// With a prompt cache: each finished answer runs again with its prompt while the server is
    /// idle (nothing waiting or running; 32 tokens a round), into the prompt cache, so that a
    /// conversation's next turn runs only its new messages.
    public var warmsAnswers = true
    /// When set, `/v1/*` requires `Authorization: Bearer <apiKey>` (`/health`, `/metrics` do not).
    public var apiKey: String?
    /// Largest request body accepted (413 beyond).
    public var maxBodyBytes = 4 << 20
    /// Largest request head (header fields) accepted.
    public var maxHeaderBytes = 64 << 10
    /// Seconds a request may take from arrival to its last token (504, or an error event when
    /// streaming); nil: no limit.
    public var requestTimeout: Double? = 600
    /// Connections idle this long are closed.
    public var idleTimeout: Double = 120
    /// Chat answers of models that think first (their chat template handles `<think>` blocks:
    /// DeepSeek-R1's Qwen distillations, QwQ): `.auto` returns the block as the message's
    /// `reasoning_content` and the rest as its `content`; `.none` returns the text as generated.
    /// A request's `reasoning_format` overrides it.
    public var reasoningFormat = ReasoningFormat.auto

    public init() {}
}

/// An OpenAI-compatible HTTP API over a `QwenModel`: `POST /v1/chat/completions`,
/// `POST /v1/completions`, `GET /v1/models`, `GET /health`, `GET /metrics`.
///
/// Mount it in a Hummingbird app with `addRoutes(to:)`, or run it on its own with `run()`
/// (graceful shutdown on SIGTERM / SIGINT: in-flight requests finish, then it stops).
///
/// ```swift
/// let model = try await QwenModel.load(directory: URL(fileURLWithPath: "Models/qwen2.5-coder-0.5b-instruct"))
/// try await OpenAIServer(model: model, configuration: ServerConfiguration()).run()
/// ```
public final class OpenAIServer: Sendable {
    public let model: QwenModel
    public let configuration: ServerConfiguration
    /// The model's name in requests and in `/v1/models`.
    public let modelID: String
    /// The Prometheus registry `/metrics` prints.
    public let metricsRegistry: PrometheusCollectorRegistry
    let metrics: ServerMetrics
    let scheduler: Scheduler
    private let created = Int(Date().timeIntervalSince1970)

    public init(model: QwenModel, configuration: ServerConfiguration = ServerConfiguration()) {
        self.model = model
        self.configuration = configuration
        modelID = configuration.modelID ?? model.directory.url.lastPathComponent
        metricsRegistry = PrometheusCollectorRegistry()
        metrics = ServerMetrics(registry: metricsRegistry)
        scheduler = Scheduler(maxBatch: configuration.maxBatch, maxQueue: configuration.maxQueue,
                              prefillChunk: configuration.prefillChunk, chunksAreExact: model.chunkedPrefillIsExact,
                              promptCacheBytes: configuration.promptCacheBytes, warmsAnswers: configuration.warmsAnswers,
                              timeout: configuration.requestTimeout, metrics: metrics)
    }

    // MARK: Routes

    /// Adds the routes to `router` (a `Router` or a group of one).
    public func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>) {
        router.get("/health") { _, _ in Response.json(["status": "ok"]) }
        router.get("/metrics") { [metrics] _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        router.get("/v1/models") { [self] request, _ in
            try authorize(request)
            return Response.json(["object": "list", "data": [modelObject]])
        }
        router.get("/v1/models/{id}") { [self] request, context in
            try authorize(request)
            let id = context.parameters.get("id") ?? ""
            guard id == modelID else { throw OpenAIError.modelNotFound(id, available: modelID) }
            return Response.json(modelObject)
        }
        router.post("/v1/chat/completions") { [self] request, _ in try await complete(request, chat: true) }
        router.post("/v1/completions") { [self] request, _ in try await complete(request, chat: false) }
    }

    /// A router with the routes, OpenAI-shaped errors for every failure (unknown routes too) and
    /// request counts in the metrics.
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: OpenAIErrorMiddleware(metrics: metrics))
        addRoutes(to: router)
        return router
    }

    /// The application `run()` runs (for tests and custom service groups).
    public func makeApplication(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
        let http = HTTP1Channel.Configuration(
            idleTimeout: .milliseconds(Int64(configuration.idleTimeout * 1000)),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: configuration.maxHeaderBytes,
                                            maxHeaderListSize: configuration.maxHeaderBytes, maxHeaderFieldCount: 200))
        var logger = Logger(label: "qwen-run serve")
        logger.logLevel = .warning
        return Application(router: makeRouter(), server: .http1(configuration: http),
                           configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                                serverName: "qwen-swift/\(QwenSwift.version)"),
                           services: [SchedulerService(scheduler: scheduler)],
                           onServerRunning: onServerRunning, logger: logger)
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight requests finish and returns.
    public func run(onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) async throws {
        try await makeApplication(onServerRunning: onServerRunning).runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }

    private var modelObject: JSONValue {
        ["id": .string(modelID), "object": "model", "created": .int(created), "owned_by": "qwen-swift"]
    }

    private func authorize(_ request: Request) throws(OpenAIError) {
        guard let key = configuration.apiKey else { return }
        guard let header = request.headers[.authorization], header == "Bearer \(key)" else { throw .unauthorized }
    }

    // MARK: Completions

    private func complete(_ request: Request, chat: Bool) async throws -> Response {
        try authorize(request)
        let limit = configuration.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw OpenAIError.bodyTooLarge(limit: limit) }
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: limit) } catch is NIOTooManyBytesError {
            throw OpenAIError.bodyTooLarge(limit: limit)
        }
        let parsed = try CompletionRequest(json: Array(buffer: body), chat: chat)
        if let name = parsed.model, name != modelID { throw OpenAIError.modelNotFound(name, available: modelID) }

        if case .several(let prompts) = parsed.prompt { return try await completeSeveral(prompts, parsed) }
        let (promptIds, opensThinking) = try tokens(of: parsed.prompt, chat: chat)
        let room = model.maxPositions - promptIds.count
        var parameters = parsed.parameters
        parameters.maxTokens = min(parsed.maxTokens ?? room, room)
        let echo = parsed.echo ? try await echoed(promptIds, top: parameters.logprobs) : nil
        let reply = Reply(id: (chat ? "chatcmpl-" : "cmpl-") + Reply.randomID(), created: Int(Date().timeIntervalSince1970),
                          model: modelID, chat: chat, promptTokens: promptIds.count,
                          tokenizer: parameters.logprobs == nil ? nil : model.tokenizer, echo: echo)
        if parameters.maxTokens == 0, echo != nil {
            // `echo` with max_tokens 0: the prompt scored, nothing generated.
            let choices = (0..<parsed.choices).map { reply.echoOnlyChoice(index: $0) }
            if parsed.stream {
                return echoOnlyStream(Array(repeating: reply, count: parsed.choices), usage: parsed.includeUsage ? reply.usage([]) : nil)
            }
            return Response.json(reply.complete(choices: choices, results: []))
        }
        let tickets = try submit(try choices(parsed.choices, of: promptIds, parameters))
        // With tools offered, the text is searched for tool calls.
        var withTools = false
        if case .chat(_, let tools?) = parsed.prompt, !tools.isEmpty { withTools = true }
        // A think block split off (not from an output the format constrains: that is the answer).
        let thinking: Bool? = chat && (parsed.reasoningFormat ?? configuration.reasoningFormat) == .auto
            && Reasoning.templateThinks(model.tokenizer.chatTemplate?.source)
            && parameters.outputPattern == nil && parameters.responseFormat == .text ? opensThinking : nil
        if parsed.stream {
            var usage: UsageOfResults? = nil
            if parsed.includeUsage { usage = { results in reply.usage(results) } }
            return streamed(tickets, replies: Array(repeating: reply, count: tickets.count), usage: usage, withTools: withTools,
                            thinking: thinking)
        }

        defer { for ticket in tickets { ticket.cancel() } }
        // The scheduler runs the choices together; their events wait in their streams.
        var choices: [JSONValue] = [], results: [GenerationResult] = []
        do {
            for (index, ticket) in tickets.enumerated() {
                guard let (text, logprobs, result) = try await collect(ticket, reply) else { break }
                let (reasoning, answer) = thinking.map { Reasoning.split(text, opened: $0) } ?? (nil, text)
                let (content, calls) = withTools ? ToolCalls.parse(answer) : (answer, [])
                choices.append(reply.choice(index: index, text: content, result: result, toolCalls: calls, logprobs: logprobs,
                                            reasoning: reasoning))
                results.append(result)
            }
        } catch {
            throw OpenAIError.failure(error, timeout: configuration.requestTimeout)
        }
        guard results.count == tickets.count else { throw OpenAIError.server(CancellationError()) }
        return Response.json(reply.complete(choices: choices, results: results))
    }

    /// A prompt's `count` choices (`n`): with a seed, choice i draws with seed + i (choice 0 is
    /// the request with n = 1); without, each its own random one. All but the first prefill only
    /// the prompt's last tokens where the prompt cache serves (the first one's prefill).
    private func choices(_ count: Int, of promptIds: [Int], _ parameters: GenerateParameters) throws -> [Generation] {
        do {
            return try (0..<count).map { i in
                var choice = parameters
                if let seed = parameters.seed { choice.seed = seed &+ UInt64(i) }
                return try Generation(model: model, promptIds: promptIds, parameters: choice)
            }
        } catch {
            throw OpenAIError.invalidRequest("\(error)")
        }
    }

    /// Queues `generations` together (all or none), refusals as OpenAI errors.
    private func submit(_ generations: [Generation]) throws -> [Scheduler.Ticket] {
        do { return try scheduler.submit(generations) } catch {
            switch error {
            case .queueFull(let limit): throw OpenAIError.queueFull(limit: limit)
            case .shuttingDown: throw OpenAIError.shuttingDown
            }
        }
    }

    /// A generation's whole text (after the echoed prompt, if any), its log probabilities when
    /// asked, and its result; nil when its stream ended without finishing (cancelled).
    private func collect(_ ticket: Scheduler.Ticket, _ reply: Reply) async throws -> (String, Reply.Logprobs?, GenerationResult)? {
        var text = reply.echo?.text ?? ""
        var logprobs = reply.wantsLogprobs ? reply.echo?.logprobs ?? Reply.Logprobs() : nil
        for try await event in ticket.events {
            switch event {
            case .step(let step):
                logprobs?.add(step)
                text += step.text
            case .finished(let result):
                return (text, logprobs, result)
            }
        }
        return nil
    }

    /// A prompt's token ids, checked: not empty, and room for at least one token in the context;
    /// and whether it is a chat prompt that ends inside a `<think>` block (`Reasoning`).
    private func tokens(of prompt: CompletionRequest.Prompt, chat: Bool) throws -> (ids: [Int], opensThinking: Bool) {
        let promptIds: [Int]
        var opensThinking = false
        do {
            switch prompt {
            case .chat(let messages, let tools):
                let text = try model.tokenizer.applyChatTemplate(messages: messages, addGenerationPrompt: true, tools: tools)
                opensThinking = Reasoning.promptOpens(text)
                promptIds = model.tokenizer.encode(text)
            case .text(let text): promptIds = model.tokenizer.encode(text)
            case .infill(let prefix, let suffix):
                guard let format = FillInTheMiddle(model.tokenizer) else {
                    throw OpenAIError.unsupported("suffix", "the model's tokenizer has no fill-in-the-middle tokens (\(FillInTheMiddle.tokens.joined(separator: ", ")))")
                }
                promptIds = model.tokenizer.encode(format.prompt(prefix: prefix, suffix: suffix))
            case .tokenIds(let ids): promptIds = ids
            case .several: throw OpenAIError.invalidRequest("a prompt inside 'prompt' holds several prompts", param: "prompt")
            }
        } catch let error as OpenAIError {
            throw error
        } catch {
            throw OpenAIError.invalidRequest("the messages do not fit the model's chat template: \(error)", param: "messages")
        }
        guard !promptIds.isEmpty else { throw OpenAIError.invalidRequest("the prompt is empty", param: chat ? "messages" : "prompt") }
        guard promptIds.count < model.maxPositions else {
            throw OpenAIError.invalidRequest(
                "the prompt is \(promptIds.count) tokens; with at least one token to generate this exceeds the model's context length of \(model.maxPositions) tokens",
                param: chat ? "messages" : "prompt", code: "context_length_exceeded")
        }
        return (promptIds, opensThinking)
    }

    /// Completions of several prompts (`prompt` an array of them), `n` choices each: choice
    /// `p * n + j` is prompt p's choice j, as OpenAI numbers them; usage adds up the prompts.
    /// All the generations are queued together; streamed, their chunks interleave as they come
    /// (each naming its choice), as `n` choices of one prompt do.
    private func completeSeveral(_ prompts: [CompletionRequest.Prompt], _ parsed: CompletionRequest) async throws -> Response {
        struct Prepared {
            let ids: [Int]
            let parameters: GenerateParameters
            let reply: Reply
        }
        let id = "cmpl-" + Reply.randomID(), created = Int(Date().timeIntervalSince1970)
        var prepared: [Prepared] = []
        for prompt in prompts {
            let ids = try tokens(of: prompt, chat: false).ids
            var parameters = parsed.parameters
            let room = model.maxPositions - ids.count
            parameters.maxTokens = min(parsed.maxTokens ?? room, room)
            let echo = parsed.echo ? try await echoed(ids, top: parameters.logprobs) : nil
            let reply = Reply(id: id, created: created, model: modelID, chat: false, promptTokens: ids.count,
                              tokenizer: parameters.logprobs == nil ? nil : model.tokenizer, echo: echo)
            prepared.append(Prepared(ids: ids, parameters: parameters, reply: reply))
        }
        let promptTokens = prepared.reduce(0) { $0 + $1.ids.count }
        if parsed.stream, prepared[0].parameters.maxTokens == 0 {
            // max_tokens 0 (with echo): every prompt's choices are their prompts, for every prompt alike.
            let replies = prepared.flatMap { Array(repeating: $0.reply, count: parsed.choices) }
            return echoOnlyStream(replies, usage: parsed.includeUsage ? Reply.usage(promptTokens: promptTokens, results: []) : nil)
        }
        // Every prompt's choices, in order (none for an echo with max_tokens 0).
        var generations: [Generation] = [], owner: [(prompt: Int, choice: Int)] = []
        for (p, item) in prepared.enumerated() where item.parameters.maxTokens > 0 {
            generations += try choices(parsed.choices, of: item.ids, item.parameters)
            owner += (0..<parsed.choices).map { (p, $0) }
        }
        let tickets = try submit(generations)
        if parsed.stream {
            // Each prompt's max_tokens is above 0 here, so ticket k is choice k.
            let promptOf = owner.map(\.prompt), promptCount = prompts.count
            var usage: UsageOfResults? = nil
            if parsed.includeUsage {
                usage = { results in
                    var byPrompt: [[GenerationResult]] = Array(repeating: [], count: promptCount)
                    for (k, result) in results.enumerated() { byPrompt[promptOf[k]].append(result) }
                    return Reply.usage(promptTokens: promptTokens, results: byPrompt)
                }
            }
            return streamed(tickets, replies: owner.map { prepared[$0.prompt].reply }, usage: usage, withTools: false, thinking: nil)
        }
        defer { for ticket in tickets { ticket.cancel() } }
        var choices = [JSONValue?](repeating: nil, count: prompts.count * parsed.choices)
        var results: [[GenerationResult]] = Array(repeating: [], count: prompts.count)
        for (p, item) in prepared.enumerated() where item.parameters.maxTokens == 0 {
            for j in 0..<parsed.choices { choices[p * parsed.choices + j] = item.reply.echoOnlyChoice(index: p * parsed.choices + j) }
        }
        do {
            for (k, ticket) in tickets.enumerated() {
                let (p, j) = owner[k], reply = prepared[p].reply
                guard let (text, logprobs, result) = try await collect(ticket, reply) else { break }
                choices[p * parsed.choices + j] = reply.choice(index: p * parsed.choices + j, text: text, result: result, logprobs: logprobs)
                results[p].append(result)
            }
        } catch {
            throw OpenAIError.failure(error, timeout: configuration.requestTimeout)
        }
        let all = choices.compactMap { $0 }
        guard all.count == choices.count else { throw OpenAIError.server(CancellationError()) }
        let usage = Reply.usage(promptTokens: promptTokens, results: results)
        return Response.json(prepared[0].reply.complete(choices: all, usage: usage))
    }

    /// The prompt as `echo` repeats it: its text (the ids decoded, special tokens kept) and, when
    /// `top` is given, each token's log probability (`QwenModel.promptLogprobs`, on a thread of
    /// its own: it runs a forward pass), with where each token's text begins.
    private func echoed(_ ids: [Int], top: Int?) async throws -> Reply.Echo {
        var detokenizer = model.tokenizer.makeStreamingDetokenizer(skipSpecialTokens: false)
        var text = "", scalars: [Int] = []
        for id in ids {
            let piece = detokenizer.append(id)
            scalars.append(piece.unicodeScalars.count)
            text += piece
        }
        let tail = detokenizer.finish()
        text += tail
        scalars[scalars.count - 1] += tail.unicodeScalars.count
        guard let top else { return Reply.Echo(text: text, logprobs: nil) }
        let model = self.model
        let scores: [TokenLogprobs?]
        do {
            scores = try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global(qos: .userInitiated).async {
                    continuation.resume(with: Result { try model.promptLogprobs(ids, top: top) })
                }
            }
        } catch {
            throw OpenAIError.server(error)
        }
        var logprobs = Reply.Logprobs()
        for (i, id) in ids.enumerated() { logprobs.addPrompt(id, logprobs: scores[i], scalars: scalars[i]) }
        return Reply.Echo(text: text, logprobs: logprobs)
    }

    /// The stream of an `echo` request with max_tokens 0: each choice's prompt (choice i's from
    /// `replies[i]`), its finish, the usage if asked, `[DONE]`.
    private func echoOnlyStream(_ replies: [Reply], usage: JSONValue?) -> Response {
        let body = ResponseBody { writer in
            func send(_ value: JSONValue) async throws {
                try await writer.write(ByteBuffer(string: "data: \(value.jsonText)\n\n"))
            }
            for (index, reply) in replies.enumerated() {
                try await send(reply.chunk(text: reply.echo?.text ?? "", logprobs: reply.echo?.logprobs, index: index))
                try await send(reply.chunk(finishReason: "length", index: index))
            }
            if let usage, let reply = replies.first { try await send(reply.usageChunk(usage)) }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// A streamed request's usage from its choices' results (in choice order).
    private typealias UsageOfResults = @Sendable ([GenerationResult]) -> JSONValue

    /// One choice's events as the streamed response interleaves them.
    private enum ChoiceEvent: Sendable {
        case event(Int, Scheduler.Event)
        case failed(any Error)
    }

    /// Server-sent events: a chunk per text piece, the finish reason, the usage if asked, `[DONE]`.
    /// A failed write (the client has gone) ends the loop, and leaving it cancels the generations.
    /// Log probabilities, when asked, ride with the chunk that carries their tokens' text (a token
    /// whose text is held back, an incomplete character or a possible stop string, with the next
    /// chunk sent; what is left at the end, with the finish reason).
    /// With tools offered, content streams until a `<tool_call>` begins; the calls follow at the
    /// end, one delta with all of them (`ToolCalls.Stream`). With `thinking` (whether the prompt
    /// opened a think block; nil: no splitting), a think block streams as `reasoning_content`
    /// deltas before the content (`Reasoning.Stream`).
    /// Several choices (`n`, several prompts) stream interleaved as their tokens come, each chunk
    /// naming its choice's index (ticket i is choice i, `replies[i]` its prompt's reply); the usage
    /// chunk (`usage` of the results in choice order) and `[DONE]` follow the last one's finish.
    private func streamed(_ tickets: [Scheduler.Ticket], replies: [Reply], usage: UsageOfResults?, withTools: Bool,
                          thinking: Bool?) -> Response {
        let timeout = configuration.requestTimeout
        let body = ResponseBody { writer in
            defer { for ticket in tickets { ticket.cancel() } }
            func send(_ value: JSONValue) async throws {
                try await writer.write(ByteBuffer(string: "data: \(value.jsonText)\n\n"))
            }
            struct Choice {
                var reasoning: Reasoning.Stream?
                var tools: ToolCalls.Stream?
                // Log probabilities not sent yet.
                var pending: Reply.Logprobs?
            }
            var choices = replies.map { reply in
                Choice(reasoning: thinking.map { Reasoning.Stream(opened: $0) }, tools: withTools ? ToolCalls.Stream() : nil,
                       pending: reply.wantsLogprobs ? reply.echo?.logprobs ?? Reply.Logprobs() : nil)
            }
            func sendText(_ text: String, _ index: Int) async throws {
                try await send(replies[index].chunk(text: text, logprobs: choices[index].pending, index: index))
                choices[index].pending?.removeAll()
            }
            // A piece of reasoning, then of answer, the answer through the tool-call search.
            func sendSplit(_ piece: (reasoning: String, content: String), _ index: Int) async throws {
                if !piece.reasoning.isEmpty {
                    try await send(replies[index].chunk(delta: ["reasoning_content": .string(piece.reasoning)],
                                                        logprobs: choices[index].pending, index: index))
                    choices[index].pending?.removeAll()
                }
                let text = piece.content.isEmpty ? "" : choices[index].tools?.append(piece.content) ?? piece.content
                if !text.isEmpty { try await sendText(text, index) }
            }
            // The choices' events in one sequence, in the order they come.
            let (merged, input) = AsyncStream<ChoiceEvent>.makeStream()
            let readers = Task {
                await withTaskGroup(of: Void.self) { group in
                    for (index, ticket) in tickets.enumerated() {
                        group.addTask {
                            do {
                                for try await event in ticket.events { input.yield(.event(index, event)) }
                            } catch {
                                input.yield(.failed(error))
                            }
                        }
                    }
                }
                input.finish()
            }
            defer { readers.cancel() }
            for (index, reply) in replies.enumerated() where reply.chat {
                try await send(reply.chunk(delta: ["role": "assistant", "content": ""], index: index))
            }
            // `echo`: each choice's prompt first, with its log probabilities when asked.
            for (index, reply) in replies.enumerated() {
                if let echo = reply.echo { try await sendText(echo.text, index) }
            }
            var results = [GenerationResult?](repeating: nil, count: tickets.count), finished = 0
            do {
                events: for await item in merged {
                    switch item {
                    case .failed(let error):
                        throw error
                    case .event(let index, .step(let step)):
                        choices[index].pending?.add(step)
                        try await sendSplit(choices[index].reasoning?.append(step.text) ?? ("", step.text), index)
                    case .event(let index, .finished(let result)):
                        if let held = choices[index].reasoning?.finish() { try await sendSplit(held, index) }
                        var reason = Reply.finishReason(result.stopReason)
                        if let (content, calls) = choices[index].tools?.finish() {
                            if !content.isEmpty { try await sendText(content, index) }
                            if !calls.isEmpty {
                                try await send(replies[index].chunk(delta: ["tool_calls": ToolCalls.json(calls, indexed: true)], index: index))
                                reason = "tool_calls"
                            }
                        }
                        let pending = choices[index].pending
                        try await send(replies[index].chunk(finishReason: reason, logprobs: pending?.isEmpty == false ? pending : nil,
                                                            index: index))
                        results[index] = result
                        finished += 1
                        if finished == tickets.count { break events }
                    }
                }
                if finished == tickets.count {
                    if let usage, let reply = replies.first { try await send(reply.usageChunk(usage(results.compactMap { $0 }))) }
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                }
            } catch let error where !(error is CancellationError) {
                // The request failed after its head was sent: an error event, as OpenAI streams do.
                try await send(OpenAIError.failure(error, timeout: timeout).json)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}

/// Fill-in-the-middle prompts in the format Qwen2.5-Coder was trained on (its model card):
/// `<|fim_prefix|>PREFIX<|fim_suffix|>SUFFIX<|fim_middle|>`, the model then writing the middle.
/// The special tokens are split off by the tokenizer as Hugging Face's does.
struct FillInTheMiddle {
    static let tokens = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]

    /// Nil unless `tokenizer` has the three tokens as special tokens.
    init?(_ tokenizer: Tokenizer) {
        guard FillInTheMiddle.tokens.allSatisfy({ token in tokenizer.tokenID(token).map(tokenizer.isSpecial) ?? false }) else { return nil }
    }

    func prompt(prefix: String, suffix: String) -> String {
        FillInTheMiddle.tokens[0] + prefix + FillInTheMiddle.tokens[1] + suffix + FillInTheMiddle.tokens[2]
    }
}

extension OpenAIError {
    /// A generation that ended in an error: its timeout, or the model's failure.
    static func failure(_ error: any Error, timeout: Double?) -> OpenAIError {
        if error is Scheduler.TimedOut { return .timedOut(after: timeout ?? 0) }
        return .server(error)
    }
}

/// The response bodies of one request (chat or text completion).
struct Reply: Sendable {
    let id: String
    let created: Int
    let model: String
    let chat: Bool
    let promptTokens: Int
    /// Set when the request asked for log probabilities (it spells their tokens).
    let tokenizer: Tokenizer?
    /// With `echo`: the prompt's text, and its tokens' log probabilities when asked.
    var echo: Echo? = nil

    struct Echo: Sendable {
        let text: String
        let logprobs: Logprobs?
    }

    var wantsLogprobs: Bool { tokenizer != nil }

    /// The log probabilities of generated tokens (and, with `echo`, the prompt's before them),
    /// with where each token's text begins in the completion (in Unicode scalars, as Python counts
    /// characters, of the text released). A stop token (eos), which adds no text of its own, has
    /// none; the prompt's first token has a token but no log probability.
    struct Logprobs: Sendable {
        var tokens: [(id: Int, logprobs: TokenLogprobs?, offset: Int)] = []
        /// Where the next step's text begins.
        private var offset = 0
        var isEmpty: Bool { tokens.isEmpty }

        init(startingAt offset: Int = 0) { self.offset = offset }

        /// Adds `step`'s, after the text of the steps added before.
        mutating func add(_ step: GenerationStep) {
            if let logprobs = step.logprobs, !step.isStopToken { tokens.append((step.tokenId, logprobs, offset)) }
            offset += step.text.unicodeScalars.count
        }

        /// Adds prompt token `id` (`logprobs` nil for the first), whose text is `scalars` long.
        mutating func addPrompt(_ id: Int, logprobs: TokenLogprobs?, scalars: Int) {
            tokens.append((id, logprobs, offset))
            offset += scalars
        }

        /// The tokens sent: none left, the offsets going on.
        mutating func removeAll() { tokens.removeAll() }
    }

    static func randomID() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<24).map { _ in String(UInt8.random(in: 0..<16, using: &g), radix: 16) }.joined()
    }

    /// OpenAI's finish reasons: "stop" (a stop token or string), "length" (max_tokens or the context).
    static func finishReason(_ reason: StopReason) -> String {
        switch reason {
        case .stopToken, .stopString, .formatComplete: "stop"
        case .maxTokens, .contextLimit: "length"
        case .cancelled: "stop"
        }
    }

    /// OpenAI's usage over a request's choices: the prompt once, the completion tokens of all,
    /// and the prompt tokens the first choice took from the prompt cache as
    /// `prompt_tokens_details.cached_tokens`.
    func usage(_ results: [GenerationResult]) -> JSONValue {
        Reply.usage(promptTokens: promptTokens, results: [results])
    }

    /// Usage over several prompts (`results[p]`: prompt p's choices).
    static func usage(promptTokens: Int, results: [[GenerationResult]]) -> JSONValue {
        let completion = results.joined().reduce(0) { $0 + $1.generatedTokenIds.count }
        let cached = results.reduce(0) { $0 + ($1.first.map { max(0, $0.stats.promptTokens - $0.stats.prefilledTokens) } ?? 0) }
        return ["prompt_tokens": .int(promptTokens), "completion_tokens": .int(completion), "total_tokens": .int(promptTokens + completion),
                "prompt_tokens_details": ["cached_tokens": .int(cached)]]
    }

    private func envelope(object: String, choices: [JSONValue], usage: JSONValue? = nil) -> JSONValue {
        var o = JSONObject([("id", .string(id)), ("object", .string(object)), ("created", .int(created)),
                            ("model", .string(model)), ("choices", .array(choices))])
        if let usage { o["usage"] = usage }
        return .object(o)
    }

    /// Choice `index` of a finished request; `reasoning`: a think block's text (`Reasoning`).
    func choice(index: Int, text: String, result: GenerationResult, toolCalls: [ToolCalls.Call] = [], logprobs: Logprobs? = nil,
                reasoning: String? = nil) -> JSONValue {
        let reason = JSONValue.string(toolCalls.isEmpty ? Reply.finishReason(result.stopReason) : "tool_calls")
        var message = JSONObject([("role", "assistant"), ("content", toolCalls.isEmpty || !text.isEmpty ? .string(text) : .null)])
        if let reasoning { message["reasoning_content"] = .string(reasoning) }
        if !toolCalls.isEmpty { message["tool_calls"] = ToolCalls.json(toolCalls, indexed: false) }
        return chat
            ? ["index": .int(index), "message": .object(message), "logprobs": json(logprobs), "finish_reason": reason]
            : ["index": .int(index), "text": .string(text), "logprobs": json(logprobs), "finish_reason": reason]
    }

    /// Choice `index` of an `echo` request with max_tokens 0: the prompt only.
    func echoOnlyChoice(index: Int) -> JSONValue {
        ["index": .int(index), "text": .string(echo?.text ?? ""), "logprobs": json(echo?.logprobs), "finish_reason": "length"]
    }

    func complete(choices: [JSONValue], results: [GenerationResult]) -> JSONValue {
        complete(choices: choices, usage: usage(results))
    }

    func complete(choices: [JSONValue], usage: JSONValue) -> JSONValue {
        envelope(object: chat ? "chat.completion" : "text_completion", choices: choices, usage: usage)
    }

    func chunk(delta: JSONValue, logprobs: Logprobs? = nil, index: Int = 0) -> JSONValue {
        envelope(object: "chat.completion.chunk", choices: [["index": .int(index), "delta": delta, "logprobs": json(logprobs), "finish_reason": nil]])
    }

    func chunk(text: String, logprobs: Logprobs? = nil, index: Int = 0) -> JSONValue {
        chat ? chunk(delta: ["content": .string(text)], logprobs: logprobs, index: index)
             : envelope(object: "text_completion", choices: [["index": .int(index), "text": .string(text), "logprobs": json(logprobs), "finish_reason": nil]])
    }

    func chunk(finishReason: String, logprobs: Logprobs? = nil, index: Int = 0) -> JSONValue {
        chat ? envelope(object: "chat.completion.chunk", choices: [["index": .int(index), "delta": [:], "logprobs": json(logprobs), "finish_reason": .string(finishReason)]])
             : envelope(object: "text_completion", choices: [["index": .int(index), "text": "", "logprobs": json(logprobs), "finish_reason": .string(finishReason)]])
    }

    func usageChunk(_ usage: JSONValue) -> JSONValue {
        envelope(object: chat ? "chat.completion.chunk" : "text_completion", choices: [], usage: usage)
    }

    /// `logprobs` in OpenAI's shape, null when not asked for. Chat: `{"content": [{token, logprob,
    /// bytes, top_logprobs: [{token, logprob, bytes}]}], "refusal": null}`. Completions (the legacy
    /// shape): `{"tokens", "token_logprobs", "top_logprobs": [{token: logprob}] (the alternatives
    /// and the sampled token), "text_offset"}`. A token's text is its bytes read as UTF-8 (U+FFFD
    /// for part of a character: `bytes` has them exactly).
    private func json(_ logprobs: Logprobs?) -> JSONValue {
        guard let logprobs, let tokenizer else { return .null }
        func spelled(_ id: Int) -> (text: JSONValue, bytes: JSONValue) {
            let bytes = tokenizer.tokenBytes(id) ?? []
            return (.string(String(decoding: bytes, as: UTF8.self)), .array(bytes.map { .int(Int($0)) }))
        }
        func number(_ x: Float?) -> JSONValue {
            guard let x else { return .null }
            return x.isFinite ? .double(Double(x)) : .double(-9999)
        }
        if chat {
            let content: [JSONValue] = logprobs.tokens.map { token in
                let (text, bytes) = spelled(token.id)
                let top: [JSONValue] = (token.logprobs?.top ?? []).map { alternative in
                    let (text, bytes) = spelled(alternative.id)
                    return .object(JSONObject([("token", text), ("logprob", number(alternative.logprob)), ("bytes", bytes)]))
                }
                return .object(JSONObject([("token", text), ("logprob", number(token.logprobs?.chosen.logprob)),
                                           ("bytes", bytes), ("top_logprobs", .array(top))]))
            }
            return .object(JSONObject([("content", .array(content)), ("refusal", .null)]))
        }
        var tokens: [JSONValue] = [], values: [JSONValue] = [], tops: [JSONValue] = [], offsets: [JSONValue] = []
        for token in logprobs.tokens {
            tokens.append(spelled(token.id).text)
            values.append(number(token.logprobs?.chosen.logprob))
            if let scored = token.logprobs {
                var top = JSONObject()
                for t in scored.top + [scored.chosen] {
                    if case .string(let key) = spelled(t.id).text, top[key] == nil { top[key] = number(t.logprob) }
                }
                tops.append(.object(top))
            } else {
                tops.append(.null)
            }
            offsets.append(.int(token.offset))
        }
        return .object(JSONObject([("tokens", .array(tokens)), ("token_logprobs", .array(values)),
                                   ("top_logprobs", .array(tops)), ("text_offset", .array(offsets))]))
    }
}

/// Every error as an OpenAI error object (unknown routes and methods included), and each
/// request counted by route and status.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as OpenAIError {
            response = error.response()
        } catch let error as HTTPError {
            response = error.status == .notFound
                ? OpenAIError.routeNotFound(request.method, request.uri.path).response()
                : OpenAIError(status: error.status, message: error.body ?? error.status.reasonPhrase,
                              type: error.status.code >= 500 ? "server_error" : "invalid_request_error").response()
        } catch {
            response = OpenAIError.server(error).response()
        }
        metrics.request(route: context.endpointPath ?? "unmatched", status: response.status.code)
        return response
    }
}

/// Keeps the scheduler's thread for the application's life; at graceful shutdown (after the
/// HTTP server has drained: services stop in reverse order) it lets the last requests finish.
struct SchedulerService: Service {
    let scheduler: Scheduler

    func run() async throws {
        try? await gracefulShutdown()
        scheduler.shutDown()
    }
}
