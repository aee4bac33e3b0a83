import Foundation

/// A Hugging Face / transformers.js model directory:
///
/// ```
/// config.json  generation_config.json  tokenizer.json  tokenizer_config.json
/// onnx/model_q4f16.onnx (+ model_q4f16.onnx_data)  onnx/model.onnx  ...
/// ```
public struct ModelDirectory: Sendable {
    public let url: URL
    public let config: ModelConfig
    /// The ONNX file to run.
    public let onnxURL: URL
    /// `onnx/*.onnx` file names present.
    public let availableONNXFiles: [String]

    /// ONNX files tried in order when none is named: the q4f16 export first.
    public static let preferredONNXFiles = ["model_q4f16.onnx", "model_q4.onnx", "model_fp16.onnx", "model.onnx"]

    /// Opens `url`. `onnxFile` is a name inside `onnx/` (or a path relative to the directory);
    /// when nil the first of ``preferredONNXFiles`` present is used.
    public init(url: URL, onnxFile: String? = nil, requireTokenizer: Bool = true) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ModelDirectoryError.missing(path: url.path, what: "model directory")
        }
        self.url = url
        config = try ModelConfig.load(url.appendingPathComponent("config.json"))
        let onnxDir = url.appendingPathComponent("onnx")
        let available = ((try? fm.contentsOfDirectory(atPath: onnxDir.path)) ?? []).filter { $0.hasSuffix(".onnx") }.sorted()
        availableONNXFiles = available
        if let onnxFile {
            guard !onnxFile.hasPrefix("/"), !onnxFile.split(separator: "/").contains("..") else {
                throw ModelDirectoryError.invalid(path: onnxFile, reason: "the ONNX file must be named relative to the model directory")
            }
            let inOnnx = onnxDir.appendingPathComponent(onnxFile)
            let direct = url.appendingPathComponent(onnxFile)
            if fm.fileExists(atPath: inOnnx.path) {
                onnxURL = inOnnx
            } else if fm.fileExists(atPath: direct.path) {
                onnxURL = direct
            } else {
                throw ModelDirectoryError.missing(path: inOnnx.path, what: "ONNX file '\(onnxFile)' (present: \(available.joined(separator: ", ")))")
            }
        } else if let name = ModelDirectory.preferredONNXFiles.first(where: { available.contains($0) }) ?? available.first {
            onnxURL = onnxDir.appendingPathComponent(name)
        } else {
            throw ModelDirectoryError.missing(path: onnxDir.path, what: "ONNX model (onnx/*.onnx)")
        }
        if requireTokenizer {
            for f in ["tokenizer.json", "tokenizer_config.json"] where !fm.fileExists(atPath: url.appendingPathComponent(f).path) {
                throw ModelDirectoryError.missing(path: url.appendingPathComponent(f).path, what: f)
            }
        }
    }
}
