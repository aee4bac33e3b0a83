import Foundation
import ONNX
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
        let model = try ONNXModel(path: onnxPath)
        sections += modelSections(model)
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

    static func typeString(_ v: ValueInfoProto) -> String {
        guard case let .tensor(elem, shape)? = v.type else {
            if case let .other(kind)? = v.type { return kind }
            return "?"
        }
        let t = ElementType(rawValue: elem)?.description ?? "type\(elem)"
        let dims = shape.map { "[" + $0.map(\.description).joined(separator: ", ") + "]" } ?? "[?]"
        return t + dims
    }

    static func elementTypeName(_ v: ValueInfoProto) -> String {
        if case let .tensor(elem, _)? = v.type { return ElementType(rawValue: elem)?.description ?? "type\(elem)" }
        return "?"
    }

    static func histogram(_ items: [String]) -> String {
        var counts: [String: Int] = [:]
        for i in items { counts[i, default: 0] += 1 }
        return counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    }

    static func megabytes(_ n: Int) -> String { String(format: "%.1f MB", Double(n) / 1_000_000) }

    static func modelSections(_ model: ONNXModel) -> [Section] {
        let p = model.proto, g = p.graph
        var file: [Fact] = [
            Fact(key: "path", value: model.path),
            Fact(key: "size", value: megabytes(model.file.count)),
            Fact(key: "ir_version", value: "\(p.irVersion)"),
            Fact(key: "producer", value: "\(p.producerName) \(p.producerVersion)".trimmingCharacters(in: .whitespaces)),
            Fact(key: "opsets", value: p.opsetImports.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain)=\($0.version)" }.joined(separator: ", ")),
        ]
        let external = model.externalFiles.sorted { $0.key < $1.key }
        file.append(Fact(key: "external data", value: external.isEmpty ? "none (weights inline)" :
            external.map { "\($0.key) (\(megabytes($0.value.count)))" }.joined(separator: ", ")))
        var externalTensors = 0, inlineBytes = 0
        for t in g.initializers {
            if case .external = t.payload { externalTensors += 1 } else if case .raw(let r) = t.payload { inlineBytes += r.count }
        }
        file.append(Fact(key: "initializers", value: "\(g.initializers.count) (\(externalTensors) external, \(megabytes(inlineBytes)) inline)"))

        let constantNames = Set(g.initializers.map(\.name))
        let graphInputs = g.inputs.filter { !constantNames.contains($0.name) }
        var inputs = [Fact(key: "count", value: "\(graphInputs.count) (\(histogram(graphInputs.map(elementTypeName))))")]
        inputs += graphInputs.map { Fact(key: $0.name, value: typeString($0)) }
        var outputs = [Fact(key: "count", value: "\(g.outputs.count) (\(histogram(g.outputs.map(elementTypeName))))")]
        outputs += g.outputs.map { Fact(key: $0.name, value: typeString($0)) }

        // Nodes and op types.
        func opName(_ n: NodeProto) -> String { n.domain.isEmpty || n.domain == "ai.onnx" ? n.opType : "\(n.domain)::\(n.opType)" }
        var counts: [String: Int] = [:]
        for n in g.nodes { counts[opName(n), default: 0] += 1 }
        var nodes = [Fact(key: "count", value: "\(g.nodes.count)")]
        nodes += counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { Fact(key: $0.key, value: "\($0.value)") }

        // Quantization.
        let nbits = g.nodes.filter { $0.opType == "MatMulNBits" }
        var quant = [Fact(key: "MatMulNBits", value: "\(nbits.count)")]
        if !nbits.isEmpty {
            let combos = nbits.map { n -> String in
                func a(_ k: String) -> String { n.attribute(k).map { "\($0.i)" } ?? "-" }
                let zp = n.inputs.count > 3 && !n.inputs[3].isEmpty ? "yes" : "no"
                return "bits=\(a("bits")) block_size=\(a("block_size")) accuracy_level=\(a("accuracy_level")) zero_points=\(zp)"
            }
            quant.append(Fact(key: "attributes", value: histogram(combos)))
            quant.append(Fact(key: "shapes (K×N)", value: histogram(nbits.map { n in
                "\(n.attribute("K")?.i ?? 0)×\(n.attribute("N")?.i ?? 0)"
            })))
            let scaleTypes = nbits.compactMap { n -> String? in
                n.inputs.count > 2 ? g.initializers.first { $0.name == n.inputs[2] }?.elementType?.description : nil
            }
            quant.append(Fact(key: "scale types", value: histogram(scaleTypes)))
        }
        let matmuls = g.nodes.filter { $0.opType == "MatMul" || $0.opType == "Gemm" }
        let floatWeights = matmuls.filter { $0.inputs.count > 1 && constantNames.contains($0.inputs[1]) }
        quant.append(Fact(key: "float MatMul/Gemm with weights", value: floatWeights.isEmpty ? "none" : floatWeights.map(\.name).joined(separator: ", ")))
        quant.append(Fact(key: "activation MatMuls", value: "\(matmuls.count - floatWeights.count)"))

        // Support by this runtime.
        var opsets: [String: Int] = [:]
        for o in p.opsetImports { opsets[o.domain == "ai.onnx" ? "" : o.domain] = Int(o.version) }
        let unsupported = Set(g.nodes.filter { n in
            let d = n.domain == "ai.onnx" ? "" : n.domain
            return !OperatorRegistry.supports(opType: n.opType, domain: d, opset: opsets[d] ?? 1)
        }.map(opName)).sorted()
        let support = [Fact(key: "unsupported ops", value: unsupported.isEmpty ? "none: every op in the graph is implemented" : unsupported.joined(separator: ", "))]

        return [
            Section(title: "file", facts: file),
            Section(title: "inputs", facts: inputs),
            Section(title: "outputs", facts: outputs),
            Section(title: "nodes", facts: nodes),
            Section(title: "quantization", facts: quant),
            Section(title: "qwen-swift support", facts: support),
        ]
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
