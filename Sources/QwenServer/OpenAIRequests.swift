import Qwen

/// A `POST /v1/chat/completions` or `POST /v1/completions` body, read and checked field by field
/// (each error names the field and says what it needed).
struct CompletionRequest: Sendable {
    enum Prompt: Sendable {
        /// Chat: the messages as the chat template reads them (role, content, and an assistant's
        /// `tool_calls` with their arguments as JSON objects), with the generation prompt, and
        /// the tools offered (nil: none).
        case chat(messages: [JSONValue], tools: [JSONValue]?)
        /// Completions: the text as it is.
        case text(String)
        /// Completions with a `suffix`: fill in the middle between the prompt and the suffix, in
        /// the model's fill-in-the-middle format (Qwen2.5-Coder's `<|fim_prefix|>` … tokens).
        case infill(prefix: String, suffix: String)
        /// Completions: token ids as they are.
        case tokenIds([Int])
        /// Completions: several prompts (strings or token-id arrays), `n` choices each.
        case several([Prompt])
    }

    var model: String?
    var prompt: Prompt
    var stream = false
    /// `stream_options.include_usage`: a last chunk with the usage.
    var includeUsage = false
    /// nil: up to the context limit; 0 (completions with `echo` only): the prompt scored, nothing generated.
    var maxTokens: Int?
    /// Completions: the prompt comes back before the completion (with its tokens' log
    /// probabilities when `logprobs` is asked: how evaluation harnesses score texts).
    var echo = false
    /// Choices generated for the prompt (`n`, 1 to `CompletionRequest.maxChoices`).
    var choices = 1
    var parameters = GenerateParameters()
    /// Chat: `reasoning_format` (llama-server's field), nil for the server's own.
    var reasoningFormat: ReasoningFormat?

    /// The most choices (`n`) a request may ask for.
    static let maxChoices = 16

    /// Reads a chat completions body (`chat` true) or a completions body.
    init(json body: [UInt8], chat: Bool) throws(OpenAIError) {
        let root: JSONValue
        do { root = try JSONValue.parse(body, source: "request body") } catch {
            throw .invalidRequest("the request body is not valid JSON: \(error)", code: "invalid_json")
        }
        guard let object = root.objectValue else {
            throw .invalidRequest("the request body must be a JSON object, got \(root.kindName)", code: "invalid_json")
        }
        let fields = Fields(object)
        model = try fields.string("model")
        if chat {
            guard let messages = object["messages"] else { throw .invalidRequest("'messages' is required", param: "messages") }
            // OpenAI's deprecated function calling: not ignored (the model would answer without
            // the functions), refused with what to send instead.
            for legacy in ["functions", "function_call"] where object[legacy].map({ $0 != .null }) ?? false {
                throw .unsupported(legacy, "the deprecated function calling is not served: send the functions as 'tools' ({\"type\": \"function\", \"function\": {...}}) and 'tool_choice'")
            }
            let tools = try Self.tools(object["tools"])
            let names = (tools ?? []).compactMap { $0["function"]?["name"]?.stringValue }
            // OpenAI's default: a forced answer may hold several calls.
            var parallel = true
            switch object["parallel_tool_calls"] {
            case nil, .null?: break
            case .bool(let b)?: parallel = b
            case let other?: throw .invalidRequest("'parallel_tool_calls' must be a boolean, got \(other.kindName)", param: "parallel_tool_calls")
            }
            switch object["tool_choice"] {
            case nil, .null?, .string("auto")?: prompt = .chat(messages: try Self.messages(messages), tools: tools)
            case .string("none")?: prompt = .chat(messages: try Self.messages(messages), tools: nil)
            case .string("required")?:
                // Calls of the tools (one without parallel_tool_calls), the output constrained to
                // their blocks.
                guard !names.isEmpty else { throw .invalidRequest("tool_choice \"required\" needs 'tools'", param: "tool_choice") }
                prompt = .chat(messages: try Self.messages(messages), tools: tools)
                parameters.outputPattern = try Self.forcedCall(oneOf: names, parallel: parallel)
            case .object(let choice)?:
                guard choice["type"]?.stringValue == "function", let name = choice["function"]?["name"]?.stringValue else {
                    throw .invalidRequest("'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": …}}", param: "tool_choice")
                }
                guard names.contains(name) else {
                    throw .invalidRequest("tool_choice names the function '\(name)', which is not among 'tools'", param: "tool_choice")
                }
                prompt = .chat(messages: try Self.messages(messages), tools: tools)
                parameters.outputPattern = try Self.forcedCall(oneOf: [name], parallel: parallel)
            case let other?:
                throw .invalidRequest("'tool_choice' must be \"none\", \"auto\", \"required\" or a function, got \(other.kindName)", param: "tool_choice")
            }
        } else {
            guard let prompt = object["prompt"] else { throw .invalidRequest("'prompt' is required", param: "prompt") }
            self.prompt = try Self.completionPrompt(prompt)
            echo = try fields.bool("echo") ?? false
            if let suffix = try fields.string("suffix") {
                guard case .text(let prefix) = self.prompt else {
                    throw .invalidRequest("'suffix' needs the prompt as text, not token ids", param: "suffix")
                }
                guard !echo else { throw .invalidRequest("'echo' and 'suffix' do not go together", param: "echo") }
                self.prompt = .infill(prefix: prefix, suffix: suffix)
            }
            // Completions: the number of alternatives per token (OpenAI allows up to 5).
            parameters.logprobs = try fields.int("logprobs", atLeast: 0)
            if let n = parameters.logprobs, n > 20 { throw .invalidRequest("'logprobs' must be at most 20, got \(n)", param: "logprobs") }
            if object["best_of"].map({ $0 != .null && $0 != .int(1) }) ?? false { throw .unsupported("best_of", "only 1") }
        }
        stream = try fields.bool("stream") ?? false
        if let options = object["stream_options"], options != .null {
            guard stream else { throw .invalidRequest("'stream_options' is only allowed with 'stream': true", param: "stream_options") }
            guard let o = options.objectValue else { throw .invalidRequest("'stream_options' must be an object", param: "stream_options") }
            includeUsage = try Fields(o, prefix: "stream_options.").bool("include_usage") ?? false
        }
        let maxCompletion = try fields.int("max_completion_tokens", atLeast: 1)
        let maxTokens = try fields.int("max_tokens", atLeast: echo ? 0 : 1)
        self.maxTokens = maxCompletion ?? maxTokens
        if let n = try fields.int("n", atLeast: 1) {
            guard n <= CompletionRequest.maxChoices else {
                throw .invalidRequest("'n' must be at most \(CompletionRequest.maxChoices), got \(n)", param: "n")
            }
            choices = n
        }
        if chat {
            if let format = try fields.string("reasoning_format") {
                guard let value = ReasoningFormat(rawValue: format) else {
                    throw .invalidRequest("'reasoning_format' must be \"auto\" or \"none\", got \"\(format)\"", param: "reasoning_format")
                }
                reasoningFormat = value
            }
            // Chat: `logprobs` turns them on, `top_logprobs` (0 to 20) asks for alternatives.
            let top = try fields.int("top_logprobs", atLeast: 0)
            if let top, top > 20 { throw .invalidRequest("'top_logprobs' must be at most 20, got \(top)", param: "top_logprobs") }
            if try fields.bool("logprobs") == true {
                parameters.logprobs = top ?? 0
            } else if top != nil {
                throw .invalidRequest("'top_logprobs' needs 'logprobs': true", param: "top_logprobs")
            }
        }
        if let format = object["response_format"], format != .null {
            guard let o = format.objectValue, let type = o["type"]?.stringValue else {
                throw .invalidRequest("'response_format' must be an object with a string 'type'", param: "response_format")
            }
            switch type {
            case "text": break
            case "json_object": parameters.responseFormat = .jsonObject
            case "json_schema":
                guard let schema = o["json_schema"]?["schema"] else {
                    throw .invalidRequest("'response_format.json_schema.schema' is required", param: "response_format.json_schema.schema")
                }
                do { parameters.outputPattern = try SchemaPatterns.shared.pattern(for: schema) } catch {
                    throw .unsupported("response_format", "the schema at \(error.path) cannot be followed: \(error.reason)")
                }
            default:
                throw .invalidRequest("'response_format.type' must be \"text\", \"json_object\" or \"json_schema\", got \"\(type)\"", param: "response_format.type")
            }
        }
        parameters.presencePenalty = try fields.number("presence_penalty", in: -2...2).map(Float.init)
        parameters.frequencyPenalty = try fields.number("frequency_penalty", in: -2...2).map(Float.init)
        parameters.logitBias = try Self.logitBias(object["logit_bias"])
        if let temperature = try fields.number("temperature", in: 0...2) {
            parameters.temperature = Float(temperature)
            parameters.doSample = temperature > 0
        }
        if let topP = try fields.number("top_p", in: 0...1) {
            guard topP > 0 else { throw .invalidRequest("'top_p' must be in (0, 1], got 0", param: "top_p") }
            parameters.topP = Float(topP)
        }
        parameters.topK = try fields.int("top_k", atLeast: 0)
        parameters.minP = try fields.number("min_p", in: 0...1).map(Float.init)
        if let penalty = try fields.number("repetition_penalty", in: 0...100) {
            guard penalty > 0 else { throw .invalidRequest("'repetition_penalty' must be > 0, got 0", param: "repetition_penalty") }
            parameters.repetitionPenalty = Float(penalty)
        }
        if let seed = try fields.int("seed", atLeast: Int.min) { parameters.seed = UInt64(bitPattern: Int64(seed)) }
        parameters.stopStrings = try Self.stopStrings(object["stop"])
        // llama.cpp server's extension: generate past the end-of-sequence token (benchmarks).
        if try fields.bool("ignore_eos") == true { parameters.stopTokenIds = [] }
    }

    /// `logit_bias`: token ids (as strings: JSON keys) to a bias from -100 to 100.
    private static func logitBias(_ value: JSONValue?) throws(OpenAIError) -> [Int: Float] {
        guard let value, value != .null else { return [:] }
        guard let object = value.objectValue else {
            throw .invalidRequest("'logit_bias' must be an object of token ids to numbers, got \(value.kindName)", param: "logit_bias")
        }
        let fields = Fields(object, prefix: "logit_bias.")
        var bias: [Int: Float] = [:]
        for key in object.keys {
            guard let id = Int(key), id >= 0, String(id) == key else {
                throw .invalidRequest("'logit_bias' keys must be token ids (non-negative integers), got \"\(key)\"", param: "logit_bias")
            }
            bias[id] = try fields.number(key, in: -100...100).map(Float.init)
        }
        return bias
    }

    private static func messages(_ value: JSONValue) throws(OpenAIError) -> [JSONValue] {
        guard let items = value.arrayValue else { throw .invalidRequest("'messages' must be an array, got \(value.kindName)", param: "messages") }
        guard !items.isEmpty else { throw .invalidRequest("'messages' must not be empty", param: "messages") }
        var messages: [JSONValue] = []
        for (i, item) in items.enumerated() {
            let path = "messages[\(i)]"
            guard let object = item.objectValue else { throw .invalidRequest("'\(path)' must be an object, got \(item.kindName)", param: path) }
            guard let role = object["role"]?.stringValue else { throw .invalidRequest("'\(path).role' is required (a string)", param: "\(path).role") }
            var message = JSONObject()
            switch role {
            case "system", "developer", "user":
                message["role"] = .string(role == "developer" ? "system" : role)
                message["content"] = .string(try content(object["content"], path: "\(path).content", optional: false))
            case "assistant":
                message["role"] = "assistant"
                let calls = try toolCalls(object["tool_calls"], path: "\(path).tool_calls")
                // Content may be absent (null) beside tool calls.
                message["content"] = .string(try content(object["content"], path: "\(path).content", optional: true))
                if !calls.isEmpty { message["tool_calls"] = .array(calls) }
                // An earlier answer's reasoning as this server returned it: templates that show
                // past reasoning (Qwen3's) read it; others (DeepSeek-R1's) ignore it.
                switch object["reasoning_content"] {
                case nil, .null?: break
                case .string(let reasoning)?: message["reasoning_content"] = .string(reasoning)
                case let other?:
                    throw .invalidRequest("'\(path).reasoning_content' must be a string, got \(other.kindName)", param: "\(path).reasoning_content")
                }
            case "tool":
                message["role"] = "tool"
                message["content"] = .string(try content(object["content"], path: "\(path).content", optional: false))
                if let id = object["tool_call_id"]?.stringValue { message["tool_call_id"] = .string(id) }
            default:
                throw .invalidRequest("'\(path).role' must be system, developer, user, assistant or tool, got '\(role)'", param: "\(path).role")
            }
            messages.append(.object(message))
        }
        return messages
    }

    /// An assistant message's `tool_calls` as the chat template reads them: each function's
    /// `arguments` (a JSON string in OpenAI's API) parsed into the object it spells, as Hugging
    /// Face's templates expect (a string that is not JSON stays a string).
    private static func toolCalls(_ value: JSONValue?, path: String) throws(OpenAIError) -> [JSONValue] {
        guard let value, value != .null else { return [] }
        guard let items = value.arrayValue else { throw .invalidRequest("'\(path)' must be an array, got \(value.kindName)", param: path) }
        return try items.enumerated().map { i, item throws(OpenAIError) -> JSONValue in
            guard let function = item["function"]?.objectValue, let name = function["name"]?.stringValue else {
                throw .invalidRequest("'\(path)[\(i)]' must be {\"type\": \"function\", \"function\": {\"name\": …, \"arguments\": …}}", param: "\(path)[\(i)]")
            }
            var arguments = function["arguments"] ?? .object(JSONObject())
            if case .string(let text) = arguments, let parsed = try? JSONValue.parse(text) { arguments = parsed }
            var call = JSONObject([("type", "function"), ("function", .object(JSONObject([("name", .string(name)), ("arguments", arguments)])))])
            if let id = item["id"] { call["id"] = id }
            return .object(call)
        }
    }

    /// `tools`: function definitions, passed to the chat template as they are.
    /// The output pattern of one call of one of `names`, or with `parallel` one or more
    /// (OpenAI's function names: `[a-zA-Z0-9_-]{1,64}`, which stay literal inside the block's JSON).
    private static func forcedCall(oneOf names: [String], parallel: Bool) throws(OpenAIError) -> OutputPattern {
        for name in names where name.isEmpty || name.utf8.count > 64
            || !name.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || ($0 < 0x80 && Character(Unicode.Scalar($0)).isLetter) || ($0 >= 0x30 && $0 <= 0x39) }) {
            throw .invalidRequest("a forced tool call needs function names of letters, digits, '_' and '-' (at most 64), got '\(name)'", param: "tools")
        }
        let pattern = parallel ? OutputPattern.toolCalls(oneOf: names) : OutputPattern.toolCall(oneOf: names)
        if let problem = pattern.problem { throw .invalidRequest("the tools cannot be told apart in a forced call: \(problem)", param: "tools") }
        return pattern
    }

    private static func tools(_ value: JSONValue?) throws(OpenAIError) -> [JSONValue]? {
        guard let value, value != .null else { return nil }
        guard let items = value.arrayValue else { throw .invalidRequest("'tools' must be an array, got \(value.kindName)", param: "tools") }
        for (i, item) in items.enumerated() {
            guard item["type"]?.stringValue == "function", item["function"]?["name"]?.stringValue != nil else {
                throw .invalidRequest("'tools[\(i)]' must be {\"type\": \"function\", \"function\": {\"name\": …, …}}", param: "tools[\(i)]")
            }
        }
        return items.isEmpty ? nil : items
    }

    /// A message's content: a string, or an array of `{"type": "text", "text": …}` parts.
    private static func content(_ value: JSONValue?, path: String, optional: Bool) throws(OpenAIError) -> String {
        switch value {
        case .string(let s)?: return s
        case .null?, nil:
            if optional { return "" }
            throw .invalidRequest("'\(path)' is required", param: path)
        case .array(let parts)?:
            var text = ""
            for (i, part) in parts.enumerated() {
                guard let object = part.objectValue, object["type"]?.stringValue == "text", let piece = object["text"]?.stringValue else {
                    throw .invalidRequest("'\(path)[\(i)]' must be {\"type\": \"text\", \"text\": …}; only text content is supported", param: "\(path)[\(i)]")
                }
                text += piece
            }
            return text
        case let other?:
            throw .invalidRequest("'\(path)' must be a string or an array of text parts, got \(other.kindName)", param: path)
        }
    }

    private static func completionPrompt(_ value: JSONValue) throws(OpenAIError) -> Prompt {
        func ids(_ items: [JSONValue]) -> [Int]? {
            let ids = items.compactMap(\.intValue)
            return ids.count == items.count && !items.contains(where: { if case .bool = $0 { return true }; return false }) ? ids : nil
        }
        switch value {
        case .string(let s): return .text(s)
        case .array(let items):
            if items.count == 1, let s = items[0].stringValue { return .text(s) }
            if !items.isEmpty, let ids = ids(items) { return .tokenIds(ids) }
            if items.count == 1, let inner = items[0].arrayValue, let ids = ids(inner) { return .tokenIds(ids) }
            // Several prompts: strings or token-id arrays.
            var prompts: [Prompt] = []
            for (i, item) in items.enumerated() {
                if let s = item.stringValue {
                    prompts.append(.text(s))
                } else if let inner = item.arrayValue, !inner.isEmpty, let ids = ids(inner) {
                    prompts.append(.tokenIds(ids))
                } else {
                    throw .invalidRequest("'prompt[\(i)]' must be a string or an array of token ids", param: "prompt")
                }
            }
            guard !prompts.isEmpty else { throw .invalidRequest("'prompt' is an empty array", param: "prompt") }
            guard prompts.count <= CompletionRequest.maxChoices else {
                throw .invalidRequest("'prompt' holds \(prompts.count) prompts, at most \(CompletionRequest.maxChoices)", param: "prompt")
            }
            return .several(prompts)
        default:
            throw .invalidRequest("'prompt' must be a string or an array of token ids, got \(value.kindName)", param: "prompt")
        }
    }

    private static func stopStrings(_ value: JSONValue?) throws(OpenAIError) -> [String] {
        switch value {
        case nil, .null?: return []
        case .string(let s)?: return s.isEmpty ? [] : [s]
        case .array(let items)?:
            guard items.count <= 4 else { throw .invalidRequest("'stop' may hold at most 4 strings, got \(items.count)", param: "stop") }
            return try items.map { item throws(OpenAIError) in
                guard let s = item.stringValue, !s.isEmpty else { throw .invalidRequest("'stop' must hold non-empty strings", param: "stop") }
                return s
            }
        case let other?:
            throw .invalidRequest("'stop' must be a string or an array of strings, got \(other.kindName)", param: "stop")
        }
    }
}

/// Typed optional fields of a JSON object; `null` counts as absent.
private struct Fields {
    let object: JSONObject
    var prefix = ""

    init(_ object: JSONObject, prefix: String = "") {
        self.object = object
        self.prefix = prefix
    }

    private func value(_ name: String) -> JSONValue? {
        guard let v = object[name], v != .null else { return nil }
        return v
    }

    func string(_ name: String) throws(OpenAIError) -> String? {
        guard let v = value(name) else { return nil }
        guard let s = v.stringValue else { throw .invalidRequest("'\(prefix)\(name)' must be a string, got \(v.kindName)", param: prefix + name) }
        return s
    }

    func bool(_ name: String) throws(OpenAIError) -> Bool? {
        guard let v = value(name) else { return nil }
        guard case .bool(let b) = v else { throw .invalidRequest("'\(prefix)\(name)' must be true or false, got \(v.kindName)", param: prefix + name) }
        return b
    }

    func int(_ name: String, atLeast minimum: Int) throws(OpenAIError) -> Int? {
        guard let v = value(name) else { return nil }
        let n: Int
        switch v {
        case .int(let i): n = i
        case .double(let d) where d.rounded() == d && abs(d) < 1e15: n = Int(d)
        default: throw .invalidRequest("'\(prefix)\(name)' must be an integer, got \(v.kindName)", param: prefix + name)
        }
        guard n >= minimum else { throw .invalidRequest("'\(prefix)\(name)' must be ≥ \(minimum), got \(n)", param: prefix + name) }
        return n
    }

    func number(_ name: String, in range: ClosedRange<Double>) throws(OpenAIError) -> Double? {
        guard let v = value(name) else { return nil }
        let x: Double
        switch v {
        case .int(let i): x = Double(i)
        case .double(let d): x = d
        default: throw .invalidRequest("'\(prefix)\(name)' must be a number, got \(v.kindName)", param: prefix + name)
        }
        guard range.contains(x) else {
            throw .invalidRequest("'\(prefix)\(name)' must be between \(range.lowerBound) and \(range.upperBound), got \(x)", param: prefix + name)
        }
        return x
    }
}
