import Foundation
import Testing
@testable import ONNX

/// Replays the seeds, the corpus and every crash input kept for the `onnx` libFuzzer target
/// (Fuzz/seeds/onnx, Fuzz/corpus/onnx, Fuzz/crashes/onnx) through the target's own entry (`ONNXFuzzEntry.run`):
/// each input must be accepted or refused with an `ONNXError`, never trap.
@Suite struct FuzzCorpusTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("../../Fuzz").standardized

    static func files(_ folder: String) -> [URL] {
        let url = fuzzDirectory.appendingPathComponent(folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.filter { !$0.hasPrefix(".") && $0 != "README.md" }.sorted().map { url.appendingPathComponent($0) }
    }

    @Test func corpusAndCrashesReplayCleanly() throws {
        let seeds = Self.files("seeds/onnx")
        #expect(seeds.count >= 10, "the committed seeds are missing")
        var accepted = 0, refused = 0
        for file in seeds + Self.files("corpus/onnx") + Self.files("crashes/onnx") {
            let data = try Data(contentsOf: file)
            do {
                _ = try data.withUnsafeBytes { try ONNXFuzzEntry.run($0) }
                accepted += 1
            } catch where ONNXFuzzEntry.isExpected(error) {
                #expect(!"\(error)".isEmpty)
                refused += 1
            } catch {
                Issue.record("\(file.lastPathComponent): not an ONNXError: \(type(of: error)) \(error)")
            }
        }
        // The corpus reaches both outcomes (valid seeds load; mutated ones are refused).
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused)")
    }

    /// The entry's scratch folder is what the seeds expect: external data inside it loads, a
    /// symlink out of it, `..` and absolute paths are refused.
    @Test func seedsExerciseTheExternalDataChecks() throws {
        func outcome(_ name: String) throws -> Result<String, ONNXError> {
            let data = try Data(contentsOf: Self.fuzzDirectory.appendingPathComponent("seeds/onnx/\(name)"))
            return Result { () throws(ONNXError) -> String in
                do { return try data.withUnsafeBytes { try ONNXFuzzEntry.run($0) } } catch let e as ONNXError { throw e } catch { fatalError("\(error)") }
            }
        }
        if case .failure(let e) = try outcome("external-weights.onnx") { Issue.record("external-weights.onnx refused: \(e)") }
        if case .failure(let e) = try outcome("external-sub.onnx") { Issue.record("external-sub.onnx refused: \(e)") }
        for name in ["external-escape.onnx", "external-dotdot.onnx", "external-absolute.onnx", "external-past-end.onnx"] {
            guard case .failure(.invalidExternalData) = try outcome(name) else {
                Issue.record("\(name) was not refused as invalid external data")
                continue
            }
        }
    }
}
