import ONNX

/// Static element types of the graph's values, from initializers, declared inputs and per-op
/// rules. Values whose type cannot be told are left out.
enum TypeInference {
    static func elementTypes(_ graph: Graph) -> [String: DataType] {
        var types: [String: DataType] = [:]
        types.reserveCapacity(graph.constants.count + graph.inputs.count + 2 * graph.nodes.count)
        for (name, t) in graph.constants { types[name] = t.dtype }
        for spec in graph.inputs { if let t = spec.elementType { types[spec.name] = t } }
        for node in graph.nodes {
            func input(_ i: Int) -> DataType? { i < node.inputs.count ? types[node.inputs[i]] : nil }
            var out: DataType?
            switch node.opType {
            case "Shape", "Size", "ArgMax", "ArgMin", "NonZero":
                out = .int64
            case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not", "IsNaN", "IsInf":
                out = .bool
            case "Cast":
                out = node.castTarget
            case "CastLike":
                out = input(1)
            case "ConstantOfShape":
                out = node.attributes["value"]?.t?.elementType ?? .float
            case "Where":
                out = input(1)
            // Quantization: the integer type is the zero point's (or the attribute's), the float
            // type the scale's.
            case "DequantizeLinear", "GatherBlockQuantized":
                out = input(1 + (node.opType == "GatherBlockQuantized" ? 1 : 0))
            case "QuantizeLinear":
                out = input(2) ?? node.intAttribute("output_dtype").flatMap { $0 == 0 ? nil : Int32(exactly: $0) }
                    .flatMap(DataType.init(rawValue:)) ?? .uint8
            case "MatMulInteger":
                out = .int32
            case "DynamicQuantizeLinear":
                out = .uint8
            default:
                out = input(0)
            }
            for name in node.outputs where !name.isEmpty {
                if let out { types[name] = out }
            }
            if node.opType == "DynamicQuantizeLinear", node.outputs.count > 1, !node.outputs[1].isEmpty {
                types[node.outputs[1]] = .float
            }
            // Normalisation ops: statistics outputs are float32.
            if node.opType.hasSuffix("LayerNormalization") {
                for (k, name) in node.outputs.enumerated() where k > 0 && !name.isEmpty && !(node.opType.hasPrefix("Skip") && k == 3) {
                    types[name] = .float
                }
            }
        }
        return types
    }
}
