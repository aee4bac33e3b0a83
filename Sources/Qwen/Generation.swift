import Foundation

/// What one `Generation.step()` produced.
public struct GenerationStep: Sendable, Equatable {
    /// The sampled id (a stop token too: it ends the generation and adds no text of its own).
    public var tokenId: Int
    /// The text this step releases: the token's text, less what is held back while a character
    /// or a possible stop string is incomplete, plus everything held back once the generation
    /// ends. The steps' texts add up to the result's text.
    public var text: String
    /// Whether `tokenId` is a stop token (eos).
    public var isStopToken: Bool
    /// The token's log probability and its most likely alternatives', when
    /// ``GenerateParameters/logprobs`` asks for them.
    public var logprobs: TokenLogprobs? = nil
}

/// One generation advanced a forward pass at a time: the first `step()` runs the prompt (the part
/// not already in the cache) and samples the first token, every later one runs the last token and
/// samples the next. `QwenModel.generate` is a loop over it; a scheduler (QwenServer) interleaves
/// many, so a request served among others produces exactly the ids it would produce alone.
///
/// ```swift
/// var generation = try Generation(model: model, promptIds: ids, parameters: .greedy(maxTokens: 32))
/// while let step = try generation.step() { print(step.text, terminator: "") }
/// print(generation.result.stopReason)
/// ```
public struct Generation: Sendable {
    public let model: QwenModel
    public let promptIds: [Int]
    /// Generated ids, the stop token included when there was one.
    public private(set) var generatedIds: [Int] = []
    /// Why it ended; nil while it runs.
    public private(set) var stopReason: StopReason?
    public private(set) var stats: GenerationStats
    /// The KV cache: the prompt and the generated ids once finished (keep it for the next turn).
    public private(set) var cache: KVCache

    private var sampler: Sampler
    private let stopIds: Set<Int>
    private let maxTokens: Int
    /// Alternatives per step's log probabilities (`GenerateParameters.logprobs`); nil: none.
    private let logprobAlternatives: Int?
    /// With an output pattern (`GenerateParameters.outputPattern`, `responseFormat`): where the
    /// text is in it, the pattern as bytes (which the state refers to), and the tokens' bytes.
    private var pattern: PatternState?
    private let patternProgram: PatternProgram?
    private let tokenIndex: TokenBytesIndex?
    /// Kept tokens (bits by id) of pattern states whose mask depends on them alone
    /// (`PatternState.maskKey`): a sampled text inside a pattern revisits a few automaton
    /// states, each walked over the vocabulary once (at most `maskCacheSize` kept).
    private var maskCache: [Int: [UInt64]] = [:]
    private static let maskCacheSize = 64
    private var detokenizer: StreamingDetokenizer
    private var stopStrings: StopStringMatcher
    /// Text released so far (kept only with stop strings: it is then the result's text).
    private var released = ""
    private var history: [Int]

    /// Validates the prompt and parameters; runs nothing yet. `cache` may hold an earlier turn:
    /// its longest common prefix with the prompt is reused and only the rest is run.
    public init(model: QwenModel, promptIds: [Int], parameters: GenerateParameters = GenerateParameters(),
                cache: KVCache? = nil) throws {
        guard !promptIds.isEmpty else { throw GenerationError.emptyPrompt }
        guard promptIds.count <= model.maxPositions else {
            throw GenerationError.contextOverflow(tokens: promptIds.count, limit: model.maxPositions)
        }
        guard parameters.maxTokens >= 0 else { throw GenerationError.invalidParameters("maxTokens must be ≥ 0") }
        if let n = parameters.logprobs, n < 0 { throw GenerationError.invalidParameters("logprobs must be ≥ 0, got \(n)") }
        let vocabulary = model.decoder.vocabularySize
        if let bad = promptIds.first(where: { $0 < 0 || $0 >= vocabulary })
            ?? parameters.logitBias.keys.filter({ $0 < 0 || $0 >= vocabulary }).min() {
            throw GenerationError.invalidTokenID(bad, vocabularySize: vocabulary)
        }
        let settings = SamplingSettings(parameters, defaults: model.generationConfig)
        try settings.validate()
        self.model = model
        self.promptIds = promptIds
        sampler = Sampler(settings: settings, seed: parameters.seed ?? UInt64.random(in: .min ... .max))
        stopIds = parameters.stopTokenIds ?? model.eosTokenIds
        maxTokens = parameters.maxTokens
        logprobAlternatives = parameters.logprobs
        if let wanted = parameters.outputPattern ?? (parameters.responseFormat == .jsonObject ? .jsonObject : nil) {
            if let problem = wanted.problem { throw GenerationError.invalidParameters("output pattern: \(problem)") }
            let program = PatternProgram(wanted)
            patternProgram = program
            pattern = PatternState(program)
            tokenIndex = model.tokenBytesIndex
        } else {
            patternProgram = nil
            pattern = nil
            tokenIndex = nil
        }
        detokenizer = model.tokenizer.makeStreamingDetokenizer(skipSpecialTokens: true)
        stopStrings = StopStringMatcher(parameters.stopStrings)
        history = promptIds

        // Reuse the cached prefix; at least the last prompt token runs, for its logits.
        var cache = cache ?? model.makeCache()
        var common = 0
        while common < min(cache.tokens.count, promptIds.count - 1), cache.tokens[common] == promptIds[common] { common += 1 }
        cache.truncate(to: common)
        self.cache = cache
        stats = GenerationStats(promptTokens: promptIds.count, prefilledTokens: promptIds.count - common,
                                prefillSeconds: 0, generatedTokens: 0, decodeSeconds: 0, peakRSSMegabytes: 0)
        if maxTokens == 0 { finish(.maxTokens) }
    }

    /// Before the prompt has run: starts from the longest common prefix of `cache` and the prompt,
    /// at most `limit` positions, if that is longer than what the generation's cache already
    /// holds; returns the positions the prompt now starts after. A server keeps the caches of
    /// earlier prompts this way (`QwenServer`'s prompt cache): where prompt chunks are exact
    /// (`QwenModel.chunkedPrefillIsExact`), a prefix computed by an earlier prompt's prefill
    /// and a rest of at least `minimumChunk` tokens give the logits of the whole prompt run at
    /// once, bit for bit.
    @discardableResult
    public mutating func reusePrefix(of cache: KVCache, upTo limit: Int) -> Int {
        guard needsPrefill else { return self.cache.count }
        let bound = min(limit, cache.tokens.count, promptIds.count - 1)
        var common = 0
        while common < bound, cache.tokens[common] == promptIds[common] { common += 1 }
        guard common > self.cache.count else { return self.cache.count }
        var reused = cache
        reused.truncate(to: common)
        self.cache = reused
        stats.prefilledTokens = promptIds.count - common
        return common
    }

    public var isFinished: Bool { stopReason != nil }
    /// Prompt tokens not in the cache yet (0 once the prompt has run).
    public var pendingPromptTokens: Int { isFinished || !generatedIds.isEmpty ? 0 : promptIds.count - cache.count }

    /// The fewest prompt tokens a chunk (and the rest after the last chunk) runs
    /// (`prefillChunk(tokens:)`): three, so that every product takes its many-row kernel
    /// (MatMulNBits, MatMulBnb4 and the float16 MatMul compute one or two rows with their
    /// single-row kernels, of other numerics). Where the products compute each row independently
    /// of the row count (`QwenModel.chunkedPrefillIsExact`), a prompt run in chunks of any sizes
    /// from this gives the logits and caches of one run whole, bit for bit: the attention
    /// computes each position on its own (`FusedAttention`) (`BatchedDecodeTests`).
    public static let minimumChunk = 3

    /// Runs the next `tokens` prompt tokens (at least `minimumChunk`), sampling nothing: a long
    /// prompt in chunks, between which a scheduler steps other sequences. Runs nothing and
    /// returns false when the rest of the prompt is short enough for `step()` (fewer than the
    /// chunk plus `minimumChunk` tokens), which runs it and samples the first token. Exact only
    /// where `model.chunkedPrefillIsExact`.
    public mutating func prefillChunk(tokens: Int) throws -> Bool {
        let size = max(tokens, Generation.minimumChunk)
        guard pendingPromptTokens >= size + Generation.minimumChunk else { return false }
        let t0 = DispatchTime.now().uptimeNanoseconds
        _ = try model.decoder.forward(Array(promptIds[cache.count..<(cache.count + size)]), cache: &cache)
        model.streamActivity.cacheUpdated(cache)
        stats.prefillSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return true
    }
    /// Whether the prompt has not been run yet (the next step is the prefill).
    public var needsPrefill: Bool { generatedIds.isEmpty && !isFinished }

    /// Runs one forward pass and samples one token; nil once finished. `onPrefillProgress` gets
    /// the fraction of the prompt's forward pass done (first step only; see `QwenModel.generate`).
    public mutating func step(onPrefillProgress: ((Double) -> Void)? = nil) throws -> GenerationStep? {
        guard !isFinished else { return nil }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let logits: [Float]
        if let last = generatedIds.last {
            logits = try model.decoder.forward([last], cache: &cache)
        } else {
            logits = try model.decoder.forward(Array(promptIds[cache.count...]), cache: &cache, progress: onPrefillProgress)
        }
        model.streamActivity.cacheUpdated(cache)
        return accept(logits, startedAt: t0)
    }

    /// One step of each of `generations` (of one model), with the decode steps in one batched
    /// forward pass (`Session.runBatch`: every product reads its weights once for all of them);
    /// a generation still to run its prompt runs it alone. Each result is exactly what that
    /// generation's own `step()` gives (nil once finished, or its error); should the batched
    /// pass fail, every generation steps alone, so an error is reported for its own sequence.
    public static func step(_ generations: inout [Generation]) -> [Result<GenerationStep?, any Error>] {
        var results = [Result<GenerationStep?, any Error>](repeating: .success(nil), count: generations.count)
        let decoding = generations.indices.filter { !generations[$0].isFinished && !generations[$0].generatedIds.isEmpty }
        var batched = Set<Int>()
        if decoding.count > 1, let model = generations.first?.model, decoding.allSatisfy({ generations[$0].model === model }) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            var caches = decoding.map { generations[$0].cache }
            if let logits = try? model.decoder.forward(batch: decoding.map { generations[$0].generatedIds.last! }, caches: &caches) {
                for (i, g) in decoding.enumerated() {
                    generations[g].cache = caches[i]
                    model.streamActivity.cacheUpdated(caches[i])
                    results[g] = .success(generations[g].accept(logits[i], startedAt: t0))
                }
                batched = Set(decoding)
            }
        }
        for g in generations.indices where !batched.contains(g) {
            results[g] = Result { try generations[g].step() }
        }
        return results
    }

    /// Samples the next token from the forward pass's `logits` (begun at `t0`) and updates the
    /// text, the stop conditions and the timings.
    private mutating func accept(_ logits: [Float], startedAt t0: UInt64) -> GenerationStep {
        let isPrefill = generatedIds.isEmpty
        let t1 = DispatchTime.now().uptimeNanoseconds
        if isPrefill { stats.prefillSeconds += Double(t1 - t0) / 1e9 }
        var next: Int
        var cannotContinue = false
        if let state = pattern, let index = tokenIndex {
            // Greedy: the most likely token when it fits (the argmax of the masked logits then);
            // otherwise the sampler on the logits with every token that does not fit at −∞.
            // Where the pattern may end (after a copy of `.oneOrMore`), the stop tokens fit too.
            next = -1
            if !sampler.settings.doSample {
                let best = sampler.next(logits: logits, history: history)
                if index.allows(best, after: state) || state.canEnd && stopIds.contains(best) { next = best }
            }
            if next < 0 {
                var masked: [Float]
                if let key = state.maskKey {
                    let kept = maskCache[key] ?? index.kept(after: state, below: logits.count)
                    if maskCache.count < Self.maskCacheSize { maskCache[key] = kept }
                    masked = index.masked(logits, kept: kept)
                } else {
                    masked = index.masked(logits, after: state)
                }
                if state.canEnd { for id in stopIds where id < logits.count { masked[id] = logits[id] } }
                next = sampler.next(logits: masked, history: history)
            }
            // No token fits (a vocabulary without every single byte): the generation ends.
            cannotContinue = index.bytes[next].isEmpty || !pattern!.accept(index.bytes[next])
        } else {
            next = sampler.next(logits: logits, history: history)
        }
        sampler.record(next)
        generatedIds.append(next)
        history.append(next)

        var step = GenerationStep(tokenId: next, text: "", isStopToken: stopIds.contains(next) || cannotContinue)
        if let top = logprobAlternatives { step.logprobs = Sampler.logprobs(logits, chosen: next, top: top) }
        if step.isStopToken {
            finish(.stopToken)
            step.text = release(detokenizer.finish())
        } else {
            let (text, stopped) = stopStrings.append(detokenizer.append(next))
            if !stopStrings.isEmpty { released += text }
            step.text = text
            if stopped {
                finish(.stopString)
            } else if pattern?.isComplete == true {
                finish(.formatComplete)
                step.text += release(detokenizer.finish())
            } else if generatedIds.count >= maxTokens {
                finish(.maxTokens)
                step.text += release(detokenizer.finish())
            } else if cache.count + 1 > model.maxPositions {
                finish(.contextLimit)
                step.text += release(detokenizer.finish())
            }
        }
        // Decode time: everything after the prompt's forward pass (as `decodeTokensPerSecond` reads it).
        stats.decodeSeconds += Double(DispatchTime.now().uptimeNanoseconds - (isPrefill ? t1 : t0)) / 1e9
        return step
    }

    /// Ends the generation now (the consumer has gone).
    public mutating func cancel() {
        if !isFinished { finish(.cancelled) }
    }

    /// The outcome so far (complete once `isFinished`).
    public var result: GenerationResult {
        let text: String
        if stopStrings.isEmpty {
            let textIds = stopReason == .stopToken ? Array(generatedIds.dropLast()) : generatedIds
            text = model.tokenizer.decode(textIds, skipSpecialTokens: true)
        } else {
            text = released
        }
        return GenerationResult(promptTokenIds: promptIds, generatedTokenIds: generatedIds, text: text,
                                stopReason: stopReason ?? .cancelled, stats: stats)
    }

    /// At the end: passes the detokenizer's tail through the stop strings and releases everything
    /// still held back.
    private mutating func release(_ tail: String) -> String {
        var (text, stopped) = stopStrings.append(tail)
        if stopped { stopReason = .stopString } else { text += stopStrings.finish() }
        if !stopStrings.isEmpty { released += text }
        return text
    }

    private mutating func finish(_ reason: StopReason) {
        stopReason = reason
        stats.generatedTokens = generatedIds.count
        stats.peakRSSMegabytes = peakResidentMegabytes()
    }
}
