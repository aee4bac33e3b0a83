import Foundation
import Testing
@testable import Runtime

/// onnxruntime-genai model-builder graphs of a tiny Qwen2 (Models/fixtures/tiny-qwen2-genai,
/// made by scripts/make_genai_fixtures.py: GroupQueryAttention with rotary inside,
/// SkipSimplifiedLayerNormalization, MatMulNBits at accuracy_level 4, GatherBlockQuantized tied
/// embeddings; the CPU fp16 form with RotaryEmbedding + MultiHeadAttention; the CUDA forms run on
/// the CPU) fed as onnxruntime-genai feeds them (no position_ids unless the graph has them), and
/// compared with ONNX Runtime 1.31.1 on the same feeds: prefill, 16 teacher-forced decode steps
/// through the growing cache, and greedy ids equal to ORT's and to onnxruntime-genai's own
/// Generator's.
@Suite struct GenAIFixtureTests {
    static let root = FixtureGraphTests.root.appendingPathComponent("tiny-qwen2-genai")

    struct Variant: CustomStringConvertible, Sendable {
        let name: String
        /// Max |Δlogit| against ORT_DISABLE_ALL.
        let tolerance: Float
        var description: String { "tiny-qwen2-genai/\(name)" }
    }

    static let variants: [Variant] = [
        // accuracy_level 4: int8 activations per block of 32, quantized as ORT quantizes them.
        Variant(name: "int4", tolerance: 0.03),
        Variant(name: "int4_unshared", tolerance: 0.03),
        Variant(name: "int4_asym", tolerance: 0.03),
        Variant(name: "int4_acc1", tolerance: 1e-4),
        Variant(name: "int8", tolerance: 1e-4),
        Variant(name: "fp32", tolerance: 1e-4),
        // float16 logits (graph outputs in float16): one ulp is 0.0156 between 16 and 32, and
        // our float32 sums round to the other side of a float16 boundary now and then.
        Variant(name: "fp16", tolerance: 0.05),
        // Its fp16 activations as well: 0.047 here, 0.051 without a SIMD level (QWEN_ISA=portable,
        // scalar exponentials and sums), about 3 float16 ulps at the logits' magnitude.
        Variant(name: "cuda_int4", tolerance: 0.0625),
        Variant(name: "cuda_fp16", tolerance: 0.05),
    ]

    static func npy(_ v: Variant, _ path: String) throws -> Tensor {
        try NumPy.read(root.appendingPathComponent("\(v.name)/reference/\(path)").path)
    }

    /// onnxruntime-genai's feeds for `tokens` after `start` cached positions: only the inputs
    /// the graph declares (its builder graphs have no position_ids, except the CPU fp16 one).
    static func feeds(_ session: Session, tokens: [Int64], start: Int, presents: [String: Tensor]) -> [String: Tensor] {
        let names = Set(session.inputs.map(\.name))
        var feeds: [String: Tensor] = ["input_ids": Tensor(int64s: tokens, shape: [1, tokens.count])]
        feeds["attention_mask"] = Tensor(int64s: [Int64](repeating: 1, count: start + tokens.count), shape: [1, start + tokens.count])
        if names.contains("position_ids") {
            feeds["position_ids"] = Tensor(int64s: (0..<tokens.count).map { Int64(start + $0) }, shape: [1, tokens.count])
        }
        for name in names where name.hasPrefix("past_key_values.") {
            feeds[name] = presents[name.replacingOccurrences(of: "past_key_values.", with: "present.")]
        }
        return feeds
    }

    /// Each variant with its weights repacked (the SIMD kernels) and as in the file (what a CPU
    /// below the SIMD level runs: at accuracy level 4, `BlockQuantizedMatrix.int8Products`).
    @Test(arguments: variants, [true, false])
    func matchesONNXRuntimeAndGenAI(_ v: Variant, prepacked: Bool) throws {
        var options = SessionOptions()
        options.prepackWeights = prepacked
        let session = try Session(path: GenAIFixtureTests.root.appendingPathComponent("\(v.name)/model.onnx").path, options: options)
        var feeds: [String: Tensor] = [:]
        for spec in session.inputs {
            feeds[spec.name] = try GenAIFixtureTests.npy(v, "feeds/prefill/\(spec.name).npy")
        }
        let prompt = feeds["input_ids"]!.int64s()
        let prefill = try session.run(feeds)
        let vocab = prefill["logits"]!.shape.last!
        var report: [String] = []
        func compare(_ ours: Tensor, _ file: String, _ what: String) throws {
            let strict = try GenAIFixtureTests.npy(v, "disable_all/\(file)"), fused = try GenAIFixtureTests.npy(v, "enable_all/\(file)")
            #expect(ours.shape == strict.shape, "\(v) \(what): shape \(ours.shape) vs \(strict.shape)")
            let d = maxAbsDiff(ours.floats(), strict.floats()), dFused = maxAbsDiff(ours.floats(), fused.floats())
            report.append(String(format: "%@%@ %@: max|Δ| vs ORT_DISABLE_ALL %.3g, vs ORT_ENABLE_ALL %.3g", v.description,
                                 prepacked ? "" : " (file layout)", what, d, dFused))
            #expect(d <= v.tolerance, "\(v) \(what): max |Δ| \(d) vs ORT_DISABLE_ALL > \(v.tolerance)")
            #expect(dFused <= max(v.tolerance, 0.5), "\(v) \(what): max |Δ| \(dFused) vs ORT_ENABLE_ALL")
        }
        try compare(prefill["logits"]!, "prefill_logits.npy", "prefill logits")
        try compare(prefill["present.0.key"]!, "prefill_present.0.key.npy", "prefill present.0.key")

        let forced = try GenAIFixtureTests.npy(v, "feeds/decode_input_ids.npy").int64s()
        var state = prefill
        var stepLogits: [Float] = []
        for (i, id) in forced.enumerated() {
            state = try session.run(GenAIFixtureTests.feeds(session, tokens: [id], start: prompt.count + i, presents: state))
            stepLogits += state["logits"]!.floats()
        }
        try compare(Tensor(stepLogits, shape: [forced.count, vocab]), "decode_logits.npy", "decode logits (16 steps)")
        try compare(state["present.1.value"]!, "decode_last_present.1.value.npy", "last present.1.value")

        // Greedy, with the cache growing in place between steps (as the library runs it).
        state = try session.run(feeds, keepingCacheViews: true)
        var ids: [Int64] = []
        for i in 0..<16 {
            let last = state["logits"]!.lastFloats(vocab)
            let next = Int64(last.indices.max { last[$0] < last[$1] }!)
            ids.append(next)
            if i < 15 {
                state = try session.run(GenAIFixtureTests.feeds(session, tokens: [next], start: prompt.count + i, presents: state),
                                        keepingCacheViews: true)
            }
        }
        #expect(ids == (try GenAIFixtureTests.npy(v, "disable_all/greedy_ids.npy").int64s()), "\(v): greedy ids vs ORT")
        // onnxruntime-genai's Generator's new ids (it stops before an eos id: a prefix of ours).
        let genAI = try GenAIFixtureTests.npy(v, "genai_greedy_ids.npy").int64s()
        #expect(!genAI.isEmpty && Array(ids.prefix(genAI.count)) == genAI, "\(v): greedy ids vs onnxruntime-genai's Generator")
        print(report.joined(separator: "\n"))
    }
}
