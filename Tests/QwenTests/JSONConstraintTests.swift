import Foundation
import Synchronization
import Testing
@testable import Qwen
import Tokenizer
import Kernels

/// `ResponseFormat.jsonObject`: the byte-level JSON syntax against Python's own parser, the
/// vocabulary walk against each token read alone, and constrained generations whose finished
/// text Foundation's JSON parser reads as an object.
@Suite struct JSONConstraintTests {
    /// A reference file of scripts/json_syntax_reference.py or scripts/json_schema_reference.py:
    /// byte strings (base64), each with its reference verdict (and, for a schema, its name).
    struct ReferenceFile: Decodable {
        struct Case: Decodable {
            let schema: String?
            let bytes: String
            let valid: Bool
            /// Only soundness is checked: nothing the reference refuses may be accepted (texts
            /// beyond ASCII against a pattern with `.` or a shorthand class).
            let sound_only: Bool?
            /// The reference accepts it and the pattern, reading narrower by design, must refuse it.
            let narrower: Bool?
        }
        let max_whitespace: Int?
        let cases: [Case]
    }

    /// Reads reference case `i` from `start` byte by byte: whether every byte was taken and what
    /// was read is complete must be the reference's verdict. Returns the verdict.
    @discardableResult
    func expectVerdict<C: ByteConstraint>(_ c: ReferenceFile.Case, _ i: Int, from start: C) -> Bool {
        let bytes = [UInt8](Data(base64Encoded: c.bytes)!)
        var state = start
        var read = 0
        while read < bytes.count, state.accept(bytes[read]) { read += 1 }
        let ours = read == bytes.count && state.isComplete
        let agrees = c.narrower == true ? c.valid && !ours : c.sound_only == true ? !ours || c.valid : ours == c.valid
        #expect(agrees, "case \(i)\(c.schema.map { " (\($0))" } ?? ""): \(String(decoding: bytes, as: UTF8.self).prefix(160)) (read \(read) of \(bytes.count) bytes, ours \(ours), reference \(c.valid))")
        return ours
    }

    /// Tests/QwenTests/Data/json_syntax_reference.json, written by scripts/json_syntax_reference.py:
    /// seeded valid objects, their one-byte mutations and truncations, and hand-made edge cases,
    /// each with `json.loads`' verdict (an object, strict UTF-8, no NaN).
    @Test func syntaxAgreesWithPythonsParser() throws {
        let data = try Data(contentsOf: Paths.data.appendingPathComponent("json_syntax_reference.json"))
        let file = try JSONDecoder().decode(ReferenceFile.self, from: data)
        #expect(file.max_whitespace == JSONSyntax.maxWhitespace)
        #expect(file.cases.count > 600)
        let valid = file.cases.enumerated().filter { expectVerdict($1, $0, from: JSONSyntax()) }.count
        #expect(valid > 200)
    }

    /// Reads `prefix` from `start`, then checks that `masked` keeps exactly the ordinary tokens
    /// `allows` (each token's bytes read alone), and some; returns the masked logits.
    @discardableResult
    func expectMaskMatches<C: ByteConstraint>(after prefix: String, from start: C, index: TokenBytesIndex,
                                              tokenizer: Tokenizer, logits: [Float]) -> [Float] {
        var state = start
        let accepted = state.accept(Array(prefix.utf8))
        #expect(accepted, "\(prefix)")
        let masked = index.masked(logits, after: state)
        var kept = 0
        for id in 0..<tokenizer.vocabularySize {
            let fits = !tokenizer.isSpecial(id) && index.allows(id, after: state)
            #expect((masked[id] == logits[id]) == fits, "after \(prefix): token \(id) \(tokenizer.token(id) ?? "?")")
            if fits { kept += 1 }
        }
        #expect(kept > 0, "after \(prefix): no token fits")
        return masked
    }

    /// `masked` (the walk over the vocabulary in byte order, and the string fast path) keeps
    /// exactly the tokens whose bytes `JSONSyntax` accepts one by one, in states of every kind,
    /// on the real Qwen2.5 vocabulary.
    @Test func maskKeepsExactlyTheTokensThatFit() throws {
        let tokenizer = try Tokenizer(directory: Paths.repository.appendingPathComponent("Models/tokenizer/qwen2.5"))
        let index = TokenBytesIndex(tokenizer: tokenizer, vocabularySize: tokenizer.vocabularySize)
        let logits = (0..<tokenizer.vocabularySize).map { Float($0 % 97) }
        for prefix in ["", "{", "{\"ke", "{\"key\"", "{\"key\":", "{\"key\": [1", "{\"key\": [1, -2.5e", "{\"a\": \"x\\",
                       "{\"a\": \"\u{4E2D}", "{\"a\": tr", "{\"a\": {\"b\": []}", "{\"a\": 0"] {
            expectMaskMatches(after: prefix, from: JSONSyntax(), index: index, tokenizer: tokenizer, logits: logits)
        }
        // A multi-byte character begun in one token can end in the next.
        var state = JSONSyntax()
        let begun = state.accept(Array("{\"a\": \"".utf8) + [0xE4])
        #expect(begun)
        #expect(state.stringCharacterRoom == nil)
        #expect(index.masked(logits, after: state).contains { $0 > -.infinity })
    }

    /// Constrained generations on the tiny fixture, greedy and sampled: every token fits, and a
    /// generation that ends with `.formatComplete` is one JSON object to Foundation's parser
    /// (the fixture's random weights close an object in some of the 8 runs: how many depends on
    /// the kernel level's last bits).
    @Test func generationsStayJSON() throws {
        let model = try QwenModel(directory: Fixture.untied.directory)
        var completed = 0
        for seed: UInt64 in 1...8 {
            var parameters = seed == 1 ? GenerateParameters.greedy(maxTokens: 150) : GenerateParameters(maxTokens: 150, doSample: true, temperature: 1.2, topK: 0, topP: 1, seed: seed)
            parameters.responseFormat = .jsonObject
            var generation = try Generation(model: model, promptIds: Fixture.untied.promptIds, parameters: parameters)
            var syntax = JSONSyntax()
            while let step = try generation.step() {
                #expect(!step.isStopToken, "seed \(seed): a stop token was sampled")
                let fits = syntax.accept(model.tokenizer.tokenBytes(step.tokenId) ?? [])
                #expect(fits, "seed \(seed): token \(step.tokenId) does not fit")
            }
            let result = generation.result
            #expect(result.stopReason == .formatComplete || result.stopReason == .maxTokens)
            if result.stopReason == .formatComplete {
                completed += 1
                let parsed = try JSONSerialization.jsonObject(with: Data(result.text.utf8))
                #expect(parsed is [String: Any], "seed \(seed): \(result.text)")
            }
        }
        #expect(completed >= 1, "none of 8 generations closed its object")
    }

    /// A forced tool call's pattern: the block with either name and any arguments object is read
    /// whole, another name or anything after the block is not; choices that begin one another
    /// are refused up front.
    @Test func toolCallPatternReadsOneBlock() throws {
        let program = PatternProgram(.toolCall(oneOf: ["get_weather", "search_web"]))
        func reads(_ text: String) -> (all: Bool, complete: Bool) {
            var state = PatternState(program)
            let all = state.accept(Array(text.utf8))
            return (all, state.isComplete)
        }
        let block = "<tool_call>\n{\"name\": \"search_web\", \"arguments\": {\"query\": \"x \\\" y\", \"n\": [1, 2.5e3]}}\n</tool_call>"
        #expect(reads(block) == (true, true))
        #expect(reads(block.replacingOccurrences(of: "search_web", with: "get_weather")) == (true, true))
        #expect(!reads(block.replacingOccurrences(of: "search_web", with: "search")).all)
        #expect(!reads(block + " ").all)
        #expect(reads(String(block.dropLast(3))) == (true, false))
        #expect(!reads(block.replacingOccurrences(of: "{\"query\"", with: "[\"query\"")).all)
        #expect(OutputPattern.toolCall(oneOf: ["get", "get_weather"]).problem == nil)   // the closing quote tells them apart
        #expect(OutputPattern([.oneOf(["ab", "abc"])]).problem != nil)
        #expect(OutputPattern([.oneOf([])]).problem != nil)
    }

    /// The mask after states in every part of a tool-call pattern equals each token read alone
    /// (real Qwen2.5 vocabulary, whose `<tool_call>` tags are ordinary added tokens).
    @Test func patternMaskKeepsExactlyTheTokensThatFit() throws {
        let tokenizer = try Tokenizer(directory: Paths.repository.appendingPathComponent("Models/tokenizer/qwen2.5"))
        let index = TokenBytesIndex(tokenizer: tokenizer, vocabularySize: tokenizer.vocabularySize)
        let logits = (0..<tokenizer.vocabularySize).map { Float($0 % 89) }
        let program = PatternProgram(.toolCall(oneOf: ["get_weather", "get_time", "search_web"]))
        let tag = tokenizer.tokenID("<tool_call>")
        for prefix in ["", "<tool_call>\n{\"na", "<tool_call>\n{\"name\": \"", "<tool_call>\n{\"name\": \"get_",
                       "<tool_call>\n{\"name\": \"get_time\", \"arguments\": ", "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"a\": \"b",
                       "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}"] {
            let masked = expectMaskMatches(after: prefix, from: PatternState(program), index: index, tokenizer: tokenizer, logits: logits)
            if prefix.isEmpty, let tag { #expect(masked[tag] == logits[tag], "the <tool_call> token opens the block") }
        }
    }

    /// Eight generations on the tiny fixture under `pattern`, sampled hot (seeds 1–8).
    func sampledGenerations(_ pattern: OutputPattern, maxTokens: Int) throws -> [GenerationResult] {
        let model = try QwenModel(directory: Fixture.untied.directory)
        return try (1...8 as ClosedRange<UInt64>).map { seed in
            var parameters = GenerateParameters(maxTokens: maxTokens, doSample: true, temperature: 1.2, topK: 0, topP: 1, seed: seed)
            parameters.outputPattern = pattern
            var generation = try Generation(model: model, promptIds: Fixture.untied.promptIds, parameters: parameters)
            while try generation.step() != nil {}
            return generation.result
        }
    }

    /// A forced call on the tiny fixture: a completed generation's text is the block, its
    /// arguments one object to Foundation's parser.
    @Test func forcedCallGenerations() throws {
        var completed = 0
        for result in try sampledGenerations(.toolCall(oneOf: ["lookup", "save_note"]), maxTokens: 200) {
            guard result.stopReason == .formatComplete else { continue }
            completed += 1
            let text = result.text
            let head = ["<tool_call>\n{\"name\": \"lookup\", \"arguments\": ", "<tool_call>\n{\"name\": \"save_note\", \"arguments\": "]
            #expect(head.contains { text.hasPrefix($0) }, "\(text)")
            #expect(text.hasSuffix("}\n</tool_call>"), "\(text)")
            let arguments = text.drop { $0 != ":" }.dropFirst().drop { $0 != ":" }.dropFirst().dropLast("}\n</tool_call>".count)
            let parsed = try JSONSerialization.jsonObject(with: Data(arguments.utf8))
            #expect(parsed is [String: Any], "\(arguments)")
        }
        #expect(completed >= 1, "no forced call closed in 8 generations")
    }

    /// Parallel tool calls: one or more blocks on lines of their own; the text may end after
    /// any whole block (not inside one, nor after a separator begun), and the mask there keeps
    /// the tokens that begin the next line (real Qwen2.5 vocabulary).
    @Test func toolCallsPatternReadsSeveralBlocks() throws {
        let program = PatternProgram(.toolCalls(oneOf: ["get_weather", "search_web"]))
        func reads(_ text: String) -> (all: Bool, canEnd: Bool) {
            var state = PatternState(program)
            let all = state.accept(Array(text.utf8))
            return (all, state.canEnd)
        }
        let block = "<tool_call>\n{\"name\": \"search_web\", \"arguments\": {\"query\": \"x\"}}\n</tool_call>"
        let other = block.replacingOccurrences(of: "search_web", with: "get_weather")
        #expect(reads(block) == (true, true))
        #expect(reads(block + "\n" + other) == (true, true))
        #expect(reads(block + "\n" + other + "\n" + block) == (true, true))
        #expect(reads(block + "\n") == (true, false))
        #expect(reads(block + "\n" + String(other.dropLast(2))) == (true, false))
        #expect(reads(String(block.dropLast(1))) == (true, false))
        #expect(!reads(block + block).all)
        #expect(!reads(block + "\n\n" + block).all)
        #expect(!reads(block + " ").all)
        #expect(OutputPattern([.oneOrMore(.toolCall(oneOf: ["a"]), separator: "\n"), .literal("x")]).problem != nil)
        let tokenizer = try Tokenizer(directory: Paths.repository.appendingPathComponent("Models/tokenizer/qwen2.5"))
        let index = TokenBytesIndex(tokenizer: tokenizer, vocabularySize: tokenizer.vocabularySize)
        let logits = (0..<tokenizer.vocabularySize).map { Float($0 % 97) }
        for prefix in [block, block + "\n", block + "\n<tool_call>\n{\"name\": \"get"] {
            expectMaskMatches(after: prefix, from: PatternState(program), index: index, tokenizer: tokenizer, logits: logits)
        }
    }

    /// Parallel forced calls on the tiny fixture, sampled (its random weights almost never pick
    /// a stop token, so the generations run to max_tokens or its short context: RealModelTests
    /// ends them): every block written whole is a call of one of the tools with an object of
    /// arguments, and the text is such blocks on lines of their own, the last possibly cut.
    @Test func parallelForcedCallGenerations() throws {
        var blocks = 0
        for result in try sampledGenerations(.toolCalls(oneOf: ["lookup", "save_note"]), maxTokens: 300) {
            #expect([.stopToken, .maxTokens, .contextLimit].contains(result.stopReason))
            let text = result.text
            for (i, piece) in text.components(separatedBy: "\n</tool_call>").dropLast().enumerated() {
                blocks += 1
                let body = i > 0 && piece.hasPrefix("\n") ? piece.dropFirst() : Substring(piece)
                #expect(body.hasPrefix("<tool_call>\n{\"name\": \"lookup\", \"arguments\": ")
                        || body.hasPrefix("<tool_call>\n{\"name\": \"save_note\", \"arguments\": "), "\(text)")
                let json = body.dropFirst("<tool_call>\n".count)
                let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
                #expect(parsed?["arguments"] is [String: Any], "\(json)")
            }
        }
        #expect(blocks >= 1, "no forced call closed in 8 generations")
    }

    /// Structured outputs: a schema's pattern reads the compact documents that follow it
    /// (written here by hand) and refuses ones that do not; what it cannot follow is refused
    /// with the schema path.
    @Test func schemaPatternsFollowTheSchema() throws {
        let schema = try JSONValue.parse("""
            {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"},
             "area": {"type": "number"}, "capital": {"type": "boolean"}, "continent": {"enum": ["Asia", "Europe", null, 3]},
             "tags": {"type": "array", "items": {"type": "string"}}, "mayor": {"type": "object", "properties":
             {"name": {"type": "string"}, "since": {"type": "integer"}}}, "extra": {"type": "object"}, "none": {"type": "null"},
             "fixed": {"const": "v1"}}, "required": ["city"], "additionalProperties": false}
            """)
        let program = PatternProgram(try OutputPattern(jsonSchema: schema))
        func reads(_ text: String) -> Bool {
            var state = PatternState(program)
            return state.accept(Array(text.utf8)) && state.isComplete
        }
        let valid = #"{"city": "Paris \"é\"", "population": -2100000, "area": 105.4e0, "capital": true, "continent": null, "tags": ["a", "b"], "mayor": {"name": "A", "since": 2014}, "extra": {"k": [1, 2]}, "none": null, "fixed": "v1"}"#
        #expect(reads(valid))
        #expect(reads(valid.replacingOccurrences(of: "\"continent\": null", with: "\"continent\": 3")))
        #expect(reads(valid.replacingOccurrences(of: "\"area\": 105.4e0", with: "\"area\": 0")))
        for (broken, why) in [("\"population\": -2100000", "\"population\": 2.5"), ("\"capital\": true", "\"capital\": 1"),
                              ("\"continent\": null", "\"continent\": \"Africa\""), ("\"continent\": null", "\"continent\": 30"),
                              ("\"tags\": [\"a\", \"b\"]", "\"tags\": {}"), ("\"tags\": [\"a\", \"b\"]", "\"tags\": [\"a\", {\"b\": 1}]"), ("\"fixed\": \"v1\"", "\"fixed\": \"v2\""),
                              ("\"city\": \"Paris \\\"\u{e9}\\\"\", ", ""), ("\"none\": null", "\"none\": 0")] {
            let text = valid.replacingOccurrences(of: broken, with: why)
            #expect(text != valid)
            #expect(!reads(text), "\(why)")
        }
        #expect(!reads(valid.replacingOccurrences(of: ", ", with: ",")), "the compact form has a space after commas")
        #expect(!reads(valid.replacingOccurrences(of: "-2100000", with: "-2100000 ")), "no whitespace after a number")
        #expect(!reads(valid.replacingOccurrences(of: "2014}", with: "2014\n}")), "no whitespace after a number")
        for (bad, at) in [(#"{"type": "array"}"#, "#"), (#"{"type": "object", "properties": {"a": {"anyOf": []}}}"#, "#/properties/a/anyOf"),
                          (#"{"type": "object", "properties": {"a": {"type": ["string", "nothing"]}}}"#, "#/properties/a/type/1"),
                          (#"{"type": "object", "properties": {"a": {"oneOf": [{"type": "object", "properties": {"b": {"type": "null"}}}, {"type": "object"}]}}}"#, "#/properties/a/oneOf/1"),
                          (#"{"type": "object", "properties": {"a": {"oneOf": [{"type": "number"}, {"type": "integer"}]}}}"#, "#/properties/a/oneOf/1"),
                          (#"{"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}, "maxItems": 100}}}"#, "#/properties/a/maxItems"),
                          (#"{"type": "object", "properties": {"a": {"type": "array", "minItems": 3, "maxItems": 2}}}"#, "#/properties/a/maxItems"),
                          (#"{"type": "object", "properties": {"a": {"anyOf": [{"type": "integer"}], "oneOf": [{"type": "string"}]}}}"#, "#/properties/a/oneOf"),
                          (#"{"type": "object", "anyOf": [{"type": "integer"}]}"#, "#/type"),
                          (#"{"type": "object", "properties": {"a": {"type": "string", "enum": ["x", 1]}}}"#, "#/properties/a/enum/1"),
                          (#"{"type": "object", "properties": {"a": {"type": "array", "maxItems": 64, "items": {"type": "array", "maxItems": 64, "items": {"type": "array", "maxItems": 64, "items": {"type": "string"}}}}}}"#, "#"),
                          (##"{"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/A"}}}}}"##, "#/$defs/A"),
                          (#"{"type": "object", "properties": {"a": {"enum": [1, 12]}}}"#, "#/properties/a/enum"),
                          (##"{"type": "object", "properties": {"a": {"$ref": "#/x"}}}"##, "#/properties/a/$ref"),
                          (#"{"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=x)"}}}"#, "#/properties/a/pattern"),
                          (#"{"type": "object", "properties": {"a": {"type": "string", "pattern": "a\\1"}}}"#, "#/properties/a/pattern"),
                          (#"{"type": "object", "properties": {"a": {"type": "string", "pattern": "a{1001}"}}}"#, "#/properties/a/pattern"),
                          (#"{"type": "object", "properties": {"a": {"type": "string", "pattern": "((a{1000}){1000}){1000}"}}}"#, "#/properties/a/pattern"),
                          (#"{"type": "object", "properties": {"a": {"type": "string", "pattern": "(a|b)*a(a|b){30}"}}}"#, "#/properties/a/pattern"),
                          ("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"pattern\": \"" + String(repeating: "(", count: 5000)
                           + String(repeating: ")", count: 5000) + "\"}}}", "#/properties/a/pattern"),
                          (#"{"type": "object", "properties": {"a": {"type": "string", "pattern": "[^\\s\\S]"}}}"#, "#/properties/a/pattern"),
                          (#"{"type": "object", "properties": {"a": {"type": "string", "pattern": "x", "enum": ["x"]}}}"#, "#/properties/a/pattern"),
                          (#"{"type": "object", "properties": {"a": {"type": "string", "format": "idn-hostname"}}}"#, "#/properties/a/format"),
                          (#"{"type": "object", "properties": {"a": {"type": "string", "minLength": 3, "maxLength": 2}}}"#, "#/properties/a/maxLength"),
                          (#"{"type": "object", "properties": {"a": {"type": "string", "maxLength": -1}}}"#, "#/properties/a/maxLength"),
                          (#"{"type": "object", "properties": {"a": {"type": "number", "minimum": 1e300}}}"#, "#/properties/a"),
                          (#"{"type": "object", "properties": {"a": {"type": "number", "minimum": 2, "exclusiveMaximum": 2}}}"#, "#/properties/a"),
                          (#"{"type": "object", "properties": {"a": {"type": "number", "multipleOf": 0}}}"#, "#/properties/a/multipleOf"),
                          (#"{"type": "object", "properties": {"a": {"type": "number", "multipleOf": 1e-12}}}"#, "#/properties/a/multipleOf"),
                          (#"{"type": "object", "properties": {"a": {"type": "number", "multipleOf": 1234.56789}}}"#, "#/properties/a/multipleOf"),
                          (#"{"type": "object", "properties": {"a": {"type": "integer", "multipleOf": 3, "minimum": 4, "maximum": 5}}}"#, "#/properties/a/multipleOf"),
                          (#"{"type": "object", "properties": {"a": {"type": "integer", "multipleOf": "2"}}}"#, "#/properties/a/multipleOf"),
                          (#"{"type": "object", "properties": {"a": {"type": "array", "prefixItems": [{"type": "integer"}], "items": {"type": "string"}}}}"#, "#/properties/a/prefixItems"),
                          (#"{"type": "object", "properties": {"a": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "x"}], "minItems": 2, "maxItems": 2}}}"#, "#/properties/a/prefixItems/1/type"),
                          (#"{"type": "object", "properties": {"a": {"allOf": [{"type": "integer"}, {"minimum": 1}]}}}"#, "#/properties/a/allOf/0"),
                          (#"{"type": "object", "properties": {"a": {"allOf": []}}}"#, "#/properties/a/allOf"),
                          (#"{"type": "object", "properties": {"a": {"allOf": [{"type": "integer"}], "type": "integer"}}}"#, "#/properties/a/type"),
                          (#"{"type": "object", "properties": {"a": {"type": "integer", "minimum": 5, "exclusiveMaximum": 5}}}"#, "#/properties/a"),
                          (#"{"type": "object", "properties": {"a": {"type": "integer", "maximum": "5"}}}"#, "#/properties/a/maximum")] {
            try expectRefused(bad, at: at)
        }
    }

    /// `schema` refused with a `SchemaError` at `path`.
    func expectRefused(_ schema: String, at path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let value = try JSONValue.parse(schema)
        do {
            _ = try OutputPattern(jsonSchema: value)
            Issue.record("accepted \(schema)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.path == path, "\(schema): \(error)", sourceLocation: sourceLocation)
        }
    }

    /// `multipleOf` against integer arithmetic: integers from −1,200 to 1,200 with and without
    /// bounds, and decimals of up to four fraction digits (with trailing zeros) scaled to
    /// integers, are accepted exactly when they are whole multiples (and within the bounds).
    @Test func multiplesAcceptExactlyTheirMultiples() throws {
        for (m, low, high) in [(7, nil, nil), (5, -100, 100), (12, 1, nil), (1, nil, 3), (250, -1_000, nil), (997, nil, nil)] as [(Int, Int?, Int?)] {
            let pattern = try TextPattern.integer(minimum: low, maximum: high, multipleOf: Double(m))
            for n in Array(-1_200...1_200) + [997 * 1_000_003, -7 * 123_456_789_012, 7 * 123_456_789_012 + 1] {
                let inside = (low ?? .min) <= n && n <= (high ?? .max) && n % m == 0
                #expect(pattern.accepts(String(n)) == inside, "\(n) multiple of \(m) in \(low.map(String.init) ?? "…")...\(high.map(String.init) ?? "…")")
            }
            for text in ["-0", "00", "07", "7.0", "7e0", "+7"] { #expect(!pattern.accepts(text), "\(text)") }
        }
        // m as written (p / 10^k), read here from its text: p and k by hand.
        var rng = SeededRandom(seed: 23)
        for (text, p, k) in [("0.25", 25, 2), ("0.1", 1, 1), ("2.5", 25, 1), ("0.001", 1, 3), ("3", 3, 0), ("0.3", 3, 1), ("1.5", 15, 1), ("0.0625", 625, 4)] {
            let pattern = try TextPattern.number(minimum: nil, maximum: nil, multipleOf: Double(text)!)
            var scale = 1
            for _ in 0..<(4 - k) { scale *= 10 }
            for _ in 0..<3_000 {
                // value = units / 10^4
                let units = Int(rng.next() % 40_000_001) - 20_000_000
                let places = Int(rng.next() % 5)
                var divisor = 1
                for _ in 0..<(4 - places) { divisor *= 10 }
                let shown = units / divisor * divisor
                let magnitude = abs(shown), whole = magnitude / 10_000, fraction = magnitude % 10_000
                var written = (shown < 0 ? "-" : "") + String(whole)
                if places > 0 {
                    let digits = (String(repeating: "0", count: 4 - String(fraction).count) + String(fraction)).prefix(places)
                    written += "." + digits + (rng.next() % 4 == 0 ? "00" : "")
                }
                if written.hasPrefix("-") && shown == 0 { continue }
                #expect(pattern.accepts(written) == (shown % (p * scale) == 0), "\(written) multiple of \(text)")
            }
            // 300,000 is a multiple of each m; 10^6 and up are past the cap.
            for accepted in ["0", "300000", "-300000.000"] { #expect(pattern.accepts(accepted), "\(accepted)") }
            for refused in ["3000000", "-3000000.0", "3e2", "-0", "-0.0", "0.", ".5", "03", "+3"] { #expect(!pattern.accepts(refused), "\(refused)") }
        }
    }

    /// Integer bounds against arithmetic: every integer from −1,200 to 1,200 (and numbers far
    /// outside) is accepted exactly when it lies in the range, for bounds on either side, both
    /// or none; `-0`, leading zeros, fractions and exponents never.
    @Test func integerRangesAcceptExactlyTheirIntegers() throws {
        var rng = SeededRandom(seed: 17)
        let edges = [nil, 0, 1, -1, 9, 10, 99, 100, -100, 999, -1000, 1000]
        var ranges: [(Int?, Int?)] = edges.flatMap { a in edges.map { b in (a, b) } }
        for _ in 0..<40 {
            let a = Int(rng.next() % 2_001) - 1_000, b = Int(rng.next() % 2_001) - 1_000
            ranges.append((min(a, b), max(a, b)))
        }
        for (low, high) in ranges where (low ?? .min) <= (high ?? .max) {
            let pattern = try TextPattern.integer(minimum: low, maximum: high)
            for n in Array(-1_200...1_200) + [123_456_789, -123_456_789, Int(1e17)] {
                let inside = (low ?? .min) <= n && n <= (high ?? .max)
                #expect(pattern.accepts(String(n)) == inside, "\(n) in \(low.map(String.init) ?? "…")...\(high.map(String.init) ?? "…")")
            }
            for text in ["-0", "00", "01", "-01", "1.0", "1e2", "+1", "", "-"] {
                #expect(!pattern.accepts(text), "\(text)")
            }
        }
    }

    /// Random regular expressions over the syntax's metacharacters: each is read or refused
    /// with a `TextPattern.Failure` (never a trap), and one that is read never accepts a text
    /// that is not a JSON string, on random texts.
    @Test func randomPatternsReadOrRefuse() throws {
        var rng = SeededRandom(seed: 41)
        let alphabet = Array(#"ab()[]{}|*+?.^$\-,0123dwsDuxPn:<>=!é"#)
        var read = 0
        for _ in 0..<4_000 {
            let pattern = String((0..<Int(rng.next() % 14)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
            let text: TextPattern
            do { text = try TextPattern.string(matching: pattern) } catch { continue }
            read += 1
            for _ in 0..<8 {
                let value = String((0..<Int(rng.next() % 6)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
                let json = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
                _ = text.accepts(json)
                #expect(!text.accepts(value + "\""), "\(pattern): \(value)")
            }
        }
        #expect(read > 500)
    }

    /// A pattern with a `minLength` and no `maxLength` (AnyUrl's schema: `minLength` 1), or with
    /// a `maxLength` too long to count beside it (HttpUrl's 2,083: read as 256): lengths as
    /// Python counts characters.
    @Test func lengthsBesideAPatternStayFinite() throws {
        let letters = try TextPattern.string(matching: "^[a-zé]+$", minLength: 3)
        for (text, fits) in [("ab", false), ("abc", true), ("éé", false), ("ééé", true), (String(repeating: "a", count: 5_000), true), ("ab1", false)] {
            #expect(letters.accepts(String(decoding: try JSONEncoder().encode(text), as: UTF8.self)) == fits, "\(text)")
        }
        let url = try TextPattern.string(minLength: 1, maxLength: 2_083, format: "uri")
        for (n, fits) in [(0, true), (243, true), (244, false)] {
            #expect(url.accepts("\"http://a.com/" + String(repeating: "x", count: n) + "\"") == fits, "path of \(n)")
        }
    }

    /// `allOf` of several object schemas is the object of all their properties in branch order:
    /// the same pattern as that object written out (at the root, nested, through `$ref`, a field
    /// in two branches with the same schema once); a field with two schemas, a branch that is not
    /// an object schema or holds other keywords is refused at its path.
    @Test func allOfMergesObjectSchemas() throws {
        func pattern(_ text: String) throws -> OutputPattern { try OutputPattern(jsonSchema: try JSONValue.parse(text)) }
        let base = ##""$defs": {"Base": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}}, "required": ["a", "b"]}}"##
        #expect(try pattern(##"{"allOf": [{"$ref": "#/$defs/Base"}, {"type": "object", "properties": {"c": {"type": "integer", "minimum": 0}}}], "##
                            + base + "}")
                == pattern(#"{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}, "c": {"type": "integer", "minimum": 0}}}"#))
        #expect(try pattern(##"{"type": "object", "properties": {"x": {"allOf": [{"$ref": "#/$defs/Base"}, {"properties": {"b": {"type": "boolean"}, "d": {"type": "null"}}, "additionalProperties": false}]}}, "##
                            + base + "}")
                == pattern(#"{"type": "object", "properties": {"x": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}, "d": {"type": "null"}}}}}"#))
        for (bad, at) in [(##"{"type": "object", "properties": {"x": {"allOf": [{"$ref": "#/$defs/Base"}, {"properties": {"a": {"type": "integer"}}}]}}, "## + base + "}",
                           "#/properties/x/allOf/1/properties/a"),
                          (#"{"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"type": "array"}]}"#, "#/allOf/1"),
                          (#"{"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"properties": {"b": {"type": "string"}}, "minProperties": 1}]}"#,
                           "#/allOf/1/minProperties"),
                          (#"{"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"properties": {"b": {"type": "nothing"}}}]}"#,
                           "#/allOf/1/properties/b/type")] {
            try expectRefused(bad, at: at)
        }
    }

    /// Unions whose branches begin alike (Pydantic's `Cat | Dog`, discriminated unions): one
    /// pattern up to where the branches part, each branch's texts read and no mixture of two;
    /// the mask at the byte where they part (inside a key) equals each token read alone; oneOf
    /// branches alike only with a discriminating const; branches that part where the text cannot
    /// tell them apart refused at the branch.
    @Test func unionsThatBeginAlikeAreWrittenToWhereTheyPart() throws {
        // Left factoring itself: the common beginning once, the rests told apart by a byte.
        let ab = OutputPattern([.literal("ab"), .json(.integer)]), ac = OutputPattern([.literal("ac")])
        #expect(OutputPattern.leftFactored([ab, ac]) == [OutputPattern([.literal("a"), .anyOf([OutputPattern([.literal("b"), .json(.integer)]),
                                                                                               OutputPattern([.literal("c")])])])])
        #expect(OutputPattern.leftFactored([ab, OutputPattern([.literal("x")]), ab]) == [ab, OutputPattern([.literal("x")])])
        #expect(OutputPattern.leftFactored([OutputPattern([.literal("ab")]), OutputPattern([.literal("abc")])]) == nil, "one ends where the other goes on")
        #expect(OutputPattern.leftFactored([OutputPattern([.literal("é")]), OutputPattern([.literal("è")])]) == nil, "a first byte shared by two characters")
        #expect(OutputPattern.leftFactored([OutputPattern([.json(.integer)]), OutputPattern([.json(.number)])]) == nil)

        let defs = ##""$defs": {"Cat": {"type": "object", "properties": {"name": {"type": "string"}, "meows": {"type": "integer"}}}, "##
            + ##""Dog": {"type": "object", "properties": {"name": {"type": "string"}, "barks": {"type": "number"}}}, "##
            + ##""CatTag": {"type": "object", "properties": {"t": {"const": "cat"}, "n": {"type": "integer"}}}, "##
            + ##""DogTag": {"type": "object", "properties": {"t": {"const": "dog"}, "n": {"type": "integer"}, "g": {"type": "boolean"}}}}"##
        let schema = try JSONValue.parse(##"{"type": "object", "properties": {"pet": {"anyOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}, {"type": "null"}]},"##
                                         + ##" "tag": {"oneOf": [{"$ref": "#/$defs/CatTag"}, {"$ref": "#/$defs/DogTag"}], "discriminator": {"propertyName": "t"}}}, "## + defs + "}")
        let program = PatternProgram(try OutputPattern(jsonSchema: schema))
        func reads(_ text: String) -> Bool {
            var state = PatternState(program)
            return withExtendedLifetime(program) { state.accept(Array(text.utf8)) && state.isComplete }
        }
        let tag = #", "tag": {"t": "cat", "n": 9}}"#
        #expect(reads(#"{"pet": {"name": "Tom", "meows": 3}"# + tag))
        #expect(reads(#"{"pet": {"name": "Rex", "barks": 2.5}"# + tag))
        #expect(reads(#"{"pet": null, "tag": {"t": "dog", "n": 1, "g": true}}"#))
        #expect(!reads(#"{"pet": {"name": "Tom", "meows": 2.5}"# + tag), "Cat's meows is an integer")
        #expect(!reads(#"{"pet": {"name": "Tom"}"# + tag))
        #expect(!reads(#"{"pet": {"name": "Tom", "meows": 3, "barks": 1}"# + tag))
        #expect(!reads(#"{"pet": null, "tag": {"t": "cat", "n": 1, "g": true}}"#), "CatTag has no g")
        #expect(!reads(#"{"pet": null, "tag": {"t": "dog", "n": 1}}"#), "DogTag has a g")
        let tokenizer = try Tokenizer(directory: Paths.repository.appendingPathComponent("Models/tokenizer/qwen2.5"))
        let index = TokenBytesIndex(tokenizer: tokenizer, vocabularySize: tokenizer.vocabularySize)
        let logits = (0..<tokenizer.vocabularySize).map { Float($0 % 97) }
        for prefix in [#"{"pet": "#, #"{"pet": {"name": "Tom", "#, #"{"pet": {"name": "Tom", "b"#, #"{"pet": null, "tag": {"t": ""#] {
            withExtendedLifetime(program) {
                expectMaskMatches(after: prefix, from: PatternState(program), index: index, tokenizer: tokenizer, logits: logits)
            }
        }

        func pattern(_ text: String) throws -> OutputPattern { try OutputPattern(jsonSchema: try JSONValue.parse(text)) }
        // A branch that is another plus a property, and a branch written twice.
        let cat = #"{"type": "object", "properties": {"name": {"type": "string"}, "meows": {"type": "integer"}}}"#
        let owned = #"{"type": "object", "properties": {"name": {"type": "string"}, "meows": {"type": "integer"}, "owner": {"type": "string"}}}"#
        let both = PatternProgram(try pattern(#"{"type": "object", "properties": {"x": {"anyOf": ["# + cat + ", " + owned + ", " + cat + "]}}}"))
        for (text, ok) in [(#"{"x": {"name": "a", "meows": 1}}"#, true), (#"{"x": {"name": "a", "meows": 1, "owner": "b"}}"#, true),
                           (#"{"x": {"name": "a", "meows": 1, "owner": 2}}"#, false)] {
            var state = PatternState(both)
            #expect(withExtendedLifetime(both) { state.accept(Array(text.utf8)) && state.isComplete } == ok, "\(text)")
        }
        // anyOf: a branch whose values a plain branch all takes adds nothing.
        func field(_ schema: String) throws -> OutputPattern { try pattern(#"{"type": "object", "properties": {"x": "# + schema + "}}") }
        #expect(try field(#"{"anyOf": [{"const": "auto"}, {"type": "string"}]}"#) == field(#"{"type": "string"}"#))
        #expect(try field(#"{"anyOf": [{"type": "object", "properties": {"b": {"type": "null"}}}, {"type": "object"}]}"#) == field(#"{"type": "object"}"#))
        #expect(try field(#"{"anyOf": [{"type": "integer", "minimum": 0}, {"type": "number"}, {"type": "null"}]}"#)
                == field(#"{"type": ["number", "null"]}"#))
        #expect(throws: OutputPattern.SchemaError.self) { try field(#"{"anyOf": [{"type": "number", "minimum": 0}, {"type": "integer"}]}"#) }

        // Two objects that agree on 2,000 properties: their common beginning is read in a loop,
        // not a recursion per property (on a thread of 256 KB of stack, as a server's tasks have
        // little).
        let shared = (0..<2000).map { #""p\#($0)": {"type": "string"}, "# }.joined()
        let long = #"{"type": "object", "properties": {"x": {"anyOf": [{"type": "object", "properties": {"# + shared + #""a": {"type": "integer"}}}, "#
            + #"{"type": "object", "properties": {"# + shared + #""b": {"type": "boolean"}}}]}}}"#
        let compiled = Mutex<Result<OutputPattern, OutputPattern.SchemaError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            compiled.withLock { $0 = Result { () throws(OutputPattern.SchemaError) in try OutputPattern(jsonSchema: try! JSONValue.parse(long)) } }
            done.signal()
        }
        thread.stackSize = 256 << 10
        thread.start()
        done.wait()
        let longProgram = PatternProgram(try #require(compiled.withLock { $0 }).get())
        let values = (0..<2000).map { #""p\#($0)": "v", "# }.joined()
        for (tail, ok) in [(#""a": 1}}"#, true), (#""b": true}}"#, true), (#""a": true}}"#, false)] {
            var state = PatternState(longProgram)
            #expect(withExtendedLifetime(longProgram) { state.accept(Array((#"{"x": {"# + values + tail).utf8)) && state.isComplete } == ok, "\(tail)")
        }

        for (bad, at) in [(#"{"type": "object", "properties": {"x": {"oneOf": ["# + cat + ", " + owned + "]}}}", "#/properties/x/oneOf/1"),
                          (#"{"type": "object", "properties": {"x": {"anyOf": [{"type": "object", "properties": {"v": {"type": "integer"}}}, {"type": "object", "properties": {"v": {"type": "number"}}}]}}}"#,
                           "#/properties/x/anyOf/1"),
                          (#"{"type": "object", "properties": {"x": {"anyOf": [{"type": "object", "properties": {"v": {"type": "string"}}}, {"type": "object", "properties": {"v": {"type": "string", "format": "date"}}}]}}}"#,
                           "#/properties/x/anyOf/1")] {
            try expectRefused(bad, at: at)
        }
    }

    /// `ByteAutomaton(subtracting:from:)` on seeded random pattern pairs: a text is accepted
    /// exactly when the first automaton accepts it and the second does not (each read alone).
    @Test func subtractionAcceptsWhatOnlyTheFirstAccepts() throws {
        var rng = SeededRandom(seed: 43)
        let pieces = ["a", "b", "c", "a*", "(a|bc)", "[ab]", "c+", "b?", ".", "(ab)*", "[^a]", "a{2}"]
        func pattern() -> String {
            (rng.next() % 2 == 0 ? "^" : "") + (0...Int(rng.next() % 4)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
                + (rng.next() % 2 == 0 ? "$" : "")
        }
        for _ in 0..<300 {
            let (p, q) = (pattern(), pattern())
            let a = try ByteAutomaton(RegexParser.search(p), encoding: .utf8), b = try ByteAutomaton(RegexParser.search(q), encoding: .utf8)
            let difference = try ByteAutomaton(subtracting: b, from: a)
            for _ in 0..<30 {
                let text = String((0..<Int(rng.next() % 7)).map { _ in Array("abc")[Int(rng.next() % 3)] })
                #expect(difference.accepts(text.utf8) == (a.accepts(text.utf8) && !b.accepts(text.utf8)), "\(p) minus \(q): \(text)")
            }
        }
    }

    /// Number bounds against doubles, as Pydantic compares them (the text read as a double, then
    /// compared): for texts of up to 15 significant digits within the normal range (which read
    /// as distinct doubles) the pattern accepts exactly those within the bounds; for longer ones
    /// (a tail past a double's precision, a value that underflows) it accepts none outside them. Texts around each bound, its neighbouring doubles,
    /// random ones; `-0`, exponents and leading zeros never.
    @Test func numberRangesAcceptExactlyTheirNumbers() throws {
        var rng = SeededRandom(seed: 29)
        let values: [Double] = [0, 1, -1, 0.1, 0.5, -2.75, 100, 273.15, -273.15, 999.999, 1e-7, 12345678.9]
        var bounds: [((Double, Bool)?, (Double, Bool)?)] = []
        for _ in 0..<60 {
            func bound() -> (Double, Bool)? { rng.next() % 4 == 0 ? nil : (values[Int(rng.next() % UInt64(values.count))], rng.next() % 2 == 0) }
            let (a, b) = (bound(), bound())
            if let a, let b, b.0 < a.0 { bounds.append((b, a)) } else { bounds.append((a, b)) }
        }
        bounds += [((0, false), nil), ((0, true), (1, true)), (nil, (0, false)), ((-1, true), (1, false))]
        /// `x` written as a JSON number without exponent, to `digits` decimals, canonical.
        func text(_ x: Double, _ digits: Int) -> String? {
            var t = String(format: "%.\(digits)f", x)
            if t.contains(".") { while t.hasSuffix("0") { t.removeLast() } }
            if t.hasSuffix(".") { t.removeLast() }
            return t == "-0" || t.hasPrefix("-0") && Double(t) == 0 ? nil : t
        }
        func significantDigits(_ t: String) -> Int {
            t.filter(\.isNumber).drop { $0 == "0" }.count
        }
        var texts: Set<String> = ["0", "1", "-1", "0.0", "1.50", "-0.5", "0." + String(repeating: "0", count: 400) + "1"]
        for v in values {
            for x in [v, v.nextUp, v.nextDown, v + 0.001, v - 0.001, v + 1e-12, v - 1e-12] {
                for digits in [0, 1, 2, 3, 6, 9, 12, 17, 20] { if let t = text(x, digits) { texts.insert(t) } }
            }
            // The bound's own digits and a tail past a double's precision, above and below it.
            let shortest = text(v, 20).map { _ in v.description }!
            if !shortest.contains("e") {
                let base = shortest.contains(".") ? shortest : shortest + ".0"
                texts.insert(base + "000000000000000000001")
                if let d = text(v.nextDown, 25) { texts.insert(d + (d.contains(".") ? "" : ".") + "999999999999999999") }
            }
        }
        for _ in 0..<300 {
            let x = (Double(rng.next() % 2_400_000) - 1_200_000) / 1000
            if let t = text(x, Int(rng.next() % 5)) { texts.insert(t) }
        }
        var checked = 0
        for (low, high) in bounds {
            if let low, let high, (high.1 ? high.0 : high.0.nextDown) < (low.1 ? low.0 : low.0.nextUp) {
                #expect(throws: TextPattern.Failure.self) { try TextPattern.number(minimum: low, maximum: high) }
                continue
            }
            let pattern = try TextPattern.number(minimum: low.map { ($0.0, $0.1) }, maximum: high.map { ($0.0, $0.1) })
            for t in texts {
                let x = try #require(Double(t))
                let inside = (low.map { $0.1 ? x >= $0.0 : x > $0.0 } ?? true) && (high.map { $0.1 ? x <= $0.0 : x < $0.0 } ?? true)
                let ours = pattern.accepts(t)
                // Up to 15 significant digits within the doubles' normal range: distinct doubles.
                if significantDigits(t) <= 15 && (x == 0 ? significantDigits(t) == 0 : abs(x) >= Double.leastNormalMagnitude) {
                    #expect(ours == inside, "\(t) within \(String(describing: low))...\(String(describing: high))")
                } else {
                    #expect(!ours || inside, "\(t) within \(String(describing: low))...\(String(describing: high))")
                }
                checked += 1
            }
            for t in ["-0", "-0.0", "1e2", "01", "1.", ".5", "+1", "", "-"] { #expect(!pattern.accepts(t), "\(t)") }
        }
        #expect(checked > 20_000)
    }

    /// Tests/QwenTests/Data/json_schema_reference.json, written by scripts/json_schema_reference.py:
    /// Pydantic models' own schemas (lists of models and of lists, dicts, Optional models and
    /// lists, a union of an integer, a string and a list, unions of models that begin alike,
    /// Literal enums; patterns, lengths,
    /// formats, bounds and multiples) and seeded documents with their mutations, each with
    /// Pydantic's strict verdict (plus the compact form, field order and string forms the pattern
    /// writes). The schema's pattern must accept exactly the valid ones (beyond ASCII against `.`
    /// or a shorthand class: none that is not valid; the `narrower` cases: none).
    @Test func schemaPatternsAgreeWithPydantic() throws {
        let data = try Data(contentsOf: Paths.data.appendingPathComponent("json_schema_reference.json"))
        let file = try JSONDecoder().decode(ReferenceFile.self, from: data)
        let raw = try JSONValue.parse(String(decoding: data, as: UTF8.self))
        var programs: [String: PatternProgram] = [:]
        for (name, schema) in try #require(raw["schemas"]?.objectValue).entries {
            programs[name] = PatternProgram(try OutputPattern(jsonSchema: schema))
        }
        #expect(programs.count == 49)
        #expect(file.cases.count > 6000)
        var valid = 0
        for (i, c) in file.cases.enumerated() {
            let program = try #require(programs[c.schema ?? ""], "case \(i) names no schema of the file")
            if expectVerdict(c, i, from: PatternState(program)) { valid += 1 }
        }
        #expect(valid > 1000)
    }

    /// The mask inside arrays (bounded ones too), maps and alternatives equals each token read
    /// alone (real Qwen2.5 vocabulary), at every kind of step of a compiled schema.
    @Test func schemaMaskKeepsExactlyTheTokensThatFit() throws {
        let tokenizer = try Tokenizer(directory: Paths.repository.appendingPathComponent("Models/tokenizer/qwen2.5"))
        let index = TokenBytesIndex(tokenizer: tokenizer, vocabularySize: tokenizer.vocabularySize)
        let logits = (0..<tokenizer.vocabularySize).map { Float($0 % 97) }
        let schema = try JSONValue.parse(##"""
            {"type": "object", "properties": {
               "ids": {"type": "array", "items": {"type": "integer"}},
               "meta": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
               "pick": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "array", "items": {"type": "boolean"}},
                                  {"type": "object", "properties": {"x": {"type": "null"}}}, {"type": "null"}]},
               "few": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2}}}
            """##)
        let program = PatternProgram(try OutputPattern(jsonSchema: schema))
        for prefix in [#"{"ids": "#, #"{"ids": ["#, #"{"ids": [1"#, #"{"ids": [12, "#, #"{"ids": [], "meta": "#,
                       #"{"ids": [], "meta": {"#, #"{"ids": [], "meta": {"k"#, #"{"ids": [], "meta": {"k": ["#,
                       #"{"ids": [], "meta": {"k": ["a"], "#, #"{"ids": [], "meta": {}, "pick": "#,
                       #"{"ids": [], "meta": {}, "pick": 4"#, #"{"ids": [], "meta": {}, "pick": [true"#,
                       #"{"ids": [], "meta": {}, "pick": {"x": "#, #"{"ids": [], "meta": {}, "pick": null, "few": ["#,
                       #"{"ids": [], "meta": {}, "pick": null, "few": [3"#, #"{"ids": [], "meta": {}, "pick": null, "few": [3, 4"#] {
            expectMaskMatches(after: prefix, from: PatternState(program), index: index, tokenizer: tokenizer, logits: logits)
        }
        func reads(_ text: String) -> Bool {
            var state = PatternState(program)
            return state.accept(Array(text.utf8)) && state.isComplete
        }
        let few = #", "few": [1]}"#
        #expect(reads(#"{"ids": [1, -2], "meta": {"a": [], "b": ["x", "y"]}, "pick": [true, false]"# + few))
        #expect(reads(#"{"ids": [], "meta": {}, "pick": {"x": null}"# + few))
        #expect(reads(#"{"ids": [], "meta": {}, "pick": "s""# + few))
        #expect(reads(#"{"ids": [], "meta": {}, "pick": 7, "few": [70, 8]}"#))
        #expect(!reads(#"{"ids": [], "meta": {}, "pick": 7, "few": []}"#))
        #expect(!reads(#"{"ids": [], "meta": {}, "pick": 7, "few": [1, 2, 3]}"#))
        #expect(!reads(#"{"ids": [1.5], "meta": {}, "pick": null"# + few))
        #expect(!reads(#"{"ids": [1,2], "meta": {}, "pick": null"# + few))
        #expect(!reads(#"{"ids": [], "meta": {"a": [1]}, "pick": null"# + few))
        #expect(!reads(#"{"ids": [], "meta": {}, "pick": true"# + few))
        #expect(!reads(#"{"ids": [], "meta": {}, "pick": {"y": null}"# + few))
        #expect(OutputPattern([.anyOf([OutputPattern([.json(.integer)]), OutputPattern([.literal("5")])])]).problem != nil)
        #expect(OutputPattern([.array(OutputPattern([]))]).problem != nil)
        #expect(OutputPattern([.array(OutputPattern([.literal("")]))]).problem != nil)
        let closed = PatternProgram(try OutputPattern(jsonSchema: try JSONValue.parse(
            #"{"type": "object", "properties": {"m": {"type": "object", "additionalProperties": false}}}"#)))
        var state = PatternState(closed)
        let empty = state.accept(Array(#"{"m": {}}"#.utf8)) && state.isComplete
        #expect(empty, "additionalProperties false: {}")
        state = PatternState(closed)
        let member = state.accept(Array(#"{"m": {"x": 1}}"#.utf8))
        #expect(!member, "additionalProperties false: no member")
    }

    /// The mask at text steps (patterns, formats, lengths, integer bounds) equals each token read
    /// alone on the real Qwen2.5 vocabulary: inside escapes and multi-byte characters, at an
    /// integer that may end or go on, at a length's last character.
    @Test func textPatternMaskKeepsExactlyTheTokensThatFit() throws {
        let tokenizer = try Tokenizer(directory: Paths.repository.appendingPathComponent("Models/tokenizer/qwen2.5"))
        let index = TokenBytesIndex(tokenizer: tokenizer, vocabularySize: tokenizer.vocabularySize)
        let logits = (0..<tokenizer.vocabularySize).map { Float($0 % 97) }
        let schema = try JSONValue.parse(##"""
            {"type": "object", "properties": {
               "code": {"type": "string", "pattern": "^[A-Z]{2}\\d+$"},
               "when": {"type": "string", "format": "date-time"},
               "n": {"type": "integer", "minimum": -5, "maximum": 120},
               "name": {"type": "string", "minLength": 2, "maxLength": 4},
               "any": {"type": "string", "pattern": "é.x"},
               "ns": {"type": "array", "items": {"type": "integer", "exclusiveMinimum": 0}},
               "short": {"type": "string", "pattern": "^(a|bbbbbb)$", "maxLength": 3}}}
            """##)
        let program = PatternProgram(try OutputPattern(jsonSchema: schema))
        let head = #"{"code": "AB1", "when": "2024-02-29T10:00:00Z", "#
        for prefix in [#"{"code": "#, #"{"code": "A"#, #"{"code": "AB1"#, #"{"code": "AB1", "when": "2024-02-2"#,
                       #"{"code": "AB1", "when": "2023-02-2"#, #"{"code": "AB1", "when": "2024-02-29T23:59:5"#,
                       #"{"code": "AB1", "when": "2024-02-29T23:59:59."#, head + #""n": "#, head + #""n": 1"#,
                       head + #""n": 12"#, head + #""n": -"#, head + #""n": 0"#, head + #""n": 7, "name": ""#,
                       head + #""n": 7, "name": "ab\"#, head + #""n": 7, "name": "日本語"#,
                       head + #""n": 7, "name": "abc", "any": "x"#, head + #""n": 7, "name": "abc", "any": "xé"#,
                       head + #""n": 7, "name": "abc", "any": "é\u00"#, head + #""n": 7, "name": "abc", "any": "é\u001f"#,
                       head + #""n": 7, "name": "abc", "any": "éex", "ns": [3"#,
                       head + #""n": 7, "name": "abc", "any": "éex", "ns": [], "short": ""#] {
            expectMaskMatches(after: prefix, from: PatternState(program), index: index, tokenizer: tokenizer, logits: logits)
        }
        func reads(_ text: String) -> Bool {
            var state = PatternState(program)
            return state.accept(Array(text.utf8)) && state.isComplete
        }
        let whole = head + #""n": 120, "name": "日本", "any": "--é\tx", "ns": [1, 20], "short": "a"}"#
        var state = PatternState(program)
        let past = state.accept(Array((head + #""n": 7, "name": "abc", "any": "éex", "ns": [], "short": "b"#).utf8))
        #expect(!past, "'b' begins only texts longer than maxLength")
        #expect(reads(whole))
        #expect(!reads(whole.replacingOccurrences(of: #"\t"#, with: #"\n"#)), "'.' takes no line break")
        for (from, to) in [("120", "121"), ("日本", "日"), ("日本", "日本語ab"), ("AB1", "Ab1"), ("29T", "29t"), ("[1, 20]", "[0]"),
                           ("--é", "--e"), ("10:00:00Z", "10:00:00"), ("\"n\": 120", "\"n\": -0")] {
            #expect(!reads(whole.replacingOccurrences(of: from, with: to)), "\(to)")
        }
    }

    /// `PatternState.maskKey`: two states inside a pattern's text with one key, reached through
    /// different texts before (other fields, strings, escapes), keep the same tokens; so a
    /// generation may keep the tokens it walked for a key. States elsewhere have no key.
    @Test func maskKeysDecideTheMask() throws {
        let tokenizer = try Tokenizer(directory: Paths.repository.appendingPathComponent("Models/tokenizer/qwen2.5"))
        let index = TokenBytesIndex(tokenizer: tokenizer, vocabularySize: tokenizer.vocabularySize)
        let schema = try JSONValue.parse(##"""
            {"type": "object", "properties": {"a": {"type": "string"}, "n": {"type": "integer"},
             "b": {"type": "string", "pattern": "^.*x$"}, "c": {"type": "array", "items": {"type": "integer"}}}}
            """##)
        let program = PatternProgram(try OutputPattern(jsonSchema: schema))
        func state(_ text: String) throws -> PatternState {
            var s = PatternState(program)
            let read = s.accept(Array(text.utf8))
            #expect(read, "\(text)")
            return s
        }
        for (one, other) in [(#"{"a": "p", "n": 1, "b": "q"#, #"{"a": "long \"text\" \u00e9", "n": -12345, "b": "qrs"#),
                             (#"{"a": "", "n": 0, "b": "x"#, #"{"a": "x", "n": 7, "b": "abcx"#)] {
            let (s, t) = (try state(one), try state(other))
            #expect(s.maskKey != nil && s.maskKey == t.maskKey, "\(one) / \(other)")
            #expect(index.kept(after: s, below: tokenizer.vocabularySize) == index.kept(after: t, below: tokenizer.vocabularySize))
        }
        #expect(try state(#"{"a": "p"#).maskKey == nil)
        #expect(try state(#"{"a": "p", "n": 1"#).maskKey == nil)
        #expect(try state(#"{"a": "p", "n": 1, "b": "q"#).maskKey != (try state(#"{"a": "p", "n": 1, "b": "x"#).maskKey))
    }

    /// Pydantic's shapes: `Optional[...]` as `anyOf` with null or a list of types, and nested
    /// models through `$ref` to `$defs` (here inside an `allOf` of one schema).
    @Test func schemaUnionsAndReferences() throws {
        let schema = try JSONValue.parse(##"""
            {"type": "object", "title": "Trip", "properties": {
               "name": {"type": "string"},
               "stops": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null},
               "score": {"type": ["number", "null"]},
               "home": {"allOf": [{"$ref": "#/$defs/Address"}], "description": "a $ref wrapped as older generators write it"},
               "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}},
             "required": ["name", "stops", "score", "home", "tags"], "additionalProperties": false,
             "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "integer"}},
                                   "required": ["city", "zip"], "additionalProperties": false}}}
            """##)
        let program = PatternProgram(try OutputPattern(jsonSchema: schema))
        func reads(_ text: String) -> Bool {
            var state = PatternState(program)
            return state.accept(Array(text.utf8)) && state.isComplete
        }
        let home = #""home": {"city": "Oslo", "zip": 150}"#
        #expect(reads(#"{"name": "a", "stops": 3, "score": 2.5, "# + home + #", "tags": ["x"]}"#))
        #expect(reads(#"{"name": "a", "stops": null, "score": null, "# + home + #", "tags": null}"#))
        #expect(reads(#"{"name": "a", "stops": -7, "score": 1e3, "# + home + #", "tags": []}"#))
        #expect(!reads(#"{"name": "a", "stops": 2.5, "score": null, "# + home + #", "tags": null}"#), "an integer or null")
        #expect(!reads(#"{"name": "a", "stops": "3", "score": null, "# + home + #", "tags": null}"#))
        #expect(!reads(#"{"name": "a", "stops": 3, "score": true, "# + home + #", "tags": null}"#), "a number or null")
        #expect(!reads(#"{"name": "a", "stops": 3, "score": 1, "home": {"city": "Oslo"}, "tags": null}"#), "the referenced model's fields")
        #expect(!reads(#"{"name": "a", "stops": 3, "score": 1, "# + home + #", "tags": {}}"#), "an array or null")
    }
}

