import Foundation

/// A model directory in one of the two layouts people have:
///
/// ```
/// Hugging Face / optimum / transformers.js:
///   config.json  generation_config.json  tokenizer.json  tokenizer_config.json
///   onnx/model_q4f16.onnx (+ model_q4f16.onnx_data)  onnx/model.onnx  onnx/model_quantized.onnx ...
/// onnxruntime-genai model builder:
///   genai_config.json  model.onnx  model.onnx.data  tokenizer.json  tokenizer_config.json
/// ```
///
/// In the first, the file is picked by transformers.js dtype (`dtypeFiles`); in the second,
/// `genai_config.json` names the decoder file and its interface.
public struct ModelDirectory: Sendable {
    public let url: URL
    public let config: ModelConfig
    /// The ONNX file to run.
    public let onnxURL: URL
    /// `onnx/*.onnx` file names present.
    public let availableONNXFiles: [String]
    /// `genai_config.json`, for an onnxruntime-genai directory.
    public let genAIConfig: GenAIConfig?

    /// transformers.js dtypes and the file each names in `onnx/` (its `dtype` option).
    public static let dtypeFiles: KeyValuePairs<String, String> = [
        "q4f16": "model_q4f16.onnx", "q4": "model_q4.onnx", "fp16": "model_fp16.onnx", "fp32": "model.onnx",
        "q8": "model_quantized.onnx", "int8": "model_int8.onnx", "uint8": "model_uint8.onnx", "bnb4": "model_bnb4.onnx",
    ]

    /// ONNX files tried in order when none is named: the q4f16 export first, then the other
    /// transformers.js dtypes in the order above.
    public static let preferredONNXFiles = dtypeFiles.map(\.value)

    /// The dtypes whose files are present, in `dtypeFiles` order.
    public var availableDTypes: [String] {
        ModelDirectory.dtypeFiles.filter { availableONNXFiles.contains($0.value) }.map(\.key)
    }

    /// The `onnx/` file name for a transformers.js dtype, or an error listing the known ones.
    public static func onnxFile(forDType dtype: String) throws -> String {
        guard let file = dtypeFiles.first(where: { $0.key == dtype })?.value else {
            throw ModelDirectoryError.invalid(path: dtype, reason: "unknown dtype (known: \(dtypeFiles.map(\.key).joined(separator: ", ")))")
        }
        return file
    }

    /// Opens `url`. `onnxFile` is a name inside `onnx/` (or a path relative to the directory);
    /// when nil the first of ``preferredONNXFiles`` present is used.
    public init(url given: URL, onnxFile givenFile: String? = nil, requireTokenizer: Bool = true) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: given.path, isDirectory: &isDirectory) else {
            throw ModelDirectoryError.missing(path: given.path, what: "model directory")
        }
        var url = given, onnxFile = givenFile
        if !isDirectory.boolValue {
            // An .onnx file stands for its model directory with that file chosen: onnx/NAME.onnx
            // in a Hugging Face layout, or a decoder beside its genai_config.json.
            guard given.pathExtension == "onnx", givenFile == nil else {
                throw ModelDirectoryError.invalid(path: given.path, reason: given.pathExtension == "onnx"
                    ? "is an ONNX file and --onnx/--dtype names another: give the model directory"
                    : "is a file, not a model directory (config.json or genai_config.json, tokenizer.json, the .onnx files)"
                      + (given.pathExtension == "gguf" ? "; GGUF files are llama.cpp's format, this runtime reads ONNX exports" : ""))
            }
            let folder = given.deletingLastPathComponent()
            if folder.lastPathComponent == "onnx" && !fm.fileExists(atPath: folder.appendingPathComponent(GenAIConfig.fileName).path) {
                (url, onnxFile) = (folder.deletingLastPathComponent(), given.lastPathComponent)
            } else {
                (url, onnxFile) = (folder, given.lastPathComponent)
            }
        }
        self.url = url
        let genAIURL = url.appendingPathComponent(GenAIConfig.fileName)
        if fm.fileExists(atPath: genAIURL.path) {
            // onnxruntime-genai: genai_config.json describes the decoder; config.json, when the
            // builder left one, fills in what it does not say.
            let genAI = try GenAIConfig.load(genAIURL)
            genAIConfig = genAI
            var merged = genAI.modelConfig
            let hfURL = url.appendingPathComponent("config.json")
            if fm.fileExists(atPath: hfURL.path) {
                let hf = try ModelConfig.load(hfURL)
                merged.ropeTheta = hf.ropeTheta
                merged.rmsNormEps = hf.rmsNormEps
                merged.tieWordEmbeddings = hf.tieWordEmbeddings
                merged.intermediateSize = hf.intermediateSize
                merged.architectures = hf.architectures
                merged.maxPositionEmbeddings = merged.maxPositionEmbeddings ?? hf.maxPositionEmbeddings
            }
            config = merged
            availableONNXFiles = ((try? fm.contentsOfDirectory(atPath: url.path)) ?? []).filter { $0.hasSuffix(".onnx") }.sorted()
            let name = onnxFile ?? genAI.model.decoder.filename
            guard !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else {
                throw ModelDirectoryError.invalid(path: genAIURL.path, reason: "the decoder file '\(name)' must be named relative to the model directory")
            }
            let file = url.appendingPathComponent(name)
            guard fm.fileExists(atPath: file.path) else {
                throw ModelDirectoryError.missing(path: file.path, what: "decoder '\(name)' named by genai_config.json")
            }
            onnxURL = file
        } else {
            genAIConfig = nil
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
        }
        if requireTokenizer {
            for f in ["tokenizer.json", "tokenizer_config.json"] where !fm.fileExists(atPath: url.appendingPathComponent(f).path) {
                throw ModelDirectoryError.missing(path: url.appendingPathComponent(f).path, what: f)
            }
        }
    }
}
