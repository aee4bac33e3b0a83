import Foundation
import Testing
@_spi(Benchmarks) @testable import Qwen

/// The library's generation path (ModelDirectory → QwenModel → GraphDecoder/KVCache → Sampler) on
/// the committed tiny Qwen2 fixtures, against the ONNX Runtime 1.31.1 references recorded by
/// scripts/make_fixtures.py (Models/fixtures/README.md). Tests/RuntimeTests/FixtureGraphTests.swift
/// checks the raw Session with the recorded feeds; these check what the library feeds it.
@Suite struct FixtureGenerationTests {
    // MARK: Greedy ids

    @Test(arguments: Variant.all)
    func greedyIdsEqualONNXRuntime(_ v: Variant) throws {
        let model = try v.fixture.model(v.file)
        var cache = model.makeCache()
        let result = try model.generate(promptIds: v.fixture.promptIds, parameters: greedyNoStop(16), cache: &cache)
        let expected = try v.fixture.greedyIds(v.name)
        #expect(result.generatedTokenIds == expected, "\(v): greedy ids vs ORT_DISABLE_ALL")
        #expect(result.stopReason == .maxTokens)
        #expect(result.promptTokenIds == v.fixture.promptIds)
        #expect(result.stats.promptTokens == v.fixture.promptIds.count)
        #expect(result.stats.prefilledTokens == v.fixture.promptIds.count)
        #expect(result.stats.generatedTokens == 16)
        // The cache holds the prompt and every generated token but the last (never fed back).
        #expect(cache.tokens == v.fixture.promptIds + expected.dropLast())
        // The fused ORT run agrees on these fixtures too (README table).
        #expect(result.generatedTokenIds == (try v.fixture.greedyIds(v.name, level: "enable_all")))
    }

    /// The default model file is q4f16 and the default stop ids are generation_config's
    /// eos [511, 509]; ORT's greedy ids contain neither, so all 16 come out.
    @Test(arguments: [Fixture.untied, Fixture.tied])
    func defaultFileAndEosStopMatchONNXRuntime(_ f: Fixture) throws {
        let model = try f.model()
        #expect(model.directory.onnxURL.lastPathComponent == "model_q4f16.onnx")
        #expect(model.eosTokenIds == [511, 509])
        #expect(model.maxPositions == f.maxPositions)
        let expected = try f.greedyIds("q4f16")
        #expect(!expected.contains(511) && !expected.contains(509), "reference assumption")
        var cache = model.makeCache()
        let result = try model.generate(promptIds: f.promptIds, parameters: .greedy(maxTokens: 16), cache: &cache)
        #expect(result.generatedTokenIds == expected)
        #expect(result.stopReason == .maxTokens)
        // The text is the detokenized ids.
        #expect(result.text == model.tokenizer.decode(expected, skipSpecialTokens: true))
    }

    // MARK: Teacher-forced logits through the KV cache

    /// Prefill, then the 16 teacher-forced decode steps through `GraphDecoder.forward` and the
    /// library's `KVCache`: last-position logits, every step's logits and the final cache tensors
    /// against ORT (tight against ORT_DISABLE_ALL, loose against ORT_ENABLE_ALL).
    @Test(arguments: Variant.all)
    func teacherForcedLogitsMatchONNXRuntime(_ v: Variant) throws {
        let model = try v.fixture.model(v.file)
        let f = v.fixture
        var cache = model.makeCache()
        var report: [String] = []
        func check(_ ours: [Float], _ strict: [Float], _ fused: [Float], _ what: String) {
            let d = maxAbsDiff(ours, strict), dFused = maxAbsDiff(ours, fused)
            report.append(String(format: "%@ %@: max|Δ| vs ORT_DISABLE_ALL %.3g, vs ORT_ENABLE_ALL %.3g", v.description, what, d, dFused))
            #expect(d <= v.tolerance, "\(v) \(what): max |Δ| \(d) vs ORT_DISABLE_ALL")
            #expect(dFused <= max(v.tolerance, 0.5), "\(v) \(what): max |Δ| \(dFused) vs ORT_ENABLE_ALL")
        }
        let vocab = f.vocabularySize
        let prefill = try model.decoder.forward(f.promptIds, cache: &cache)
        #expect(prefill.count == vocab)
        #expect(cache.tokens == f.promptIds)
        let strictPrefill = try f.reference("\(v.name)/disable_all/prefill_logits.npy").floats()
        let fusedPrefill = try f.reference("\(v.name)/enable_all/prefill_logits.npy").floats()
        check(prefill, Array(strictPrefill.suffix(vocab)), Array(fusedPrefill.suffix(vocab)), "prefill last logits")

        var steps: [Float] = []
        for id in f.decodeInputIds {
            steps += try model.decoder.forward([id], cache: &cache)
        }
        #expect(cache.count == f.promptIds.count + f.decodeInputIds.count)
        check(steps, try f.reference("\(v.name)/disable_all/decode_logits.npy").floats(),
              try f.reference("\(v.name)/enable_all/decode_logits.npy").floats(), "decode logits (16 steps)")

        // The KV cache holds ORT's presents after the last step, under the past_key_values names.
        let layers = model.decoder.interface.cache
        #expect(layers.count == 4)
        for (past, present) in layers {
            let ours = try #require(cache.tensors[past], "cache has \(past)")
            let strict = try f.reference("\(v.name)/disable_all/decode_last_\(present).npy")
            let fused = try f.reference("\(v.name)/enable_all/decode_last_\(present).npy")
            #expect(ours.shape == strict.shape, "\(v) \(past) shape")
            check(ours.floats(), strict.floats(), fused.floats(), "cache \(past) after decode")
        }
        print(report.joined(separator: "\n"))
    }

    /// Prefill in two chunks (10 tokens, then the other 12 over a 10-position past), and again
    /// after truncating the cache back to 10 positions: the last logits equal ORT's prefill
    /// logits at those positions (the reference has every prompt position's logits).
    /// `QwenModel.promptLogprobs` (a second session keeping every position's logits, run in
    /// chunks of 64): each prompt token's log probability and top 5 are the log-softmax, in
    /// Double here, of ONNX Runtime's prefill logits at the position before it.
    @Test(arguments: [Variant.all[0], Variant.all[1], Variant.all[2]])
    func promptLogprobsMatchONNXRuntime(_ v: Variant) throws {
        let model = try v.fixture.model(v.file)
        let f = v.fixture, vocab = f.vocabularySize
        let all = try f.reference("\(v.name)/disable_all/prefill_logits.npy").floats()
        let scores = try model.promptLogprobs(f.promptIds, top: 5)
        #expect(scores.count == f.promptIds.count)
        #expect(scores.first! == nil)
        for position in 1..<f.promptIds.count {
            let row = all[(position - 1) * vocab ..< position * vocab].map(Double.init)
            let largest = row.max()!
            let logSum = log(row.reduce(0) { $0 + exp($1 - largest) })
            func reference(_ id: Int) -> Double { row[row.startIndex + id] - largest - logSum }
            guard let score = scores[position] else { Issue.record("position \(position): no score"); continue }
            #expect(score.chosen.id == f.promptIds[position])
            // Logits within the variant's tolerance of ORT's move a log probability by up to twice it.
            #expect(abs(Double(score.chosen.logprob) - reference(f.promptIds[position])) <= 2 * Double(v.tolerance) + 1e-5,
                    "\(v) position \(position)")
            for t in score.top { #expect(abs(Double(t.logprob) - reference(t.id)) <= 2 * Double(v.tolerance) + 1e-5, "\(v) position \(position) top \(t.id)") }
            let best = (0..<vocab).max { reference($0) < reference($1) || (reference($0) == reference($1) && $0 > $1) }!
            if v.tolerance < 1e-3 { #expect(score.top.first?.id == best, "\(v) position \(position): most likely id") }
        }
        #expect(throws: GenerationError.self) { try model.promptLogprobs([], top: 1) }
        // Past one chunk of 64: where chunks are exact, a position's scores are those of the
        // prompt cut after it (run in other chunks), bit for bit.
        if v.name == "q4" && model.chunkedPrefillIsExact {
            let long = (0..<150).map { f.promptIds[$0 % f.promptIds.count] }
            let scores = try model.promptLogprobs(long, top: 3)
            for position in [63, 64, 70, 129, 149] {
                #expect(try model.promptLogprobs(Array(long[...position]), top: 3).last! == scores[position], "position \(position)")
            }
        }
    }

    @Test(arguments: [Variant.all[2], Variant.all[0], Variant.all[5]])
    func chunkedPrefillAndTruncatedCacheMatchONNXRuntime(_ v: Variant) throws {
        let model = try v.fixture.model(v.file)
        let f = v.fixture
        let vocab = f.vocabularySize
        let all = try f.reference("\(v.name)/disable_all/prefill_logits.npy").floats()
        func row(_ position: Int) -> [Float] { Array(all[position * vocab ..< (position + 1) * vocab]) }
        let split = 10
        var cache = model.makeCache()
        let first = try model.decoder.forward(Array(f.promptIds[..<split]), cache: &cache)
        #expect(maxAbsDiff(first, row(split - 1)) <= v.tolerance, "\(v) logits after chunk 1")
        let second = try model.decoder.forward(Array(f.promptIds[split...]), cache: &cache)
        #expect(maxAbsDiff(second, row(f.promptIds.count - 1)) <= v.tolerance, "\(v) logits after chunk 2")

        // Run a few decode tokens, then cut the cache back to the split and redo the rest.
        for id in f.decodeInputIds.prefix(3) { _ = try model.decoder.forward([id], cache: &cache) }
        cache.truncate(to: split)
        #expect(cache.tokens == Array(f.promptIds[..<split]))
        for (past, _) in model.decoder.interface.cache {
            #expect(cache.tensors[past]?.shape == [1, 2, split, 24])
        }
        let again = try model.decoder.forward(Array(f.promptIds[split...]), cache: &cache)
        #expect(maxAbsDiff(again, row(f.promptIds.count - 1)) <= v.tolerance, "\(v) logits after truncate + rerun")
        // Teacher-forced decode continues to match from there.
        let decode = try f.reference("\(v.name)/disable_all/decode_logits.npy").floats()
        let step0 = try model.decoder.forward([f.decodeInputIds[0]], cache: &cache)
        #expect(maxAbsDiff(step0, Array(decode[0 ..< vocab])) <= v.tolerance, "\(v) decode step 0 after truncate")
    }

    // MARK: Stopping

    /// A stop id ends generation with `.stopToken`; the id is the last generated one and its text
    /// is not in `text` nor streamed to `onToken`. The expected ids are ORT's greedy ids up to the
    /// first occurrence of the chosen stop id.
    @Test func stopTokenStops() throws {
        let f = Fixture.untied
        let model = try f.model()
        let reference = try f.greedyIds("q4f16")
        for index in [0, 4, 9] {
            let stopID = reference[index]
            let first = try #require(reference.firstIndex(of: stopID))
            var parameters = GenerateParameters.greedy(maxTokens: 16)
            parameters.stopTokenIds = [stopID]
            var cache = model.makeCache()
            var streamed: [Int] = []
            var streamedText = ""
            let result = try model.generate(promptIds: f.promptIds, parameters: parameters, cache: &cache) { id, text in
                streamed.append(id)
                streamedText += text
                return true
            }
            let expected = Array(reference[...first])
            #expect(result.generatedTokenIds == expected, "stop at \(stopID)")
            #expect(result.stopReason == .stopToken)
            #expect(result.generatedTokenIds.last == stopID)
            #expect(streamed == Array(expected.dropLast()), "the stop id is not streamed")
            let text = model.tokenizer.decode(Array(expected.dropLast()), skipSpecialTokens: true)
            let withStop = model.tokenizer.decode(expected, skipSpecialTokens: true)
            #expect(withStop != text, "reference assumption: the stop id has text")
            #expect(result.text == text)
            #expect(streamedText == text)
            #expect(result.stats.generatedTokens == expected.count)
        }
    }

    @Test func maxTokensStops() throws {
        let f = Fixture.untied
        let model = try f.model()
        let reference = try f.greedyIds("q4f16")
        for n in [1, 5, 16] {
            var cache = model.makeCache()
            let result = try model.generate(promptIds: f.promptIds, parameters: greedyNoStop(n), cache: &cache)
            #expect(result.generatedTokenIds == Array(reference.prefix(n)))
            #expect(result.stopReason == .maxTokens)
        }
        var cache = model.makeCache()
        let none = try model.generate(promptIds: f.promptIds, parameters: greedyNoStop(0), cache: &cache)
        #expect(none.generatedTokenIds.isEmpty)
        #expect(none.text.isEmpty)
        #expect(none.stopReason == .maxTokens)
        #expect(cache.count == 0, "nothing runs for 0 new tokens")
    }

    /// Returning false from `onToken` stops the loop after that token.
    @Test func onTokenFalseCancels() throws {
        let f = Fixture.untied
        let model = try f.model()
        var cache = model.makeCache()
        var calls = 0
        let result = try model.generate(promptIds: f.promptIds, parameters: greedyNoStop(16), cache: &cache) { _, _ in
            calls += 1
            return calls < 3
        }
        #expect(calls == 3)
        #expect(result.stopReason == .cancelled)
        #expect(result.generatedTokenIds == Array(try f.greedyIds("q4f16").prefix(3)))
    }

    // MARK: Context length (fixture max_position_embeddings = 256)

    @Test func contextOverflowIsACleanError() throws {
        let f = Fixture.untied
        let model = try f.model()
        #expect(model.maxPositions == 256)
        let long = (0..<257).map { f.promptIds[$0 % f.promptIds.count] }
        var cache = model.makeCache()
        #expect(throws: GenerationError.contextOverflow(tokens: 257, limit: 256)) {
            try model.generate(promptIds: long, parameters: greedyNoStop(4), cache: &cache)
        }
        #expect(cache.count == 0, "nothing ran")
        // The decoder refuses too, for a chunk that would pass the limit after what is cached.
        _ = try model.decoder.forward(Array(long[..<200]), cache: &cache)
        #expect(throws: GenerationError.contextOverflow(tokens: 257, limit: 256)) {
            try model.decoder.forward(Array(long[..<57]), cache: &cache)
        }
        #expect(cache.count == 200, "a refused chunk leaves the cache as it was")
        // The error reads well.
        #expect(GenerationError.contextOverflow(tokens: 257, limit: 256).description.contains("256"))
    }

    /// The decode-speed probe (scripts/bench's context table) runs on a synthetic cache and checks
    /// its arguments; a zero cache of N positions runs like N real ones (the step sees N + 1 keys).
    @Test func decodeSpeedProbe() throws {
        let model = try Fixture.untied.model()
        let rate = try model.decodeTokensPerSecond(atPosition: 200, steps: 3)
        #expect(rate.isFinite && rate > 0)
        #expect(throws: GenerationError.contextOverflow(tokens: 256 + 2, limit: 256)) {
            _ = try model.decodeTokensPerSecond(atPosition: 254, steps: 3)
        }
        #expect(throws: GenerationError.self) { _ = try model.decodeTokensPerSecond(atPosition: -1, steps: 3) }
        #expect(throws: GenerationError.self) { _ = try model.decodeTokensPerSecond(atPosition: 10, steps: 0) }
        var cache = model.makeCache()
        cache.fillWithZeros(length: 40, interface: model.decoder.interface)
        #expect(cache.count == 40)
        _ = try model.decoder.forward([1], cache: &cache)
        #expect(cache.count == 41)
    }

    /// Generation that reaches the context ends with `.contextLimit`: with a 250-token prompt the
    /// 256 positions hold the prompt and 6 fed tokens; the 7th token (predicted at position 255)
    /// is the last.
    @Test func generationStopsAtTheContextLimit() throws {
        let f = Fixture.untied
        let model = try f.model()
        for (promptLength, expected) in [(250, 7), (256, 1)] {
            let prompt = (0..<promptLength).map { f.promptIds[$0 % f.promptIds.count] }
            var cache = model.makeCache()
            let result = try model.generate(promptIds: prompt, parameters: greedyNoStop(32), cache: &cache)
            #expect(result.stopReason == .contextLimit, "prompt \(promptLength)")
            #expect(result.generatedTokenIds.count == expected, "prompt \(promptLength)")
            #expect(cache.count == 256)
        }
    }

    @Test func badInputsAreTypedErrors() throws {
        let f = Fixture.untied
        let model = try f.model()
        var cache = model.makeCache()
        #expect(throws: GenerationError.emptyPrompt) {
            try model.generate(promptIds: [], parameters: greedyNoStop(4), cache: &cache)
        }
        #expect(throws: GenerationError.invalidTokenID(512, vocabularySize: 512)) {
            try model.generate(promptIds: [1, 512], parameters: greedyNoStop(4), cache: &cache)
        }
        #expect(throws: GenerationError.invalidTokenID(-1, vocabularySize: 512)) {
            try model.generate(promptIds: [-1], parameters: greedyNoStop(4), cache: &cache)
        }
        #expect(cache.count == 0)
        var bad = GenerateParameters(maxTokens: 4, doSample: true, topP: 0)
        #expect(throws: GenerationError.self) { try model.generate(promptIds: [1], parameters: bad, cache: &cache) }
        bad = GenerateParameters(maxTokens: -1)
        #expect(throws: GenerationError.self) { try model.generate(promptIds: [1], parameters: bad, cache: &cache) }
        bad = GenerateParameters(maxTokens: 4, doSample: true, repetitionPenalty: 0)
        #expect(throws: GenerationError.self) { try model.generate(promptIds: [1], parameters: bad, cache: &cache) }
        // A file name outside the model directory is refused.
        #expect(throws: ModelDirectoryError.self) { try f.model("../tiny-qwen2-tied/onnx/model.onnx") }
        #expect(throws: ModelDirectoryError.self) { try f.model("model_q3.onnx") }
    }

    // MARK: KV-cache prefix reuse (chat turns)

    /// A second turn whose prompt extends the first turn's prompt and answer runs only the new
    /// tokens, and gives what a cold run over the whole prompt gives. A prompt that shares only a
    /// prefix with the cache truncates it and reuses that prefix.
    @Test(arguments: [Variant.all[2], Variant.all[0]])
    func prefixReuseEqualsColdRun(_ v: Variant) throws {
        let f = v.fixture
        let model = try f.model(v.file)
        var cache = model.makeCache()
        let turn1 = try model.generate(promptIds: f.promptIds, parameters: greedyNoStop(8), cache: &cache)
        #expect(cache.count == f.promptIds.count + 7)

        // Turn 2: prompt + answer + "<|im_end|>\n<|im_start|>user\n..." style ids.
        let prompt2 = f.promptIds + turn1.generatedTokenIds + [511, 198, 510, 355, 261, 198, 69, 72, 65, 511, 198, 510, 395, 380, 276, 83, 198]
        let warm = try model.generate(promptIds: prompt2, parameters: greedyNoStop(12), cache: &cache)
        #expect(warm.stats.prefilledTokens == prompt2.count - (f.promptIds.count + 7))
        #expect(warm.stats.prefilledTokens < prompt2.count)
        #expect(warm.stats.promptTokens == prompt2.count)

        var coldCache = model.makeCache()
        let cold = try model.generate(promptIds: prompt2, parameters: greedyNoStop(12), cache: &coldCache)
        #expect(cold.stats.prefilledTokens == prompt2.count)
        #expect(warm.generatedTokenIds == cold.generatedTokenIds, "\(v)")
        #expect(warm.text == cold.text)
        #expect(cache.tokens == coldCache.tokens)

        // An edited conversation: only the first 10 ids agree with the cache.
        var edited = prompt2
        edited[10] = edited[10] == 100 ? 101 : 100
        let reused = try model.generate(promptIds: edited, parameters: greedyNoStop(6), cache: &cache)
        #expect(reused.stats.prefilledTokens == edited.count - 10)
        var freshCache = model.makeCache()
        let fresh = try model.generate(promptIds: edited, parameters: greedyNoStop(6), cache: &freshCache)
        #expect(reused.generatedTokenIds == fresh.generatedTokenIds, "\(v) edited prompt")

        // The same prompt again: only its last token runs (its logits are needed).
        let repeatRun = try model.generate(promptIds: edited, parameters: greedyNoStop(6), cache: &cache)
        #expect(repeatRun.stats.prefilledTokens == 1)
        #expect(repeatRun.generatedTokenIds == fresh.generatedTokenIds)
    }
}

extension FixtureGenerationTests {
    /// The transformers.js dtypes through the library, picked by dtype as transformers.js does:
    /// 16 greedy ids equal to ONNX Runtime's (for int8 weights: ORT's exact u8×u8 path on the
    /// same graph with B shifted to uint8, see Models/fixtures/README.md), fed by the library's
    /// own decoder.
    @Test(arguments: [Fixture.untied, Fixture.tied])
    func transformersJSDTypesGenerateONNXRuntimesGreedyIds(_ f: Fixture) throws {
        let directory = try ModelDirectory(url: f.directory)
        #expect(directory.availableDTypes == ["q4f16", "q4", "fp16", "fp32", "q8", "int8", "uint8", "bnb4"])
        for dtype in ["fp16", "q8", "int8", "uint8", "bnb4"] {
            let model = try f.model(try ModelDirectory.onnxFile(forDType: dtype))
            var cache = model.makeCache()
            let result = try model.generate(promptIds: f.promptIds, parameters: greedyNoStop(16), cache: &cache)
            let level = dtype == "q8" || dtype == "int8" ? "exact" : "disable_all"
            #expect(result.generatedTokenIds == (try f.greedyIds(dtype, level: level)), "\(f.name) \(dtype): greedy ids vs ORT (\(level))")
        }
        #expect(throws: ModelDirectoryError.self) { try ModelDirectory.onnxFile(forDType: "q3") }
    }
}
