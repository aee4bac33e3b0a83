import Foundation
import Kernels
import Testing
@testable import Qwen

/// One decode step of several sequences in one batched run (`Session.runBatch`, what the
/// server's scheduler does) gives every sequence, bit for bit, the logits and KV caches of its own
/// run: the reference is each sequence run alone through the same graph.
@Suite struct BatchedDecodeTests {
    /// Nine sequences at different context lengths (different prompts, 3 to 19 tokens: the int16
    /// GEMV's passes of 8 rows and 1 with AVX-512 VNNI, of 2 and 1 with AVX2), then decode steps
    /// taken together: logits and caches equal the solo runs' bit for bit, in every
    /// form the fixtures have (float16 nodes take the multi-row int16 GEMV; the fp16 export's
    /// float16 matrices stack too, each row through the single-row GEMV over blocks of weight
    /// rows; float32 nodes run their single-row kernels row by row, bnb4 nodes too, all rows over
    /// each chunk of codes in turn; int16 forced on
    /// float32 nodes too; the int8 and uint8 exports' MatMulInteger runs once on the 9 rows, a
    /// panel of 8 and one, each with its own sequence's activation zero point, and the products
    /// meet each sequence's own scale in one stacked Mul).
    @Test(arguments: [
        ("model_q4f16.onnx", DecodeActivations.automatic), ("model_q4.onnx", .automatic), ("model_q4.onnx", .int16),
        ("model.onnx", .automatic), ("model_fp16.onnx", .automatic), ("model_int8.onnx", .automatic),
        ("model_uint8.onnx", .automatic), ("model_bnb4.onnx", .automatic),
    ])
    func batchedStepsEqualSoloSteps(_ file: String, _ decode: DecodeActivations) throws {
        let model = try QwenModel(directory: Fixture.untied.directory, options: LoadOptions(onnxFile: file, decodeActivations: decode))
        try expectBatchedStepsEqualSolo(model, "\(file) \(decode)")
    }

    /// The same with int8 activations (the multi-row int8 GEMV, here 9 sequences: passes of 8 rows
    /// and of 1 with AVX-512 VNNI, 4 and 1 with AVX2): onnxruntime-genai builder graphs
    /// (accuracy level 4: symmetric, and asymmetric whose zero points add their terms from the
    /// quantized rows' block sums; K = 200 of the MLP's down product is not whole blocks), and
    /// the optimum q4f16 and q4 files with `int8Activations: .always`.
    @Test(arguments: [("int4", nil), ("int4_asym", nil), ("int4_acc1", Int8Activations.always),
                      ("model_q4f16.onnx", .always), ("model_q4.onnx", .always)])
    func int8BatchedStepsEqualSoloSteps(_ form: String, _ int8: Int8Activations?) throws {
        let model = form.hasSuffix(".onnx")
            ? try QwenModel(directory: Fixture.untied.directory, options: LoadOptions(onnxFile: form, int8Activations: int8 ?? .accuracyLevel4))
            : try QwenModel(directory: Paths.fixtures.appendingPathComponent("tiny-qwen2-genai/\(form)"),
                            options: LoadOptions(int8Activations: int8 ?? .accuracyLevel4))
        try expectBatchedStepsEqualSolo(model, form)
    }

    /// Nine prompts: the 5-, 19- and 11-token ones, then prefixes of 3, 4, 6, 7, 9 and 10 tokens.
    private func expectBatchedStepsEqualSolo(_ model: QwenModel, _ label: String) throws {
        let ids = Fixture.untied.promptIds
        let prompts = [Array(ids.prefix(5)), ids, Array(ids.prefix(11))] + (0..<6).map { Array(ids.prefix(3 + $0 + $0 / 2)) }
        var solo = prompts.map { _ in model.makeCache() }, batch = solo
        var next = [Int]()
        for (i, prompt) in prompts.enumerated() {
            let logits = try model.decoder.forward(prompt, cache: &solo[i])
            _ = try model.decoder.forward(prompt, cache: &batch[i])
            next.append(Sampler.argmax(logits))
        }
        for step in 0..<4 {
            let batched = try model.decoder.forward(batch: next, caches: &batch)
            for i in prompts.indices {
                let alone = try model.decoder.forward([next[i]], cache: &solo[i])
                let same = alone.map(\.bitPattern) == batched[i].map(\.bitPattern)
                #expect(same, "\(label): sequence \(i), step \(step): logits differ")
                for (past, _) in model.decoder.interface.cache {
                    let a = solo[i].tensors[past]!.contiguous(), b = batch[i].tensors[past]!.contiguous()
                    #expect(a.shape == b.shape && a.floats() == b.floats(), "\(label): sequence \(i), step \(step): \(past) differs")
                }
                next[i] = Sampler.argmax(alone)
            }
        }
    }

    /// Generations stepped together (`Generation.step(_:)`), joining at different times, with
    /// greedy and seeded sampling, produce the ids and texts each produces alone.
    @Test func generationsSteppedTogetherEqualTheirSoloRuns() throws {
        let model = try Fixture.untied.model()
        let sampling = GenerateParameters(maxTokens: 12, doSample: true, temperature: 0.9, topK: 0, topP: 1, minP: 0,
                                          repetitionPenalty: 1, seed: 11, stopTokenIds: [])
        let prompts = [Array(Fixture.untied.promptIds.prefix(4)), Fixture.untied.promptIds, Array(Fixture.untied.promptIds.prefix(9))]
        let parameters = [greedyNoStop(12), sampling, greedyNoStop(7)]
        let alone = try prompts.indices.map { i -> GenerationResult in
            var cache = model.makeCache()
            return try model.generate(promptIds: prompts[i], parameters: parameters[i], cache: &cache)
        }
        var generations = [try Generation(model: model, promptIds: prompts[0], parameters: parameters[0])]
        var round = 0
        while generations.contains(where: { !$0.isFinished }) || generations.count < prompts.count {
            // One more sequence joins at rounds 2 and 5.
            if (round == 2 || round == 5) && generations.count < prompts.count {
                generations.append(try Generation(model: model, promptIds: prompts[generations.count], parameters: parameters[generations.count]))
            }
            for result in Generation.step(&generations) { _ = try result.get() }
            round += 1
        }
        for i in prompts.indices {
            #expect(generations[i].result.generatedTokenIds == alone[i].generatedTokenIds, "sequence \(i)")
            #expect(generations[i].result.text == alone[i].text)
        }
    }

    /// A long prompt run in chunks (`Generation.prefillChunk`, as the server does between decode
    /// steps) leaves the logits and KV caches of one run whole, bit for bit, in every fixture form
    /// that says so (`chunkedPrefillIsExact`: the 4-bit MatMulNBits forms, and since session 20
    /// the float16 one, whose many-row products left OpenBLAS for `qk_f16_gemm`), whatever chunk size is
    /// asked from the minimum of 3 up, and so do pieces of unequal sizes cut anywhere: the
    /// attention computes each position on its own. (Until session 18 its prefill form made one
    /// pair of BLAS products per block of 128 positions here, and chunks of 33 gave other last
    /// bits on Zen 4.) A generation prefilled that way produces the solo ids. The forms whose
    /// products of many rows are BLAS's or integer GEMMs' do not say so, rightly: float32
    /// (MatMul), bnb4 (MatMulBnb4 dequantized) and int8 (MatMulInteger) give other last bits in
    /// chunks of 16 or 33 (session 18, Zen 4), as float16 did through OpenBLAS until session 20.
    @Test(arguments: [("model_q4f16.onnx", true), ("model_q4.onnx", true), ("model_fp16.onnx", true), ("model_bnb4.onnx", false),
                      ("model.onnx", false), ("model_int8.onnx", false)])
    func chunkedPrefillEqualsOnePass(_ file: String, _ exactForm: Bool) throws {
        let model = try QwenModel(directory: Fixture.untied.directory, options: LoadOptions(onnxFile: file))
        // Below the SIMD level (QWEN_ISA=portable) MatMulNBits's many-row products are OpenBLAS's too.
        let exact = exactForm && PackedQ4Matrix.gemmRuns
        #expect(model.chunkedPrefillIsExact == exact)
        guard exact else { return }
        let base = Fixture.untied.promptIds
        let prompt = Array((0..<16).flatMap { _ in base }.prefix(250))
        var whole = model.makeCache()
        let expected = try model.decoder.forward(prompt, cache: &whole)
        for tokens in [1, 5, 16, 33, 128] {
            var generation = try Generation(model: model, promptIds: prompt, parameters: greedyNoStop(6))
            var boundaries = [0]
            while try generation.prefillChunk(tokens: tokens) { boundaries.append(generation.cache.count) }
            // Chunks of the size asked (3 at least) while the chunk and 3 more are left; step() runs the rest.
            let size = max(tokens, 3), rest = prompt.count - boundaries.last!
            #expect(zip(boundaries, boundaries.dropFirst()).allSatisfy { $1 - $0 == size } && rest >= 3 && rest < size + 3,
                    "chunks of \(tokens): \(boundaries)")
            try expectPiecesEqualOnePass(model, prompt, cutAt: boundaries, logits: expected, cache: whole, "\(file): chunks of \(tokens)")
            while !generation.isFinished { _ = try generation.step() }
            var cache = model.makeCache()
            let alone = try model.generate(promptIds: prompt, parameters: greedyNoStop(6), cache: &cache)
            #expect(generation.generatedIds == alone.generatedTokenIds)
        }
        try expectPiecesEqualOnePass(model, prompt, cutAt: [0, 3, 10, 57, 58 + 69, 200], logits: expected, cache: whole,
                                     "\(file): pieces of 3, 7, 47, 70, 73 and 50")
    }

    /// The real 0.5B model (q4f16, the server's default): a ~400-token prompt run in chunks of
    /// 3 (the minimum), 7, 16, 33 and 128 (the server's default) positions, and in pieces of
    /// unequal sizes, gives the logits and caches of one pass, bit for bit, through the kernels
    /// the real shapes take.
    @Test(.enabled(if: RealModelTests.enabled, "\(RealModelTests.skipReason ?? "")"))
    func realModelChunkedPrefillEqualsOnePass() throws {
        let model = try QwenModel(directory: Paths.realModel)
        #expect(model.chunkedPrefillIsExact == PackedQ4Matrix.gemmRuns)
        guard model.chunkedPrefillIsExact else { return }
        let prompt = try model.encode(prompt: String(repeating: "Explain how a hash map resolves collisions, with code. ", count: 30))
        #expect(prompt.count > 300)
        var whole = model.makeCache()
        let expected = try model.decoder.forward(prompt, cache: &whole)
        for tokens in [3, 7, 16, 33, 128] {
            var generation = try Generation(model: model, promptIds: prompt, parameters: greedyNoStop(1))
            var boundaries = [0]
            while try generation.prefillChunk(tokens: tokens) { boundaries.append(generation.cache.count) }
            #expect(boundaries.count > 2, "chunks of \(tokens): \(boundaries)")
            try expectPiecesEqualOnePass(model, prompt, cutAt: boundaries, logits: expected, cache: whole, "chunks of \(tokens)")
        }
        try expectPiecesEqualOnePass(model, prompt, cutAt: [0, 3, 17, 50, 131, 290], logits: expected, cache: whole,
                                     "pieces of 3, 14, 33, 81, 159 and the rest")
    }

    /// Runs `prompt` in pieces cut at `boundaries` (from 0; the last piece runs to the end) into
    /// an empty cache, and expects the last logits and every cache tensor of one pass (`logits`,
    /// `cache`), bit for bit. (Compared as Bools: a failed array equality would make the test
    /// library diff the arrays, for minutes at these sizes.)
    private func expectPiecesEqualOnePass(_ model: QwenModel, _ prompt: [Int], cutAt boundaries: [Int], logits expected: [Float],
                                          cache whole: KVCache, _ label: String) throws {
        var chunked = model.makeCache()
        var logits: [Float] = []
        for (a, b) in zip(boundaries, boundaries.dropFirst() + [prompt.count]) {
            logits = try model.decoder.forward(Array(prompt[a..<b]), cache: &chunked)
        }
        let sameLogits = logits.map(\.bitPattern) == expected.map(\.bitPattern)
        #expect(sameLogits, "\(label): logits differ from one pass")
        for (past, _) in model.decoder.interface.cache {
            let same = whole.tensors[past]!.contiguous().floats() == chunked.tensors[past]!.contiguous().floats()
            #expect(same, "\(label): \(past)")
        }
    }

    /// The real 0.5B model: four chat prompts decoded together (the first, ~90 tokens, prefilled in
    /// chunks) give the greedy ids of each alone.
    @Test(.enabled(if: RealModelTests.enabled, "\(RealModelTests.skipReason ?? "")"))
    func realModelBatchEqualsSolo() throws {
        let model = try QwenModel(directory: Paths.realModel)
        let questions = [String(repeating: "Write a Swift function that reverses a string, with tests. ", count: 6), "What is a closure?",
                         "Explain binary search in one sentence.", "Print hello world in C."]
        let prompts = try questions.map { try model.encode(prompt: $0) }
        let alone = try prompts.map { prompt -> [Int] in
            var cache = model.makeCache()
            return try model.generate(promptIds: prompt, parameters: greedyNoStop(24), cache: &cache).generatedTokenIds
        }
        var generations = try prompts.map { try Generation(model: model, promptIds: $0, parameters: greedyNoStop(24)) }
        // The first prompt in chunks of 3 (the minimum), as the server runs long ones.
        #expect(model.chunkedPrefillIsExact == PackedQ4Matrix.gemmRuns)
        var chunks = 0
        while model.chunkedPrefillIsExact, try generations[0].prefillChunk(tokens: 1) { chunks += 1 }
        #expect(chunks >= 1 || !model.chunkedPrefillIsExact)
        while generations.contains(where: { !$0.isFinished }) {
            for result in Generation.step(&generations) { _ = try result.get() }
        }
        #expect(generations.map(\.generatedIds) == alone)
    }
}
