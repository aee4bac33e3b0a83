import ONNX

/// Merges nodes that compute the same thing: same op, same attributes, same inputs. After
/// `ShapeFolding` the 24 layers' Slice and Where building the attention mask from the same mask
/// and the same bounds are such nodes; one of each is kept, and the others' readers read its
/// outputs. Ops with random results are never merged, nor `AppendKV` (whose output may claim its
/// past's storage in place), nor nodes with tensor or graph attributes (not compared), nor nodes
/// producing a graph output.
enum CommonSubexpressions {
    static let neverMerged: Set<String> = ["RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                                           "Multinomial", "Bernoulli", "Dropout", "AppendKV"]

    /// Runs the pass; returns the number of nodes removed.
    @discardableResult
    static func run(_ graph: inout Graph) -> Int {
        let graphOutputs = Set(graph.outputs.map(\.name))
        var first: [String: Int] = [:]
        var renamed: [String: String] = [:]
        var kept: [Node] = []
        kept.reserveCapacity(graph.nodes.count)
        for var node in graph.nodes {
            node.inputs = node.inputs.map { renamed[$0] ?? $0 }
            guard let key = key(node, graph.constants), !node.outputs.contains(where: graphOutputs.contains) else {
                kept.append(node)
                continue
            }
            // An output the first node leaves out cannot stand in for one this node makes.
            if let k = first[key], kept[k].outputs.count == node.outputs.count,
               zip(node.outputs, kept[k].outputs).allSatisfy({ $0.isEmpty || !$1.isEmpty }) {
                for (mine, theirs) in zip(node.outputs, kept[k].outputs) where !mine.isEmpty { renamed[mine] = theirs }
                continue
            }
            if first[key] == nil { first[key] = kept.count }
            kept.append(node)
        }
        let removed = graph.nodes.count - kept.count
        graph.nodes = kept
        return removed
    }

    /// What identifies the node's computation, or nil when it is not to be merged. Small
    /// constant inputs count by value (each layer has its own copy of the same Slice axes).
    static func key(_ node: Node, _ constants: [String: Tensor]) -> String? {
        guard !neverMerged.contains(node.opType), !node.inputs.isEmpty else { return nil }
        let inputs = node.inputs.map { name -> String in
            guard let t = constants[name], t.byteCount <= 512, t.isContiguous else { return name }
            let bytes = UnsafeRawBufferPointer(start: t.rawPointer, count: t.byteCount)
            return "=\(t.dtype.rawValue)\(t.shape)\(Array(bytes))"
        }
        var parts = [node.domain, node.opType, inputs.joined(separator: "\u{1}")]
        for name in node.attributes.keys.sorted() {
            let a = node.attributes[name]!
            switch a.kind {
            case .int: parts.append("\(name)=i\(a.i)")
            case .ints: parts.append("\(name)=I\(a.ints)")
            case .float: parts.append("\(name)=f\(a.f.bitPattern)")
            case .floats: parts.append("\(name)=F\(a.floats.map(\.bitPattern))")
            case .string: parts.append("\(name)=s\(a.s)")
            case .strings: parts.append("\(name)=S\(a.strings)")
            default: return nil
            }
        }
        return parts.joined(separator: "\u{2}")
    }
}
