import Foundation
import Testing
@testable import Runtime

/// The planning pipeline: passes named and switched one by one, and the plan dump.
struct GraphPassTests {
    static func fixture(_ file: String = "onnx/model_q4f16.onnx") -> String {
        FixtureGraphTests.root.appendingPathComponent("tiny-qwen2/\(file)").path
    }

    @Test func passListsParse() throws {
        #expect(try GraphPass.parse("none").get() == [])
        #expect(try GraphPass.parse("default").get() == GraphPass.all)
        #expect(try GraphPass.parse("constant-folding, rmsnorm,attention").get() == [.constantFolding, .rmsNorm, .attention])
        #expect(GraphPass.parse("attention,fusion") == .failure(.unknown("fusion")))
        #expect(GraphPass.parse("") == .failure(.unknown("")))
        #expect(GraphPass.parse("shape-folding") == .failure(.missingRequirement(.shapeFolding, .constantFolding)))
        var options = SessionOptions()
        options.passes = [.rmsNorm]
        #expect(throws: RuntimeError.self) { _ = try Session(path: Self.fixture(), options: options) }
    }

    /// Each pass switched off alone (with the passes that need it) leaves the q4f16 fixture's
    /// prefill logits bit for bit those of the full pipeline: the passes change how, not what.
    /// Except the attention fusion, whose fused kernel sums scores and values in its own order and
    /// scales the sums: there within the fixture's tolerance against ONNX Runtime (0.03; one
    /// float16 ulp at |logit| 8–16 is 0.0078).
    @Test(arguments: GraphPass.allCases)
    func eachPassLeavesTheResultsUnchanged(_ pass: GraphPass) throws {
        let full = try Session(path: Self.fixture())
        var options = SessionOptions()
        options.passes = GraphPass.all.filter { $0 != pass && !$0.requires.contains(pass) }
        let without = try Session(path: Self.fixture(), options: options)
        #expect(!without.passRewrites.contains { $0.pass == pass })
        let rewrites = try #require(full.passRewrites.first { $0.pass == pass }).rewrites
        #expect(rewrites > 0, "\(pass) rewrote nothing in the fixture")
        let dir = "tiny-qwen2/reference"
        var feeds: [String: Tensor] = [:]
        for spec in full.inputs { feeds[spec.name] = try FixtureGraphTests.npy("\(dir)/feeds/prefill/\(spec.name).npy") }
        let a = try full.run(feeds)["logits"]!.floats(), b = try without.run(feeds)["logits"]!.floats()
        let differing = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
        if pass == .attention {
            #expect(maxAbsDiff(a, b) <= 0.03, "attention off: logits differ by \(maxAbsDiff(a, b))")
        } else {
            #expect(differing == 0, "\(pass) off: \(differing) of \(a.count) logits differ, by up to \(maxAbsDiff(a, b))")
        }
    }

    /// The dump lists every planned node once, in run order, with the kernels of each 4-bit
    /// product and the releases of intermediates; with every pass off it is the file's graph.
    @Test func planDumpShowsNodesKernelsAndReleases() throws {
        let session = try Session(path: Self.fixture())
        let lines = session.planDescription().split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("\(session.graph.nodes.count) nodes"))
        #expect(lines[1].hasPrefix("passes: attention ("))
        let nodes = lines.dropFirst(2)
        #expect(nodes.count == session.graph.nodes.count)
        for (i, (line, node)) in zip(nodes, session.graph.nodes).enumerated() {
            #expect(line.hasPrefix("\(i) ") && line.contains("\"\(node.name)\""), "\(line)")
            if node.opType.hasPrefix("MatMulNBits") { #expect(line.contains("4-bit blocks of 32"), "\(line)") }
        }
        #expect(nodes.contains { $0.contains("qwen.swift.FusedAttention") })
        #expect(nodes.contains { $0.contains(" frees ") })

        var options = SessionOptions()
        options.passes = []
        let plain = try Session(path: Self.fixture(), options: options).planDescription()
        #expect(plain.contains("passes: none") && !plain.contains("qwen.swift."))
    }
}
