import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Qwen
@testable import QwenServer

/// The tiny committed fixture (Models/fixtures/tiny-qwen2: 2 layers, vocabulary 512, context 256).
enum TinyModel {
    static let directory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("../../Models/fixtures/tiny-qwen2").standardized
    static let shared: QwenModel = try! QwenModel(directory: directory)
}

/// Routes, bodies and errors of the OpenAI API, through Hummingbird's in-process test client.
/// The reference for every generated text is the library run alone (`QwenModel.generate`): a
/// request served by the scheduler, among others or not, must give exactly those ids.
@Suite struct OpenAIServerTests {
    let model = TinyModel.shared

    func server(_ configure: (inout ServerConfiguration) -> Void = { _ in }) -> OpenAIServer {
        var configuration = ServerConfiguration()
        configure(&configuration)
        return OpenAIServer(model: model, configuration: configuration)
    }

    /// The body as JSON (null when it is not JSON: the expectations on it then fail).
    func json(_ buffer: ByteBuffer) -> JSONValue { (try? JSONValue.parse(String(buffer: buffer))) ?? .null }

    static func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
    static let jsonHeaders: HTTPFields = [.contentType: "application/json"]

    /// What the library generates alone for `messages` with `parameters`.
    func solo(_ messages: [ChatMessage], _ parameters: GenerateParameters) throws -> GenerationResult {
        var cache = model.makeCache()
        return try model.generate(promptIds: try model.encode(messages: messages), parameters: parameters, cache: &cache)
    }

    @Test func healthModelsAndMetrics() async throws {
        let app = Application(router: server().makeRouter())
        try await app.test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(json(response.body)["status"] == "ok")
            }
            try await client.execute(uri: "/v1/models", method: .get) { response in
                #expect(response.status == .ok)
                let body = json(response.body)
                #expect(body["object"] == "list")
                #expect(body["data"]?.arrayValue?.first?["id"] == "tiny-qwen2")
                #expect(body["data"]?.arrayValue?.first?["object"] == "model")
            }
            try await client.execute(uri: "/v1/models/tiny-qwen2", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                for name in ["qwen_prompt_tokens_total", "qwen_queue_depth", "qwen_active_sequences",
                             "qwen_requests_total{route=\"/v1/models\",status=\"200\"} 1"] {
                    #expect(text.contains(name), "\(name) missing from /metrics")
                }
            }
        }
    }

    @Test func chatCompletionIsTheSoloGeneration() async throws {
        let messages = [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "hello there")]
        let expected = try solo(messages, .greedy(maxTokens: 12))
        let app = Application(router: server().makeRouter())
        let request = """
        {"model": "tiny-qwen2", "messages": [{"role": "system", "content": "Be brief."},
         {"role": "user", "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}]}],
         "temperature": 0, "max_tokens": 12}
        """
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.jsonHeaders, body: Self.body(request)) { response in
                #expect(response.status == .ok)
                let body = json(response.body)
                #expect(body["object"] == "chat.completion")
                #expect(body["choices"]?[0]?["message"]?["content"]?.stringValue == expected.text)
                #expect(body["choices"]?[0]?["message"]?["role"] == "assistant")
                #expect(body["choices"]?[0]?["finish_reason"]?.stringValue == (expected.stopReason == .stopToken ? "stop" : "length"))
                #expect(body["usage"]?["prompt_tokens"]?.intValue == expected.promptTokenIds.count)
                #expect(body["usage"]?["completion_tokens"]?.intValue == expected.generatedTokenIds.count)
                #expect(body["usage"]?["total_tokens"]?.intValue == expected.promptTokenIds.count + expected.generatedTokenIds.count)
            }
        }
    }

    /// The SSE stream: a role chunk, content chunks adding up to the solo text, a finish reason,
    /// the usage chunk when asked, `[DONE]`.
    @Test func streamedChatAddsUpToTheSoloText() async throws {
        let messages = [ChatMessage(role: "user", content: "count with me")]
        let expected = try solo(messages, .greedy(maxTokens: 20))
        let app = Application(router: server().makeRouter())
        let request = #"{"messages": [{"role": "user", "content": "count with me"}], "temperature": 0, "max_completion_tokens": 20, "stream": true, "stream_options": {"include_usage": true}}"#
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.jsonHeaders, body: Self.body(request)) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/event-stream")
                let events = String(buffer: response.body).components(separatedBy: "\n\n").filter { !$0.isEmpty }
                #expect(events.allSatisfy { $0.hasPrefix("data: ") })
                #expect(events.last == "data: [DONE]")
                let chunks = try events.dropLast().map { try JSONValue.parse(String($0.dropFirst(6))) }
                #expect(chunks.first?["choices"]?[0]?["delta"]?["role"] == "assistant")
                let text = chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
                #expect(text == expected.text)
                let reasons = chunks.compactMap { $0["choices"]?[0]?["finish_reason"]?.stringValue }
                #expect(reasons == [expected.stopReason == .stopToken ? "stop" : "length"])
                #expect(chunks.last?["choices"]?.arrayValue?.isEmpty == true)
                #expect(chunks.last?["usage"]?["completion_tokens"]?.intValue == expected.generatedTokenIds.count)
                #expect(chunks.allSatisfy { $0["object"] == "chat.completion.chunk" })
            }
        }
    }

    @Test func completionsTakeTheTextAsItIs() async throws {
        var cache = model.makeCache()
        let expected = try model.generate(promptIds: model.tokenizer.encode("def add(a, b):"), parameters: .greedy(maxTokens: 10), cache: &cache)
        let app = Application(router: server().makeRouter())
        try await app.test(.router) { client in
            let request = #"{"model": "tiny-qwen2", "prompt": "def add(a, b):", "max_tokens": 10, "temperature": 0}"#
            try await client.execute(uri: "/v1/completions", method: .post, headers: Self.jsonHeaders, body: Self.body(request)) { response in
                #expect(response.status == .ok)
                let body = json(response.body)
                #expect(body["object"] == "text_completion")
                #expect(body["choices"]?[0]?["text"]?.stringValue == expected.text)
            }
            let ids = model.tokenizer.encode("def add(a, b):").map(String.init).joined(separator: ",")
            let byIds = #"{"prompt": [\#(ids)], "max_tokens": 10, "temperature": 0}"#
            try await client.execute(uri: "/v1/completions", method: .post, headers: Self.jsonHeaders, body: Self.body(byIds)) { response in
                #expect(json(response.body)["choices"]?[0]?["text"]?.stringValue == expected.text)
            }
        }
    }

    /// Every refusal in OpenAI's error shape with its status, type and code.
    @Test func errorsAreOpenAIErrorObjects() async throws {
        let app = Application(router: server { $0.maxBodyBytes = 2048 }.makeRouter())
        let cases: [(String, String, HTTPResponse.Status, String, String?)] = [
            ("/v1/chat/completions", "{not json", .badRequest, "invalid_request_error", "invalid_json"),
            ("/v1/chat/completions", "[1]", .badRequest, "invalid_request_error", "invalid_json"),
            ("/v1/chat/completions", #"{"messages": []}"#, .badRequest, "invalid_request_error", nil),
            ("/v1/chat/completions", #"{"messages": [{"role": "wizard", "content": "x"}]}"#, .badRequest, "invalid_request_error", nil),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "x"}], "temperature": 3}"#, .badRequest, "invalid_request_error", nil),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}"#, .badRequest, "invalid_request_error", nil),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "x"}], "n": 17}"#, .badRequest, "invalid_request_error", nil),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}"#, .badRequest, "invalid_request_error", nil),
            ("/v1/completions", #"{"prompt": [1, 2, 3], "suffix": "x"}"#, .badRequest, "invalid_request_error", nil),
            ("/v1/completions", #"{"prompt": "def f(", "suffix": "x"}"#, .badRequest, "invalid_request_error", "unsupported_parameter"),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}"#, .badRequest, "invalid_request_error", nil),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]}"#, .badRequest, "invalid_request_error", nil),
            ("/v1/chat/completions", #"{"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}"#, .notFound, "invalid_request_error", "model_not_found"),
            ("/v1/completions", #"{"prompt": {"a": 1}}"#, .badRequest, "invalid_request_error", nil),
            ("/v1/completions", #"{"prompt": [1, 2, 99999]}"#, .badRequest, "invalid_request_error", nil),
            ("/v1/completions", "{\"prompt\": \"" + String(repeating: "word ", count: 300) + "\"}", .badRequest, "invalid_request_error", "context_length_exceeded"),
            ("/v1/completions", "{\"prompt\": \"" + String(repeating: "x", count: 3000) + "\"}", .contentTooLarge, "invalid_request_error", "request_too_large"),
            ("/v1/nothing", "{}", .notFound, "not_found_error", nil),
        ]
        try await app.test(.router) { client in
            for (uri, body, status, type, code) in cases {
                try await client.execute(uri: uri, method: .post, headers: Self.jsonHeaders, body: Self.body(body)) { response in
                    #expect(response.status == status, "\(uri) \(body.prefix(80))")
                    let error = json(response.body)["error"]
                    #expect(error?["type"]?.stringValue == type, "\(body.prefix(80))")
                    #expect(error?["code"] == (code.map(JSONValue.string) ?? .null), "\(body.prefix(80))")
                    #expect((error?["message"]?.stringValue ?? "").count > 0)
                }
            }
        }
    }

    /// Mounted under a group of another app's router (no middleware of ours), the routes work
    /// and their errors are still OpenAI error objects.
    @Test func mountsOnAnotherRouter() async throws {
        let router = Router()
        router.get("/") { _, _ in "the host app" }
        server().addRoutes(to: router.group("llm"))
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/llm/v1/models", method: .get) { response in
                #expect(response.status == .ok)
                #expect(json(response.body)["data"]?[0]?["id"] == "tiny-qwen2")
            }
            try await client.execute(uri: "/llm/v1/chat/completions", method: .post, body: Self.body(#"{"messages": 7}"#)) { response in
                #expect(response.status == .badRequest)
                #expect(json(response.body)["error"]?["param"] == "messages")
            }
            try await client.execute(uri: "/", method: .get) { response in
                #expect(String(buffer: response.body) == "the host app")
            }
        }
    }

    @Test func apiKeyGuardsTheAPIButNotHealth() async throws {
        let app = Application(router: server { $0.apiKey = "sesame" }.makeRouter())
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/models", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(json(response.body)["error"]?["type"] == "authentication_error")
            }
            try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer nope"]) { response in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer sesame"]) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/health", method: .get) { response in #expect(response.status == .ok) }
        }
    }

    /// Stop strings cut the text before their first occurrence, in both forms of the response.
    @Test func stopStringsCutTheSoloText() async throws {
        let messages = [ChatMessage(role: "user", content: "tell me a story")]
        let free = try solo(messages, .greedy(maxTokens: 24))
        let scalars = Array(free.text.unicodeScalars)
        try #require(scalars.count >= 8, "the fixture's greedy text is too short to pick a stop string from")
        var stop = String.UnicodeScalarView()
        stop.append(contentsOf: scalars[(scalars.count / 2)..<(scalars.count / 2 + 2)])
        let stopText = String(stop)
        let cut = String(free.text[..<free.text.range(of: stopText)!.lowerBound])
        let app = Application(router: server().makeRouter())
        let stopJSON = JSONValue.string(stopText).jsonText
        try await app.test(.router) { client in
            for stream in [false, true] {
                let request = #"{"messages": [{"role": "user", "content": "tell me a story"}], "temperature": 0, "max_tokens": 24, "stop": \#(stopJSON), "stream": \#(stream)}"#
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.jsonHeaders, body: Self.body(request)) { response in
                    if stream {
                        let chunks = try String(buffer: response.body).components(separatedBy: "\n\n")
                            .filter { $0.hasPrefix("data: {") }.map { try JSONValue.parse(String($0.dropFirst(6))) }
                        #expect(chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined() == cut)
                        #expect(chunks.compactMap { $0["choices"]?[0]?["finish_reason"]?.stringValue } == ["stop"])
                    } else {
                        let body = json(response.body)
                        #expect(body["choices"]?[0]?["message"]?["content"]?.stringValue == cut)
                        #expect(body["choices"]?[0]?["finish_reason"] == "stop")
                    }
                }
            }
        }
    }

    /// Eight requests at once (greedy and seeded sampling) give what each gives alone.
    @Test func concurrentRequestsEqualTheirSoloRuns() async throws {
        let prompts = (0..<8).map { "question number \($0): what is \($0) + \($0)?" }
        let sampling = GenerateParameters(maxTokens: 16, doSample: true, temperature: 0.8, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, seed: 7)
        let greedy = try prompts.map { try solo([ChatMessage(role: "user", content: $0)], .greedy(maxTokens: 16)).text }
        let sampled = try prompts.map { try solo([ChatMessage(role: "user", content: $0)], sampling).text }
        let app = Application(router: server { $0.maxBatch = 3 }.makeRouter())
        try await app.test(.router) { client in
            for (expected, extra) in [(greedy, #""temperature": 0"#), (sampled, #""temperature": 0.8, "top_k": 0, "top_p": 1, "min_p": 0, "repetition_penalty": 1, "seed": 7"#)] {
                let texts = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                    for (i, prompt) in prompts.enumerated() {
                        group.addTask {
                            let request = #"{"messages": [{"role": "user", "content": "\#(prompt)"}], "max_tokens": 16, \#(extra)}"#
                            return try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.jsonHeaders,
                                                            body: Self.body(request)) { response in
                                (i, json(response.body)["choices"]?[0]?["message"]?["content"]?.stringValue ?? "<none>")
                            }
                        }
                    }
                    var texts = [String](repeating: "", count: prompts.count)
                    for try await (i, text) in group { texts[i] = text }
                    return texts
                }
                #expect(texts == expected)
            }
        }
    }

    /// A prompt that waits while another request decodes runs in chunks between that one's
    /// decode steps (`prefillChunk`, here the minimum of 3), and both requests get their solo
    /// ids; a prompt with nothing else decoding runs in one pass.
    @Test func promptChunksRunOnlyWhileOthersDecode() async throws {
        // (Not exact below the SIMD level: QWEN_ISA=portable runs every prompt whole.)
        let exact = model.chunkedPrefillIsExact
        let metrics = ServerMetrics(registry: .init())
        let scheduler = Scheduler(maxBatch: 2, maxQueue: 2, prefillChunk: 3, chunksAreExact: exact, timeout: nil, metrics: metrics)
        defer { scheduler.shutDown() }
        var parameters = GenerateParameters.greedy(maxTokens: 48)
        parameters.stopTokenIds = []
        let prompts = [try model.tokenizer.encode(String(repeating: "def add(a, b): return a + b. ", count: 4)),
                       try model.tokenizer.encode(String(repeating: "class Stack: push, pop and peek. ", count: 4))]
        #expect(prompts.allSatisfy { $0.count >= 20 })
        let alone = try prompts.map { prompt -> [Int] in
            var cache = model.makeCache()
            return try model.generate(promptIds: prompt, parameters: parameters, cache: &cache).generatedTokenIds
        }
        // Both admitted in one round: the first prompt runs alone (one pass), then the second
        // while the first decodes (chunks of 3 while 6 or more are left; step() runs the rest).
        scheduler.isPaused = true
        let tickets = try prompts.map { try scheduler.submit(try Generation(model: model, promptIds: $0, parameters: parameters)) }
        scheduler.isPaused = false
        for (i, ticket) in tickets.enumerated() {
            var ids: [Int] = []
            for try await event in ticket.events { if case .step(let step) = event { ids.append(step.tokenId) } }
            #expect(ids == alone[i], "request \(i)")
        }
        let line = metrics.exposition().split(separator: "\n").first { $0.hasPrefix("qwen_prompt_chunks_total ") }
        let chunks = line.flatMap { Int($0.split(separator: " ").last ?? "") }
        #expect((chunks ?? 0) == (exact ? (prompts[1].count - 6) / 3 + 1 : 0), "\(line ?? "no qwen_prompt_chunks_total")")
    }

    /// The prompt cache: a prompt sharing a stored prefix runs only the rest (at least 3 tokens)
    /// and gets the ids and log probabilities of its solo run bit for bit; an entry that begins a
    /// newer prompt is replaced by it; the least recently used go when the bytes run out.
    @Test func promptCacheReusesPrefixesExactly() throws {
        var parameters = GenerateParameters.greedy(maxTokens: 16)
        parameters.stopTokenIds = []
        parameters.logprobs = 2
        func steps(_ generation: inout Generation) throws -> [GenerationStep] {
            var out: [GenerationStep] = []
            while let step = try generation.step() { out.append(step) }
            return out
        }
        let shared = (0..<40).map { (53 * $0 + 7) % 500 }
        let first = shared + [11, 12, 13, 14], second = shared + [21, 22, 23, 24, 25]
        let cache = PromptCache(capacityBytes: 64 << 20)

        var one = try Generation(model: model, promptIds: first, parameters: parameters)
        #expect(cache.reuse(for: &one) == 0)
        let firstSteps = try steps(&one)
        cache.store(prompt: first, cache: one.cache.prefix(first.count))
        #expect(cache.entries.map(\.tokens) == [first])

        var solo = try Generation(model: model, promptIds: second, parameters: parameters)
        let soloSteps = try steps(&solo)
        var two = try Generation(model: model, promptIds: second, parameters: parameters)
        #expect(cache.reuse(for: &two) == shared.count)
        #expect(two.stats.prefilledTokens == second.count - shared.count)
        let twoSteps = try steps(&two)
        if model.chunkedPrefillIsExact { #expect(twoSteps == soloSteps, "the reused prefix changed the steps") }

        // The same prompt again: all but the last minimumChunk tokens reused, the same steps.
        var again = try Generation(model: model, promptIds: first, parameters: parameters)
        #expect(cache.reuse(for: &again) == first.count - Generation.minimumChunk)
        if model.chunkedPrefillIsExact { #expect(try steps(&again) == firstSteps) }

        // A longer prompt beginning with an entry replaces it; a prompt the entries begin is not kept.
        let longer = first + [31, 32, 33]
        var three = try Generation(model: model, promptIds: longer, parameters: parameters)
        _ = try steps(&three)
        cache.store(prompt: longer, cache: three.cache.prefix(longer.count))
        #expect(cache.entries.map(\.tokens) == [longer])
        cache.store(prompt: first, cache: one.cache.prefix(first.count))
        #expect(cache.entries.map(\.tokens) == [longer])

        // Room for one entry: storing another drops the least recently used.
        let small = PromptCache(capacityBytes: max(one.cache.byteCount, solo.cache.byteCount) + 1)
        small.store(prompt: first, cache: one.cache.prefix(first.count))
        small.store(prompt: second, cache: solo.cache.prefix(second.count))
        #expect(small.entries.map(\.tokens) == [second])
        #expect(small.bytes <= small.capacityBytes)
        // Disabled: nothing kept, nothing reused.
        let none = PromptCache(capacityBytes: 0)
        none.store(prompt: first, cache: one.cache.prefix(first.count))
        var four = try Generation(model: model, promptIds: first, parameters: parameters)
        #expect(none.entries.isEmpty && none.reuse(for: &four) == 0)
    }

    /// A finished answer is warmed while the scheduler is idle: the next turn (prompt, answer
    /// and new tokens) then runs only its new tokens and gets the steps of its solo run, log
    /// probabilities bit for bit; without warming it runs the answer again.
    @Test func finishedAnswersAreWarmedForTheNextTurn() async throws {
        let exact = model.chunkedPrefillIsExact
        var parameters = GenerateParameters.greedy(maxTokens: 40)
        parameters.stopTokenIds = []
        parameters.logprobs = 2
        let prompt = (0..<40).map { (61 * $0 + 5) % 500 }
        func metric(_ metrics: ServerMetrics, _ name: String) -> Int {
            let line = metrics.exposition().split(separator: "\n").first { $0.hasPrefix(name + " ") }
            return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        }
        func run(_ scheduler: Scheduler, _ ids: [Int]) async throws -> (steps: [GenerationStep], result: GenerationResult?) {
            let ticket = try scheduler.submit(try Generation(model: model, promptIds: ids, parameters: parameters))
            var steps: [GenerationStep] = [], result: GenerationResult?
            for try await event in ticket.events {
                switch event {
                case .step(let step): steps.append(step)
                case .finished(let r): result = r
                }
            }
            return (steps, result)
        }
        for warms in [true, false] {
            let metrics = ServerMetrics(registry: .init())
            let scheduler = Scheduler(maxBatch: 2, maxQueue: 2, chunksAreExact: exact, promptCacheBytes: 64 << 20,
                                      warmsAnswers: warms, timeout: nil, metrics: metrics)
            defer { scheduler.shutDown() }
            let first = try await run(scheduler, prompt)
            let answer = try #require(first.result).generatedTokenIds
            #expect(answer.count == 40)
            let expected = warms && exact ? answer.count : 0
            // Idle now: the answer is warmed (32 tokens, then the last 8 with their logits).
            for _ in 0..<600 where metric(metrics, "qwen_prompt_cache_warmed_tokens_total") < expected {
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            #expect(metric(metrics, "qwen_prompt_cache_warmed_tokens_total") == expected)
            let next = prompt + answer + [7, 70, 170, 270, 370]
            var solo = try Generation(model: model, promptIds: next, parameters: parameters)
            var soloSteps: [GenerationStep] = []
            while let step = try solo.step() { soloSteps.append(step) }
            let second = try await run(scheduler, next)
            let prefilled = try #require(second.result).stats.prefilledTokens
            guard exact else { continue }
            #expect(prefilled == (warms ? 5 : 5 + answer.count), "warms \(warms)")
            #expect(second.steps == soloSteps, "warms \(warms): the next turn's steps")
        }
    }

    /// Compiled schemas are kept by their text: the same schema again is the same pattern, a
    /// refused one is not kept, and beyond the capacity the least recently used goes.
    @Test func schemaPatternsAreKeptByText() throws {
        let cache = SchemaPatterns(capacity: 2)
        func schema(_ field: String, _ extra: String = "") throws -> JSONValue {
            try JSONValue.parse(#"{"type": "object", "properties": {"\#(field)": {"type": "string", "format": "email"\#(extra)}}}"#)
        }
        let a = try cache.pattern(for: try schema("a"))
        #expect(try cache.pattern(for: try schema("a")) == a)
        #expect(cache.count == 1)
        #expect(throws: OutputPattern.SchemaError.self) { try cache.pattern(for: try schema("b", #", "maxLength": -1"#)) }
        #expect(cache.count == 1)
        _ = try cache.pattern(for: try schema("b"))
        _ = try cache.pattern(for: try schema("a"))
        _ = try cache.pattern(for: try schema("c"))
        #expect(cache.count == 2)
        // "b" was the least recently used: dropped; compiled again, the same pattern as before.
        #expect(try cache.holds(schema("a")) && cache.holds(schema("c")) && !cache.holds(schema("b")))
        #expect(try cache.pattern(for: try schema("b")) == OutputPattern(jsonSchema: try schema("b")))
    }

    /// A full queue answers 429; a cancelled request frees its slot within a step.
    @Test func queueLimitAndCancellation() async throws {
        let metrics = ServerMetrics(registry: .init())
        let scheduler = Scheduler(maxBatch: 1, maxQueue: 1, timeout: nil, metrics: metrics)
        defer { scheduler.shutDown() }
        func generation() throws -> Generation {
            var parameters = GenerateParameters.greedy(maxTokens: 200)
            parameters.stopTokenIds = []
            return try Generation(model: model, promptIds: [1, 2, 3], parameters: parameters)
        }
        scheduler.isPaused = true
        let first = try scheduler.submit(try generation())     // a free slot
        let second = try scheduler.submit(try generation())    // the one queue place
        #expect(throws: Scheduler.Refusal.self) { try scheduler.submit(try generation()) }
        #expect(scheduler.load == (2, 0))
        first.cancel()
        second.cancel()
        scheduler.isPaused = false
        var drained = false
        for _ in 0..<200 {
            if scheduler.load == (0, 0) { drained = true; break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(drained, "cancelled requests still hold the scheduler: \(scheduler.load)")
        for ticket in [first, second] {
            await #expect(throws: CancellationError.self) { for try await _ in ticket.events {} }
        }
    }

    /// A request past its deadline ends with a timeout: 504 when not streaming.
    @Test func timeoutEndsTheRequest() async throws {
        let app = Application(router: server { $0.requestTimeout = 0.000_001 }.makeRouter())
        try await app.test(.router) { client in
            let request = #"{"prompt": "hello", "max_tokens": 50}"#
            try await client.execute(uri: "/v1/completions", method: .post, headers: Self.jsonHeaders, body: Self.body(request)) { response in
                #expect(response.status == .gatewayTimeout)
                #expect(json(response.body)["error"]?["code"] == "timeout")
            }
        }
    }
}

/// Stop strings as streamed text arrives (hand-worked cases).
@Suite struct StopStringTests {
    func run(_ stops: [String], _ pieces: [String]) -> (String, Bool) {
        var matcher = StopStringMatcher(stops)
        var out = ""
        for piece in pieces {
            let (text, stopped) = matcher.append(piece)
            out += text
            if stopped { return (out, true) }
        }
        return (out + matcher.finish(), false)
    }

    @Test func cases() {
        #expect(run(["END"], ["abc", "E", "N", "D", "xyz"]) == ("abc", true))
        #expect(run(["END"], ["abc", "EN", "d"]) == ("abcENd", false))
        #expect(run(["END"], ["aEN"]) == ("aEN", false))                 // held, then released at the end
        #expect(run(["\n\n", "###"], ["one\n", "two##", "#three"]) == ("one\ntwo", true))
        #expect(run(["ab", "b"], ["xab"]) == ("x", true))                 // the earliest occurrence wins
        #expect(run(["é"], ["cafe\u{301}"]) == ("cafe\u{301}", false))    // scalars, no normalisation
        #expect(run([], ["free"]) == ("free", false))
        var matcher = StopStringMatcher(["stop"])
        #expect(matcher.append("xs").released == "x")                     // "s" may begin "stop"
        #expect(matcher.append("to").released == "")
        #expect(matcher.append("p!") == ("", true))
    }
}

extension JSONValue {
    /// An array element (nil past the end or for other kinds of value).
    subscript(index: Int) -> JSONValue? {
        guard let items = arrayValue, items.indices.contains(index) else { return nil }
        return items[index]
    }
}
