import Foundation

/// A byte-level BPE tokenizer loaded from a Hugging Face `tokenizer.json` (plus
/// `tokenizer_config.json` for the special tokens and the chat template), giving the same ids as
/// Hugging Face `tokenizers` for Qwen2 / Qwen2.5 / Qwen3 and GPT-2 style tokenizers.
///
/// Immutable after loading, hence `Sendable`: share one instance between tasks.
///
/// ```swift
/// let tokenizer = try Tokenizer(directory: modelURL)
/// let prompt = try tokenizer.applyChatTemplate(
///     messages: [ChatMessage(role: "user", content: "Hi!")], addGenerationPrompt: true)
/// let ids = tokenizer.encode(prompt)
/// var stream = tokenizer.makeStreamingDetokenizer()
/// for id in generated { print(stream.append(id), terminator: "") }
/// print(stream.finish())
/// ```
public struct Tokenizer: Sendable {
    /// Everything lives in one immutable object: copying a `Tokenizer` (into a closure, a task,
    /// a detokenizer) costs one reference count.
    private final class Core: Sendable {
        let normalizer: Normalizer
        let preTokenizer: PreTokenizer
        let encoder: BytePairEncoder
        let vocabulary: Vocabulary
        /// Added tokens matched in the raw text, and those matched after normalization.
        let rawMatcher: AddedTokenMatcher
        let normalizedMatcher: AddedTokenMatcher
        let addedTokens: [AddedToken]
        let specialTokens: SpecialTokens
        let chatTemplate: ChatTemplate?

        init(
            normalizer: Normalizer, preTokenizer: PreTokenizer, encoder: BytePairEncoder, vocabulary: Vocabulary,
            rawMatcher: AddedTokenMatcher, normalizedMatcher: AddedTokenMatcher, addedTokens: [AddedToken],
            specialTokens: SpecialTokens, chatTemplate: ChatTemplate?
        ) {
            self.normalizer = normalizer
            self.preTokenizer = preTokenizer
            self.encoder = encoder
            self.vocabulary = vocabulary
            self.rawMatcher = rawMatcher
            self.normalizedMatcher = normalizedMatcher
            self.addedTokens = addedTokens
            self.specialTokens = specialTokens
            self.chatTemplate = chatTemplate
        }
    }

    private let core: Core

    private var normalizer: Normalizer { core.normalizer }
    private var preTokenizer: PreTokenizer { core.preTokenizer }
    private var encoder: BytePairEncoder { core.encoder }
    private var vocabulary: Vocabulary { core.vocabulary }
    private var rawMatcher: AddedTokenMatcher { core.rawMatcher }
    private var normalizedMatcher: AddedTokenMatcher { core.normalizedMatcher }

    /// The added tokens (`<|endoftext|>`, `<|im_start|>`, ...), in file order.
    public var addedTokens: [AddedToken] { core.addedTokens }
    /// Special tokens named in `tokenizer_config.json` (`eos_token` etc.), if any.
    public var specialTokens: SpecialTokens { core.specialTokens }
    /// The chat template, when the model directory has one.
    public var chatTemplate: ChatTemplate? { core.chatTemplate }

    // MARK: Loading

    /// Loads `tokenizer.json`, `tokenizer_config.json` (optional) and `chat_template.jinja`
    /// (optional; it takes precedence over the config's `chat_template`, as in transformers) from a
    /// model directory. Throws `TokenizerError` (or `ChatTemplateError` for a template that does
    /// not parse).
    public init(directory: URL) throws {
        let tokenizerURL = directory.appendingPathComponent("tokenizer.json")
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        let templateURL = directory.appendingPathComponent("chat_template.jinja")
        let tokenizerBytes = try readFile(tokenizerURL)
        let configBytes = FileManager.default.fileExists(atPath: configURL.path) ? try readFile(configURL) : nil
        var templateSource: String?
        if FileManager.default.fileExists(atPath: templateURL.path) {
            let bytes = try readFile(templateURL)
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw TokenizerError.unreadableFile(path: templateURL.path, reason: "not valid UTF-8")
            }
            templateSource = text
        }
        try self.init(
            tokenizerJSON: tokenizerBytes, tokenizerConfigJSON: configBytes, chatTemplate: templateSource,
            tokenizerSource: tokenizerURL.path, configSource: configURL.path)
    }

    /// Builds a tokenizer from file contents. `chatTemplate`, when given, overrides the config's
    /// `chat_template`. The `…Source` names are used in error messages.
    public init(
        tokenizerJSON: [UInt8], tokenizerConfigJSON: [UInt8]? = nil, chatTemplate: String? = nil,
        tokenizerSource: String = "tokenizer.json", configSource: String = "tokenizer_config.json"
    ) throws {
        let contents = try TokenizerFileContents(bytes: tokenizerJSON, file: tokenizerSource)
        let raw = contents.addedTokens.filter { !$0.normalized }
        let normalized = contents.addedTokens.filter(\.normalized)

        var config = JSONObject()
        if let tokenizerConfigJSON {
            let json = try JSONValue.parse(tokenizerConfigJSON, source: configSource)
            guard case .object(let object) = json else {
                throw TokenizerError.wrongType(file: configSource, path: "(top level)", expected: "an object", found: json.kindName)
            }
            config = object
        }
        core = Core(
            normalizer: contents.normalizer, preTokenizer: contents.preTokenizer, encoder: contents.encoder,
            vocabulary: contents.vocabulary,
            rawMatcher: AddedTokenMatcher(tokens: raw, patterns: raw.map(\.content)),
            normalizedMatcher: AddedTokenMatcher(
                tokens: normalized, patterns: normalized.map { contents.normalizer.apply($0.content) }),
            addedTokens: contents.addedTokens,
            specialTokens: try SpecialTokens(config: config, file: configSource),
            chatTemplate: try chatTemplate.map { try ChatTemplate($0) } ?? ChatTemplate.fromConfig(config, file: configSource))
    }

    // MARK: Vocabulary

    /// One more than the largest token id (model vocabulary plus added tokens).
    public var vocabularySize: Int { vocabulary.size }

    /// The id of a token given as written in `tokenizer.json` (e.g. `"Ġthe"`, `"<|im_end|>"`).
    public func tokenID(_ token: String) -> Int? {
        vocabulary.id(of: token)
    }

    /// The token string of an id as written in `tokenizer.json`, or `nil` if unknown.
    public func token(_ id: Int) -> String? { vocabulary.string(id) }

    /// Whether `id` is a token of this vocabulary.
    public func contains(_ id: Int) -> Bool { vocabulary.contains(id) }

    /// Whether `id` is a special added token (skipped by `decode(_:skipSpecialTokens: true)`).
    public func isSpecial(_ id: Int) -> Bool { vocabulary.isSpecial(id) }

    /// The id of `eos_token` from `tokenizer_config.json` (`<|im_end|>` for Qwen2.5 instruct).
    public var eosTokenID: Int? { specialTokens.eos.flatMap(tokenID) }
    /// The id of `bos_token`, if the config names one (Qwen2 has none).
    public var bosTokenID: Int? { specialTokens.bos.flatMap(tokenID) }
    /// The id of `pad_token`, if the config names one.
    public var padTokenID: Int? { specialTokens.pad.flatMap(tokenID) }

    // MARK: Encoding

    /// The token ids of `text`, exactly as Hugging Face `tokenizers` encodes it (added tokens such
    /// as `<|im_start|>` become their single ids; no special tokens are added around the text).
    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        var scratch = BytePairEncoder.Scratch()
        var text = text
        text.withUTF8 { bytes in
            for piece in rawMatcher.split(bytes) {
                switch piece {
                case .token(let id):
                    ids.append(id)
                case .text(let range):
                    let segment = String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
                    encodeNormalizing(segment, into: &ids, scratch: &scratch)
                }
            }
        }
        return ids
    }

    private func encodeNormalizing(_ segment: String, into ids: inout [Int], scratch: inout BytePairEncoder.Scratch) {
        var normalized = normalizer.apply(segment)
        if normalizedMatcher.isEmpty {
            encodePreTokenizing(&normalized, into: &ids, scratch: &scratch)
            return
        }
        normalized.withUTF8 { bytes in
            for piece in normalizedMatcher.split(bytes) {
                switch piece {
                case .token(let id):
                    ids.append(id)
                case .text(let range):
                    var text = String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
                    encodePreTokenizing(&text, into: &ids, scratch: &scratch)
                }
            }
        }
    }

    private func encodePreTokenizing(_ text: inout String, into ids: inout [Int], scratch: inout BytePairEncoder.Scratch) {
        preTokenizer.run(&text) { piece in encoder.encode(piece, into: &ids, scratch: &scratch) }
    }

    // MARK: Decoding

    /// The text of `ids`, as Hugging Face `tokenizers` decodes it: token bytes concatenated and read
    /// as UTF-8, each invalid sequence becoming U+FFFD. Unknown ids are skipped, as there.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids where vocabulary.contains(id) {
            if skipSpecialTokens && vocabulary.isSpecial(id) { continue }
            vocabulary.appendBytes(of: id, to: &bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The raw bytes token `id` stands for (possibly part of a UTF-8 character), or `nil`.
    public func tokenBytes(_ id: Int) -> [UInt8]? {
        guard vocabulary.contains(id) else { return nil }
        var bytes: [UInt8] = []
        vocabulary.appendBytes(of: id, to: &bytes)
        return bytes
    }

    /// A detokenizer for generated ids that emits text as soon as it forms complete characters.
    public func makeStreamingDetokenizer(skipSpecialTokens: Bool = false) -> StreamingDetokenizer {
        StreamingDetokenizer(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }

    /// For tests: the BPE stage and the pre-tokenizer.
    var encoderForTesting: BytePairEncoder { encoder }
    var preTokenizerForTesting: PreTokenizer { preTokenizer }

    /// For tests and fuzzing: what `decode(encode(text))` must give when BPE and pre-tokenization
    /// lose nothing: added tokens as written, the text between them normalized (whitespace that
    /// `lstrip`/`rstrip` tokens swallow left out). Nil when some added tokens match only after
    /// normalization (the split then depends on the normalized text).
    func losslessDecodingForTesting(of text: String) -> String? {
        guard normalizedMatcher.isEmpty else { return nil }
        var out = ""
        var text = text
        text.withUTF8 { bytes in
            for piece in rawMatcher.split(bytes) {
                switch piece {
                case .token(let id):
                    out += decode([id])
                case .text(let range):
                    out += normalizer.apply(String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self))
                }
            }
        }
        return out
    }

    // MARK: Chat

    /// Renders `messages` with the chat template, exactly as transformers'
    /// `apply_chat_template(messages, tools=tools, add_generation_prompt=..., tokenize=False)`.
    ///
    /// Each message is an object such as `["role": "user", "content": "Hi"]`; assistant messages may
    /// carry `tool_calls`. `tools` are JSON schemas. `additionalContext` adds template variables
    /// (e.g. `enable_thinking` for Qwen3). The special tokens of `tokenizer_config.json`
    /// (`eos_token`, ...) are available to the template, as in transformers. `chatTemplate`
    /// replaces the tokenizer's own template (transformers' `chat_template=` argument).
    /// Throws `ChatTemplateError`.
    public func applyChatTemplate(
        messages: [JSONValue], addGenerationPrompt: Bool = true, tools: [JSONValue]? = nil,
        additionalContext: [String: JSONValue] = [:], chatTemplate: ChatTemplate? = nil
    ) throws -> String {
        guard let chatTemplate = chatTemplate ?? self.chatTemplate else { throw ChatTemplateError.noTemplate }
        var context = specialTokens.templateVariables
        context["messages"] = .array(messages)
        context["tools"] = tools.map { .array($0) } ?? .null
        context["documents"] = .null
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        for (key, value) in additionalContext { context[key] = value }
        return try chatTemplate.render(context, useToolTemplate: tools != nil)
    }

    /// Renders plain role/content messages; see `applyChatTemplate(messages:addGenerationPrompt:tools:additionalContext:)`.
    public func applyChatTemplate(
        messages: [ChatMessage], addGenerationPrompt: Bool = true, tools: [JSONValue]? = nil,
        additionalContext: [String: JSONValue] = [:], chatTemplate: ChatTemplate? = nil
    ) throws -> String {
        try applyChatTemplate(
            messages: messages.map(\.json), addGenerationPrompt: addGenerationPrompt, tools: tools,
            additionalContext: additionalContext, chatTemplate: chatTemplate)
    }
}

/// A plain chat message.
public struct ChatMessage: Sendable, Equatable {
    /// `"system"`, `"user"`, `"assistant"` or `"tool"`.
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    /// The message as the template sees it.
    public var json: JSONValue { .object(JSONObject([("role", .string(role)), ("content", .string(content))])) }
}

/// Special tokens named in `tokenizer_config.json`.
public struct SpecialTokens: Sendable, Equatable {
    public var bos: String?
    public var eos: String?
    public var unk: String?
    public var pad: String?
    public var sep: String?
    public var cls: String?
    public var mask: String?
    public var additional: [String]

    init(config: JSONObject, file: String) throws {
        func token(_ key: String) throws -> String? {
            switch config[key] {
            case nil, .null?: return nil
            case .string(let s)?: return s
            case .object(let o)?:
                guard let content = o["content"]?.stringValue else {
                    throw TokenizerError.missingField(file: file, path: key + ".content")
                }
                return content
            case let other?:
                throw TokenizerError.wrongType(file: file, path: key, expected: "a string or a token object", found: other.kindName)
            }
        }
        bos = try token("bos_token")
        eos = try token("eos_token")
        unk = try token("unk_token")
        pad = try token("pad_token")
        sep = try token("sep_token")
        cls = try token("cls_token")
        mask = try token("mask_token")
        additional = []
        if case .array(let items)? = config["additional_special_tokens"] {
            for (i, item) in items.enumerated() {
                switch item {
                case .string(let s): additional.append(s)
                case .object(let o):
                    guard let content = o["content"]?.stringValue else {
                        throw TokenizerError.missingField(file: file, path: "additional_special_tokens[\(i)].content")
                    }
                    additional.append(content)
                default:
                    throw TokenizerError.wrongType(
                        file: file, path: "additional_special_tokens[\(i)]", expected: "a string", found: item.kindName)
                }
            }
        }
    }

    /// The variables transformers passes to chat templates (`special_tokens_map`).
    var templateVariables: [String: JSONValue] {
        var v: [String: JSONValue] = [:]
        let named: [(String, String?)] = [
            ("bos_token", bos), ("eos_token", eos), ("unk_token", unk), ("sep_token", sep), ("pad_token", pad),
            ("cls_token", cls), ("mask_token", mask),
        ]
        for (key, value) in named { if let value { v[key] = .string(value) } }
        if !additional.isEmpty { v["additional_special_tokens"] = .array(additional.map { .string($0) }) }
        return v
    }
}

/// Reads a whole file, with a `TokenizerError` naming it on failure.
func readFile(_ url: URL) throws -> [UInt8] {
    guard FileManager.default.fileExists(atPath: url.path) else { throw TokenizerError.fileNotFound(path: url.path) }
    do {
        return [UInt8](try Data(contentsOf: url))
    } catch {
        throw TokenizerError.unreadableFile(path: url.path, reason: "\(error)")
    }
}
