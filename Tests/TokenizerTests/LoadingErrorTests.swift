import Foundation
import Testing

@testable import Tokenizer

/// Bad input gives a typed error that names the file and what is wrong; nothing crashes.
@Suite struct LoadingErrorTests {
    /// A small valid tokenizer.json (byte alphabet, two merges) to break in various ways.
    static func validJSON(
        normalizer: String = #"{"type": "NFC"}"#,
        preTokenizer: String = #"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}"#,
        decoder: String = #"{"type": "ByteLevel"}"#,
        model: [String: String] = [:], merges: String = #"["h e", ["he", "l"]]"#, addedTokens: String = "[]",
        extraVocab: String = #", "he": 256, "hel": 257"#
    ) -> String {
        let alphabet = (0..<256).map { b -> String in
            let s = String(ByteLevel.byteToScalar[b])
            let escaped = s == "\"" ? "\\\"" : s == "\\" ? "\\\\" : s
            return "\"\(escaped)\": \(b)"
        }.joined(separator: ", ")
        var modelFields = ["\"type\": \"BPE\"", "\"vocab\": {\(alphabet)\(extraVocab)}", "\"merges\": \(merges)"]
        for (k, v) in model.sorted(by: { $0.key < $1.key }) { modelFields.append("\"\(k)\": \(v)") }
        return """
            {"version": "1.0", "truncation": null, "padding": null, "added_tokens": \(addedTokens),
             "normalizer": \(normalizer), "pre_tokenizer": \(preTokenizer), "post_processor": null,
             "decoder": \(decoder), "model": {\(modelFields.joined(separator: ", "))}}
            """
    }

    func load(_ json: String) throws -> Tokenizer {
        try Tokenizer(tokenizerJSON: Array(json.utf8), tokenizerSource: "test/tokenizer.json")
    }

    func error(_ json: String) -> TokenizerError? {
        do {
            _ = try load(json)
            return nil
        } catch let e as TokenizerError {
            return e
        } catch {
            return nil
        }
    }

    @Test func theValidBaseLoadsAndMerges() throws {
        let tok = try load(Self.validJSON())
        // Hand-computed: "h e" then "he l" merge; "l" and "o" stay bytes (ids = byte values here).
        #expect(tok.encode("hello") == [257, 108, 111])
        #expect(tok.decode(tok.encode("hello wörld")) == "hello wörld")
    }

    @Test func unsupportedConfigurationsAreNamed() {
        #expect(error(Self.validJSON(normalizer: #"{"type": "Lowercase"}"#))
            == .unsupported(file: "test/tokenizer.json", path: "normalizer", feature: "normalizer type 'Lowercase'"))
        #expect(error(Self.validJSON(preTokenizer: #"{"type": "Whitespace"}"#))
            == .unsupported(file: "test/tokenizer.json", path: "pre_tokenizer", feature: "pre-tokenizer type 'Whitespace'"))
        #expect(error(Self.validJSON(preTokenizer: #"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated"}, {"type": "ByteLevel", "use_regex": false}]}"#))
            == .unsupported(file: "test/tokenizer.json", path: "pre_tokenizer.pretokenizers[0].pattern", feature: "split regex \\s+"))
        #expect(error(Self.validJSON(preTokenizer: #"{"type": "Split", "pattern": {"Regex": "x"}, "behavior": "Isolated"}"#)) != nil)
        #expect(error(Self.validJSON().replacingOccurrences(of: #""version": "1.0""#, with: #""version": "2.0""#))
            == .unsupported(file: "test/tokenizer.json", path: "version", feature: "tokenizer.json version '2.0' (expected '1.0')"))
        #expect(error(Self.validJSON(decoder: #"{"type": "WordPiece"}"#))
            == .unsupported(file: "test/tokenizer.json", path: "decoder", feature: "decoder type 'WordPiece'"))
        #expect(error(Self.validJSON(model: ["byte_fallback": "true"]))
            == .unsupported(file: "test/tokenizer.json", path: "model.byte_fallback", feature: "byte_fallback true"))
        #expect(error(Self.validJSON(model: ["unk_token": "\"<unk>\""]))
            == .unsupported(file: "test/tokenizer.json", path: "model.unk_token", feature: "BPE unk_token (expected null)"))
        #expect(error(Self.validJSON(model: ["continuing_subword_prefix": "\"##\""])) != nil)
        #expect(error(#"{"model": {"type": "WordPiece", "vocab": {}}, "decoder": {"type": "ByteLevel"}, "pre_tokenizer": {"type": "ByteLevel"}}"#)
            == .unsupported(file: "test/tokenizer.json", path: "model.type", feature: "model type 'WordPiece'"))
    }

    @Test func inconsistentModelsAreRejected() {
        #expect(error(Self.validJSON(merges: #"["h z9"]"#))
            == .invalidValue(file: "test/tokenizer.json", path: "model.merges[0]", message: "token 'z9' is not in the vocabulary"))
        #expect(error(Self.validJSON(merges: #"["l l"]"#))
            == .invalidValue(file: "test/tokenizer.json", path: "model.merges[0]", message: "merged token 'll' is not in the vocabulary"))
        #expect(error(Self.validJSON(merges: #"["hel"]"#))
            == .invalidValue(file: "test/tokenizer.json", path: "model.merges[0]", message: "expected two tokens separated by a space"))
        #expect(error(Self.validJSON(merges: #"[["h", "e", "l"]]"#))
            == .invalidValue(file: "test/tokenizer.json", path: "model.merges[0]", message: "expected a pair of tokens, found 3"))
        #expect(error(Self.validJSON(extraVocab: #", "he": -1"#)) != nil)
        #expect(error(Self.validJSON(extraVocab: #", "he": 256, "hel": 2000000000"#))
            == .invalidValue(file: "test/tokenizer.json", path: "model.vocab", message: "token id 2000000000 is out of range for a vocabulary of 258 tokens"))
        #expect(error(#"{"version": "1.0"}"#) == .missingField(file: "test/tokenizer.json", path: "model"))
        #expect(error(Self.validJSON(addedTokens: #"[{"id": 300}]"#))
            == .missingField(file: "test/tokenizer.json", path: "added_tokens[0].content"))
    }

    @Test func malformedFilesGiveJSONErrors() {
        let valid = Self.validJSON()
        for bad in [String(valid.dropLast(10)), valid + " x", "", "{", #"{"model": {"vocab": {"a": 1,}}}"#, #"{"a": "\q"}"#, #"{"a": tru}"#,
                    #"{"a": "\ud800"}"#, #"{"a": 01}"#, "{\"x\": " + String(repeating: "[", count: 10_000)] {
            guard case .invalidJSON(let file, _, _)? = error(bad) else {
                Issue.record("no invalidJSON error for \(bad.prefix(40))")
                continue
            }
            #expect(file == "test/tokenizer.json")
        }
        // Invalid UTF-8 inside a string.
        var bytes = Array(#"{"model": {"vocab": {"a"#.utf8)
        bytes += [0xC3, 0x28]
        bytes += Array(#"": 0}}}"#.utf8)
        do {
            _ = try Tokenizer(tokenizerJSON: bytes, tokenizerSource: "bad.json")
            Issue.record("invalid UTF-8 accepted")
        } catch let e as TokenizerError {
            #expect(e == .invalidJSON(file: "bad.json", offset: 23, message: "invalid UTF-8 in string"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func missingFilesAreNamed() {
        let dir = URL(fileURLWithPath: "/nonexistent-model-dir")
        #expect(throws: TokenizerError.fileNotFound(path: "/nonexistent-model-dir/tokenizer.json")) {
            try Tokenizer(directory: dir)
        }
    }

    @Test func badConfigIsNamed() throws {
        let json = Array(Self.validJSON().utf8)
        #expect(throws: TokenizerError.wrongType(file: "cfg.json", path: "eos_token", expected: "a string or a token object", found: "number")) {
            try Tokenizer(tokenizerJSON: json, tokenizerConfigJSON: Array(#"{"eos_token": 5}"#.utf8), configSource: "cfg.json")
        }
        #expect(throws: ChatTemplateError.self) {
            try Tokenizer(tokenizerJSON: json, tokenizerConfigJSON: Array(#"{"chat_template": "{% if %}"}"#.utf8))
        }
        let tok = try Tokenizer(tokenizerJSON: json, tokenizerConfigJSON: Array(#"{"eos_token": {"content": "hel", "__type": "AddedToken"}}"#.utf8))
        #expect(tok.eosTokenID == 257)
    }

    @Test func errorDescriptionsNameTheFile() {
        let e = TokenizerError.unsupported(file: "m/tokenizer.json", path: "normalizer", feature: "normalizer type 'Lowercase'")
        #expect(e.description == "m/tokenizer.json: unsupported normalizer type 'Lowercase' (at 'normalizer')")
        #expect(TokenizerError.invalidJSON(file: "x.json", offset: 7, message: "boom").description == "x.json: invalid JSON at byte 7: boom")
    }
}
