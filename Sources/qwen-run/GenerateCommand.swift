import ArgumentParser
import Foundation
import Kernels
import Qwen

/// `qwen-run --model DIR --prompt TEXT`: generate text, streamed to stdout as tokens arrive.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text with a model directory (the default command).",
        discussion: """
        The prompt goes through the tokenizer's chat template as one user message (after --system, \
        if given) unless --raw. Sampling defaults come from the model's generation_config.json; \
        flags override them; --greedy takes the most likely token every step. \
        Generation stops at an eos id of generation_config.json, after --max-tokens, or at the \
        model's context length.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "The prompt (read from stdin when omitted and not --interactive).")
    var prompt: String?

    @Option(help: "A system message for the chat template.")
    var system: String?

    @Flag(help: "Send the prompt as is, without the chat template.")
    var raw = false

    // Numeric options take values that start with '-' (so that `--temperature -1` reaches
    // validate() and its message, instead of "missing value").
    @Option(name: .customLong("max-tokens"), parsing: .unconditional, help: "Maximum number of new tokens.")
    var maxTokens = 512

    @Option(parsing: .unconditional, help: "Sampling temperature (0 = greedy).")
    var temperature: Float?

    @Option(name: .customLong("top-k"), parsing: .unconditional, help: "Keep the k most likely tokens (0 = off).")
    var topK: Int?

    @Option(name: .customLong("top-p"), parsing: .unconditional, help: "Nucleus sampling: keep tokens up to this cumulative probability.")
    var topP: Float?

    @Option(name: .customLong("min-p"), parsing: .unconditional, help: "Drop tokens below min-p × the top token's probability.")
    var minP: Float?

    @Option(name: .customLong("repetition-penalty"), parsing: .unconditional, help: "Hugging Face repetition penalty (1 = off).")
    var repetitionPenalty: Float?

    @Option(name: .customLong("presence-penalty"), parsing: .unconditional,
            help: "OpenAI presence penalty: subtracted once from every generated token's logit (0 = off).")
    var presencePenalty: Float?

    @Option(name: .customLong("frequency-penalty"), parsing: .unconditional,
            help: "OpenAI frequency penalty: subtracted per time a token was generated (0 = off).")
    var frequencyPenalty: Float?

    @Option(name: .customLong("response-format"),
            help: "text, or jsonObject: only tokens that keep the answer a JSON object, ending when it closes.")
    var responseFormat = "text"

    @Option(name: .customLong("json-schema"),
            help: "A JSON Schema file (as response_format's json_schema.schema): the answer is a JSON object following it.")
    var jsonSchema: String?

    @Option(help: "Random seed for reproducible sampling.")
    var seed: UInt64?

    @Flag(help: "Greedy decoding: always the most likely token (no sampling, no repetition penalty unless given).")
    var greedy = false

    @Flag(help: "Print load time, prompt tokens, prefill and decode tokens/s, peak RSS to stderr.")
    var stats = false

    @Flag(help: "Print one JSON object (ids, text, stats) instead of streaming text.")
    var json = false

    @Flag(help: "Multi-turn chat in the terminal; the conversation and its KV cache are kept between turns.")
    var interactive = false

    var parameters: GenerateParameters {
        var parameters = GenerateParameters(
            maxTokens: maxTokens,
            doSample: greedy ? false : nil,
            temperature: temperature, topK: topK, topP: topP, minP: minP,
            repetitionPenalty: repetitionPenalty ?? (greedy ? 1 : nil),
            presencePenalty: presencePenalty, frequencyPenalty: frequencyPenalty,
            seed: seed)
        parameters.responseFormat = ResponseFormat(rawValue: responseFormat) ?? .text
        return parameters
    }

    func validate() throws {
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be ≥ 0, got \(maxTokens)") }
        if let t = temperature, !(t >= 0) { throw ValidationError("--temperature must be ≥ 0 (0 = greedy), got \(t)") }
        if let k = topK, k < 0 { throw ValidationError("--top-k must be ≥ 0 (0 = off), got \(k)") }
        if let p = topP, !(p > 0 && p <= 1) { throw ValidationError("--top-p must be in (0, 1], got \(p)") }
        if let p = minP, !(p >= 0 && p <= 1) { throw ValidationError("--min-p must be in [0, 1], got \(p)") }
        if let r = repetitionPenalty, !(r > 0) { throw ValidationError("--repetition-penalty must be > 0 (1 = off), got \(r)") }
        guard ResponseFormat(rawValue: responseFormat) != nil else {
            throw ValidationError("--response-format must be \(ResponseFormat.allCases.map(\.rawValue).joined(separator: " or ")), got '\(responseFormat)'")
        }
        for (flag, value) in [("--presence-penalty", presencePenalty), ("--frequency-penalty", frequencyPenalty)] {
            if let v = value, !v.isFinite { throw ValidationError("\(flag) must be a finite number (0 = off), got \(v)") }
        }
        if interactive && json { throw ValidationError("--interactive and --json do not go together") }
        if jsonSchema != nil && responseFormat != "text" { throw ValidationError("--json-schema and --response-format do not go together") }
    }

    /// The generation parameters, with `--json-schema`'s file compiled when given.
    func loadParameters() throws -> GenerateParameters {
        var parameters = self.parameters
        guard let path = jsonSchema else { return parameters }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw InputError("--json-schema \(path): cannot be read (\((error as NSError).localizedDescription))")
        }
        guard let text = String(validating: [UInt8](data), as: UTF8.self) else {
            throw InputError("--json-schema \(path): not valid UTF-8 (byte \(firstInvalidUTF8Offset(data) ?? 0) of \(data.count))")
        }
        let schema: JSONValue
        do { schema = try JSONValue.parse(text) } catch {
            throw InputError("--json-schema \(path): not JSON (\(error))")
        }
        do { parameters.outputPattern = try OutputPattern(jsonSchema: schema) } catch {
            throw InputError("--json-schema \(path): the schema at \(error.path) cannot be followed: \(error.reason)")
        }
        return parameters
    }

    func run() throws {
        let parameters = try loadParameters()
        let qwen = try modelOptions.load()
        if interactive {
            try chat(qwen, parameters: parameters)
            return
        }
        var text = prompt
        if text == nil {
            if isatty(0) != 0 {
                // A terminal: say what the silence is waiting for.
                FileHandle.standardError.write(Data("qwen-run: reading the prompt from standard input; end it with Ctrl-D "
                    .appending("(or pass --prompt TEXT, or --interactive for a chat)\n").utf8))
            }
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard let s = String(validating: [UInt8](data), as: UTF8.self) else {
                throw InputError("the prompt on stdin is not valid UTF-8 (byte \(firstInvalidUTF8Offset(data) ?? 0) of \(data.count))")
            }
            text = s
        }
        let ids = try qwen.encode(prompt: text!, system: system, raw: raw)
        var cache = qwen.makeCache()
        var progress = PrefillProgress(tokens: ids.count)
        let result = try qwen.generate(promptIds: ids, parameters: parameters, cache: &cache, onToken: { _, piece in
            progress.clear()
            if !json { writeOut(piece) }
            return true
        }, onPrefillProgress: progress.isShown ? { progress.update($0) } : nil)
        progress.clear()
        if json {
            print(try jsonReport(result, loadSeconds: qwen.loadSeconds, weightBytesPerToken: qwen.weightBytesPerToken))
        } else {
            writeOut("\n")
        }
        if stats { reportStats(result.stats, loadSeconds: qwen.loadSeconds, weightBytesPerToken: qwen.weightBytesPerToken) }
        printProfileIfEnabled()
    }

    private func chat(_ qwen: QwenModel, parameters: GenerateParameters) throws {
        var messages: [ChatMessage] = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        var cache = qwen.makeCache()
        var pending = prompt
        var editor = LineEditor()
        catchInterrupts()
        FileHandle.standardError.write(Data(("Chatting with \(modelOptions.model). Empty line, /exit or Ctrl-D to quit; "
            + "Ctrl-C stops an answer.\n").utf8))
        while true {
            let line: String
            if let p = pending {
                line = p
                pending = nil
            } else {
                guard let l = editor.readLine(prompt: "> ") else { break }
                line = l
            }
            if line.isEmpty || line == "/exit" { break }
            messages.append(ChatMessage(role: "user", content: line))
            let ids = try qwen.encode(messages: messages)
            interruptRequested.store(false, ordering: .relaxed)
            let result = try qwen.generate(promptIds: ids, parameters: parameters, cache: &cache) { _, piece in
                writeOut(piece)
                return !interruptRequested.load(ordering: .relaxed)
            }
            // Ctrl-C stopped the answer: keep what was said, say so, and take the next line.
            writeOut(result.stopReason == .cancelled ? " [stopped]\n" : "\n")
            messages.append(ChatMessage(role: "assistant", content: result.text))
            if stats { reportStats(result.stats, loadSeconds: qwen.loadSeconds, weightBytesPerToken: qwen.weightBytesPerToken) }
        }
    }

    private func reportStats(_ s: GenerationStats, loadSeconds: Double, weightBytesPerToken: Int) {
        let megabytes = Double(weightBytesPerToken) / 1e6
        let line = String(format: "load %.3f s | prompt %d tokens (%d run) | prefill %.1f tok/s | decode %.1f tok/s (%d tokens), weights %.0f MB/token = %.1f GB/s | peak RSS %.0f MB",
                          loadSeconds, s.promptTokens, s.prefilledTokens, s.prefillTokensPerSecond, s.decodeTokensPerSecond,
                          s.generatedTokens, megabytes, megabytes * s.decodeTokensPerSecond / 1000, s.peakRSSMegabytes)
            + " | kernels \(KernelISA.active.name)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    private func jsonReport(_ r: GenerationResult, loadSeconds: Double, weightBytesPerToken: Int) throws -> String {
        struct Report: Encodable {
            struct Stats: Encodable {
                let load_s: Double
                let prompt_tokens: Int
                let generated_tokens: Int
                let prefill_tokens_per_s: Double
                let decode_tokens_per_s: Double
                let peak_rss_mb: Double
                let weight_bytes_per_token: Int
                /// The kernels' instruction-set level (`KernelISA.name`).
                let kernel_isa: String
            }
            let prompt_ids: [Int]
            let generated_ids: [Int]
            let text: String
            let stop_reason: String
            let stats: Stats
        }
        let s = r.stats
        let report = Report(prompt_ids: r.promptTokenIds, generated_ids: r.generatedTokenIds, text: r.text,
                            stop_reason: r.stopReason.rawValue,
                            stats: .init(load_s: loadSeconds, prompt_tokens: s.promptTokens, generated_tokens: s.generatedTokens,
                                         prefill_tokens_per_s: s.prefillTokensPerSecond, decode_tokens_per_s: s.decodeTokensPerSecond,
                                         peak_rss_mb: s.peakRSSMegabytes, weight_bytes_per_token: weightBytesPerToken,
                                         kernel_isa: KernelISA.active.name))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }
}

/// A progress line on stderr while a long prompt is prefilled ("prefill 3,039 tokens: 41%, 12.3 s"),
/// when stderr is a terminal and the prompt has 512 tokens or more; erased before the answer.
struct PrefillProgress {
    let tokens: Int
    let isShown: Bool
    private var started = Date()
    private var lastPercent = -1
    private var visible = false

    init(tokens: Int) {
        self.tokens = tokens
        isShown = tokens >= 512 && isatty(2) != 0
    }

    mutating func update(_ fraction: Double) {
        guard isShown else { return }
        let percent = Int(fraction * 100)
        guard percent != lastPercent, percent < 100 else { return }
        if lastPercent < 0 { started = Date() }
        lastPercent = percent
        visible = true
        let line = String(format: "\rprefill %d tokens: %d%%, %.1f s\u{1B}[K", tokens, percent, Date().timeIntervalSince(started))
        FileHandle.standardError.write(Data(line.utf8))
    }

    mutating func clear() {
        guard visible else { return }
        visible = false
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

/// Writes to stdout unbuffered, so streamed text appears as it is generated.
func writeOut(_ s: String) {
    guard !s.isEmpty else { return }
    FileHandle.standardOutput.write(Data(s.utf8))
}
