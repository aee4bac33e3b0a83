import Foundation
import Testing
@testable import Runtime

/// Single-op models and ONNX Runtime 1.31.1's outputs for them (Tests/RuntimeTests/Data/ops,
/// made by scripts/make_op_references.py, which also checks each against a NumPy reference and
/// ORT_ENABLE_ALL against ORT_DISABLE_ALL): the quantization ops, MatMulBnb4,
/// GatherBlockQuantized, GroupQueryAttention, RotaryEmbedding and the RMSNorm contrib ops, run
/// through a real Session and held to each output's rtol/atol (integer outputs exactly).
@Suite struct ORTOpCaseTests {
    static let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("Data/ops").standardized

    static let cases: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [])
        .filter { FileManager.default.fileExists(atPath: root.appendingPathComponent("\($0)/case.json").path) }
        .sorted()

    /// A case's tensor, with the shape case.json gives it (the .npy files store scalars as [1]).
    static func read(_ entry: [String: Any], in dir: URL) throws -> Tensor {
        let t = try NumPy.read(dir.appendingPathComponent(entry["file"] as! String).path)
        guard let shape = entry["shape"] as? [Int], shape != t.shape, Tensor.elementCount(shape) == t.count else { return t }
        return t.reshaped(shape)
    }

    @Test(arguments: cases)
    func matchesONNXRuntime(_ name: String) throws {
        let dir = ORTOpCaseTests.root.appendingPathComponent(name)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("case.json"))) as! [String: Any]
        let inputs = json["inputs"] as! [[String: Any]], outputs = json["outputs"] as! [[String: Any]]
        let session = try Session(path: dir.appendingPathComponent("model.onnx").path)
        var feeds: [String: Tensor] = [:]
        for i in inputs { feeds[i["name"] as! String] = try ORTOpCaseTests.read(i, in: dir) }
        let result = try session.run(feeds)
        for o in outputs {
            let outName = o["name"] as! String
            let expected = try ORTOpCaseTests.read(o, in: dir)
            guard let ours = result[outName] else { Issue.record("\(name): no output \(outName)"); continue }
            #expect(ours.shape == expected.shape, "\(name) \(outName): shape \(ours.shape) vs \(expected.shape)")
            #expect(ours.dtype == expected.dtype, "\(name) \(outName): \(ours.dtype) vs \(expected.dtype)")
            guard ours.shape == expected.shape, ours.count > 0 else { continue }
            if expected.dtype == .float || expected.dtype == .float16 || expected.dtype == .double {
                let rtol = (o["rtol"] as? Double).map(Float.init) ?? 1e-5, atol = (o["atol"] as? Double).map(Float.init) ?? 1e-5
                let a = ours.floats(), e = expected.floats()
                var worst: (Int, Float) = (-1, 0)
                for i in a.indices where !(abs(a[i] - e[i]) <= atol + rtol * abs(e[i])) {
                    if worst.0 < 0 || abs(a[i] - e[i]) > worst.1 { worst = (i, abs(a[i] - e[i])) }
                }
                #expect(worst.0 < 0, "\(name) \(outName): element \(worst.0) is \(worst.0 >= 0 ? a[worst.0] : 0), ORT \(worst.0 >= 0 ? e[worst.0] : 0) (rtol \(rtol), atol \(atol))")
            } else {
                #expect(ours.int64s() == expected.int64s(), "\(name) \(outName): integers differ")
            }
        }
    }
}
