import ONNX

/// One graph node, with attributes kept by name.
public struct Node: Sendable {
    public var name: String
    public var opType: String
    public var domain: String
    /// Input value names; "" marks an omitted optional input.
    public var inputs: [String]
    /// Output value names; "" marks an omitted optional output.
    public var outputs: [String]
    public var attributes: [String: AttributeProto]

    public init(_ proto: NodeProto, index: Int) {
        name = proto.name.isEmpty ? "\(proto.opType)_\(index)" : proto.name
        opType = proto.opType
        domain = proto.domain == "ai.onnx" ? "" : proto.domain
        inputs = proto.inputs
        outputs = proto.outputs
        var attrs: [String: AttributeProto] = [:]
        for a in proto.attributes { attrs[a.name] = a }
        attributes = attrs
    }

    public init(name: String, opType: String, domain: String = "", inputs: [String], outputs: [String], attributes: [String: AttributeProto] = [:]) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }
}

/// A declared graph input or output.
public struct ValueSpec: Sendable, CustomStringConvertible {
    public var name: String
    public var elementType: DataType?
    /// nil when the rank is not declared.
    public var shape: [ShapeDimension]?

    public init(name: String, elementType: DataType?, shape: [ShapeDimension]?) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
    }

    init(_ v: ValueInfoProto) {
        name = v.name
        if case let .tensor(elem, shape)? = v.type {
            elementType = DataType(rawValue: elem)
            self.shape = shape
        }
    }

    public var description: String {
        let dims = shape.map { "[" + $0.map(\.description).joined(separator: ", ") + "]" } ?? "[?]"
        return "\(name): \(elementType?.description ?? "?")\(dims)"
    }
}

/// A graph ready to plan: nodes in topological order, constant tensors by name, declared inputs
/// and outputs. Passes (constant folding, fusion) rewrite it before a session plans it.
public struct Graph: Sendable {
    public var nodes: [Node]
    public var constants: [String: Tensor]
    public var inputs: [ValueSpec]
    public var outputs: [ValueSpec]
    /// Opset version per domain ("" is ai.onnx).
    public var opsets: [String: Int]
    /// The model file the graph came from (tensors in node attributes may point into it).
    public var model: ONNXModel?

    public init(nodes: [Node], constants: [String: Tensor], inputs: [ValueSpec], outputs: [ValueSpec], opsets: [String: Int], model: ONNXModel? = nil) throws {
        self.nodes = nodes
        self.constants = constants
        self.inputs = inputs
        self.outputs = outputs
        self.opsets = opsets
        self.model = model
        try sortTopologically()
    }

    /// Builds the runtime graph of `model`: initializers become tensors (views into the mapped
    /// files where possible), graph inputs that are also initializers stay overridable feeds.
    public init(model: ONNXModel) throws {
        let g = model.proto.graph
        if g.sparseInitializerCount > 0 {
            throw RuntimeError.invalidGraph("sparse initializers are not supported (\(g.sparseInitializerCount) found)")
        }
        var constants: [String: Tensor] = [:]
        for t in g.initializers {
            constants[t.name] = try Tensor(proto: t, model: model)
        }
        var opsets: [String: Int] = [:]
        for o in model.proto.opsetImports {
            opsets[o.domain == "ai.onnx" ? "" : o.domain] = Int(o.version)
        }
        let declaredInputs = g.inputs.filter { constants[$0.name] == nil }.map(ValueSpec.init)
        // Constant nodes become constants now, while the model file is at hand.
        var nodes: [Node] = []
        nodes.reserveCapacity(g.nodes.count)
        for (i, proto) in g.nodes.enumerated() {
            let node = Node(proto, index: i)
            if node.opType == "Constant" && node.domain.isEmpty && node.outputs.count == 1 {
                guard constants[node.outputs[0]] == nil else {
                    throw RuntimeError.invalidGraph("value '\(node.outputs[0])' is produced twice (again by Constant node '\(node.name)')")
                }
                do {
                    constants[node.outputs[0]] = try constantValue(node, model: model)
                } catch let e as RuntimeError {
                    throw e
                } catch {
                    throw RuntimeError.invalidNode(node: node.name, opType: node.opType, reason: "\(error)")
                }
            } else {
                nodes.append(node)
            }
        }
        try self.init(
            nodes: nodes,
            constants: constants,
            inputs: declaredInputs,
            outputs: g.outputs.map(ValueSpec.init),
            opsets: opsets,
            model: model)
    }

    /// Orders nodes so every input is produced before use (Kahn's algorithm, stable), and checks
    /// that every value has exactly one producer and every input is defined.
    mutating func sortTopologically() throws {
        var producer: [String: Int] = [:]
        for name in constants.keys { producer[name] = -1 }
        for spec in inputs {
            if producer[spec.name] != nil && constants[spec.name] == nil {
                throw RuntimeError.invalidGraph("graph input '\(spec.name)' is declared twice")
            }
            producer[spec.name] = -1
        }
        for (i, node) in nodes.enumerated() {
            for out in node.outputs where !out.isEmpty {
                if producer[out] != nil {
                    throw RuntimeError.invalidGraph("value '\(out)' is produced twice (again by node '\(node.name)')")
                }
                producer[out] = i
            }
        }
        // Depth-first, in file order: a graph that is already sorted keeps its order exactly.
        // Iterative, so a long chain of nodes cannot overflow the stack.
        enum Mark { case unvisited, inProgress, done }
        var marks = [Mark](repeating: .unvisited, count: nodes.count)
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        for root in nodes.indices where marks[root] == .unvisited {
            var stack: [(node: Int, nextInput: Int)] = [(root, 0)]
            marks[root] = .inProgress
            while let (i, k) = stack.last {
                let node = nodes[i]
                if k == node.inputs.count {
                    stack.removeLast()
                    marks[i] = .done
                    order.append(i)
                    continue
                }
                stack[stack.count - 1].nextInput = k + 1
                let input = node.inputs[k]
                if input.isEmpty { continue }
                guard let p = producer[input] else {
                    throw RuntimeError.invalidGraph("node '\(node.name)' (\(node.opType)) reads '\(input)', which no node, initializer or graph input defines")
                }
                guard p >= 0 else { continue }
                switch marks[p] {
                case .done: continue
                case .inProgress:
                    throw RuntimeError.invalidGraph("the graph has a cycle through node '\(nodes[p].name)' (\(nodes[p].opType))")
                case .unvisited:
                    marks[p] = .inProgress
                    stack.append((p, 0))
                }
            }
        }
        nodes = order.map { nodes[$0] }
        for out in outputs where producer[out.name] == nil {
            throw RuntimeError.invalidGraph("graph output '\(out.name)' is never produced")
        }
    }
}
