import ArgumentParser
import Foundation
import Runtime
import Qwen

/// `qwen-run graph MODEL.onnx --input NAME=FILE.npy … --output-dir DIR`: runs an ONNX graph on
/// NumPy inputs and writes every graph output as `DIR/<output name>.npy`.
struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Run an ONNX graph on .npy inputs and write its outputs as .npy files.",
        discussion: """
        Every declared graph input needs one --input NAME=FILE.npy (int64, float32, float16, bool...; \
        zero-size dimensions allowed, e.g. an empty past of shape [1, 2, 0, 64]). Outputs are written \
        to DIR/<output name>.npy. Compare them with ONNX Runtime to check an export. \
        --dump-plan prints the planned graph instead (no inputs needed): the passes and their rewrites, \
        each node in run order, the kernels each product chose, and where each value is released.
        """)

    @Argument(help: "The .onnx file (external data is read from its folder).")
    var model: String

    @Option(name: .customLong("input"), help: "A graph input: NAME=FILE.npy (repeat for each input).")
    var inputs: [String] = []

    @Option(name: .customLong("output-dir"), help: "Where to write <output name>.npy files.")
    var outputDirectory: String?

    @Option(help: ArgumentHelp("The planning passes: none, default (all), or comma-separated names.",
                               discussion: GraphPass.allCases.map(\.rawValue).joined(separator: ", ")))
    var passes = "default"

    @Flag(name: .customLong("dump-plan"), help: "Print the planned graph and exit (nothing is run).")
    var dumpPlan = false

    @OptionGroup var activations: ActivationOptions

    func validate() throws {
        if case .failure(let error) = GraphPass.parse(passes) { throw ValidationError("--passes: \(error)") }
        if !dumpPlan && outputDirectory == nil { throw ValidationError("--output-dir is required (or --dump-plan)") }
    }

    func run() throws {
        var options = SessionOptions()
        options.int8Activations = activations.int8
        options.decodeActivations = activations.decode
        options.passes = try GraphPass.parse(passes).get()
        let session = try Session(path: model, options: options)
        if dumpPlan {
            print(session.planDescription())
            return
        }
        guard let outputDirectory else { return }
        var feeds: [String: Tensor] = [:]
        for spec in inputs {
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else {
                throw ValidationError("--input expects NAME=FILE.npy, got '\(spec)'")
            }
            let name = String(spec[..<eq]), file = String(spec[spec.index(after: eq)...])
            guard feeds[name] == nil else { throw ValidationError("input '\(name)' is given twice") }
            feeds[name] = try NumPy.read(file)
        }
        let missing = session.inputs.map(\.name).filter { feeds[$0] == nil }
        guard missing.isEmpty else {
            throw ValidationError("missing --input for: \(missing.joined(separator: ", ")) (declared: \(session.inputs.map(\.description).joined(separator: "; ")))")
        }
        let start = Date()
        let outputs = try session.run(feeds)
        let elapsed = Date().timeIntervalSince(start)
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        for spec in session.outputs {
            guard let t = outputs[spec.name] else { continue }
            let safeName = spec.name.replacingOccurrences(of: "/", with: "_")
            try NumPy.write(t, to: URL(fileURLWithPath: outputDirectory).appendingPathComponent("\(safeName).npy").path)
            print("\(spec.name): \(t.dtype)\(t.shape)")
        }
        let fused = Dictionary(grouping: session.graph.nodes.filter { $0.domain == PrivateOps.domain }, by: \.opType)
            .map { "\($0.value.count) \($0.key)" }.sorted().joined(separator: ", ")
        FileHandle.standardError.write(Data(String(format: "ran %d nodes in %.3f s%@\n", session.graph.nodes.count, elapsed,
                                                   fused.isEmpty ? "" : " (fused: \(fused))").utf8))
        printProfileIfEnabled()
    }
}

/// `qwen-run inspect PATH [PATH2]`: what is in a model file or directory, or how two differ.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe an ONNX model file or model directory, or compare two.",
        discussion: """
        Reports inputs/outputs (dtypes, shapes, counts by dtype), opset imports, external data files, \
        node count and op-type histogram, MatMulNBits attributes and the MatMuls left in float, \
        whether every op is supported here, and config.json facts. With two paths, the reports are \
        shown side by side and differences are marked with '*'.
        """)

    @Argument(help: "A .onnx file or a model directory.")
    var path: String

    @Argument(help: "A second model to compare with.")
    var other: String?

    @Option(help: "For a model directory: the ONNX file to inspect (default: onnx/model_q4f16.onnx, else the first present).")
    var onnx: String?

    @Flag(help: "Machine-readable JSON output.")
    var json = false

    func run() throws {
        let a = try ModelInspection.inspect(path: path, onnxFile: onnx)
        let b = try other.map { try ModelInspection.inspect(path: $0, onnxFile: onnx) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
            let value: [ModelInspection] = b.map { [a, $0] } ?? [a]
            let data = b == nil ? try encoder.encode(a) : try encoder.encode(value)
            print(String(decoding: data, as: UTF8.self))
        } else if let b {
            print(ModelInspection.renderComparison(a, b))
        } else {
            print(a.render())
        }
    }
}
