import Dispatch
import Foundation
import Qwen

/// Runs every request's `Generation` on one compute thread (each forward pass already uses every
/// core), continuously batched: each round admits waiting requests up to `maxBatch` running ones,
/// runs at most one prompt (prefill; a chunk of it while other sequences are decoding), then one
/// decode step of every other running sequence in one batched forward pass
/// (`Generation.step(_:)`: each weight matrix read once for all of them).
/// Sequences join and leave between rounds. A request's ids are exactly those it gets alone:
/// the batched pass computes each sequence's logits bit for bit as its own pass would.
/// (llama.cpp's server calls these slots.)
///
/// With a prompt cache, an answer is kept for the conversation's next turn: while nothing else
/// waits or runs, its prompt and answer run again as one prompt, `warmChunk` tokens a round,
/// into the cache (the answer's keys and values as a prefill computes them; its decode steps'
/// round differently, `PromptCache`), so the next turn runs only its new messages.
final class Scheduler: @unchecked Sendable {
    /// What a request's stream carries.
    enum Event: Sendable {
        case step(GenerationStep)
        case finished(GenerationResult)
    }

    /// Why a request was not queued.
    enum Refusal: Error {
        case queueFull(limit: Int)
        case shuttingDown
    }

    /// A submitted request: its events, and a way to stop it (the client has gone).
    struct Ticket: Sendable {
        let events: AsyncThrowingStream<Event, any Error>
        fileprivate let job: Job
        func cancel() { job.cancel() }
    }

    fileprivate final class Job: @unchecked Sendable {
        var generation: Generation
        let continuation: AsyncThrowingStream<Event, any Error>.Continuation
        let submitted: UInt64
        let deadline: UInt64?
        var lastToken: UInt64?
        private let lock = NSLock()
        private var cancelled = false

        init(_ generation: Generation, continuation: AsyncThrowingStream<Event, any Error>.Continuation, timeout: Double?) {
            self.generation = generation
            self.continuation = continuation
            let now = DispatchTime.now().uptimeNanoseconds
            submitted = now
            deadline = timeout.map { now + UInt64($0 * 1e9) }
        }
        func cancel() { lock.lock(); cancelled = true; lock.unlock() }
        var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }
    }

    /// A request that passed its deadline (`timeout` seconds after submission).
    struct TimedOut: Error { let seconds: Double }

    let maxBatch: Int
    let maxQueue: Int
    /// Prompt tokens run per round (`Generation.prefillChunk`); 0: each prompt in one pass.
    let prefillChunk: Int
    /// Whether chunks leave the results unchanged for this model (`QwenModel.chunkedPrefillIsExact`);
    /// if not, prompts run in one pass whatever `prefillChunk` says.
    let chunksAreExact: Bool
    let timeout: Double?
    /// Earlier prompts' caches (only where chunks are exact: a reused prefix is a chunk).
    let promptCache: PromptCache
    /// Whether finished answers run again as prompts while idle, into the prompt cache.
    let warmsAnswers: Bool
    /// Prompt tokens of an answer being warmed run per idle round: a request arriving meanwhile
    /// waits for one such chunk at most.
    static let warmChunk = 32
    /// Answers waiting to be warmed, newest last (older ones are dropped beyond this).
    static let maxAnswersToWarm = 4
    /// Conversations (prompt and answer) to warm, newest last, and the one being warmed; the
    /// scheduler thread's alone.
    private var answersToWarm: [(model: QwenModel, tokens: [Int])] = []
    private var warming: Generation?
    private let metrics: ServerMetrics
    private let condition = NSCondition()
    private var waiting: [Job] = []
    private var running: [Job] = []
    private var shuttingDown = false
    /// While set, nothing is admitted or stepped (tests fill the queue deterministically).
    var isPaused: Bool {
        get { condition.lock(); defer { condition.unlock() }; return paused }
        set { condition.lock(); paused = newValue; condition.signal(); condition.unlock() }
    }
    private var paused = false
    private var thread: Thread?

    init(maxBatch: Int, maxQueue: Int, prefillChunk: Int = 0, chunksAreExact: Bool = false, promptCacheBytes: Int = 0,
         warmsAnswers: Bool = true, timeout: Double?, metrics: ServerMetrics) {
        self.maxBatch = max(1, maxBatch)
        self.prefillChunk = max(0, prefillChunk)
        self.chunksAreExact = chunksAreExact
        promptCache = PromptCache(capacityBytes: chunksAreExact ? promptCacheBytes : 0)
        self.warmsAnswers = warmsAnswers && promptCache.isEnabled
        self.maxQueue = max(0, maxQueue)
        self.timeout = timeout
        self.metrics = metrics
        // The thread holds the scheduler until `shutDown()` lets it end.
        let thread = Thread { self.loop() }
        thread.name = "qwen-scheduler"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// Queues `generation`; its events arrive on the ticket's stream, which ends with
    /// `.finished` or an error (`TimedOut`, a model error). Refuses when more than `maxQueue`
    /// requests would be waiting for a free slot, or while shutting down.
    func submit(_ generation: Generation) throws(Refusal) -> Ticket {
        try submit([generation])[0]
    }

    /// Queues `generations` (a request's choices) together: all of them, or none when they do
    /// not all fit.
    func submit(_ generations: [Generation]) throws(Refusal) -> [Ticket] {
        var jobs: [Job] = [], tickets: [Ticket] = []
        for generation in generations {
            let (events, continuation) = AsyncThrowingStream<Event, any Error>.makeStream()
            let job = Job(generation, continuation: continuation, timeout: timeout)
            // The consumer stopped listening (a dropped stream, a cancelled task): stop the work.
            continuation.onTermination = { [weak job] _ in job?.cancel() }
            jobs.append(job)
            tickets.append(Ticket(events: events, job: job))
        }
        condition.lock()
        defer { condition.unlock() }
        if shuttingDown { throw .shuttingDown }
        let freeSlots = max(0, maxBatch - running.count)
        guard waiting.count + jobs.count <= maxQueue + freeSlots else { throw .queueFull(limit: maxQueue) }
        waiting += jobs
        metrics.queueDepth.record(waiting.count)
        condition.signal()
        return tickets
    }

    /// Requests waiting and running now.
    var load: (waiting: Int, running: Int) {
        condition.lock(); defer { condition.unlock() }
        return (waiting.count, running.count)
    }

    /// Refuses new requests; the ones queued and running finish. The thread exits when idle.
    func shutDown() {
        condition.lock()
        shuttingDown = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while (running.isEmpty && waiting.isEmpty && !shuttingDown && !hasAnswersToWarm) || paused { condition.wait() }
            if running.isEmpty && waiting.isEmpty {
                condition.unlock()
                if shuttingDown { return }
                warmAnswerChunk()
                continue
            }
            while running.count < maxBatch, !waiting.isEmpty { running.append(waiting.removeFirst()) }
            metrics.queueDepth.record(waiting.count)
            metrics.activeSequences.record(running.count)
            let round = running
            condition.unlock()

            // Cancelled and late requests end here; then one prompt runs (so a long prompt holds
            // the running streams back once), then every other running sequence takes one decode
            // step, all in one batched forward pass.
            let live = round.filter(stillWanted)
            let prefill = live.first { $0.generation.needsPrefill }
            let decoding = live.filter { $0 !== prefill && !$0.generation.needsPrefill && !$0.generation.isFinished }
            if let prefill {
                // A prompt about to run for the first time starts after the longest prefix an
                // earlier prompt left in the prompt cache.
                if prefill.generation.cache.count == 0 {
                    let reused = promptCache.reuse(for: &prefill.generation)
                    if reused > 0 { metrics.promptCacheTokens.increment(by: reused) }
                }
                deliver(prefill, Result {
                    // While others decode, a long prompt a chunk per round (no token yet), the
                    // rest with its first token; with no stream to hold back, in one pass.
                    if prefillChunk > 0, chunksAreExact, !decoding.isEmpty,
                       try prefill.generation.prefillChunk(tokens: prefillChunk) {
                        metrics.promptChunks.increment()
                        return nil
                    }
                    let step = try prefill.generation.step()
                    // The prompt has run whole: its cache holds exactly what the prefill computed.
                    if prefill.generation.generatedIds.count == 1 { storePrompt(of: prefill.generation) }
                    return step
                })
            }
            if !decoding.isEmpty {
                metrics.batchSize.record(decoding.count)
                var generations = decoding.map(\.generation)
                let results = Generation.step(&generations)
                for (i, job) in decoding.enumerated() {
                    job.generation = generations[i]
                    deliver(job, results[i])
                }
            }

            condition.lock()
            let finished = running.filter { $0.generation.isFinished }
            running.removeAll { $0.generation.isFinished }
            metrics.activeSequences.record(running.count)
            condition.unlock()
            for job in finished { keepAnswer(of: job.generation) }
        }
    }

    private var hasAnswersToWarm: Bool { warming != nil || !answersToWarm.isEmpty }

    /// Queues a finished generation's prompt and answer to be warmed (not a cancelled or failed
    /// one, nor an answer shorter than a chunk, nor one past the context).
    private func keepAnswer(of generation: Generation) {
        guard warmsAnswers, let reason = generation.stopReason, reason != .cancelled,
              generation.generatedIds.count >= Generation.minimumChunk else { return }
        let tokens = generation.promptIds + generation.generatedIds
        guard tokens.count <= generation.model.maxPositions else { return }
        answersToWarm.append((generation.model, tokens))
        if answersToWarm.count > Self.maxAnswersToWarm { answersToWarm.removeFirst() }
    }

    /// One idle round of warming: the next `warmChunk` tokens of the answer being warmed (the
    /// newest waiting one first, from the longest prefix the prompt cache holds); once they have
    /// all run, its cache goes into the prompt cache. A failure drops it (it only saves time).
    private func warmAnswerChunk() {
        if warming == nil, let next = answersToWarm.popLast() {
            warming = try? Generation(model: next.model, promptIds: next.tokens, parameters: .greedy(maxTokens: 1))
            if warming != nil { _ = promptCache.reuse(for: &warming!) }
        }
        guard var generation = warming else { return }
        warming = nil
        let before = generation.cache.count
        do {
            if try generation.prefillChunk(tokens: Self.warmChunk) {
                metrics.warmedTokens.increment(by: generation.cache.count - before)
                warming = generation
                return
            }
            // The rest (at least `minimumChunk` tokens), with its logits, as a request runs it.
            _ = try generation.step()
            metrics.warmedTokens.increment(by: generation.cache.count - before)
            storePrompt(of: generation)
        } catch {
            return
        }
    }

    /// Keeps `generation`'s prompt in the prompt cache, once the prompt has run whole (its cache
    /// then holds exactly what the prefill computed).
    private func storePrompt(of generation: Generation) {
        promptCache.store(prompt: generation.promptIds, cache: generation.cache.prefix(generation.promptIds.count))
        metrics.promptCacheBytes.record(promptCache.bytes)
    }

    /// Ends `job` when its client has gone or its deadline has passed; true when it goes on.
    private func stillWanted(_ job: Job) -> Bool {
        if job.isCancelled {
            job.generation.cancel()
            job.continuation.finish(throwing: CancellationError())
            return false
        }
        if let deadline = job.deadline, DispatchTime.now().uptimeNanoseconds > deadline {
            job.generation.cancel()
            job.continuation.finish(throwing: TimedOut(seconds: timeout ?? 0))
            return false
        }
        return true
    }

    /// Passes on what a step of `job` gave: its token, then its end.
    private func deliver(_ job: Job, _ result: Result<GenerationStep?, any Error>) {
        switch result {
        case .success(let step):
            if job.generation.generatedIds.count == 1 { metrics.promptTokens.increment(by: job.generation.promptIds.count) }
            if let step {
                let t = DispatchTime.now().uptimeNanoseconds
                if let last = job.lastToken {
                    metrics.interTokenLatency.recordNanoseconds(Int64(t - last))
                } else {
                    metrics.timeToFirstToken.recordNanoseconds(Int64(t - job.submitted))
                }
                job.lastToken = t
                metrics.generatedTokens.increment()
                job.continuation.yield(.step(step))
            }
            if job.generation.isFinished {
                job.continuation.yield(.finished(job.generation.result))
                job.continuation.finish()
            }
        case .failure(let error):
            job.generation.cancel()
            job.continuation.finish(throwing: error)
        }
    }
}
