#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The code the libFuzzer target `Fuzz/onnx` runs on every input, kept in the library so that
/// the corpus replay tests (`ONNXTests.FuzzCorpusTests`) run exactly the same thing.
///
/// The input is a model file's bytes: it is decoded (`ModelProto`, every nested message), every
/// tensor's dims, type and payload are checked the way a load checks them, and external data is
/// resolved inside a small scratch folder holding two data files and a symlink pointing out of
/// it. Returns a summary when the model is accepted; throws when it is refused, and a refusal must
/// be an `ONNXError` (``isExpected(_:)``): a trap, a hang or another error is a bug.
enum ONNXFuzzEntry {
    /// The scratch model folder: `weights.bin` (4 KiB), `sub/more.bin` (64 bytes) and
    /// `escape.bin`, a symlink to a file outside the folder.
    static let directory: String = makeDirectory()

    static func isExpected(_ error: Error) -> Bool { error is ONNXError }

    static func run(_ data: UnsafeRawBufferPointer) throws -> String {
        let model = try ONNXModel(bytes: data, name: "fuzz.onnx", directory: directory)
        var tensors = 0
        try visit(model.proto.graph, model: model, depth: 0, tensors: &tensors)
        try model.checkFilesUnchanged()
        return "\(model.proto.graph.nodes.count) nodes, \(tensors) tensors"
    }

    /// Checks every tensor of a graph, including those in node attributes and subgraphs.
    private static func visit(_ graph: GraphProto, model: ONNXModel, depth: Int, tensors: inout Int) throws {
        func check(_ t: TensorProto) throws {
            tensors += 1
            switch t.payload {
            case .raw, .external: _ = try model.bytes(of: t)
            default: try ONNXModel.validateDims(t)
            }
        }
        for t in graph.initializers { try check(t) }
        for node in graph.nodes {
            for a in node.attributes {
                if let t = a.t { try check(t) }
                for t in a.tensors { try check(t) }
                if let g = a.g { try visit(g, model: model, depth: depth + 1, tensors: &tensors) }
                for g in a.graphs { try visit(g, model: model, depth: depth + 1, tensors: &tensors) }
            }
        }
    }

    private static func makeDirectory() -> String {
        // Per process (tests and fuzzers may run side by side), removed at exit.
        var template = Array("/tmp/qwen-swift-fuzz-onnx-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { return "/nonexistent-qwen-swift-fuzz-folder" }
        let base = String(cString: made)
        let folder = base + "/model"
        mkdir(folder, 0o755)
        mkdir(folder + "/sub", 0o755)
        writeFile(folder + "/weights.bin", (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        writeFile(folder + "/sub/more.bin", [UInt8](repeating: 0x3C, count: 64))
        writeFile(base + "/outside.bin", [UInt8](repeating: 1, count: 64))
        symlink(base + "/outside.bin", folder + "/escape.bin")
        scratchBase = base
        atexit {
            guard let base = ONNXFuzzEntry.scratchBase else { return }
            for file in ["/model/weights.bin", "/model/sub/more.bin", "/model/escape.bin", "/outside.bin"] { unlink(base + file) }
            for folder in ["/model/sub", "/model", ""] { rmdir(base + folder) }
        }
        return folder
    }

    nonisolated(unsafe) private static var scratchBase: String?

    private static func writeFile(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
