import Foundation
import Runtime

/// What `qwen-run inspect` reports about an ONNX model file or a model directory: ordered
/// sections of key/value facts, so two models can be compared line by line.
public struct ModelInspection: Sendable, Encodable {
    public struct Section: Sendable, Encodable {
        public var title: String
        public var facts: [Fact]
    }

    public struct Fact: Sendable, Encodable {
        public var key: String
        public var value: String
    }

    public var path: String
    public var sections: [Section]

    /// Inspects a `.onnx` file, or a model directory (its `config.json` and its ONNX file:
    /// `onnxFile` or the default choice).
    public static func inspect(path: String, onnxFile: String? = nil) throws -> ModelInspection {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelDirectoryError.missing(path: path, what: "model file or directory")
        }
        var sections: [Section] = []
        var onnxPath = path
        if isDirectory.boolValue {
            let directory = try ModelDirectory(url: URL(fileURLWithPath: path), onnxFile: onnxFile, requireTokenizer: false)
            onnxPath = directory.onnxURL.path
            sections.append(configSection(directory.config, directory: directory))
        }
        sections += try ModelSummary.sections(ofFile: onnxPath).map { section in
            Section(title: section.title, facts: section.facts.map { Fact(key: $0.key, value: $0.value) })
        }
        return ModelInspection(path: path, sections: sections)
    }

    static func configSection(_ c: ModelConfig, directory: ModelDirectory) -> Section {
        func s<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "-" }
        var facts = [
            Fact(key: "model_type", value: s(c.modelType)),
            Fact(key: "layers", value: s(c.numHiddenLayers)),
            Fact(key: "hidden_size", value: s(c.hiddenSize)),
            Fact(key: "intermediate_size", value: s(c.intermediateSize)),
            Fact(key: "attention heads", value: s(c.numAttentionHeads)),
            Fact(key: "kv heads", value: s(c.numKeyValueHeads)),
            Fact(key: "head_dim", value: s(c.headDim ?? c.hiddenSize.flatMap { h in c.numAttentionHeads.map { h / $0 } })),
            Fact(key: "vocab_size", value: s(c.vocabSize)),
            Fact(key: "max_position_embeddings", value: s(c.maxPositionEmbeddings)),
            Fact(key: "rope_theta", value: s(c.ropeTheta)),
            Fact(key: "rms_norm_eps", value: s(c.rmsNormEps)),
            Fact(key: "tie_word_embeddings", value: s(c.tieWordEmbeddings)),
            Fact(key: "dtype", value: s(c.dtype ?? c.torchDtype)),
            Fact(key: "transformers.js_config", value: c.transformersJSConfig.map(\.description) ?? "-"),
            Fact(key: "onnx file", value: directory.onnxURL.lastPathComponent),
        ]
        facts.append(Fact(key: "onnx files present", value: directory.availableONNXFiles.joined(separator: ", ")))
        if let genAI = directory.genAIConfig {
            facts.append(Fact(key: "layout", value: "onnxruntime-genai (genai_config.json)"))
            facts.append(Fact(key: "genai decoder", value: genAI.model.decoder.filename))
            facts.append(Fact(key: "genai inputs", value: (genAI.model.decoder.inputs ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")))
            facts.append(Fact(key: "genai past_present_share_buffer", value: s(genAI.search?.pastPresentShareBuffer)))
            return Section(title: "genai_config.json", facts: facts)
        }
        facts.append(Fact(key: "layout", value: "Hugging Face / transformers.js (config.json, onnx/)"))
        facts.append(Fact(key: "transformers.js dtypes present", value: directory.availableDTypes.joined(separator: ", ")))
        return Section(title: "config.json", facts: facts)
    }

    /// Plain-text report.
    public func render() -> String {
        var lines = ["== \(path)"]
        for s in sections {
            lines.append("")
            lines.append("[\(s.title)]")
            let width = min(48, s.facts.map { $0.key.count }.max() ?? 0)
            for f in s.facts {
                lines.append("  " + f.key.padding(toLength: max(width, f.key.count), withPad: " ", startingAt: 0) + "  " + f.value)
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Side-by-side report of two models; differing facts are marked with `*`.
    public static func renderComparison(_ a: ModelInspection, _ b: ModelInspection) -> String {
        var lines = ["== A: \(a.path)", "== B: \(b.path)", "(* marks a difference)"]
        var titles: [String] = []
        for s in a.sections + b.sections where !titles.contains(s.title) { titles.append(s.title) }
        for title in titles {
            let fa = a.sections.first { $0.title == title }?.facts ?? []
            let fb = b.sections.first { $0.title == title }?.facts ?? []
            var keys: [String] = []
            for f in fa + fb where !keys.contains(f.key) { keys.append(f.key) }
            lines.append("")
            lines.append("[\(title)]")
            for key in keys {
                let va = fa.first { $0.key == key }?.value ?? "(absent)"
                let vb = fb.first { $0.key == key }?.value ?? "(absent)"
                if va == vb {
                    lines.append("    \(key): \(va)")
                } else {
                    lines.append("  * \(key):")
                    lines.append("      A: \(va)")
                    lines.append("      B: \(vb)")
                }
            }
        }
        return lines.joined(separator: "\n")
    }
}
