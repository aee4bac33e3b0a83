import Foundation
import Testing
import Kernels
import ONNX
@testable import Runtime

/// The packed-weight cache (`PackedWeightCache`) on the committed tiny exports: written on the
/// first load, used on the next (nothing packed afresh, identical logits, equal to ONNX Runtime's),
/// and ignored and rewritten when it is damaged, garbage, or made from other weights; a cache
/// file truncated under a running session is refused before the next run.
@Suite struct PackedWeightCacheTests {
    static let root = FixtureGraphTests.root

    struct Model: Sendable, CustomStringConvertible {
        let file: String, referenceName: String, tolerance: Float
        var description: String { file }
    }

    static let models = [
        Model(file: "onnx/model_q4f16.onnx", referenceName: "q4f16", tolerance: 0.03),   // external data, float16 scales
        Model(file: "onnx/model_q4.onnx", referenceName: "q4", tolerance: 1e-4),         // inline weights, float32 scales
    ]

    static func session(_ m: Model, cache: URL) throws -> Session {
        var options = SessionOptions()
        options.lastPositionOnlyOutput = "logits"
        options.packedWeightCacheDirectory = cache.path
        options.packedWeightCacheMinimumBytes = 0
        return try Session(path: root.appendingPathComponent("tiny-qwen2/\(m.file)").path, options: options)
    }

    static func lastLogits(_ s: Session) throws -> [Float] {
        var feeds: [String: Tensor] = [:]
        for spec in s.inputs {
            feeds[spec.name] = try FixtureGraphTests.npy("tiny-qwen2/reference/feeds/prefill/\(spec.name).npy")
        }
        return try s.run(feeds)["logits"]!.floats()
    }

    @Test(arguments: models)
    func writtenOnceThenUsedAndRewrittenWhenDamaged(_ m: Model) throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("q4x8-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }

        let first = try PackedWeightCacheTests.session(m, cache: cache)
        let firstCache = try #require(first.weightCache)
        #expect(firstCache.bytesPackedAfresh > 0 || qk_packedKernelsMissing, "\(m): nothing was packed")
        let reference = try FixtureGraphTests.npy("tiny-qwen2/reference/\(m.referenceName)/disable_all/prefill_logits.npy").lastFloats(512)
        let logits = try PackedWeightCacheTests.lastLogits(first)
        #expect(maxAbsDiff(logits, reference) <= m.tolerance, "\(m): logits vs ONNX Runtime")
        if qk_packedKernelsMissing {
            print("SKIPPED PackedWeightCacheTests: the packed kernels do not run on this CPU, nothing is cached")
            return
        }
        let url = firstCache.url
        #expect(FileManager.default.fileExists(atPath: url.path), "\(m): no cache file")

        // Second load: everything from the file, same logits bit for bit.
        let second = try PackedWeightCacheTests.session(m, cache: cache)
        #expect(second.weightCache?.bytesPackedAfresh == 0, "\(m): packed again although cached")
        #expect(try PackedWeightCacheTests.lastLogits(second) == logits)

        // Damage one matrix's first row group: that matrix is packed afresh, results unchanged, file rewritten.
        let (_, header) = try #require(PackedWeightCache.open(url))
        let entry = try #require(header.entries.first)
        let handle = try FileHandle(forUpdating: url)
        try handle.seek(toOffset: UInt64(entry.offset + 40))
        try handle.write(contentsOf: Data([0xAB, 0xCD, 0xEF, 0x01]))
        try handle.close()
        let third = try PackedWeightCacheTests.session(m, cache: cache)
        #expect(third.weightCache?.bytesPackedAfresh == entry.bytes, "\(m): the damaged matrix was not repacked")
        #expect(try PackedWeightCacheTests.lastLogits(third) == logits)
        let fourth = try PackedWeightCacheTests.session(m, cache: cache)
        #expect(fourth.weightCache?.bytesPackedAfresh == 0, "\(m): the rewritten file was not used")

        // A cache file truncated in place under a running session: refused before the next run.
        try FileHandle(forUpdating: url).truncate(atOffset: UInt64(entry.offset))
        #expect(throws: ONNXError.self) { try fourth.checkFilesUnchanged() }

        // Garbage (and a truncated file) is ignored: everything packed afresh, same results.
        try Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: url)
        let fifth = try PackedWeightCacheTests.session(m, cache: cache)
        #expect(fifth.weightCache!.bytesPackedAfresh > 0)
        #expect(try PackedWeightCacheTests.lastLogits(fifth) == logits)
    }

    /// A cache made from one model is not used for another (other file identities).
    @Test func aCacheOfOtherFilesIsNotUsed() throws {
        if qk_packedKernelsMissing { return }
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("q4x8-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let a = try PackedWeightCacheTests.session(PackedWeightCacheTests.models[0], cache: cache)
        let url = try #require(a.weightCache?.url)
        // Copy the model folder elsewhere: same contents, other inodes and path.
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-copy-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: copy) }
        try FileManager.default.copyItem(at: PackedWeightCacheTests.root.appendingPathComponent("tiny-qwen2/onnx"), to: copy)
        // Put a's cache file where the copy's cache would be.
        var options = SessionOptions()
        options.packedWeightCacheDirectory = cache.path
        options.packedWeightCacheMinimumBytes = 1 << 40   // never write
        let probe = try Session(path: copy.appendingPathComponent("model_q4f16.onnx").path, options: options)
        let copyURL = try #require(probe.weightCache?.url)
        #expect(copyURL != url)
        try FileManager.default.copyItem(at: url, to: copyURL)
        let b = try Session(path: copy.appendingPathComponent("model_q4f16.onnx").path, options: options)
        #expect(b.weightCache!.bytesPackedAfresh > 0, "a cache of other files was used")
    }
}

/// Whether the packed kernels are missing on this CPU (no AVX2/FMA/F16C): then nothing is packed or cached.
let qk_packedKernelsMissing: Bool = {
    let data = [UInt8](repeating: 0, count: 128), scales = [Float](repeating: 1, count: 8)
    return data.withUnsafeBufferPointer { d in
        scales.withUnsafeBufferPointer { s in
            PackedQ4Matrix(BlockQuantizedMatrix(n: 8, k: 32, bits: 4, blockSize: 32, data: d.baseAddress!,
                                                scales: .float(s.baseAddress!), zeroPoints: .none)) == nil
        }
    }
}()

/// `AlignedWriter` (how the cache file is written, in 2 MB pieces): the file holds exactly the
/// parts appended, whatever their sizes and however they straddle the pieces.
@Suite struct AlignedWriterTests {
    @Test func writesExactlyWhatWasAppended() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("aligned-\(UUID().uuidString).bin")
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(FileManager.default.createFile(atPath: url.path, contents: nil))
        let piece = AlignedWriter.piece
        let parts = [piece / 2 + 3, 1, 0, piece, 2 * piece + 4097, 5].map { n in
            (0..<n).map { UInt8(truncatingIfNeeded: ($0 &+ n) &* 2654435761 >> 9) }
        }
        var expected: [UInt8] = []
        let out = try FileHandle(forWritingTo: url)
        let writer = AlignedWriter(out)
        for (i, part) in parts.enumerated() {
            try part.withUnsafeBytes { try writer.append($0) }
            expected += part
            try writer.appendZeros(i * 1000)
            expected += [UInt8](repeating: 0, count: i * 1000)
        }
        try writer.finish()
        try out.close()
        #expect(try Data(contentsOf: url) == Data(expected))
    }
}

/// `ResidentCopy`, the copy in 2 MB pages of a cache file the kernel maps in 4 KB pages: when it
/// is made, and that it holds the file's bytes while the mapping, its pages dropped, still reads
/// them from the file.
@Suite struct ResidentCopyTests {
    @Test func madeOnlyWhenMostOfTheFileIsIn4KBPages() {
        let mb = 1 << 20
        #expect(ResidentCopy.helps(hugeBytes: 92 * mb, fileBytes: 272 * mb, transparentHugePages: true))
        #expect(ResidentCopy.helps(hugeBytes: 0, fileBytes: 2 * mb, transparentHugePages: true))
        #expect(!ResidentCopy.helps(hugeBytes: 270 * mb, fileBytes: 272 * mb, transparentHugePages: true))
        #expect(!ResidentCopy.helps(hugeBytes: 240 * mb, fileBytes: 272 * mb, transparentHugePages: true))
        #expect(!ResidentCopy.helps(hugeBytes: 50 * mb, fileBytes: 101 * mb, transparentHugePages: true))  // 50 of 100 whole
        #expect(ResidentCopy.helps(hugeBytes: 48 * mb, fileBytes: 101 * mb, transparentHugePages: true))
        #expect(!ResidentCopy.helps(hugeBytes: nil, fileBytes: 272 * mb, transparentHugePages: true))
        #expect(!ResidentCopy.helps(hugeBytes: 0, fileBytes: 272 * mb, transparentHugePages: false))
        #expect(!ResidentCopy.helps(hugeBytes: 0, fileBytes: 2 * mb - 1, transparentHugePages: true))
    }

    @Test func holdsTheFilesBytes() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("resident-\(UUID().uuidString).bin")
        defer { try? FileManager.default.removeItem(at: url) }
        let data = (0..<(5 << 20) + 123).map { UInt8(truncatingIfNeeded: ($0 &* 2654435761) >> 13) }
        try Data(data).write(to: url)
        let file = try MappedFile(path: url.path, hugePages: true)
        file.populate()
        #if os(Linux)
        let huge = try #require(file.hugePageMappedBytes(), "no smaps entry for the mapping")
        #expect((0...file.count).contains(huge))
        #else
        #expect(file.hugePageMappedBytes() == nil)
        #endif
        let copy = try #require(ResidentCopy(file))
        #expect(copy.bytes.count == data.count)
        #expect(copy.bytes.elementsEqual(data))
        #expect(file.bytes.elementsEqual(data), "the mapping no longer reads the file")
        #expect(MappedFile(copying: copy.bytes, path: "copy").hugePageMappedBytes() == nil)
    }
}

/// `PackedWeightCache.removeStale`: each time a cache file is written, the cache directory loses
/// the files no load can use again, and nothing else.
@Suite struct StaleCacheFileTests {
    /// A file that starts like a cache file: the magic, the header's length, the header.
    static func cacheFile(_ header: [String: Any]) throws -> Data {
        let json = try JSONSerialization.data(withJSONObject: header)
        var data = Data(PackedWeightCache.magic)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        return data + json + Data(count: 100)
    }

    @Test func removesWhatNoLoadCanUseAndNothingElse() throws {
        if qk_packedKernelsMissing { return }
        let manager = FileManager.default
        let dir = manager.temporaryDirectory.appendingPathComponent("q4x8-stale-\(UUID().uuidString)")
        defer { try? manager.removeItem(at: dir) }
        try manager.createDirectory(at: dir, withIntermediateDirectories: true)
        let model = dir.appendingPathComponent("model.onnx")   // stands for a model file that exists
        try Data("model".utf8).write(to: model)
        let identity = try #require(MappedFile.identity(ofFileAt: model.path))
        let v2 = PackedWeightCache.formatVersion
        let files: [(name: String, contents: Data, stale: Bool)] = [
            ("gone-1.q4x8", try Self.cacheFile(["version": v2, "files": [identity], "paths": ["/nonexistent/model.onnx"], "entries": []]), true),
            ("changed-2.q4x8", try Self.cacheFile(["version": v2, "files": ["1:2:3:4.5"], "paths": [model.path], "entries": []]), true),
            ("old-3.q4x8", try Self.cacheFile(["version": 1, "files": [identity], "entries": []]), true),
            ("current-4.q4x8", try Self.cacheFile(["version": v2, "files": [identity], "paths": [model.path], "entries": []]), false),
            ("notes.q4x8", Data("not a cache file".utf8), false),
            ("other.bin", try Self.cacheFile(["version": 1, "files": [], "entries": []]), false),
            (".current-4.q4x8.1.2.tmp", Data(count: 10), false),
            (".gone-1.q4x8.3.4.tmp", Data(count: 10), true),
        ]
        for f in files { try f.contents.write(to: dir.appendingPathComponent(f.name)) }
        try manager.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -7200)],
                                  ofItemAtPath: dir.appendingPathComponent(".gone-1.q4x8.3.4.tmp").path)

        // Writing a cache file into the directory removes the stale ones.
        let session = try PackedWeightCacheTests.session(PackedWeightCacheTests.models[0], cache: dir)
        let written = try #require(session.weightCache?.url.lastPathComponent)
        let left = Set(try manager.contentsOfDirectory(atPath: dir.path))
        #expect(left == Set(files.filter { !$0.stale }.map(\.name) + [written, "model.onnx"]))

        // The model file changes: its cache is stale too.
        try Data("model, rebuilt".utf8).write(to: model)
        #expect(PackedWeightCache.removeStale(in: dir) == ["current-4.q4x8"])
    }
}
