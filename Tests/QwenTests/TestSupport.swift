import Foundation
import Runtime
import Testing
@testable import Qwen

/// Paths and reference data shared by the Qwen library tests.
enum Paths {
    static let repository = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("../..").standardized
    static let fixtures = repository.appendingPathComponent("Models/fixtures")
    static let data = repository.appendingPathComponent("Tests/QwenTests/Data")
    static let realModel = repository.appendingPathComponent("Models/qwen2.5-coder-0.5b-instruct")
}

/// One of the committed tiny Qwen2 fixtures (Models/fixtures, made by scripts/make_fixtures.py)
/// with the ONNX Runtime 1.31.1 references recorded in its manifest.json and reference/ folder.
struct Fixture: Sendable {
    let name: String
    let directory: URL
    /// The prompt as rendered text (already in chat form) and its ids from HF tokenizers.
    let promptText: String
    let promptIds: [Int]
    /// The ids fed one by one after the prompt for the teacher-forced decode references.
    let decodeInputIds: [Int]
    let vocabularySize: Int
    let maxPositions: Int

    static let untied = try! Fixture("tiny-qwen2")
    static let tied = try! Fixture("tiny-qwen2-tied")

    init(_ name: String) throws {
        self.name = name
        directory = Paths.fixtures.appendingPathComponent(name)
        let data = try Data(contentsOf: directory.appendingPathComponent("manifest.json"))
        guard let manifest = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let reference = manifest["reference"] as? [String: Any],
              let text = reference["prompt_text"] as? String,
              let prompt = reference["prompt_ids"] as? [Int],
              let decode = reference["decode_input_ids"] as? [Int],
              let dims = manifest["dims"] as? [String: Any],
              let vocab = dims["vocab_size"] as? Int,
              let maxPositions = dims["max_position_embeddings"] as? Int
        else { throw FixtureError.malformed("\(name)/manifest.json") }
        promptText = text
        promptIds = prompt
        decodeInputIds = decode
        vocabularySize = vocab
        self.maxPositions = maxPositions
    }

    func model(_ onnxFile: String? = nil) throws -> QwenModel {
        try QwenModel(directory: directory, options: LoadOptions(onnxFile: onnxFile))
    }

    func reference(_ path: String) throws -> Tensor {
        try NumPy.read(directory.appendingPathComponent("reference/\(path)").path)
    }

    /// ONNX Runtime's 16 greedy ids (argmax after prefill, no eos stop) for a variant and level.
    func greedyIds(_ variant: String, level: String = "disable_all") throws -> [Int] {
        try reference("\(variant)/\(level)/greedy_ids.npy").int64s().map(Int.init)
    }
}

enum FixtureError: Error, CustomStringConvertible {
    case malformed(String)
    case missing(String)
    var description: String {
        switch self {
        case let .malformed(what): "malformed reference file \(what)"
        case let .missing(what): "missing \(what)"
        }
    }
}

/// A graph file of a fixture and the tolerance on logits against ORT_DISABLE_ALL, as in
/// Tests/RuntimeTests/FixtureGraphTests.swift (float32 graphs: summation order only; float16
/// graphs: a few float16 ulps of logits up to ~10).
struct Variant: CustomStringConvertible, Sendable {
    let fixture: Fixture
    /// The reference folder name (reference/<name>/...).
    let name: String
    /// Path relative to the model directory (or inside onnx/).
    let file: String
    let tolerance: Float
    var description: String { "\(fixture.name)/\(name)" }

    static let all: [Variant] = [Fixture.untied, Fixture.tied].flatMap { f in [
        Variant(fixture: f, name: "fp32", file: "model.onnx", tolerance: 1e-4),
        Variant(fixture: f, name: "q4", file: "model_q4.onnx", tolerance: 1e-4),
        Variant(fixture: f, name: "q4f16", file: "model_q4f16.onnx", tolerance: 0.05),
    ] } + [
        Variant(fixture: .untied, name: "opset14_q4f16", file: "onnx14/model_q4f16.onnx", tolerance: 0.05),
    ]
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in a.indices { m = max(m, abs(a[i] - b[i])) }
    return m
}

/// Greedy parameters that run all `maxTokens` steps (the fixtures' references do not stop at eos).
func greedyNoStop(_ maxTokens: Int) -> GenerateParameters {
    var p = GenerateParameters.greedy(maxTokens: maxTokens)
    p.stopTokenIds = []
    return p
}

extension QwenModel {
    /// Collects a stream: the token events in order and the final result.
    func collect(_ stream: GenerationStream) async throws -> (tokens: [(id: Int, text: String)], result: GenerationResult?, eventsAfterFinished: Int) {
        var tokens: [(id: Int, text: String)] = []
        var result: GenerationResult?
        var after = 0
        for try await event in stream {
            switch event {
            case let .token(id, text):
                if result != nil { after += 1 }
                tokens.append((id, text))
            case let .finished(r):
                if result != nil { after += 1 }
                result = r
            }
        }
        return (tokens, result, after)
    }

    /// Waits (up to `timeout` seconds) until no stream generation runs; returns the activity.
    func waitForStreamsToEnd(timeout: Double = 30) async throws -> StreamActivity.Snapshot {
        let deadline = Date().addingTimeInterval(timeout)
        while streamActivity.snapshot.running > 0 && Date() < deadline {
            try await Task.sleep(nanoseconds: 2_000_000)
        }
        return streamActivity.snapshot
    }
}
