import Foundation
import Testing
@testable import Qwen

/// Sampling: the distribution against Hugging Face transformers' own logits processors, the draw
/// against that distribution, and seeded sampling on the tiny fixture.
@Suite struct SamplingTests {
    // MARK: Against HF's logits processors

    struct ReferenceCase: Decodable, Sendable, CustomStringConvertible {
        struct Parameters: Decodable, Sendable {
            let temperature: Float
            let top_k: Int
            let top_p: Float
            let min_p: Float
            let repetition_penalty: Float
            let logit_bias: [String: Float]
        }
        let name: String
        let parameters: Parameters
        let hf_processors: [String]
        let logits: [Float]
        let history: [Int]
        let surviving_ids: [Int]
        let probabilities: [Float]
        var description: String { name }

        var settings: SamplingSettings {
            var p = GenerateParameters(doSample: true, temperature: parameters.temperature, topK: parameters.top_k,
                                       topP: parameters.top_p, minP: parameters.min_p,
                                       repetitionPenalty: parameters.repetition_penalty)
            for (id, bias) in parameters.logit_bias { p.logitBias[Int(id)!] = bias }
            return SamplingSettings(p, defaults: GenerationConfig())
        }
    }

    struct ReferenceFile: Decodable {
        let versions: [String: String]
        let vocab_size: Int
        let cases: [ReferenceCase]
    }

    /// Tests/QwenTests/Data/sampler_reference.json, written by scripts/sampler_reference.py
    /// (transformers 4.57.6 `GenerationMixin._get_logits_processor`, do_sample=True).
    static let reference: [ReferenceCase] = {
        do {
            let data = try Data(contentsOf: Paths.data.appendingPathComponent("sampler_reference.json"))
            return try JSONDecoder().decode(ReferenceFile.self, from: data).cases
        } catch {
            Issue.record("cannot read sampler_reference.json: \(error)")
            return []
        }
    }()

    /// Same surviving ids, in the same order (most likely first, ties by id), with the same
    /// probabilities within 1e-5.
    @Test(arguments: SamplingTests.reference)
    func distributionEqualsHuggingFace(_ c: ReferenceCase) throws {
        let sampler = Sampler(settings: c.settings, seed: 0)
        let ours = sampler.distribution(logits: c.logits, history: c.history)
        #expect(ours.map(\.id) == c.surviving_ids, "\(c.name): surviving ids")
        if ours.map(\.id) == c.surviving_ids {
            let d = maxAbsDiff(ours.map(\.probability), c.probabilities)
            #expect(d <= 1e-5, "\(c.name): max |Δp| \(d)")
        }
        let total = ours.reduce(Float(0)) { $0 + $1.probability }
        #expect(abs(total - 1) <= 1e-5)
    }

    /// `next` draws from `distribution`: 20,000 seeded draws land only on surviving ids, with
    /// frequencies within 5 standard errors of the probabilities.
    @Test(arguments: SamplingTests.reference.filter { ["all_four", "qwen2.5_generation_config", "min_p_0.05"].contains($0.name) })
    func drawsFollowTheDistribution(_ c: ReferenceCase) {
        var sampler = Sampler(settings: c.settings, seed: 12345)
        let n = 20_000
        var counts: [Int: Int] = [:]
        for _ in 0..<n { counts[sampler.next(logits: c.logits, history: c.history), default: 0] += 1 }
        let probability = Dictionary(uniqueKeysWithValues: zip(c.surviving_ids, c.probabilities))
        #expect(Set(counts.keys).isSubset(of: Set(c.surviving_ids)), "\(c.name): drew a filtered token")
        for (id, p) in probability {
            let frequency = Double(counts[id] ?? 0) / Double(n)
            let bound = 5 * (Double(p) * (1 - Double(p)) / Double(n)).squareRoot() + 1e-3
            #expect(abs(frequency - Double(p)) <= bound, "\(c.name): id \(id) frequency \(frequency) vs p \(p)")
        }
    }

    @Test func greedyDistributionIsTheArgmaxAfterThePenalty() {
        // Hand-computed: penalty 2 halves the positive 3.0 (→ 1.5) and doubles the negative -1 (→ -2),
        // so id 1 (2.0) wins.
        let settings = SamplingSettings(GenerateParameters(doSample: false, repetitionPenalty: 2), defaults: GenerationConfig())
        var sampler = Sampler(settings: settings, seed: 1)
        let logits: [Float] = [3.0, 2.0, -1.0, 0.5]
        #expect(sampler.distribution(logits: logits, history: [0, 2, 0]).map(\.id) == [1])
        #expect(sampler.next(logits: logits, history: [0, 2]) == 1)
        #expect(sampler.next(logits: logits, history: []) == 0)
        // Ties: the lowest id, like torch.argmax.
        #expect(Sampler.argmax([1, 5, 5, 2]) == 1)
    }

    /// Greedy decoding with a logit bias: the bias comes first (HF's `SequenceBiasLogitsProcessor`
    /// before the repetition penalty), raises or bans a token, and the argmax shortcut does not
    /// pass over it. Hand-computed: id 0's 2.0 + 1.0 = 3.0, halved by the penalty to 1.5, loses to
    /// id 1's 1.8 (the other order, 2.0 / 2 + 1.0 = 2.0, would win).
    @Test func logitBiasComesBeforeThePenalties() {
        var parameters = GenerateParameters(doSample: false, repetitionPenalty: 2)
        parameters.logitBias = [0: 1.0]
        var sampler = Sampler(settings: SamplingSettings(parameters, defaults: GenerationConfig()), seed: 1)
        let logits: [Float] = [2.0, 1.8, -1.0]
        #expect(sampler.next(logits: logits, history: [0]) == 1)
        #expect(sampler.next(logits: logits, history: []) == 0)
        parameters = .greedy()
        parameters.logitBias = [2: 3.5, 0: -100]
        sampler = Sampler(settings: SamplingSettings(parameters, defaults: GenerationConfig()), seed: 1)
        #expect(sampler.next(logits: logits, history: []) == 2, "a raised token wins the argmax")
        parameters.logitBias = [0: -.infinity]
        #expect(throws: GenerationError.self) { try SamplingSettings(parameters, defaults: GenerationConfig()).validate() }
    }

    // MARK: Settings resolution

    /// The vectorised argmax against its definition (the first index whose value no other
    /// exceeds under `>`, NaNs passed over unless first) on lengths around the 16-lane vectors,
    /// with ties, infinities, signed zeros and NaNs placed anywhere.
    @Test func argmaxIsTheFirstLargestValue() {
        func definition(_ v: [Float]) -> Int {
            var best = 0
            for i in 1..<v.count where v[i] > v[best] { best = i }
            return best
        }
        var state: UInt64 = 7   // a seeded LCG: the same cases every run
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 17
        }
        let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 3.5, 3.5]
        for count in [1, 2, 15, 16, 17, 31, 32, 33, 100, 151_936] {
            for trial in 0..<20 {
                var v = (0..<count).map { _ in Float(Int(next() % 64)) / 4 - 8 }   // many ties
                for _ in 0..<(trial % 4) { v[Int(next() % UInt64(count))] = specials[Int(next() % UInt64(specials.count))] }
                if trial == 19 { v = v.map { _ in -.infinity } }
                #expect(Sampler.argmax(v) == definition(v), "count \(count), trial \(trial)")
            }
        }
        #expect(Sampler.argmax([.nan, 1, 2]) == 0)
        #expect(Sampler.argmax([1, .nan, 2, 2]) == 2)
    }

    /// Greedy `next` (which skips the penalized copy when the largest logit is not in the
    /// history) against the argmax of the penalized logits, with penalties above, at and below 1,
    /// histories holding the largest logits or not, ties, infinities, signed zeros and NaNs.
    @Test func greedyNextIsTheArgmaxOfThePenalizedLogits() {
        var state: UInt64 = 11
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 17
        }
        let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 1.5, -1.5]
        for penalty: Float in [1, 1.1, 2, 0.9] {
            var parameters = GenerateParameters.greedy(maxTokens: 1)
            parameters.repetitionPenalty = penalty
            var sampler = Sampler(settings: SamplingSettings(parameters, defaults: GenerationConfig()), seed: 0)
            for count in [1, 7, 33, 4_096] {
                for trial in 0..<40 {
                    var v = (0..<count).map { _ in Float(Int(next() % 32)) / 8 - 2 }   // many ties, both signs
                    for _ in 0..<(trial % 3) { v[Int(next() % UInt64(count))] = specials[Int(next() % UInt64(specials.count))] }
                    var history = (0..<Int(next() % 6)).map { _ in Int(next() % UInt64(count)) }
                    if trial % 2 == 0 { history.append(Sampler.argmax(v)) }   // the largest one penalized
                    let expected = Sampler.argmax(sampler.penalized(v, history: history))
                    #expect(sampler.next(logits: v, history: history) == expected, "penalty \(penalty), count \(count), trial \(trial)")
                }
            }
        }
    }

    /// OpenAI's presence and frequency penalties (after HF's repetition penalty) against a
    /// reference in Double written here: greedy `next` (with its shortcut) is the reference's
    /// argmax, and the sampled distribution its softmax. Logits and penalties are multiples of
    /// 1/8 and the repetition penalty 1 or 2, so every Float operation is exact and ties are the
    /// reference's ties.
    @Test func openAIPenaltiesAgainstADoubleReference() {
        var state: UInt64 = 29
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 17
        }
        let settings: [(presence: Float, frequency: Float, repetition: Float)] = [
            (0.75, 0, 1), (0, 0.5, 1), (0, -0.25, 1), (-1, 1.5, 2), (0.5, 0.25, 2), (-0.5, -0.5, 1),
        ]
        for (presence, frequency, repetition) in settings {
            for count in [8, 64, 4_096] {
                for trial in 0..<24 {
                    let logits = (0..<count).map { _ in Float(Int(next() % 64)) / 8 - 4 }   // ties, both signs
                    let prompt = (0..<Int(next() % 4)).map { _ in Int(next() % UInt64(count)) }
                    var generated = (0..<Int(next() % 12)).map { _ in Int(next() % UInt64(count)) }
                    if trial % 2 == 0 { generated += [Sampler.argmax(logits), Sampler.argmax(logits)] }
                    // The reference: penalized logits in Double.
                    var counts: [Int: Int] = [:]
                    for id in generated { counts[id, default: 0] += 1 }
                    let history = Set(prompt + generated)
                    let reference: [Double] = logits.enumerated().map { id, x in
                        var y = Double(x)
                        if history.contains(id), repetition != 1 { y = y < 0 ? y * Double(repetition) : y / Double(repetition) }
                        if let n = counts[id] { y -= Double(frequency) * Double(n) + Double(presence) }
                        return y
                    }
                    let best = reference.indices.max { reference[$0] < reference[$1] || (reference[$0] == reference[$1] && $0 > $1) }!
                    let what = "presence \(presence), frequency \(frequency), repetition \(repetition), count \(count), trial \(trial)"

                    var greedy = Sampler(settings: SamplingSettings(
                        GenerateParameters(doSample: false, repetitionPenalty: repetition, presencePenalty: presence,
                                           frequencyPenalty: frequency), defaults: GenerationConfig()), seed: 0)
                    for id in generated { greedy.record(id) }
                    #expect(greedy.next(logits: logits, history: prompt + generated) == best, "\(what)")

                    var sampling = Sampler(settings: SamplingSettings(
                        GenerateParameters(doSample: true, temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: repetition,
                                           presencePenalty: presence, frequencyPenalty: frequency), defaults: GenerationConfig()), seed: 0)
                    for id in generated { sampling.record(id) }
                    let largest = reference.max()!
                    let sum = reference.reduce(0) { $0 + exp($1 - largest) }
                    for (id, p) in sampling.distribution(logits: logits, history: prompt + generated) {
                        #expect(abs(Double(p) - exp(reference[id] - largest) / sum) < 1e-6, "\(what), id \(id)")
                    }
                }
            }
        }
    }

    /// `Sampler.logprobs` against the log-softmax in Double over a vocabulary of the 0.5B's size
    /// (with ties and masked −∞ logits): the sampled id's value, and the top alternatives in
    /// order (ties: lower id first) with theirs.
    @Test func logprobsAreTheLogSoftmaxComputedInDouble() {
        var state: UInt64 = 5
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 17
        }
        for trial in 0..<4 {
            let count = trial == 0 ? 5 : 151_936
            var logits = (0..<count).map { _ in Float(Int(next() % 20_000)) / 1_000 - 8 }
            for _ in 0..<(count / 100) { logits[Int(next() % UInt64(count))] = -.infinity }
            logits[Int(next() % UInt64(count))] = 13.5   // one clear favourite ...
            logits[Int(next() % UInt64(count))] = 13.5   // ... tied with another
            let largest = Double(logits.max()!)
            let logSum = log(logits.reduce(0.0) { $0 + exp(Double($1) - largest) })
            func reference(_ id: Int) -> Double { Double(logits[id]) - largest - logSum }
            let order = logits.indices.filter { logits[$0] > -.infinity }
                .sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            for top in [0, 1, 5, 20] {
                let chosen = Int(next() % UInt64(count))
                let result = Sampler.logprobs(logits, chosen: chosen, top: top)
                #expect(result.chosen.id == chosen)
                if logits[chosen] == -.infinity {
                    #expect(result.chosen.logprob == -.infinity)
                } else {
                    #expect(abs(Double(result.chosen.logprob) - reference(chosen)) < 2e-5, "trial \(trial), id \(chosen)")
                }
                #expect(result.top.map(\.id) == Array(order.prefix(top)), "trial \(trial), top \(top)")
                for t in result.top { #expect(abs(Double(t.logprob) - reference(t.id)) < 2e-5, "trial \(trial), id \(t.id)") }
            }
        }
    }

    @Test func parametersOverrideGenerationConfigOverHFDefaults() throws {
        // The real Qwen2.5-Coder generation_config.json.
        let json = """
        {"bos_token_id": 151643, "do_sample": true, "eos_token_id": [151645, 151643], "pad_token_id": 151643,
         "repetition_penalty": 1.1, "temperature": 0.7, "top_k": 20, "top_p": 0.8, "transformers_version": "4.57.6"}
        """
        let config = try JSONDecoder().decode(GenerationConfig.self, from: Data(json.utf8))
        let defaults = SamplingSettings(GenerateParameters(), defaults: config)
        #expect(defaults == SamplingSettings(GenerateParameters(doSample: true, temperature: 0.7, topK: 20, topP: 0.8, minP: 0,
                                                                repetitionPenalty: 1.1), defaults: GenerationConfig()))
        #expect(defaults.doSample && defaults.temperature == 0.7 && defaults.topK == 20 && defaults.topP == 0.8
                && defaults.repetitionPenalty == 1.1 && defaults.minP == 0)
        let overridden = SamplingSettings(GenerateParameters(temperature: 1.2, topK: 0, minP: 0.05), defaults: config)
        #expect(overridden.temperature == 1.2 && overridden.topK == 0 && overridden.minP == 0.05 && overridden.topP == 0.8)
        // HF's GenerationConfig defaults when the file says nothing: greedy, top_k 50, top_p 1, temperature 1.
        let bare = SamplingSettings(GenerateParameters(), defaults: GenerationConfig())
        #expect(!bare.doSample && bare.topK == 50 && bare.topP == 1 && bare.temperature == 1 && bare.repetitionPenalty == 1)
        // Temperature 0 means greedy.
        #expect(!SamplingSettings(GenerateParameters(doSample: true, temperature: 0), defaults: config).doSample)
        #expect(config.eosTokenId?.ids == [151645, 151643])
    }

    // MARK: Seeded sampling on the fixture

    static func sampling(seed: UInt64?, topK: Int = 0, temperature: Float = 1, topP: Float = 1, minP: Float = 0,
                         penalty: Float = 1, maxTokens: Int = 16) -> GenerateParameters {
        GenerateParameters(maxTokens: maxTokens, doSample: true, temperature: temperature, topK: topK, topP: topP, minP: minP,
                           repetitionPenalty: penalty, seed: seed, stopTokenIds: [])
    }

    @Test func sameSeedSameIdsDifferentSeedsDiffer() throws {
        let f = Fixture.untied
        let model = try f.model()
        func run(_ seed: UInt64) throws -> [Int] {
            var cache = model.makeCache()
            return try model.generate(promptIds: f.promptIds, parameters: SamplingTests.sampling(seed: seed), cache: &cache).generatedTokenIds
        }
        let a = try run(7), b = try run(7)
        #expect(a == b)
        #expect(a.count == 16)
        let others = try (8...11).map(run)
        #expect(others.allSatisfy { $0 != a }, "seeds 8...11 vs 7: \(others) vs \(a)")
        #expect(Set(others).count > 1)
        // Not all of it is the greedy path.
        #expect(a != (try f.greedyIds("q4f16")))
        // Without a seed, runs are (almost surely) different.
        var cache = model.makeCache()
        let unseeded = try (0..<3).map { _ in
            try model.generate(promptIds: f.promptIds, parameters: SamplingTests.sampling(seed: nil), cache: &cache).generatedTokenIds
        }
        #expect(Set(unseeded).count > 1)
    }

    /// Every sampled id is in the distribution the sampler computes from the logits of that step
    /// (recomputed here by teacher-forcing the sampled ids through the decoder).
    @Test func sampledIdsSurviveTheFilters() throws {
        let f = Fixture.untied
        let model = try f.model()
        let parameters = SamplingTests.sampling(seed: 3, topK: 5, temperature: 0.8, topP: 0.9, penalty: 1.2, maxTokens: 24)
        var cache = model.makeCache()
        let ids = try model.generate(promptIds: f.promptIds, parameters: parameters, cache: &cache).generatedTokenIds
        let settings = SamplingSettings(parameters, defaults: model.generationConfig)
        let sampler = Sampler(settings: settings, seed: 0)
        var forced = model.makeCache()
        var logits = try model.decoder.forward(f.promptIds, cache: &forced)
        var history = f.promptIds
        var supportSizes: [Int] = []
        for id in ids {
            let survivors = sampler.distribution(logits: logits, history: history).map(\.id)
            supportSizes.append(survivors.count)
            #expect(survivors.contains(id))
            #expect(survivors.count <= 5)
            history.append(id)
            logits = try model.decoder.forward([id], cache: &forced)
        }
        #expect(supportSizes.contains { $0 > 1 }, "the filters left a choice at some step")
    }

    @Test func topK1AndTemperature0EqualGreedy() throws {
        for f in [Fixture.untied, Fixture.tied] {
            let model = try f.model()
            let greedy = try f.greedyIds("q4f16")
            for seed: UInt64 in [1, 2, 3] {
                var cache = model.makeCache()
                let topK1 = try model.generate(promptIds: f.promptIds, parameters: SamplingTests.sampling(seed: seed, topK: 1, temperature: 1.5), cache: &cache)
                #expect(topK1.generatedTokenIds == greedy, "\(f.name) top-k 1, seed \(seed)")
                cache = model.makeCache()
                let cold = try model.generate(promptIds: f.promptIds, parameters: SamplingTests.sampling(seed: seed, temperature: 0), cache: &cache)
                #expect(cold.generatedTokenIds == greedy, "\(f.name) temperature 0, seed \(seed)")
            }
            // The fixtures' generation_config has no do_sample: greedy by default.
            var cache = model.makeCache()
            var defaults = GenerateParameters(maxTokens: 16, seed: 5)
            defaults.stopTokenIds = []
            #expect(try model.generate(promptIds: f.promptIds, parameters: defaults, cache: &cache).generatedTokenIds == greedy)
        }
    }
}
