/// The code the libFuzzer targets under `Fuzz/` run on every input, kept in the library so that
/// the corpus replay tests (`TokenizerTests.FuzzCorpusTests`) run exactly the same thing.
///
/// Each entry returns a short summary when the input is accepted and throws when it is refused.
/// A refusal must be one of the library's typed errors (``isExpected(_:)``); a trap, a hang, an
/// error of another type or a broken invariant (``FuzzInvariantViolation``) is a bug.
enum TokenizerFuzzEntry {
    /// Whether `error` is a refusal the library is allowed to give for bad input.
    static func isExpected(_ error: Error) -> Bool { error is TokenizerError || error is ChatTemplateError }

    // MARK: tokenizer.json

    /// `tokenizer.json` bytes. When they load, the tokenizer encodes and decodes a few texts
    /// (including its own added tokens) and streams every id it has plus some it has not.
    static func tokenizerJSON(_ data: UnsafeRawBufferPointer) throws -> String {
        let tokenizer = try Tokenizer(tokenizerJSON: Array(data), tokenizerSource: "fuzz/tokenizer.json")
        var texts = ["Hello, world! 12345 \u{00E9}\u{0301} \u{4F60}\u{597D}\n\n  x", "", " ", "'s'S\r\n\t"]
        texts += tokenizer.addedTokens.prefix(8).map { "a\($0.content) b\($0.content)" }
        var total = 0
        for text in texts {
            let ids = tokenizer.encode(text)
            for id in ids where !tokenizer.contains(id) {
                throw FuzzInvariantViolation("encode(\(text.debugDescription)) gave id \(id), not in the vocabulary")
            }
            _ = tokenizer.decode(ids)
            _ = tokenizer.decode(ids, skipSpecialTokens: true)
            total += ids.count
        }
        var stream = tokenizer.makeStreamingDetokenizer()
        let size = tokenizer.vocabularySize
        let probe = Array(0..<min(size, 512)) + [size - 1, size, size + 1, -1, Int.max, Int.min]
        _ = stream.append(contentsOf: probe)
        _ = stream.finish()
        for id in probe {
            _ = tokenizer.token(id)
            _ = tokenizer.tokenBytes(id)
            _ = tokenizer.isSpecial(id)
        }
        return "vocabulary \(size), \(total) ids"
    }

    // MARK: Pre-tokenizer

    /// Arbitrary bytes as text (invalid UTF-8 repaired to U+FFFD, as `String(decoding:)` does).
    /// Every split pattern must cut the text into non-empty pieces that tile it on character
    /// boundaries; with `tokenizer` (the real Qwen2.5 one), encoding must be lossless:
    /// `decode(encode(text))` gives the text (normalized, added tokens kept) and every id exists.
    static func preTokenize(_ data: UnsafeRawBufferPointer, tokenizer: Tokenizer?) throws -> String {
        var text = String(decoding: data, as: UTF8.self)
        var pieces = 0
        try text.withUTF8 { bytes in
            for pattern in [SplitPattern.qwen2(maxDigits: 1), .qwen2(maxDigits: 3), .gpt2] {
                var scanner = SplitScanner(bytes, pattern: pattern)
                var end = 0
                while let piece = scanner.next() {
                    guard piece.lowerBound == end, piece.upperBound > end, piece.upperBound <= bytes.count else {
                        throw FuzzInvariantViolation("\(pattern): piece \(piece) after \(end) of \(bytes.count) bytes")
                    }
                    if piece.upperBound < bytes.count && bytes[piece.upperBound] & 0xC0 == 0x80 {
                        throw FuzzInvariantViolation("\(pattern): piece \(piece) ends inside a character")
                    }
                    end = piece.upperBound
                    pieces += 1
                }
                guard end == bytes.count else {
                    throw FuzzInvariantViolation("\(pattern): pieces end at \(end) of \(bytes.count) bytes")
                }
            }
        }
        guard let tokenizer else { return "\(pieces) pieces" }
        var tiled: [UInt8] = []
        tokenizer.preTokenizerForTesting.run(&text) { tiled.append(contentsOf: $0) }
        let prefixesSpace = tokenizer.preTokenizerForTesting.stages.contains {
            if case .byteLevel(true, _) = $0 { true } else { false }
        }
        if !prefixesSpace && tiled != Array(text.utf8) {
            throw FuzzInvariantViolation("the pre-tokenizer's pieces do not put the text back together")
        }
        let ids = tokenizer.encode(text)
        if let bad = ids.first(where: { !tokenizer.contains($0) }) {
            throw FuzzInvariantViolation("encode gave id \(bad), not in the vocabulary")
        }
        if let expected = tokenizer.losslessDecodingForTesting(of: text) {
            let decoded = tokenizer.decode(ids)
            guard decoded.unicodeScalars.elementsEqual(expected.unicodeScalars) else {
                throw FuzzInvariantViolation("decode(encode(text)) is \(decoded.debugDescription), expected \(expected.debugDescription)")
            }
        }
        return "\(pieces) pieces, \(ids.count) ids"
    }

    // MARK: Chat template

    /// Template source (invalid UTF-8 repaired), parsed and, when it parses, rendered with a
    /// conversation holding every role, tool calls and tools, with and without the tool template.
    static func chatTemplate(_ data: UnsafeRawBufferPointer) throws -> String {
        let template = try ChatTemplate(String(decoding: data, as: UTF8.self))
        let a = try template.render(context)
        let b = try template.render(context, useToolTemplate: true)
        return "rendered \(a.utf8.count) and \(b.utf8.count) bytes"
    }

    static let context: [String: JSONValue] = {
        func object(_ pairs: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(pairs)) }
        let call = object([
            ("type", .string("function")),
            ("function", object([("name", .string("get_weather")), ("arguments", object([("city", .string("Zürich"))]))])),
        ])
        let messages: [JSONValue] = [
            object([("role", .string("system")), ("content", .string("You are terse."))]),
            object([("role", .string("user")), ("content", .string("Weather in Zürich? <b>&</b>"))]),
            object([("role", .string("assistant")), ("content", .string("")), ("tool_calls", .array([call]))]),
            object([("role", .string("tool")), ("content", .string("{\"temp\": 3.5}")), ("name", .string("get_weather"))]),
            object([("role", .string("assistant")), ("content", .string("3.5 °C\n\n"))]),
            object([("role", .string("user")), ("content", .array([object([("type", .string("text")), ("text", .string("thanks"))])]))]),
        ]
        let tool = object([
            ("type", .string("function")),
            ("function", object([
                ("name", .string("get_weather")), ("description", .string("Current weather")),
                ("parameters", object([
                    ("type", .string("object")),
                    ("properties", object([("city", object([("type", .string("string"))]))])),
                    ("required", .array([.string("city")])),
                ])),
            ])),
        ])
        return [
            "messages": .array(messages), "tools": .array([tool]), "add_generation_prompt": .bool(true),
            "bos_token": .string("<s>"), "eos_token": .string("<|im_end|>"), "enable_thinking": .bool(false),
            "documents": .null, "n": .int(3), "x": .double(-0.5),
        ]
    }()
}

/// A fuzz input broke a property that must hold for every input (not a refusal: a bug).
struct FuzzInvariantViolation: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
