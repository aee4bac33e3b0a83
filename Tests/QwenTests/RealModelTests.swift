import Foundation
import Runtime
import Testing
@testable import Qwen

/// The real default model, Models/qwen2.5-coder-0.5b-instruct (git-ignored; built by
/// scripts/build_default_model.sh), against its ONNX Runtime references (reference/, written by
/// scripts/ort_reference.py: 3 chat prompts, greedy up to 64 tokens stopping at eos, 1 thread,
/// ORT_DISABLE_ALL and ORT_ENABLE_ALL).
///
/// Our numerics follow ORT_DISABLE_ALL (every float16 op rounded), so the ids must equal that run;
/// the comparison with ORT_ENABLE_ALL is reported.
///
/// These tests are SKIPPED (reported by swift-testing with the reason) when the model or its
/// references are absent, and in debug builds, where 200 decode steps of the 0.5B model take
/// minutes: `scripts/test` (release) runs them. Set QWEN_REAL_MODEL_TESTS=1 to run them in a
/// debug build anyway, or QWEN_REAL_MODEL_TESTS=0 to skip them.
@Suite struct RealModelTests {
    static let directory = Paths.realModel
    static let referenceDirectory = directory.appendingPathComponent("reference")

    static let isReleaseBuild: Bool = {
        #if DEBUG
        return false
        #else
        return true
        #endif
    }()

    /// Why the tests cannot run here, or nil when they can.
    static let skipReason: String? = {
        let fm = FileManager.default
        let setting = ProcessInfo.processInfo.environment["QWEN_REAL_MODEL_TESTS"]
        if setting == "0" { return "SKIPPED: QWEN_REAL_MODEL_TESTS=0" }
        for file in ["onnx/model_q4f16.onnx", "onnx/model_q4f16.onnx_data", "tokenizer.json", "reference/manifest.json",
                     "reference/prompts.json", "reference/disable_all/greedy.json", "reference/enable_all/greedy.json"]
        where !fm.fileExists(atPath: directory.appendingPathComponent(file).path) {
            return "SKIPPED: the real model is absent (\(directory.path)/\(file) missing); build it with scripts/build_default_model.sh"
        }
        if !isReleaseBuild && setting != "1" {
            return "SKIPPED in a debug build (too slow); run scripts/test (release) or set QWEN_REAL_MODEL_TESTS=1"
        }
        return nil
    }()

    static let enabled = skipReason == nil

    struct Prompt: Decodable { let text: String; let ids: [Int]; let messages: [[String: String]] }
    struct Greedy: Decodable {
        let prompt: Int
        let ids: [Int]
        let stopped_at_eos: Bool
        let min_top2_margin: Double
        let robust_prefix_length: Int
        let top2_margins: [Double]
        let top5: [[[Double]]]
    }

    static func load<T: Decodable>(_ type: T.Type, _ path: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: referenceDirectory.appendingPathComponent(path)))
    }

    /// Printed on every run so that a skip is seen in the log, not only in the test list.
    /// Says whether the real-model tests run, and fails when they were meant to:
    /// `QWEN_REQUIRE_REAL_MODEL=1` (set by .ci/run, which provides the model) turns a model that
    /// stopped loading, or went missing, into a failure instead of a row of skips.
    @Test func realModelRunsWhenRequired() {
        if let reason = RealModelTests.skipReason {
            print("RealModelTests: \(reason)")
        } else {
            print("RealModelTests: running against \(RealModelTests.directory.path)")
        }
        if ProcessInfo.processInfo.environment["QWEN_REQUIRE_REAL_MODEL"] == "1" {
            #expect(RealModelTests.skipReason == nil, "QWEN_REQUIRE_REAL_MODEL=1, but: \(RealModelTests.skipReason ?? "")")
        }
    }

    @Test(.enabled(if: RealModelTests.enabled, Comment(rawValue: RealModelTests.skipReason ?? "")))
    func greedyIdsEqualONNXRuntime() throws {
        let fm = FileManager.default
        // The references must be newer than the model file they were made from.
        let modelDate = try fm.attributesOfItem(atPath: RealModelTests.directory.appendingPathComponent("onnx/model_q4f16.onnx_data").path)[.modificationDate] as? Date
        let referenceDate = try fm.attributesOfItem(atPath: RealModelTests.referenceDirectory.appendingPathComponent("manifest.json").path)[.modificationDate] as? Date
        #expect(modelDate != nil && referenceDate != nil && referenceDate! >= modelDate!,
                "reference/ is older than the model: rerun scripts/ort_reference.py")

        let prompts = try RealModelTests.load([Prompt].self, "prompts.json")
        let strict = try RealModelTests.load([Greedy].self, "disable_all/greedy.json")
        let fused = try RealModelTests.load([Greedy].self, "enable_all/greedy.json")
        #expect(prompts.count == 3 && strict.count == 3 && fused.count == 3)

        let model = try QwenModel(directory: RealModelTests.directory)
        #expect(model.directory.onnxURL.lastPathComponent == "model_q4f16.onnx")
        var lines = [String(format: "real model: loaded in %.2f s", model.loadSeconds)]
        for (k, prompt) in prompts.enumerated() {
            var cache = model.makeCache()
            let result = try model.generate(promptIds: prompt.ids, parameters: .greedy(maxTokens: 64), cache: &cache)
            let ours = result.generatedTokenIds
            func compare(_ ref: Greedy, _ level: String) -> (equal: Bool, line: String) {
                if ours == ref.ids {
                    return (true, String(format: "prompt %d vs ORT %@: %d ids identical (%@), min top-2 margin %.4f",
                                         k, level, ours.count, ref.stopped_at_eos ? "ended at eos" : "64 tokens", ref.min_top2_margin))
                }
                let i = zip(ours, ref.ids).prefix { $0 == $1 }.count
                var line = "prompt \(k) vs ORT \(level): FIRST DIVERGENCE at step \(i) of \(ref.ids.count) (ours \(ours.count) ids)"
                if i < ref.ids.count {
                    line += String(format: ", ORT top-2 margin there %.5f, robust prefix %d, ORT top-5 %@; ours %@",
                                   ref.top2_margins[i], ref.robust_prefix_length,
                                   ref.top5[i].map { "\(Int($0[0])):\($0[1])" }.joined(separator: " "),
                                   i < ours.count ? "\(ours[i])" : "stopped")
                }
                return (false, line)
            }
            let s = compare(strict[k], "ORT_DISABLE_ALL"), e = compare(fused[k], "ORT_ENABLE_ALL")
            lines += [s.line, e.line]
            lines.append(String(format: "prompt %d: %d prompt tokens, prefill %.1f tok/s, decode %.1f tok/s, stop %@",
                                k, prompt.ids.count, result.stats.prefillTokensPerSecond, result.stats.decodeTokensPerSecond,
                                result.stopReason.rawValue))
            #expect(s.equal, "\(s.line)")
            #expect(result.stopReason == (strict[k].stopped_at_eos ? .stopToken : .maxTokens))
            // Within the robust prefix (ORT's top-2 margins ≥ 0.05) the fused run must agree too.
            let robust = min(fused[k].robust_prefix_length, strict[k].robust_prefix_length)
            #expect(Array(ours.prefix(robust)) == Array(fused[k].ids.prefix(robust)), "\(e.line)")
        }
        print(lines.joined(separator: "\n"))
    }

    /// Parallel forced tool calls (OpenAI's `tool_choice` "required" with parallel calls) on the
    /// real model, greedy: asked for two cities' weather, the answer is whole blocks, each a call
    /// of the tool, and ends with the model's stop token, which the pattern lets through only
    /// after a whole block.
    @Test(.enabled(if: RealModelTests.enabled, Comment(rawValue: RealModelTests.skipReason ?? "")))
    func forcedParallelCallsEndAtAStopToken() throws {
        let model = try QwenModel(directory: RealModelTests.directory)
        let tool = try JSONValue.parse(#"{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#)
        let text = try model.tokenizer.applyChatTemplate(
            messages: [ChatMessage(role: "user", content: "What is the weather in Paris and in London?")], tools: [tool])
        var parameters = GenerateParameters.greedy(maxTokens: 160)
        parameters.outputPattern = .toolCalls(oneOf: ["get_weather"])
        var cache = model.makeCache()
        let result = try model.generate(promptIds: model.tokenizer.encode(text), parameters: parameters, cache: &cache)
        print("forced parallel calls: \(result.stopReason.rawValue): \(result.text)")
        #expect(result.stopReason == .stopToken, "\(result.text)")
        #expect(result.text.hasSuffix("}\n</tool_call>"), "\(result.text)")
        var cities: [String] = []
        for piece in result.text.components(separatedBy: "\n</tool_call>").dropLast() {
            let body = piece.drop { $0 == "\n" }.dropFirst("<tool_call>\n".count)
            let call = try JSONValue.parse(String(body))
            #expect(call["name"]?.stringValue == "get_weather", "\(body)")
            cities += [call["arguments"]?["city"]?.stringValue].compactMap { $0 }
        }
        #expect(!cities.isEmpty, "\(result.text)")
    }

    /// Prompt 0's last-position prefill logits against ORT's (reported; loosely bounded) and the
    /// chat template's ids against HF's (the prompts.json ids come from transformers).
    @Test(.enabled(if: RealModelTests.enabled, Comment(rawValue: RealModelTests.skipReason ?? "")))
    func prefillLogitsAndPromptIdsMatch() throws {
        let prompts = try RealModelTests.load([Prompt].self, "prompts.json")
        let model = try QwenModel(directory: RealModelTests.directory)
        for (k, p) in prompts.enumerated() {
            let messages = p.messages.map { ChatMessage(role: $0["role"] ?? "", content: $0["content"] ?? "") }
            #expect(try model.encode(messages: messages) == p.ids, "prompt \(k): chat template + tokenizer vs HF")
        }
        var cache = model.makeCache()
        let ours = try model.decoder.forward(prompts[0].ids, cache: &cache)
        var lines: [String] = []
        for level in ["disable_all", "enable_all"] {
            let ref = try NumPy.read(RealModelTests.referenceDirectory.appendingPathComponent("\(level)/prefill_logits.npy").path)
            let last = ref.lastFloats(ours.count)
            let d = maxAbsDiff(ours, last)
            lines.append(String(format: "real model prompt 0 prefill last logits: max|Δ| vs ORT %@ %.4g (max |logit| %.3g)",
                                level, d, last.map(abs).max() ?? 0))
            #expect(Sampler.argmax(ours) == Sampler.argmax(last))
            // Against ORT_DISABLE_ALL: a few float16 ulps (0.0156 at |logit| 16–32; observed 0.0156
            // on 2026-11-26). ORT_ENABLE_ALL's fused float32 subgraphs differ more (observed 0.133);
            // bounded loosely, as a real bug is off by whole units (it was 3.7 before the float16 fix).
            #expect(d <= (level == "disable_all" ? 0.05 : 0.5), "prefill logits vs ORT \(level): \(d)")
        }
        print(lines.joined(separator: "\n"))
    }
}
