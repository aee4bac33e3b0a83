import Foundation
import ONNX

/// What an ONNX file holds, as plain key/value facts (no protobuf types leave this module): what
/// `qwen-run inspect` reports of the file (`ModelInspection`, in Qwen, adds the model directory's).
public enum ModelSummary {
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

    /// The facts of the ONNX file at `path`, in sections: file (size, IR version, producer,
    /// opsets, external data, initializers), inputs, outputs, nodes (op histogram), quantization
    /// (MatMulNBits attributes and shapes, float MatMuls with weights), support by this runtime.
    public static func sections(ofFile path: String) throws -> [(title: String, facts: [(key: String, value: String)])] {
        sections(of: try ONNXModel(path: path))
    }

    static func sections(of model: ONNXModel) -> [(title: String, facts: [(key: String, value: String)])] {
        let p = model.proto, g = p.graph
        var file: [(key: String, value: String)] = [
            (key: "path", value: model.path),
            (key: "size", value: megabytes(model.file.count)),
            (key: "ir_version", value: "\(p.irVersion)"),
            (key: "producer", value: "\(p.producerName) \(p.producerVersion)".trimmingCharacters(in: .whitespaces)),
            (key: "opsets", value: p.opsetImports.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain)=\($0.version)" }.joined(separator: ", ")),
        ]
        let external = model.externalFiles.sorted { $0.key < $1.key }
        file.append((key: "external data", value: external.isEmpty ? "none (weights inline)" :
            external.map { "\($0.key) (\(megabytes($0.value.count)))" }.joined(separator: ", ")))
        var externalTensors = 0, inlineBytes = 0
        for t in g.initializers {
            if case .external = t.payload { externalTensors += 1 } else if case .raw(let r) = t.payload { inlineBytes += r.count }
        }
        file.append((key: "initializers", value: "\(g.initializers.count) (\(externalTensors) external, \(megabytes(inlineBytes)) inline)"))

        let constantNames = Set(g.initializers.map(\.name))
        let graphInputs = g.inputs.filter { !constantNames.contains($0.name) }
        var inputs: [(key: String, value: String)] = [(key: "count", value: "\(graphInputs.count) (\(histogram(graphInputs.map(elementTypeName))))")]
        inputs += graphInputs.map { (key: $0.name, value: typeString($0)) }
        var outputs: [(key: String, value: String)] = [(key: "count", value: "\(g.outputs.count) (\(histogram(g.outputs.map(elementTypeName))))")]
        outputs += g.outputs.map { (key: $0.name, value: typeString($0)) }

        // Nodes and op types.
        func opName(_ n: NodeProto) -> String { n.domain.isEmpty || n.domain == "ai.onnx" ? n.opType : "\(n.domain)::\(n.opType)" }
        var counts: [String: Int] = [:]
        for n in g.nodes { counts[opName(n), default: 0] += 1 }
        var nodes: [(key: String, value: String)] = [(key: "count", value: "\(g.nodes.count)")]
        nodes += counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { (key: $0.key, value: "\($0.value)") }

        // Quantization.
        let nbits = g.nodes.filter { $0.opType == "MatMulNBits" }
        var quant: [(key: String, value: String)] = [(key: "MatMulNBits", value: "\(nbits.count)")]
        if !nbits.isEmpty {
            let combos = nbits.map { n -> String in
                func a(_ k: String) -> String { n.attribute(k).map { "\($0.i)" } ?? "-" }
                let zp = n.inputs.count > 3 && !n.inputs[3].isEmpty ? "yes" : "no"
                return "bits=\(a("bits")) block_size=\(a("block_size")) accuracy_level=\(a("accuracy_level")) zero_points=\(zp)"
            }
            quant.append((key: "attributes", value: histogram(combos)))
            quant.append((key: "shapes (K×N)", value: histogram(nbits.map { n in
                "\(n.attribute("K")?.i ?? 0)×\(n.attribute("N")?.i ?? 0)"
            })))
            let scaleTypes = nbits.compactMap { n -> String? in
                n.inputs.count > 2 ? g.initializers.first { $0.name == n.inputs[2] }?.elementType?.description : nil
            }
            quant.append((key: "scale types", value: histogram(scaleTypes)))
        }
        let matmuls = g.nodes.filter { $0.opType == "MatMul" || $0.opType == "Gemm" }
        let floatWeights = matmuls.filter { $0.inputs.count > 1 && constantNames.contains($0.inputs[1]) }
        quant.append((key: "float MatMul/Gemm with weights", value: floatWeights.isEmpty ? "none" : floatWeights.map(\.name).joined(separator: ", ")))
        quant.append((key: "activation MatMuls", value: "\(matmuls.count - floatWeights.count)"))

        // Support by this runtime.
        var opsets: [String: Int] = [:]
        for o in p.opsetImports { opsets[o.domain == "ai.onnx" ? "" : o.domain] = Int(o.version) }
        let unsupported = Set(g.nodes.filter { n in
            let d = n.domain == "ai.onnx" ? "" : n.domain
            return !OperatorRegistry.supports(opType: n.opType, domain: d, opset: opsets[d] ?? 1)
        }.map(opName)).sorted()
        let support: [(key: String, value: String)] = [(key: "unsupported ops", value: unsupported.isEmpty ? "none: every op in the graph is implemented" : unsupported.joined(separator: ", "))]

        return [
            ("file", file),
            ("inputs", inputs),
            ("outputs", outputs),
            ("nodes", nodes),
            ("quantization", quant),
            ("qwen-swift support", support),
        ]
    }
}
