import Foundation
import Testing

@testable import Tokenizer

/// Replays the seeds, the corpus and every crash input kept for the tokenizer libFuzzer targets
/// (Fuzz/{seeds,corpus,crashes}/{tokenizer-json,pretokenizer,jinja}) through the targets' own
/// entries (`TokenizerFuzzEntry`): each input must be accepted or refused with a
/// `TokenizerError`/`ChatTemplateError`, never trap or break the entry's invariants.
@Suite struct FuzzCorpusTests {
    static let fuzzDirectory = TestData.repositoryRoot.appendingPathComponent("Fuzz")

    static func inputs(_ target: String) -> (seeds: Int, files: [URL]) {
        var seeds = 0
        var files: [URL] = []
        for kind in ["seeds", "corpus", "crashes"] {
            let url = fuzzDirectory.appendingPathComponent("\(kind)/\(target)")
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [])
                .filter { !$0.hasPrefix(".") && $0 != "README.md" }.sorted()
            if kind == "seeds" { seeds = names.count }
            files += names.map { url.appendingPathComponent($0) }
        }
        return (seeds, files)
    }

    /// Runs `entry` on every input of `target`; returns (accepted, refused).
    func replay(_ target: String, minimumSeeds: Int, _ entry: (UnsafeRawBufferPointer) throws -> String) throws -> (Int, Int) {
        let (seeds, files) = Self.inputs(target)
        #expect(seeds >= minimumSeeds, "the committed seeds of \(target) are missing")
        var accepted = 0, refused = 0
        for file in files {
            let data = try Data(contentsOf: file)
            do {
                _ = try data.withUnsafeBytes { try entry($0) }
                accepted += 1
            } catch where TokenizerFuzzEntry.isExpected(error) {
                #expect(!"\(error)".isEmpty)
                refused += 1
            } catch {
                Issue.record("\(target)/\(file.lastPathComponent): \(type(of: error)): \(error)")
            }
        }
        return (accepted, refused)
    }

    @Test func tokenizerJSONInputsReplayCleanly() throws {
        let (accepted, refused) = try replay("tokenizer-json", minimumSeeds: 5, TokenizerFuzzEntry.tokenizerJSON)
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused)")
    }

    @Test func preTokenizerInputsReplayCleanly() throws {
        let qwen = try TestData.qwen()
        let (accepted, refused) = try replay("pretokenizer", minimumSeeds: 50) { try TokenizerFuzzEntry.preTokenize($0, tokenizer: qwen) }
        #expect(accepted > 0 && refused == 0, "accepted \(accepted), refused \(refused) (text is never refused)")
    }

    @Test func chatTemplateInputsReplayCleanly() throws {
        let (accepted, refused) = try replay("jinja", minimumSeeds: 50, TokenizerFuzzEntry.chatTemplate)
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused)")
    }

    /// A broken invariant is a finding, not one of the refusals the replay accepts.
    @Test func invariantViolationsAreNotTypedRefusals() {
        #expect(!TokenizerFuzzEntry.isExpected(FuzzInvariantViolation("x")))
        #expect(TokenizerFuzzEntry.isExpected(ChatTemplateError.noTemplate))
        #expect(TokenizerFuzzEntry.isExpected(TokenizerError.fileNotFound(path: "x")))
    }
}
