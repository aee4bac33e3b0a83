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
        var first: [Key: Int] = [:]
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

    /// An input as the key sees it: by name, or a small constant by value.
    enum Operand: Hashable {
        case value(String)
        case constant(dtype: Int32, shape: [Int], bytes: [UInt8])
    }

    /// An attribute as the key sees it (tensors and graphs are not compared).
    enum Attribute: Hashable {
        case int(Int64), ints([Int64]), float(UInt32), floats([UInt32]), string([UInt8]), strings([[UInt8]])
    }

    struct Key: Hashable {
        let domain: String
        let opType: String
        let inputs: [Operand]
        let attributes: [String: Attribute]
    }

    /// What identifies the node's computation, or nil when it is not to be merged. Small
    /// constant inputs count by value (each layer has its own copy of the same Slice axes).
    static func key(_ node: Node, _ constants: [String: Tensor]) -> Key? {
        guard !neverMerged.contains(node.opType), !node.inputs.isEmpty else { return nil }
        var attributes: [String: Attribute] = [:]
        for (name, a) in node.attributes {
            switch a.kind {
            case .int: attributes[name] = .int(a.i)
            case .ints: attributes[name] = .ints(a.ints)
            case .float: attributes[name] = .float(a.f.bitPattern)
            case .floats: attributes[name] = .floats(a.floats.map(\.bitPattern))
            case .string: attributes[name] = .string(a.s)
            case .strings: attributes[name] = .strings(a.strings)
            default: return nil
            }
        }
        let inputs = node.inputs.map { name -> Operand in
            guard let t = constants[name], t.byteCount <= 512, t.isContiguous else { return .value(name) }
            return .constant(dtype: t.dtype.rawValue, shape: t.shape,
                             bytes: Array(UnsafeRawBufferPointer(start: t.rawPointer, count: t.byteCount)))
        }
        return Key(domain: node.domain, opType: node.opType, inputs: inputs, attributes: attributes)
    }
}
