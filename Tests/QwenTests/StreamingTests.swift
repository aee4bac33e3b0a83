import Foundation
import Testing
@testable import Qwen

/// The async API: streams, cancellation, concurrent generations on one loaded model.
@Suite struct StreamingTests {
    @Test func streamYieldsTokensThenFinished() async throws {
        let f = Fixture.untied
        let model = try await QwenModel.load(directory: f.directory)
        let greedy = try f.greedyIds("q4f16")
        let (tokens, result, after) = try await model.collect(model.generate(promptIds: f.promptIds, parameters: greedyNoStop(16)))
        #expect(tokens.map(\.id) == greedy)
        let finished = try #require(result, "a .finished event")
        #expect(after == 0, "nothing after .finished")
        #expect(finished.generatedTokenIds == greedy)
        #expect(finished.stopReason == .maxTokens)
        #expect(tokens.map(\.text).joined() == finished.text)
        #expect(finished.text == model.tokenizer.decode(greedy, skipSpecialTokens: true))
        let activity = try await model.waitForStreamsToEnd()
        #expect(activity.running == 0 && activity.stopped[.maxTokens] == 1)
    }

    /// `generate(prompt:raw:)`: the fixture's recorded prompt is already rendered
    /// (manifest prompt_text, ids from HF tokenizers), so sent raw it gives ORT's greedy ids. Not
    /// raw, it goes through the chat template as one user message (Qwen2.5's template adds its
    /// default system message), and `generate(messages:)` is the same thing.
    @Test func promptRawAndChatTemplatePaths() async throws {
        let f = Fixture.untied
        let model = try await QwenModel.load(directory: f.directory)
        let greedy = try f.greedyIds("q4f16")
        let raw = try await model.collect(model.generate(prompt: f.promptText, raw: true, parameters: greedyNoStop(16)))
        #expect(raw.result?.promptTokenIds == f.promptIds)
        #expect(raw.result?.generatedTokenIds == greedy)

        let user = [ChatMessage(role: "user", content: "fib(10) in C?")]
        let templated = try model.encode(messages: user)
        #expect(templated.count > f.promptIds.count && Array(templated.suffix(f.promptIds.count)) == f.promptIds,
                "the rendering ends with the user turn and the generation prompt")
        #expect(try model.encode(prompt: "fib(10) in C?") == templated)
        let viaPrompt = try await model.collect(model.generate(prompt: "fib(10) in C?", parameters: greedyNoStop(16)))
        let viaMessages = try await model.collect(model.generate(messages: user, parameters: greedyNoStop(16)))
        var cache = model.makeCache()
        let direct = try model.generate(promptIds: templated, parameters: greedyNoStop(16), cache: &cache)
        #expect(viaPrompt.result?.promptTokenIds == templated)
        #expect(viaPrompt.result?.generatedTokenIds == direct.generatedTokenIds)
        #expect(viaMessages.result?.generatedTokenIds == direct.generatedTokenIds)
        // A system message replaces the default one.
        let withSystem = try model.encode(prompt: "fib(10) in C?", system: "Be brief.")
        #expect(withSystem == (try model.encode(messages: [ChatMessage(role: "system", content: "Be brief.")] + user)))
        #expect(withSystem != templated && Array(withSystem.suffix(f.promptIds.count)) == f.promptIds)
    }

    /// Errors come through the stream as thrown typed errors.
    @Test func streamThrowsTypedErrors() async throws {
        let model = try await QwenModel.load(directory: Fixture.untied.directory)
        await #expect(throws: GenerationError.contextOverflow(tokens: 300, limit: 256)) {
            _ = try await model.collect(model.generate(promptIds: [Int](repeating: 1, count: 300), parameters: greedyNoStop(2)))
        }
        let activity = try await model.waitForStreamsToEnd()
        #expect(activity.running == 0 && activity.failed == 1)
    }

    /// Holds the generation thread after its `n`-th streamed token until `release()` (so that a
    /// fast tiny-model generation cannot finish before its consumer reacts). The consumer runs on
    /// the cooperative pool, which other tests can keep busy for minutes under the sanitizers:
    /// the hold gives up only after 10 minutes (a consumer that never releases is a bug).
    final class Gate: @unchecked Sendable {
        private let lock = NSLock()
        private var tokens = 0
        private let hold: Int
        private let semaphore = DispatchSemaphore(value: 0)
        init(holdAfter n: Int) { hold = n }
        func tokenYielded() {
            lock.lock(); tokens += 1; let wait = tokens == hold; lock.unlock()
            if wait { _ = semaphore.wait(timeout: .now() + 600) }
        }
        func release() { semaphore.signal() }
    }

    /// Breaking out of the `for try await` loop stops the generation: its thread, held after the
    /// 2nd token until the loop is left, ends with `.cancelled` and 2 tokens instead of 200.
    @Test func breakingOutOfTheLoopCancels() async throws {
        let f = Fixture.untied
        let model = try await QwenModel.load(directory: f.directory)
        let gate = Gate(holdAfter: 2)
        model.streamActivity.setTokenGate { gate.tokenYielded() }
        var seen = 0
        for try await event in model.generate(promptIds: f.promptIds, parameters: greedyNoStop(200)) {
            if case .token = event { seen += 1 }
            if seen == 2 { break }
        }
        gate.release()
        #expect(seen == 2)
        let activity = try await model.waitForStreamsToEnd()
        #expect(activity.running == 0)
        #expect(activity.stopped == [.cancelled: 1], "\(activity)")
        #expect(activity.generatedTokens == 2)
    }

    /// Breaking out of the loop stops the generation even while the stream value itself lives on
    /// (a variable in an outer scope, or top-level code, where the sequence outlives the loop):
    /// leaving the loop releases the iterator, and that is what cancels.
    @Test func breakingOutCancelsWhileTheStreamIsStillHeld() async throws {
        let f = Fixture.untied
        let model = try await QwenModel.load(directory: f.directory)
        let gate = Gate(holdAfter: 2)
        model.streamActivity.setTokenGate { gate.tokenYielded() }
        let stream = model.generate(promptIds: f.promptIds, parameters: greedyNoStop(200))
        var seen = 0
        for try await event in stream {
            if case .token = event { seen += 1 }
            if seen == 2 { break }
        }
        gate.release()
        let activity = try await model.waitForStreamsToEnd()
        #expect(activity.stopped == [.cancelled: 1], "\(activity)")
        #expect(activity.generatedTokens == 2)
        withExtendedLifetime(stream) {}
    }

    /// Without the hold, a consumer that stops reading still ends the generation early or it runs
    /// to its end; either way the thread finishes and nothing is left running.
    @Test func abandonedStreamsFinish() async throws {
        let f = Fixture.untied
        let model = try await QwenModel.load(directory: f.directory)
        for try await _ in model.generate(promptIds: f.promptIds, parameters: greedyNoStop(200)) { break }
        let activity = try await model.waitForStreamsToEnd()
        #expect(activity.running == 0)
        #expect(activity.stopped[.cancelled, default: 0] + activity.stopped[.maxTokens, default: 0] == 1)
    }

    /// The prefill reports its progress node by node, rising to 1, on the calling thread; the
    /// decode steps after it report nothing.
    @Test func prefillProgressRisesToOne() throws {
        let f = Fixture.untied
        let model = try QwenModel(directory: f.directory)
        var cache = model.makeCache()
        var seen: [Double] = []
        let result = try model.generate(promptIds: f.promptIds, parameters: greedyNoStop(3), cache: &cache,
                                        onPrefillProgress: { seen.append($0) })
        #expect(result.generatedTokenIds.count == 3)
        #expect(seen.count > 10 && seen == seen.sorted() && seen.first! > 0 && seen.last == 1, "\(seen.prefix(5)) … \(seen.suffix(2))")
    }

    /// Cancelling the consuming task ends the stream and the generation (held after its 1st token
    /// until the task is cancelled).
    @Test func cancellingTheTaskCancels() async throws {
        let f = Fixture.untied
        let model = try await QwenModel.load(directory: f.directory)
        let gate = Gate(holdAfter: 1)
        model.streamActivity.setTokenGate { gate.tokenYielded() }
        let (firstToken, signal) = AsyncStream<Void>.makeStream()
        /// How the consumer's loop ended: tokens seen, whether `.finished` came, the error thrown.
        let consumer = Task { () -> (Int, Bool, Error?) in
            var count = 0, finished = false
            do {
                for try await event in model.generate(promptIds: f.promptIds, parameters: greedyNoStop(200)) {
                    switch event {
                    case .token:
                        count += 1
                        if count == 1 { signal.yield(()) }
                    case .finished:
                        finished = true
                    }
                }
            } catch {
                return (count, finished, error)
            }
            return (count, finished, nil)
        }
        for await _ in firstToken { break }
        consumer.cancel()
        let (count, finished, error) = await consumer.value
        gate.release()
        let activity = try await model.waitForStreamsToEnd()
        #expect(activity.running == 0)
        #expect(activity.stopped == [.cancelled: 1], "\(activity)")
        #expect(activity.generatedTokens == 1)
        #expect(count == 1)
        // The consumer can tell cancellation from completion: no `.finished`, a CancellationError.
        #expect(!finished)
        #expect(error is CancellationError, "ended with \(String(describing: error))")
    }

    /// Eight generations at once on one loaded model (each with its own KV cache, different
    /// prompts and settings) equal the same eight run one after another, twice over.
    @Test func concurrentGenerationsEqualSequentialOnes() async throws {
        let f = Fixture.untied
        let model = try await QwenModel.load(directory: f.directory)
        let jobs: [(prompt: [Int], parameters: GenerateParameters)] = [
            (f.promptIds, greedyNoStop(24)),
            (Array(f.promptIds.prefix(15)), SamplingTests.sampling(seed: 11, maxTokens: 24)),
            (f.promptIds + [369, 480, 448], SamplingTests.sampling(seed: 12, topK: 20, temperature: 0.7, topP: 0.8, penalty: 1.1, maxTokens: 24)),
            (Array(f.promptIds.reversed()), SamplingTests.sampling(seed: 13, temperature: 1.2, minP: 0.05, maxTokens: 24)),
            (Array(f.promptIds.prefix(6)), greedyNoStop(40)),
            (f.promptIds + f.promptIds, SamplingTests.sampling(seed: 14, topK: 5, maxTokens: 24)),
            (Array(f.promptIds.dropFirst(4)), SamplingTests.sampling(seed: 15, temperature: 0.9, topP: 0.95, maxTokens: 32)),
            ([7], SamplingTests.sampling(seed: 16, penalty: 1.3, maxTokens: 24)),
        ]
        var sequential: [GenerationResult] = []
        for job in jobs {
            var cache = model.makeCache()
            sequential.append(try model.generate(promptIds: job.prompt, parameters: job.parameters, cache: &cache))
        }
        #expect(sequential[0].generatedTokenIds.prefix(16) == ArraySlice(try f.greedyIds("q4f16")))
        #expect(Set(sequential.map(\.generatedTokenIds)).count == jobs.count)

        for round in 0..<2 {
            let concurrent = try await withThrowingTaskGroup(of: (Int, GenerationResult?).self) { group in
                for (i, job) in jobs.enumerated() {
                    group.addTask {
                        (i, try await model.collect(model.generate(promptIds: job.prompt, parameters: job.parameters)).result)
                    }
                }
                var results = [GenerationResult?](repeating: nil, count: jobs.count)
                for try await (i, r) in group { results[i] = r }
                return results
            }
            for i in jobs.indices {
                #expect(concurrent[i]?.generatedTokenIds == sequential[i].generatedTokenIds, "round \(round) job \(i)")
                #expect(concurrent[i]?.text == sequential[i].text, "round \(round) job \(i)")
            }
        }
        let activity = try await model.waitForStreamsToEnd()
        #expect(activity.running == 0 && activity.stopped[.maxTokens] == 2 * jobs.count)
    }
}
