import Foundation
import Runtime
import Testing
@testable import Qwen

#if canImport(Glibc)
import Glibc
#endif

/// Load and faults on the committed fixture: cancellation frees the KV cache, long runs keep
/// memory flat, model files changed on disk while mapped are refused instead of crashing.
@Suite struct LoadAndFaultTests {
    /// Weak references to the tensors of the KV cache a generation last produced.
    final class CacheWatch: @unchecked Sendable {
        private final class Weak {
            weak var storage: TensorStorage?
            init(_ s: TensorStorage) { storage = s }
        }
        private let lock = NSLock()
        private var tensors: [Weak] = []
        private(set) var updates = 0
        private(set) var positions = 0

        func record(_ cache: KVCache) {
            lock.lock()
            tensors = cache.tensors.values.map { Weak($0.storage) }
            updates += 1
            positions = cache.count
            lock.unlock()
        }

        /// (tensors watched, tensors still alive)
        var alive: (watched: Int, alive: Int) {
            lock.lock(); defer { lock.unlock() }
            return (tensors.count, tensors.filter { $0.storage != nil }.count)
        }
    }

    /// A stream broken off after 3 tokens (its thread held there until the loop is left) ends as
    /// cancelled, its KV cache tensors are freed, and the model then gives the same ids as
    /// before the cancelled run (ORT's greedy ids).
    @Test func cancellingMidwayFreesTheKVCacheAndLeavesTheModelUsable() async throws {
        let f = Fixture.untied
        let model = try await QwenModel.load(directory: f.directory)
        let greedy = try f.greedyIds("q4f16")
        var cache = model.makeCache()
        let before = try model.generate(promptIds: f.promptIds, parameters: greedyNoStop(16), cache: &cache)
        #expect(before.generatedTokenIds == greedy)

        let watch = CacheWatch()
        model.streamActivity.setCacheObserver { watch.record($0) }
        let gate = StreamingTests.Gate(holdAfter: 3)
        model.streamActivity.setTokenGate { gate.tokenYielded() }
        var seen = 0
        for try await event in model.generate(promptIds: f.promptIds, parameters: greedyNoStop(200)) {
            if case .token = event { seen += 1 }
            if seen == 3 { break }
        }
        gate.release()
        let activity = try await model.waitForStreamsToEnd()
        model.streamActivity.setTokenGate(nil)
        model.streamActivity.setCacheObserver(nil)
        #expect(activity.running == 0 && activity.stopped == [.cancelled: 1], "\(activity)")
        #expect(activity.generatedTokens == 3)
        // The prefill and two decode steps ran; the cache then held prompt + 2 positions.
        #expect(watch.updates == 3)
        #expect(watch.positions == f.promptIds.count + 2)
        let (watched, alive) = watch.alive
        #expect(watched == 4, "2 layers × (key, value)")
        #expect(alive == 0, "\(alive) of the cancelled generation's \(watched) KV cache tensors are still alive")

        var fresh = model.makeCache()
        let after = try model.generate(promptIds: f.promptIds, parameters: greedyNoStop(16), cache: &fresh)
        #expect(after.generatedTokenIds == before.generatedTokenIds)
    }

    // MARK: 2,000 decode steps

    /// Resident memory now (not the peak), from /proc/self/statm.
    static func residentBytes() -> Int? {
        #if os(Linux)
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        #else
        return nil
        #endif
    }

    /// 2,000 decode steps on the fixture keep resident memory flat after warm-up. The fixture's
    /// context is 256 positions, so the steps are 10 generations of 200 decode steps each (22-token
    /// prompt + 201 tokens), with different sampling seeds; every generation's KV cache must be
    /// freed when it ends, and RSS after the last generation may exceed RSS after the warm-up
    /// (2 generations) by at most 4 MB. A KV cache kept per generation would be 10 × 172 KB; a
    /// logits row kept per step 2,000 × 2 KB; a present tensor kept per step hundreds of MB.
    ///
    /// Other tests run in parallel in the test process and move its RSS, so on Linux the
    /// measurement runs in a child process: this test re-runs the test binary with only itself
    /// selected and `QWEN_SOAK_CHILD=1`, and checks that the child passed. (Release: ~1 s.)
    @Test func twoThousandDecodeStepsKeepRSSFlat() throws {
        #if os(Linux)
        if ProcessInfo.processInfo.environment["QWEN_SOAK_CHILD"] == nil {
            try runSoakInChildProcess()
            return
        }
        #endif
        try soak()
    }

    private func runSoakInChildProcess() throws {
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = ["--testing-library", "swift-testing", "--filter", "twoThousandDecodeStepsKeepRSSFlat"]
        var environment = ProcessInfo.processInfo.environment
        environment["QWEN_SOAK_CHILD"] = "1"
        // Under AddressSanitizer, freed memory sits in a 256 MB quarantine and RSS swings by tens
        // of MB; without the quarantine it behaves like malloc (no effect without ASan).
        environment["ASAN_OPTIONS"] = (environment["ASAN_OPTIONS"].map { $0 + ":" } ?? "") + "quarantine_size_mb=0"
        child.environment = environment
        let output = Pipe()
        child.standardOutput = output
        child.standardError = output
        try child.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        let report = text.split(separator: "\n").filter { $0.contains("soak:") || $0.contains("✘") || $0.contains("passed") }
        #expect(child.terminationStatus == 0, "the soak child failed:\n\(text.suffix(4000))")
        #expect(text.contains("soak: 2000 decode steps"), "the child did not run the soak:\n\(text.suffix(4000))")
        print(report.joined(separator: "\n"))
    }

    private func soak() throws {
        let f = Fixture.untied
        let model = try f.model()
        let watch = CacheWatch()
        model.streamActivity.setCacheObserver { watch.record($0) }
        defer { model.streamActivity.setCacheObserver(nil) }
        var steps = 0
        var samples: [(steps: Int, rss: Int)] = []
        var generation = 0
        while steps < 2000 {
            do {
                var cache = model.makeCache()
                let parameters = SamplingTests.sampling(seed: UInt64(100 + generation), temperature: 0.8, maxTokens: 201)
                let result = try model.generate(promptIds: f.promptIds, parameters: parameters, cache: &cache)
                #expect(result.generatedTokenIds.count == 201 && result.stopReason == .maxTokens)
                steps += result.generatedTokenIds.count - 1
            }
            let (watched, alive) = watch.alive
            #expect(watched == 4 && alive == 0, "generation \(generation): \(alive) of \(watched) KV cache tensors alive after it ended")
            generation += 1
            samples.append((steps, try #require(Self.residentBytes())))
        }
        let warm = samples[1].rss
        let peak = samples[2...].map(\.rss).max()!
        let last = samples.last!.rss
        let mb = { (bytes: Int) in String(format: "%.2f MB", Double(bytes) / 1_048_576) }
        print("soak: \(steps) decode steps in \(generation) generations; RSS after warm-up \(mb(warm)), "
              + "max after \(mb(peak)), last \(mb(last)); samples \(samples.map { mb($0.rss) })")
        #expect(steps == 2000)
        #expect(peak - warm <= 4 << 20, "RSS grew by \(mb(peak - warm)) after warm-up")
    }

    // MARK: Model files changed on disk

    /// A copy of the fixture (q4f16 graph + external data, config, tokenizer) in a temporary folder.
    final class FixtureCopy {
        let url: URL
        init() throws {
            url = FileManager.default.temporaryDirectory.appendingPathComponent("qwen-fault-\(UUID().uuidString)")
            let fm = FileManager.default
            try fm.createDirectory(at: url.appendingPathComponent("onnx"), withIntermediateDirectories: true)
            let source = Fixture.untied.directory
            for file in ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                         "onnx/model_q4f16.onnx", "onnx/model_q4f16.onnx_data", "onnx/model.onnx"] {
                try fm.copyItem(at: source.appendingPathComponent(file), to: url.appendingPathComponent(file))
            }
        }
        deinit { try? FileManager.default.removeItem(at: url) }
        func path(_ file: String) -> String { url.appendingPathComponent(file).path }

        /// Writes `bytes` to a new file and renames it over `file` (a new inode at the same path).
        func replaceByRename(_ file: String, with bytes: [UInt8]) throws {
            let temporary = path(file + ".new")
            try Data(bytes).write(to: URL(fileURLWithPath: temporary))
            #expect(rename(temporary, path(file)) == 0)
        }
    }

    func size(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
    }

    /// Files replaced by rename (what `mv`, `cp` to a temp name + rename, or a package update do)
    /// do not touch the loaded model: its mappings keep the old inodes and it gives the same ids.
    /// Loading again sees the new files, and a truncated or short file is refused at load.
    @Test func filesReplacedByRenameLeaveTheLoadedModelAlone() throws {
        let copy = try FixtureCopy()
        let model = try QwenModel(directory: copy.url)
        let greedy = try Fixture.untied.greedyIds("q4f16")
        var cache = model.makeCache()
        #expect(try model.generate(promptIds: Fixture.untied.promptIds, parameters: greedyNoStop(16), cache: &cache).generatedTokenIds == greedy)

        let graph = [UInt8](try Data(contentsOf: URL(fileURLWithPath: copy.path("onnx/model_q4f16.onnx"))))
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: copy.path("onnx/model_q4f16.onnx_data"))))
        try copy.replaceByRename("onnx/model_q4f16.onnx", with: Array(graph.prefix(graph.count / 2)))
        try copy.replaceByRename("onnx/model_q4f16.onnx_data", with: [UInt8](repeating: 0xFF, count: data.count / 3))

        cache = model.makeCache()
        #expect(try model.generate(promptIds: Fixture.untied.promptIds, parameters: greedyNoStop(16), cache: &cache).generatedTokenIds == greedy,
                "the loaded model still reads the files it mapped")

        // Loading now: the truncated graph file is malformed protobuf.
        #expect {
            _ = try QwenModel(directory: copy.url)
        } throws: { error in
            guard case ONNXError.malformed(let file, _, _, _) = error else { return false }
            return file.hasSuffix("onnx/model_q4f16.onnx")
        }
        // With the graph back, the short external data file is refused: the graph's tensors
        // point past its end.
        try copy.replaceByRename("onnx/model_q4f16.onnx", with: graph)
        #expect {
            _ = try QwenModel(directory: copy.url)
        } throws: { error in
            guard case ONNXError.invalidExternalData(_, let location, let reason) = error else { return false }
            return location == "model_q4f16.onnx_data" && reason.contains("outside the file")
        }
    }

    /// A mapped file truncated in place (`truncate`, `>` redirection, `cp` onto it) would make
    /// the next read of a lost page raise SIGBUS; rewritten in place it would feed other weights.
    /// The loaded model checks its files before every forward pass and refuses with
    /// `ONNXError.fileChanged`: here the file is truncated during a generation (from its token
    /// callback), and the next decode step, later generations (the stream API too) and loading
    /// again are all refused with typed errors.
    @Test(arguments: ["model_q4f16.onnx_data", "model.onnx"])
    func filesTruncatedInPlaceAreRefusedNotACrash(file: String) async throws {
        let copy = try FixtureCopy()
        let onnx = file == "model.onnx" ? "model.onnx" : "model_q4f16.onnx"
        let model = try QwenModel(directory: copy.url, options: LoadOptions(onnxFile: onnx))
        let path = copy.path("onnx/\(file)")
        let original = try size(path)

        func isFileChanged(_ error: any Error) -> Bool {
            guard case ONNXError.fileChanged(let changed, let reason) = error else { return false }
            return changed.hasSuffix(file) && reason.contains("\(original) bytes when loaded") && reason.contains("\(original / 2) bytes now")
        }
        var tokens = 0
        var cache = model.makeCache()
        #expect(performing: {
            try model.generate(promptIds: Fixture.untied.promptIds, parameters: greedyNoStop(16), cache: &cache) { _, _ in
                tokens += 1
                if tokens == 2 { #expect(truncate(path, off_t(original / 2)) == 0) }
                return true
            }
        }, throws: isFileChanged)
        #expect(tokens == 2, "the decode step after the truncation was refused")
        #expect(cache.count == Fixture.untied.promptIds.count + 1, "the cache keeps what ran before")

        cache = model.makeCache()
        #expect(performing: {
            try model.generate(promptIds: Fixture.untied.promptIds, parameters: greedyNoStop(4), cache: &cache)
        }, throws: isFileChanged)
        await #expect(performing: {
            _ = try await model.collect(model.generate(promptIds: Fixture.untied.promptIds, parameters: greedyNoStop(4)))
        }, throws: isFileChanged)
        #expect(throws: ONNXError.self) { _ = try QwenModel(directory: copy.url, options: LoadOptions(onnxFile: onnx)) }
    }

    /// Rewritten in place at the same size (the modification time moves): refused as well.
    @Test func fileRewrittenInPlaceIsRefused() throws {
        let copy = try FixtureCopy()
        let model = try QwenModel(directory: copy.url)
        let path = copy.path("onnx/model_q4f16.onnx_data")
        // File times have a coarse clock (a few ms): make sure the rewrite is later than the copy.
        Thread.sleep(forTimeInterval: 0.05)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.write(contentsOf: Data(repeating: 0, count: 4096))
        try handle.close()
        var cache = model.makeCache()
        #expect {
            try model.generate(promptIds: Fixture.untied.promptIds, parameters: greedyNoStop(4), cache: &cache)
        } throws: { error in
            guard case ONNXError.fileChanged(let changed, let reason) = error else { return false }
            return changed.hasSuffix("model_q4f16.onnx_data") && reason.contains("rewritten in place")
        }
    }
}
