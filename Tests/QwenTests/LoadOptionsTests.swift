import Foundation
import Testing
import Kernels
@testable import Runtime
@testable import Qwen

/// `LoadOptions`: what a library user chooses when loading, and what the library does by default
/// (no files written, a thread pool per model).
struct LoadOptionsTests {
    /// By default a model writes no weight cache and gets a pool of its own with the default
    /// thread count; `threads` and `weightCacheDirectory` are honoured.
    @Test func defaultsWriteNothingAndGiveEachModelItsPool() throws {
        let a = try QwenModel(directory: Fixture.untied.directory)
        let b = try QwenModel(directory: Fixture.untied.directory)
        #expect(a.decoder.session.weightCache == nil, "the library wrote or read a weight cache by default")
        #expect(a.decoder.session.kernelPool !== b.decoder.session.kernelPool)
        #expect(a.decoder.session.kernelPool !== KernelPool.shared)
        #expect(a.decoder.session.kernelPool.threads == KernelPool.defaultThreadCount)

        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("qwen-load-options-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let c = try QwenModel(directory: Fixture.untied.directory,
                              options: LoadOptions(threads: 3, weightCacheDirectory: cache.path))
        #expect(c.decoder.session.kernelPool.threads == 3)
        #expect(c.decoder.session.weightCache != nil)
    }

    /// The weight traffic of a decode step (`weightBytesPerToken`, the `--stats` line's "MB/token")
    /// counts every product form: the int8 export (MatMulInteger, int8 weights and one zero-point
    /// byte per product, the embedding table uint8) reads a quarter of the float32 export's bytes
    /// plus those zero points; the bnb4 export (4-bit codes and a float absmax per 64 weights)
    /// between an eighth and a sixth of them.
    @Test func weightTrafficCountsEveryProductForm() throws {
        func traffic(_ file: String) throws -> (bytes: Int, model: QwenModel) {
            let model = try QwenModel(directory: Fixture.untied.directory, options: LoadOptions(onnxFile: file))
            return (model.weightBytesPerToken, model)
        }
        let fp32 = try traffic("model.onnx").bytes
        let (int8, model) = try traffic("model_int8.onnx")
        let products = model.decoder.session.graph.nodes.filter { $0.opType == "MatMulInteger" }.count
        #expect(fp32 > 0 && products > 0)
        #expect(4 * int8 - fp32 == 4 * products, "int8 \(int8) bytes, float32 \(fp32), \(products) MatMulInteger nodes")
        let bnb4 = try traffic("model_bnb4.onnx").bytes
        #expect(8 * bnb4 > fp32 && 6 * bnb4 < fp32, "bnb4 \(bnb4) bytes, float32 \(fp32)")
    }

    /// Two copies of the real model generating at the same time each run their parallel loops on
    /// their own pool (none declined for being busy), and each gets the ids it gets alone.
    @Test(.enabled(if: RealModelTests.enabled, Comment(rawValue: RealModelTests.skipReason ?? "")))
    func twoModelsRunSideBySideOnTheirOwnPools() async throws {
        let models = try [QwenModel(directory: RealModelTests.directory), QwenModel(directory: RealModelTests.directory)]
        let prompts = ["Write a haiku about Swift.", "What is 17 * 23?"]
        let parameters = GenerateParameters(maxTokens: 24, doSample: false)
        @Sendable func run(_ model: QwenModel, _ prompt: String) throws -> [Int] {
            var cache = model.makeCache()
            return try model.generate(promptIds: model.encode(messages: [ChatMessage(role: "user", content: prompt)]),
                                      parameters: parameters, cache: &cache).generatedTokenIds
        }
        let solo = try zip(models, prompts).map { try run($0, $1) }
        let before = models.map { $0.decoder.session.kernelPool.loopCounts }
        let together = try await withThrowingTaskGroup(of: (Int, [Int]).self) { group in
            for (i, (model, prompt)) in zip(models, prompts).enumerated() {
                group.addTask {
                    try await withCheckedThrowingContinuation { continuation in
                        Thread { continuation.resume(with: Result { (i, try run(model, prompt)) }) }.start()
                    }
                }
            }
            return try await group.reduce(into: [[Int]](repeating: [], count: 2)) { $0[$1.0] = $1.1 }
        }
        #expect(together == solo)
        for (model, start) in zip(models, before) {
            let counts = model.decoder.session.kernelPool.loopCounts
            #expect(counts.run > start.run && counts.declined == start.declined, "\(start) → \(counts)")
        }
    }
}
