import Foundation
import Testing

@testable import Tokenizer

/// The other supported configurations, on small vocab-prefix tokenizers
/// (Data/variants, written by scripts/tokenizer_reference.py, ids from HF tokenizers 0.22.2):
/// GPT-2 `ByteLevel(use_regex: true, add_prefix_space: true)` with added tokens using `lstrip`,
/// `rstrip` and `single_word`; and a cl100k-style `Split` (`\p{N}{1,3}`) with `ignore_merges`,
/// merges as pairs, NFC in a `Sequence`, and a normalized added token.
@Suite struct VariantTests {
    @Test(arguments: ["gpt2-bytelevel-regex", "cl100k-split-ignore-merges"])
    func encodeMatchesHuggingFace(_ name: String) throws {
        let directory = TestData.directory.appendingPathComponent("variants/\(name)")
        let tok = try Tokenizer(directory: directory)
        let rows = try TestData.jsonLines("variants/\(name).jsonl")
        #expect(rows.count >= 600)
        var failures: [String] = []
        for row in rows {
            let text = row["text"] as! String
            let expected = TestData.ints(row["ids"])
            let ids = tok.encode(text)
            if ids != expected { failures.append("\"\(visible(text))\"\n  got      \(ids)\n  expected \(expected)") }
        }
        #expect(failures.isEmpty, "\(failures.count) differ; first:\n\(failures.prefix(5).joined(separator: "\n"))")
    }

    /// The tiny fixture model's tokenizer (Models/fixtures/tiny-qwen2): a Qwen2.5 vocabulary
    /// prefix with three added tokens; ids from HF tokenizers (Data/fixture_tiny-qwen2.jsonl).
    @Test func tinyFixtureTokenizerMatchesHuggingFace() throws {
        let directory = TestData.repositoryRoot.appendingPathComponent("Models/fixtures/tiny-qwen2")
        let tok = try Tokenizer(directory: directory)
        let rows = try TestData.jsonLines("fixture_tiny-qwen2.jsonl")
        #expect(rows.count >= 300)
        for row in rows {
            let text = row["text"] as! String
            #expect(tok.encode(text) == TestData.ints(row["ids"]), "\"\(visible(text))\"")
        }
        // Its chat template and special tokens load too.
        #expect(tok.eosTokenID == tok.tokenID("<|im_end|>"))
        let prompt = try tok.applyChatTemplate(messages: [ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true)
        #expect(prompt.hasSuffix("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"))
    }
}
