import Foundation
import Kernels

/// How the next token is chosen. `nil` fields fall back to the model's `generation_config.json`,
/// then to Hugging Face's defaults (greedy unless `do_sample`).
public struct GenerateParameters: Sendable, Equatable {
    /// Maximum number of new tokens.
    public var maxTokens: Int
    /// Sample (true) or take the most likely token (false).
    public var doSample: Bool?
    public var temperature: Float?
    /// Keep the k most likely tokens (0 disables).
    public var topK: Int?
    /// Keep the smallest set of tokens whose probability adds up to at least p (1 disables).
    public var topP: Float?
    /// Drop tokens less likely than `minP` × the most likely one's probability (0 disables).
    public var minP: Float?
    /// Hugging Face's repetition penalty over prompt and generated ids (1 disables).
    public var repetitionPenalty: Float?
    /// OpenAI's presence penalty: subtracted once from the logit of every id generated so far
    /// (the prompt's ids are not counted; 0 disables).
    public var presencePenalty: Float?
    /// OpenAI's frequency penalty: subtracted from each id's logit once per time it was generated
    /// so far (0 disables).
    public var frequencyPenalty: Float?
    /// OpenAI's `logit_bias`: added to these token ids' logits before anything else (Hugging
    /// Face's `sequence_bias` of single tokens: before the penalties, temperature and filters, and
    /// for greedy decoding too); -100 or 100 in practice bans or forces a token. Empty: none.
    public var logitBias: [Int: Float] = [:]
    /// Constrain the output (OpenAI's `response_format`): `.jsonObject` allows only tokens that
    /// keep the text a prefix of a JSON object, and ends the generation when the object closes.
    public var responseFormat: ResponseFormat = .text
    /// Constrain the output to a pattern of literals, choices and JSON objects (a forced tool
    /// call); ends the generation when the pattern is complete. Takes the place of
    /// `responseFormat` when set.
    public var outputPattern: OutputPattern?
    /// Report log probabilities (``GenerationStep/logprobs``): the sampled token's and this many
    /// most likely alternatives' (0 for the sampled token's only); nil reports none.
    public var logprobs: Int?
    /// Seed for reproducible sampling (random when nil).
    public var seed: UInt64?
    /// Token ids that end generation; nil means the model's eos ids.
    public var stopTokenIds: Set<Int>?
    /// Strings that end generation (OpenAI's `stop`): the text ends before the first occurrence
    /// of any of them, and streamed text never shows a part of one.
    public var stopStrings: [String]

    public init(maxTokens: Int = 256, doSample: Bool? = nil, temperature: Float? = nil, topK: Int? = nil,
                topP: Float? = nil, minP: Float? = nil, repetitionPenalty: Float? = nil,
                presencePenalty: Float? = nil, frequencyPenalty: Float? = nil, logprobs: Int? = nil, seed: UInt64? = nil,
                stopTokenIds: Set<Int>? = nil, stopStrings: [String] = []) {
        self.maxTokens = maxTokens
        self.doSample = doSample
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.logprobs = logprobs
        self.seed = seed
        self.stopTokenIds = stopTokenIds
        self.stopStrings = stopStrings
    }

    /// Greedy decoding (no sampling), no repetition penalty.
    public static func greedy(maxTokens: Int = 256) -> GenerateParameters {
        GenerateParameters(maxTokens: maxTokens, doSample: false, repetitionPenalty: 1)
    }
}

/// Resolved sampling settings.
public struct SamplingSettings: Sendable, Equatable {
    public var doSample: Bool
    public var temperature: Float
    public var topK: Int
    public var topP: Float
    public var minP: Float
    public var repetitionPenalty: Float
    public var presencePenalty: Float
    public var frequencyPenalty: Float
    /// Added to these ids' logits first (``GenerateParameters/logitBias``).
    public var logitBias: [Int: Float]

    /// Caller's parameters over the model's generation config over HF defaults.
    public init(_ p: GenerateParameters, defaults g: GenerationConfig) {
        doSample = p.doSample ?? g.doSample ?? false
        temperature = p.temperature ?? g.temperature ?? 1
        topK = p.topK ?? g.topK ?? 50
        topP = p.topP ?? g.topP ?? 1
        minP = p.minP ?? g.minP ?? 0
        repetitionPenalty = p.repetitionPenalty ?? g.repetitionPenalty ?? 1
        // Not in Hugging Face's generation config: OpenAI's, off unless asked.
        presencePenalty = p.presencePenalty ?? 0
        frequencyPenalty = p.frequencyPenalty ?? 0
        logitBias = p.logitBias
        // A temperature of 0 means "always the most likely token".
        if temperature <= 0 { doSample = false }
    }

    public func validate() throws {
        guard temperature.isFinite, topP > 0, topP <= 1, minP >= 0, minP <= 1, topK >= 0,
              repetitionPenalty > 0, repetitionPenalty.isFinite else {
            throw GenerationError.invalidParameters("temperature \(temperature), top_k \(topK), top_p \(topP), min_p \(minP), repetition_penalty \(repetitionPenalty): need top_p in (0, 1], min_p in [0, 1], top_k ≥ 0, repetition_penalty > 0")
        }
        guard presencePenalty.isFinite, frequencyPenalty.isFinite else {
            throw GenerationError.invalidParameters("presence_penalty \(presencePenalty), frequency_penalty \(frequencyPenalty): need finite numbers")
        }
        if let (id, bias) = logitBias.first(where: { !$0.value.isFinite }) {
            throw GenerationError.invalidParameters("logit_bias of token \(id) is \(bias): need a finite number")
        }
    }
}

/// Chooses next tokens from logits with Hugging Face's logits-processor semantics, in its order:
/// logit bias (`SequenceBiasLogitsProcessor`), repetition penalty, then temperature, top-k, top-p,
/// min-p, then a multinomial draw; OpenAI's presence and frequency penalties (which Hugging Face
/// does not have) follow the repetition penalty, as in vLLM.
public struct Sampler: Sendable {
    public let settings: SamplingSettings
    private var random: SeededRandom
    /// How many times each id was generated so far (`record(_:)`), for the presence and frequency
    /// penalties.
    private(set) var generatedCounts: [Int: Int] = [:]

    public init(settings: SamplingSettings, seed: UInt64) {
        self.settings = settings
        random = SeededRandom(seed: seed)
    }

    /// Counts `id` as generated: the presence and frequency penalties of later draws apply to it.
    public mutating func record(_ id: Int) {
        guard settings.presencePenalty != 0 || settings.frequencyPenalty != 0 else { return }
        generatedCounts[id, default: 0] += 1
    }

    /// The next token for `logits` (one row over the vocabulary) given every id so far: the most
    /// likely one when not sampling, else a draw from ``distribution(logits:history:)``.
    public mutating func next(logits: [Float], history: [Int]) -> Int {
        if !settings.doSample {
            // Penalties that only lower logits (a repetition penalty of 1 or more: x / p ≤ x,
            // x · p ≤ x after rounding too; presence and frequency penalties ≥ 0) leave a largest
            // logit that none of them touches the largest and the first of its value, so the
            // penalized copy (600 KB a token at the 0.5B's vocabulary) is needed only when one
            // applies to it.
            let best = Sampler.argmax(logits)
            let p = settings.repetitionPenalty
            let openAI = settings.presencePenalty != 0 || settings.frequencyPenalty != 0
            let onlyLower = p >= 1 && settings.presencePenalty >= 0 && settings.frequencyPenalty >= 0
            if onlyLower && settings.logitBias.isEmpty && !(p != 1 && history.contains(best))
                && !(openAI && generatedCounts[best] != nil) { return best }
            return Sampler.argmax(penalized(logits, history: history))
        }
        let candidates = distribution(logits: logits, history: history)
        let u = Float(Double(random.next() >> 11) * 0x1p-53)
        var cumulative: Float = 0
        for c in candidates {
            cumulative += c.probability
            if u < cumulative { return c.id }
        }
        return candidates[candidates.count - 1].id
    }

    /// The distribution the next token is drawn from: the tokens that survive Hugging Face's
    /// logits processors (`SequenceBiasLogitsProcessor` of single tokens, `RepetitionPenaltyLogitsProcessor`, `TemperatureLogitsWarper`,
    /// `TopKLogitsWarper`, `TopPLogitsWarper`, `MinPLogitsWarper`, in that order; the presence
    /// and frequency penalties after the repetition penalty) with their softmax probabilities,
    /// most likely first (ties: lower id first). Without sampling, the most likely token with
    /// probability 1.
    ///
    /// As in HF: top-k keeps every token equal to the k-th largest score; top-p drops the least
    /// likely tokens whose cumulative probability is ≤ 1 - top_p; min-p drops tokens less likely
    /// than min_p × the most likely one's probability; the most likely token always survives.
    public func distribution(logits: [Float], history: [Int]) -> [(id: Int, probability: Float)] {
        var scores = penalized(logits, history: history)
        if !settings.doSample {
            return [(Sampler.argmax(scores), 1)]
        }
        // HF divides every score by the temperature (not a multiply by its inverse: same rounding).
        if settings.temperature != 1 {
            let t = settings.temperature
            for i in scores.indices { scores[i] /= t }
        }
        // Candidates as (score, id), most likely first.
        var candidates: [(logit: Float, id: Int)]
        let k = settings.topK > 0 ? min(settings.topK, scores.count) : scores.count
        if k < scores.count {
            // Everything ≥ the k-th largest score (ties with it included).
            let threshold = Sampler.topK(scores, k).last!.logit
            candidates = []
            for (id, x) in scores.enumerated() where x >= threshold { candidates.append((x, id)) }
        } else {
            candidates = scores.enumerated().map { ($0.element, $0.offset) }
        }
        candidates.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.id < $1.id) }
        var probs = softmax(candidates.map(\.logit))
        if settings.topP < 1 {
            // Ascending cumulative probability (accumulated in Double, as torch's CPU cumsum does),
            // dropping while it is ≤ 1 - top_p; the most likely token stays.
            let limit = 1 - Double(settings.topP)
            var cumulative: Double = 0
            var keep = candidates.count
            for i in stride(from: probs.count - 1, through: 1, by: -1) {
                cumulative += Double(probs[i])
                if cumulative <= limit { keep = i } else { break }
            }
            if keep < candidates.count {
                candidates.removeLast(candidates.count - keep)
                probs = softmax(candidates.map(\.logit))
            }
        }
        if settings.minP > 0 {
            let threshold = settings.minP * probs[0]
            let keep = max(1, probs.prefix { $0 >= threshold }.count)
            if keep < candidates.count {
                candidates.removeLast(candidates.count - keep)
                probs = softmax(candidates.map(\.logit))
            }
        }
        return zip(candidates, probs).map { (id: $0.id, probability: $1) }
    }

    /// The bias and penalties applied to `input`: the logit bias added, then HF's repetition
    /// penalty (every id in `history` has its logit divided by the penalty when positive,
    /// multiplied by it when negative), then OpenAI's (each generated id's logit less the
    /// frequency penalty times its count, then less the presence penalty).
    func penalized(_ input: [Float], history: [Int]) -> [Float] {
        var logits = input
        for (id, bias) in settings.logitBias where id >= 0 && id < logits.count { logits[id] += bias }
        if settings.repetitionPenalty != 1 {
            let p = settings.repetitionPenalty
            for id in Set(history) where id >= 0 && id < logits.count {
                logits[id] = logits[id] < 0 ? logits[id] * p : logits[id] / p
            }
        }
        for (id, count) in generatedCounts where id >= 0 && id < logits.count {
            logits[id] -= settings.frequencyPenalty * Float(count)
            logits[id] -= settings.presencePenalty
        }
        return logits
    }

    /// The log probabilities of `chosen` and of the `top` most likely ids (most likely first, ties:
    /// lower id first) under the model's own distribution, the softmax of `logits` as the model gave
    /// them (before any penalty, temperature or filter, as vLLM reports by default).
    ///
    /// log p(i) = x(i) − max − log Σ exp(x − max), the sum from the vectorised softmax: its largest
    /// probability is 1 / s (s its float sum), and its probabilities added in Double are Σ / s, so
    /// log Σ = −log p(max) + log Σ p, accurate to about 1e-7 whatever order the kernel summed in.
    public static func logprobs(_ logits: [Float], chosen: Int, top: Int) -> TokenLogprobs {
        let best = argmax(logits), largest = logits[best]
        var probabilities = logits
        probabilities.withUnsafeMutableBufferPointer { p in softmaxRow(p.baseAddress!, p.baseAddress!, p.count) }
        var total: Double = 0
        for p in probabilities { total += Double(p) }
        let logSum = Foundation.log(total) - Foundation.log(Double(probabilities[best]))
        func entry(_ id: Int) -> TokenLogprob {
            TokenLogprob(id: id, logprob: Float(Double(logits[id]) - Double(largest) - logSum))
        }
        let alternatives = top > 0 ? topK(logits, min(top, logits.count)).map { entry($0.id) } : []
        return TokenLogprobs(chosen: entry(chosen), top: alternatives)
    }

    /// Index of the largest value (the first one on ties, like torch.argmax); NaNs are passed
    /// over, except a NaN first value, which no value is larger than.
    ///
    /// Vectorised (a batched decode step takes one per sequence over 151,936 logits, on the
    /// thread every other thread waits for): the lanes' maxima, then the first index holding
    /// their maximum.
    public static func argmax(_ v: [Float]) -> Int {
        typealias Lanes = SIMD16<Float>
        guard v.count > 1, !v[0].isNaN else { return 0 }
        return v.withUnsafeBufferPointer { p in
            let whole = p.count / Lanes.scalarCount * Lanes.scalarCount
            return p.baseAddress!.withMemoryRebound(to: Lanes.self, capacity: whole / Lanes.scalarCount) { vectors in
                var lanes = Lanes(repeating: p[0])
                for i in 0..<(whole / Lanes.scalarCount) { lanes.replace(with: vectors[i], where: vectors[i] .> lanes) }
                var largest = lanes[0]
                for lane in 1..<Lanes.scalarCount where lanes[lane] > largest { largest = lanes[lane] }
                for i in whole..<p.count where p[i] > largest { largest = p[i] }
                let target = Lanes(repeating: largest)
                for i in 0..<(whole / Lanes.scalarCount) where any(vectors[i] .== target) {
                    for lane in 0..<Lanes.scalarCount where vectors[i][lane] == largest { return i * Lanes.scalarCount + lane }
                }
                return p[whole...].firstIndex(of: largest)!
            }
        }
    }

    /// The k largest logits, most likely first (ties: lower id first).
    static func topK(_ logits: [Float], _ k: Int) -> [(logit: Float, id: Int)] {
        // A bounded selection: keep a sorted buffer of the best k seen.
        var best: [(logit: Float, id: Int)] = []
        best.reserveCapacity(k + 1)
        for (id, x) in logits.enumerated() {
            if best.count == k, let last = best.last, x <= last.logit { continue }
            var lo = 0, hi = best.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if best[mid].logit >= x { lo = mid + 1 } else { hi = mid }
            }
            best.insert((x, id), at: lo)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}

/// What the generated text must be.
public enum ResponseFormat: String, Sendable, Equatable, CaseIterable {
    /// Anything.
    case text
    /// One JSON object (RFC 8259; whitespace after it allowed), as OpenAI's `json_object`: every
    /// token that would make the text no longer a prefix of one is masked (logit −∞) before the
    /// penalties and the sampling, and the generation ends once the object closes. At most 64
    /// nested containers, 24 whitespace bytes in a row, none before the `{`.
    case jsonObject
}

/// One token's log probability (natural log) under the model's distribution.
public struct TokenLogprob: Sendable, Equatable {
    public var id: Int
    public var logprob: Float

    public init(id: Int, logprob: Float) {
        self.id = id
        self.logprob = logprob
    }
}

/// A step's log probabilities (``GenerateParameters/logprobs``): the sampled token's and the most
/// likely alternatives'.
public struct TokenLogprobs: Sendable, Equatable {
    public var chosen: TokenLogprob
    /// The most likely ids, most likely first (ties: lower id first); as many as asked.
    public var top: [TokenLogprob]

    public init(chosen: TokenLogprob, top: [TokenLogprob]) {
        self.chosen = chosen
        self.top = top
    }
}
