import ArgumentParser
import Foundation
import Kernels
import Qwen
import QwenServer

/// `qwen-run serve`: the OpenAI-compatible HTTP server.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the model over an OpenAI-compatible HTTP API.",
        discussion: """
        Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, \
        GET /metrics (Prometheus). Any OpenAI client works with base URL http://HOST:PORT/v1. \
        SIGTERM or Ctrl-C stops accepting connections, lets in-flight requests finish, then exits.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Address to listen on (0.0.0.0 for every interface).")
    var host = "127.0.0.1"

    @Option(help: "TCP port.")
    var port = 8080

    @Option(name: .customLong("model-id"), help: "The model's name in the API (default: the model directory's name).")
    var modelID: String?

    @Option(name: .customLong("max-batch"), help: "Requests generated at the same time; more wait in the queue.")
    var maxBatch = 8

    @Option(name: .customLong("max-queue"), help: "Requests that may wait for a free slot; beyond that the server answers 429.")
    var maxQueue = 64

    @Option(name: .customLong("prefill-chunk"), help: "Prompt tokens run between decode steps of the running requests (while others decode, long prompts run in chunks of this many tokens, at least 3; 0 = whole prompts).")
    var prefillChunk = 128

    @Option(name: .customLong("prompt-cache-mb"), help: "MB of KV cache kept from earlier prompts, so that a prompt beginning like an earlier one runs only the rest, with the same results (0 = none).")
    var promptCacheMB = 256

    @Flag(name: .customLong("no-warm-answers"), help: "Do not run finished answers again while idle to keep them in the prompt cache (a conversation's next turn then runs its earlier answer again).")
    var noWarmAnswers = false

    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on /v1 routes (default: $QWEN_API_KEY, else none).")
    var apiKey: String?

    @Option(name: .customLong("max-body-bytes"), help: "Largest request body accepted (413 beyond).")
    var maxBodyBytes = 4 << 20

    @Option(name: .customLong("request-timeout"), help: "Seconds a request may take before it is stopped (0 = no limit).")
    var requestTimeout: Double = 600

    @Option(name: .customLong("reasoning-format"), help: "Chat answers of models that think first (a chat template with <think> blocks, as DeepSeek-R1's Qwen distillations have): auto returns the block as 'reasoning_content', none leaves it in 'content'. A request's 'reasoning_format' overrides it.")
    var reasoningFormat = ReasoningFormat.auto

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be in 1...65535, got \(port)") }
        guard maxBatch >= 1 else { throw ValidationError("--max-batch must be ≥ 1, got \(maxBatch)") }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue must be ≥ 0, got \(maxQueue)") }
        guard prefillChunk >= 0 else { throw ValidationError("--prefill-chunk must be ≥ 0, got \(prefillChunk)") }
        guard promptCacheMB >= 0, promptCacheMB <= 1 << 30 else { throw ValidationError("--prompt-cache-mb must be ≥ 0, got \(promptCacheMB)") }
        guard maxBodyBytes >= 1024 else { throw ValidationError("--max-body-bytes must be ≥ 1024, got \(maxBodyBytes)") }
        guard requestTimeout >= 0, requestTimeout.isFinite else { throw ValidationError("--request-timeout must be ≥ 0, got \(requestTimeout)") }
    }

    func run() async throws {
        BuildTarget.warnOnce()
        let start = Date()
        let qwen = try await modelOptions.load()
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.modelID = modelID
        configuration.maxBatch = maxBatch
        configuration.maxQueue = maxQueue
        configuration.prefillChunk = prefillChunk
        configuration.promptCacheBytes = promptCacheMB << 20
        configuration.warmsAnswers = !noWarmAnswers
        configuration.apiKey = apiKey ?? ProcessInfo.processInfo.environment["QWEN_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.maxBodyBytes = maxBodyBytes
        configuration.requestTimeout = requestTimeout > 0 ? requestTimeout : nil
        configuration.reasoningFormat = reasoningFormat
        let server = OpenAIServer(model: qwen, configuration: configuration)
        let loaded = String(format: "%.1f", Date().timeIntervalSince(start))
        let id = server.modelID, hostText = host.contains(":") ? "[\(host)]" : host
        let listening = ListeningFlag()
        do {
            try await server.run { _ in
                listening.set()
                FileHandle.standardError.write(Data("qwen-run serve: model '\(id)' loaded in \(loaded) s; listening on http://\(hostText):\(port)\n".utf8))
            }
        } catch where !listening.isSet {
            // Binding failed (port in use, no permission, unknown host): say where.
            throw InputError("cannot listen on \(hostText):\(port): \(error)")
        }
        FileHandle.standardError.write(Data("qwen-run serve: stopped\n".utf8))
    }
}

/// Set once the server listens (from a NIO thread), read after `run` returns.
private final class ListeningFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

extension ReasoningFormat: ExpressibleByArgument {}
