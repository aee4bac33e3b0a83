import Foundation
import Testing
@testable import Qwen

/// One decode step of several sequences in one batched run (`Session.runBatch`, what the
/// server's scheduler does) gives every sequence, bit for bit, the logits and KV caches of its own
/// run: the reference is each sequence run alone through the same graph.
@Suite struct BatchedDecodeTests {
    /// Three sequences at different context lengths (different prompts, 5 to 19 tokens), then
    /// decode steps taken together: logits and caches equal the solo runs' bit for bit, in every
    /// form the fixtures have (float16 nodes take the multi-row int16 GEMV; float32, int8 and
    /// bnb4 nodes run their single-row kernels row by row; int16 forced on float32 nodes too).
    @Test(arguments: [
        ("model_q4f16.onnx", DecodeActivations.automatic), ("model_q4.onnx", .automatic), ("model_q4.onnx", .int16),
        ("model.onnx", .automatic), ("model_fp16.onnx", .automatic), ("model_int8.onnx", .automatic),
        ("model_bnb4.onnx", .automatic),
    ])
    func batchedStepsEqualSoloSteps(_ file: String, _ decode: DecodeActivations) throws {
        let model = try QwenModel(directory: Fixture.untied.directory, options: LoadOptions(onnxFile: file, decodeActivations: decode))
        let prompts = [Array(Fixture.untied.promptIds.prefix(5)), Fixture.untied.promptIds, Array(Fixture.untied.promptIds.prefix(11))]
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
                #expect(alone.map(\.bitPattern) == batched[i].map(\.bitPattern), "\(file) \(decode): sequence \(i), step \(step): logits differ")
                for (past, _) in model.decoder.interface.cache {
                    let a = solo[i].tensors[past]!.contiguous(), b = batch[i].tensors[past]!.contiguous()
                    #expect(a.shape == b.shape && a.floats() == b.floats(), "\(file): sequence \(i), step \(step): \(past) differs")
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
    /// that says so (`chunkedPrefillIsExact`: 4-bit and float16 weights), whatever chunk size is
    /// asked: it is rounded to whole attention blocks (128 positions here, 4 query heads per 2
    /// key/value heads; chunks of 33 positions, which the rounding prevents, gave other last bits
    /// in the q4, fp16 and bnb4 forms on Zen 4). A generation prefilled that way produces the solo
    /// ids. The float32 (BLAS) and
    /// int8 (MatMulInteger) forms do not say so, rightly: their chunked logits differ in the last
    /// bits.
    @Test(arguments: [("model_q4f16.onnx", true), ("model_q4.onnx", true), ("model_fp16.onnx", true), ("model_bnb4.onnx", true),
                      ("model.onnx", false), ("model_int8.onnx", false)])
    func chunkedPrefillEqualsOnePass(_ file: String, _ exact: Bool) throws {
        let model = try QwenModel(directory: Fixture.untied.directory, options: LoadOptions(onnxFile: file))
        #expect(model.chunkedPrefillIsExact == exact)
        #expect(model.prefillChunkUnit == 128)
        guard exact else { return }
        let base = Fixture.untied.promptIds
        let prompt = Array((0..<16).flatMap { _ in base }.prefix(250))
        var whole = model.makeCache()
        let expected = try model.decoder.forward(prompt, cache: &whole)
        for tokens in [1, 33, 128] {
            var generation = try Generation(model: model, promptIds: prompt, parameters: greedyNoStop(6))
            var boundaries = [0]
            while try generation.prefillChunk(tokens: tokens) { boundaries.append(generation.cache.count) }
            // One chunk of 128 (more than 128 + 32 tokens left before it, not after); step() runs the rest.
            #expect(boundaries == [0, 128], "chunks of \(tokens): \(boundaries)")
            try expectPiecesEqualOnePass(model, prompt, cutAt: boundaries, logits: expected, cache: whole, "\(file): chunks of \(tokens)")
            while !generation.isFinished { _ = try generation.step() }
            var cache = model.makeCache()
            let alone = try model.generate(promptIds: prompt, parameters: greedyNoStop(6), cache: &cache)
            #expect(generation.generatedIds == alone.generatedTokenIds)
        }
    }

    /// The real 0.5B model (q4f16, the server's default): a ~400-token prompt run in chunks of
    /// 32 (the minimum and the attention's block), 33 (rounded to 64) and 128 (the server's
    /// default) positions gives the logits and caches of one pass, bit for bit, through the
    /// kernels the real shapes take (the attention's BLAS products at 224 query rows per
    /// key/value head).
    @Test(.enabled(if: RealModelTests.enabled, "\(RealModelTests.skipReason ?? "")"))
    func realModelChunkedPrefillEqualsOnePass() throws {
        let model = try QwenModel(directory: Paths.realModel)
        #expect(model.chunkedPrefillIsExact)
        #expect(model.prefillChunkUnit == 32)
        let prompt = try model.encode(prompt: String(repeating: "Explain how a hash map resolves collisions, with code. ", count: 30))
        #expect(prompt.count > 300)
        var whole = model.makeCache()
        let expected = try model.decoder.forward(prompt, cache: &whole)
        for tokens in [32, 33, 128] {
            var generation = try Generation(model: model, promptIds: prompt, parameters: greedyNoStop(1))
            var boundaries = [0]
            while try generation.prefillChunk(tokens: tokens) { boundaries.append(generation.cache.count) }
            #expect(boundaries.allSatisfy { $0 % 32 == 0 } && boundaries.count > 2, "chunks of \(tokens): \(boundaries)")
            try expectPiecesEqualOnePass(model, prompt, cutAt: boundaries, logits: expected, cache: whole, "chunks of \(tokens)")
        }
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
        // The first prompt in chunks of 32 (the minimum), as the server runs long ones.
        #expect(model.chunkedPrefillIsExact)
        var chunks = 0
        while try generations[0].prefillChunk(tokens: 1) { chunks += 1 }
        #expect(chunks >= 1)
        while generations.contains(where: { !$0.isFinished }) {
            for result in Generation.step(&generations) { _ = try result.get() }
        }
        #expect(generations.map(\.generatedIds) == alone)
    }
}
