import ONNX

/// Replaces the exports' shape arithmetic with one `ShapeProgram` node.
///
/// The exports compute every Reshape target, Slice bound and Expand shape at run time, op by op:
/// `Shape(x)` → `Gather` → `Unsqueeze` → `Concat` (→ `Cast`, `Div`, `Where`, …), about 800 nodes per
/// decode step on the 0.5B after the other passes, each paying the executor's per-node cost. Their
/// values depend only on the dimensions of the graph's inputs (batch, sequence and past lengths).
///
/// This pass follows those dimensions through the graph symbolically: each value's shape as
/// `ShapeTerms` (integer expressions over the inputs' dimensions), and each small int64 or bool
/// tensor computed from shapes and constants element by element. A node whose outputs are all such
/// tensors is removed; the ones other nodes still read become constants when they do not depend on
/// the inputs, and otherwise outputs of one `ShapeProgram` node placed first, which evaluates their
/// expressions from the inputs' shapes. Values are computed exactly as the removed ops would
/// (wrapping int64 arithmetic, truncating division failing on zero, Slice's clamping, Reshape's 0
/// and -1); a node whose value the rules cannot tell, or that would fail, is left as it is.
enum ShapeFolding {
    static let opType = "ShapeProgram"
    /// Tensors of at most this many elements are followed element by element.
    static let maxElements = 64

    /// A small int64 or bool tensor whose elements are terms (bools as 0 and 1).
    struct Value {
        var dtype: DataType
        var shape: [Int]
        var terms: [Int]
    }

    /// Runs the pass; returns the number of nodes removed.
    @discardableResult
    static func run(_ graph: inout Graph) -> Int {
        var folder = Folder(graph)
        // Nodes whose outputs are all followed as values, and those outputs.
        var folded = Set<Int>()
        var foldedValues = Set<String>()
        for (i, node) in graph.nodes.enumerated() {
            folder.visit(node)
            if node.outputs.contains(where: { !$0.isEmpty }),
               node.outputs.allSatisfy({ $0.isEmpty || folder.values[$0] != nil }) {
                folded.insert(i)
                for o in node.outputs where !o.isEmpty { foldedValues.insert(o) }
            }
        }
        guard !folded.isEmpty else { return 0 }
        folder.constants = [:]   // so that adding constants below does not copy the table

        // The folded values something else still reads, in first-use order.
        var needed: [String] = []
        var seen = Set<String>()
        func need(_ name: String) {
            guard foldedValues.contains(name), seen.insert(name).inserted else { return }
            needed.append(name)
        }
        for (i, node) in graph.nodes.enumerated() where !folded.contains(i) {
            node.inputs.forEach(need)
        }
        graph.outputs.map(\.name).forEach(need)

        // Constants where they do not depend on the inputs; otherwise one program output per
        // distinct value, which every reader of an equal value reads instead (the 24 layers'
        // equal Reshape targets become one tensor).
        var programOutputs: [(name: String, value: Value)] = []
        var distinct: [[Int]: String] = [:]
        var renamed: [String: String] = [:]
        let graphOutputs = Set(graph.outputs.map(\.name))
        for name in needed {
            let value = folder.values[name]!
            let constants = value.terms.compactMap { folder.terms.constant($0) }
            if constants.count == value.terms.count {
                graph.constants[name] = value.dtype == .bool
                    ? Tensor(bools: constants.map { $0 != 0 }, shape: value.shape)
                    : Tensor(int64s: constants, shape: value.shape)
                continue
            }
            let key = [Int(value.dtype.rawValue), value.shape.count] + value.shape + value.terms
            if !graphOutputs.contains(name), let first = distinct[key] {
                renamed[name] = first
            } else {
                distinct[key] = distinct[key] ?? name
                programOutputs.append((name, value))
            }
        }
        var nodes = graph.nodes.enumerated().compactMap { folded.contains($0.offset) ? nil : $0.element }
        if !renamed.isEmpty {
            for i in nodes.indices where nodes[i].inputs.contains(where: { renamed[$0] != nil }) {
                nodes[i].inputs = nodes[i].inputs.map { renamed[$0] ?? $0 }
            }
        }
        if !programOutputs.isEmpty {
            nodes.insert(folder.program(programOutputs), at: 0)
        }
        let before = graph.nodes.count
        graph.nodes = Float16Precision.removeDeadNodes(nodes, keeping: Set(graph.outputs.map(\.name)))
        return before - graph.nodes.count
    }
}

/// The symbolic walk over the graph (`ShapeFolding`).
private struct Folder {
    typealias Value = ShapeFolding.Value
    var terms = ShapeTerms()
    /// Each value's dimensions, as terms.
    var shapes: [String: [Int]] = [:]
    /// The small int64/bool values known element by element.
    var values: [String: Value] = [:]
    /// Graph inputs whose dimensions terms read, by their index in `dimension` terms.
    var inputNames: [String] = []
    /// The term of each named symbolic dimension (`dim_param`): inputs declaring the same name
    /// have the same size (`Session.run` checks it, as TensorRT does), so the 24 caches' past
    /// lengths are one term.
    var parameters: [String: Int] = [:]
    let opsets: [String: Int]
    /// The graph's constants, read when a node reads one (most are weights no shape depends on).
    var constants: [String: Tensor]

    init(_ graph: Graph) {
        opsets = graph.opsets
        shapes.reserveCapacity(2 * graph.nodes.count + graph.inputs.count)
        constants = graph.constants
        for spec in graph.inputs {
            guard let dims = spec.shape else { continue }
            let input = inputNames.count
            inputNames.append(spec.name)
            shapes[spec.name] = dims.enumerated().map { axis, d in
                // Session.run checks declared sizes and every feed's rank.
                switch d {
                case .value(let v) where v >= 0: return terms.literal(v)
                case .param(let name) where !name.isEmpty:
                    if let t = parameters[name] { return t }
                    let t = terms.intern(.dimension(input: input, axis: axis))
                    parameters[name] = t
                    return t
                default: return terms.intern(.dimension(input: input, axis: axis))
                }
            }
        }
    }

    // MARK: Reading operands

    /// The dimensions of value `name`, if known (a constant's on first use).
    mutating func shapeOf(_ name: String) -> [Int]? {
        if let s = shapes[name] { return s }
        guard let t = constants[name] else { return nil }
        let s = t.shape.map { terms.literal(Int64($0)) }
        shapes[name] = s
        return s
    }

    /// The elements of value `name`, if it is a small int64/bool tensor known element by element
    /// (a constant's on first use).
    mutating func valueOf(_ name: String) -> Value? {
        if let v = values[name] { return v }
        guard let t = constants[name], t.dtype == .int64 || t.dtype == .bool, t.count <= ShapeFolding.maxElements,
              t.isContiguous else { return nil }
        let elements = t.dtype == .bool
            ? UnsafeBufferPointer(start: t.pointer(as: UInt8.self), count: t.count).map { Int64($0 != 0 ? 1 : 0) }
            : t.int64s()
        let v = Value(dtype: t.dtype, shape: t.shape, terms: elements.map { terms.literal($0) })
        values[name] = v
        return v
    }

    mutating func constantInts(_ name: String) -> [Int]? {
        guard let v = valueOf(name) else { return nil }
        let c = v.terms.compactMap { terms.constant($0) }
        return c.count == v.terms.count ? c.map { Int(truncatingIfNeeded: $0) } : nil
    }

    /// The dimensions as integers when all are constants and their product fits in an Int.
    func staticShape(_ dims: [Int]) -> [Int]? {
        let c = dims.compactMap { terms.constant($0) }
        guard c.count == dims.count, c.allSatisfy({ $0 >= 0 }), elementCount(c.map(Int.init)) != nil else { return nil }
        return c.map(Int.init)
    }

    mutating func setValue(_ name: String, _ value: Value) {
        guard !name.isEmpty, value.terms.count <= ShapeFolding.maxElements else { return }
        values[name] = value
        shapes[name] = value.shape.map { terms.literal(Int64($0)) }
    }

    mutating func product(_ dims: some Sequence<Int>) -> Int? {
        var p = terms.literal(1)
        for d in dims {
            guard let q = terms.apply(.multiply, p, d) else { return nil }
            p = q
        }
        return p
    }

    /// Multidirectional broadcasting of symbolic shapes: a size-1 dimension takes the other's;
    /// two unknown sizes give `a == 1 ? b : a` (what the op computes when the shapes are valid).
    mutating func broadcast(_ shapes: [[Int]]) -> [Int] {
        let rank = shapes.map(\.count).max() ?? 0
        var out = [Int](repeating: terms.literal(1), count: rank)
        for s in shapes {
            for (i, d) in s.enumerated() {
                let j = i + rank - s.count
                if terms.constant(d) == 1 || out[j] == d { continue }
                if terms.constant(out[j]) == 1 { out[j] = d; continue }
                let isOne = terms.apply(.equal, out[j], terms.literal(1))!
                out[j] = terms.select(isOne, d, out[j])
            }
        }
        return out
    }

    // MARK: The walk

    /// The node being visited: what the folding steps read of it.
    struct Visit {
        let node: Node
        let opset: Int
        /// Its first output (most nodes have one).
        let out: String
        func input(_ i: Int) -> String { i < node.inputs.count ? node.inputs[i] : "" }
    }

    mutating func shape(_ n: Visit, _ i: Int) -> [Int]? { shapeOf(n.input(i)) }
    mutating func value(_ n: Visit, _ i: Int) -> Value? { valueOf(n.input(i)) }
    mutating func setShape(_ n: Visit, _ dims: [Int]?) { if let dims, !n.out.isEmpty { shapes[n.out] = dims } }

    /// Records what `node` makes known: its output's shape (as terms) and, for the small integer
    /// and boolean tensors of shape arithmetic, its value. One step per op type below.
    mutating func visit(_ node: Node) {
        let n = Visit(node: node, opset: opsets[node.domain] ?? 1, out: node.outputs.first ?? "")
        if node.domain == PrivateOps.domain { return foldPrivate(n) }
        if node.domain == "com.microsoft" { return foldMicrosoft(n) }
        guard node.domain.isEmpty else { return }
        switch node.opType {
        case "Shape": foldShape(n)
        case "Size": foldSize(n)
        case "Identity": foldIdentity(n)
        case "Cast": foldCast(n)
        case "Unsqueeze": foldUnsqueeze(n)
        case "Squeeze": foldSqueeze(n)
        case "Flatten": foldFlatten(n)
        case "Reshape": foldReshape(n)
        case "Transpose": foldTranspose(n)
        case "Gather": foldGather(n)
        case "Concat": foldConcat(n)
        case "Add", "Sub", "Mul", "Div", "Min", "Max": foldArithmetic(n)
        case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual": foldComparison(n)
        case "And", "Or": foldLogic(n)
        case "Not": foldNot(n)
        case "Where": foldWhere(n)
        case "Slice": slice(node, opset: n.opset)
        case "Expand": foldExpand(n)
        case "ConstantOfShape": foldConstantOfShape(n)
        case "Range": foldRange(n)
        case "MatMul": foldMatMul(n)
        case "Pow", "Sum", "Mean", "Xor", "Mod", "PRelu", "BitShift": broadcastShapes(node)
        case "Neg", "Abs", "Sqrt", "Reciprocal", "Exp", "Log", "Sigmoid", "Tanh", "Relu", "Erf", "Softmax", "LogSoftmax",
             "Sin", "Cos", "IsNaN", "IsInf", "Floor", "Ceil", "Round", "Sign", "CastLike", "Trilu", "LeakyRelu", "Gelu",
             "HardSigmoid", "Elu", "Selu", "Softplus", "Clip", "LayerNormalization", "SimplifiedLayerNormalization":
            setShape(n, shape(n, 0))
        default:
            break
        }
    }

    /// This runtime's own ops (after the fusions): their outputs' shapes.
    mutating func foldPrivate(_ n: Visit) {
        switch n.node.opType {
        case "RMSNorm", "SiLUMul", RotaryFusion.opType, "FusedAttention": setShape(n, shape(n, 0))
        case "AppendKV":
            if let past = shape(n, 0), let new = shape(n, 1), past.count == 4, new.count == 4,
               let total = terms.apply(.add, past[2], new[2]) {
                setShape(n, [past[0], past[1], total, past[3]])
            }
        case MatMulNBitsGrouping.opType:
            if let a = shape(n, 0), !a.isEmpty, let ns = n.node.intsAttribute("Ns"), ns.count == n.node.outputs.count {
                for (k, name) in n.node.outputs.enumerated() where !name.isEmpty {
                    shapes[name] = a.dropLast() + [terms.literal(Int64(ns[k]))]
                }
            }
        default: break
        }
    }

    /// com.microsoft ops: MatMulNBits' output shape.
    mutating func foldMicrosoft(_ n: Visit) {
        if n.node.opType == "MatMulNBits", let a = shape(n, 0), !a.isEmpty, let columns = n.node.intAttribute("N") {
            setShape(n, a.dropLast() + [terms.literal(Int64(columns))])
        }
    }

    mutating func foldShape(_ n: Visit) {
        guard let dims = shape(n, 0) else { return }
        let picked = Array(dims[ShapeOperator.axes(start: n.opset >= 15 ? n.node.intAttribute("start", default: 0) : 0,
                                                   end: n.opset >= 15 ? n.node.intAttribute("end") : nil, rank: dims.count)])
        setValue(n.out, Value(dtype: .int64, shape: [picked.count], terms: picked))
    }

    mutating func foldSize(_ n: Visit) {
        if let dims = shape(n, 0), let p = product(dims) { setValue(n.out, Value(dtype: .int64, shape: [], terms: [p])) }
    }

    mutating func foldIdentity(_ n: Visit) {
        if let v = value(n, 0) { setValue(n.out, v) } else { setShape(n, shape(n, 0)) }
    }

    mutating func foldCast(_ n: Visit) {
        setShape(n, shape(n, 0))
        guard let v = value(n, 0), let to = n.node.castTarget else { return }
        if to == .int64 {
            setValue(n.out, Value(dtype: .int64, shape: v.shape, terms: v.terms))
        } else if to == .bool && v.dtype == .bool {
            setValue(n.out, v)
        } else if to == .bool && v.dtype == .int64 {
            let zero = terms.literal(0)
            let t = v.terms.map { terms.apply(.equal, terms.apply(.equal, $0, zero)!, zero)! }
            setValue(n.out, Value(dtype: .bool, shape: v.shape, terms: t))
        }
    }

    mutating func foldUnsqueeze(_ n: Visit) {
        guard let dims = shape(n, 0) else { return }
        let axes = n.opset >= 13 ? constantInts(n.input(1)) : n.node.intsAttribute("axes")
        guard let axes else { return }
        let rank = dims.count + axes.count
        let normalized = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
        guard normalized.count == axes.count, normalized.allSatisfy({ $0 >= 0 && $0 < rank }) else { return }
        var result: [Int] = []
        var k = 0
        for i in 0..<rank {
            if normalized.contains(i) { result.append(terms.literal(1)) } else { result.append(dims[k]); k += 1 }
        }
        reshape(n.out, value(n, 0), result)
    }

    mutating func foldSqueeze(_ n: Visit) {
        guard let dims = shape(n, 0) else { return }
        let axes = n.opset >= 13 ? (n.input(1).isEmpty ? nil : constantInts(n.input(1))) : n.node.intsAttribute("axes")
        if n.opset >= 13 && !n.input(1).isEmpty && axes == nil { return }
        var result: [Int] = []
        if let axes {
            let normalized = Set(axes.map { $0 < 0 ? $0 + dims.count : $0 })
            for (i, d) in dims.enumerated() {
                if normalized.contains(i) {
                    guard terms.constant(d) == 1 else { return }
                } else {
                    result.append(d)
                }
            }
        } else {
            guard dims.allSatisfy({ terms.constant($0) != nil }) else { return }
            result = dims.filter { terms.constant($0) != 1 }
        }
        reshape(n.out, value(n, 0), result)
    }

    mutating func foldFlatten(_ n: Visit) {
        guard let dims = shape(n, 0) else { return }
        let axis = n.node.intAttribute("axis", default: 1)
        let a = axis < 0 ? axis + dims.count : axis
        guard a >= 0 && a <= dims.count, let outer = product(dims[..<a]), let inner = product(dims[a...]) else { return }
        reshape(n.out, value(n, 0), [outer, inner])
    }

    mutating func foldReshape(_ n: Visit) {
        guard let dims = shape(n, 0), let target = value(n, 1), target.shape.count == 1 else { return }
        let allowZero = n.opset >= 14 && n.node.intAttribute("allowzero", default: 0) != 0
        var result: [Int] = []
        var inferAt: Int?
        for (i, t) in target.terms.enumerated() {
            if let c = terms.constant(t) {
                if c == -1 {
                    guard inferAt == nil else { return }
                    inferAt = i
                    result.append(terms.literal(1))
                } else if c == 0 && !allowZero {
                    guard i < dims.count else { return }
                    result.append(dims[i])
                } else {
                    guard c >= 0 else { return }
                    result.append(t)
                }
            } else {
                // A computed size: never -1 when it cannot be negative; 0 copies the input's.
                guard terms.isNonNegative(t) else { return }
                if allowZero || i >= dims.count {
                    result.append(t)
                } else {
                    let isZero = terms.apply(.equal, t, terms.literal(0))!
                    result.append(terms.select(isZero, dims[i], t))
                }
            }
        }
        if let k = inferAt {
            guard let total = product(dims), let known = product(result),
                  let inferred = terms.apply(.quotient, total, known) else { return }
            result[k] = inferred
        }
        reshape(n.out, value(n, 0), result)
    }

    mutating func foldTranspose(_ n: Visit) {
        guard let dims = shape(n, 0) else { return }
        let perm = n.node.intsAttribute("perm") ?? Array((0..<dims.count).reversed())
        guard perm.count == dims.count, isPermutation(perm) else { return }
        if let v = value(n, 0) {
            guard let staticDims = staticShape(dims) else { return }
            let strides = contiguousStrides(staticDims)
            let outShape = perm.map { staticDims[$0] }
            let picked = forEachIndex(outShape).map { index in
                v.terms[zip(index, perm).reduce(0) { $0 + $1.0 * strides[$1.1] }]
            }
            setValue(n.out, Value(dtype: v.dtype, shape: outShape, terms: picked))
        } else {
            setShape(n, perm.map { dims[$0] })
        }
    }

    mutating func foldGather(_ n: Visit) {
        guard let dims = shape(n, 0), let indexDims = shape(n, 1), !dims.isEmpty else { return }
        let axis = n.node.intAttribute("axis", default: 0)
        let a = axis < 0 ? axis + dims.count : axis
        guard a >= 0 && a < dims.count else { return }
        if let v = value(n, 0), let indices = constantInts(n.input(1)), let indexShape = value(n, 1)?.shape {
            let size = v.shape[a]
            guard indices.allSatisfy({ $0 >= -size && $0 < size }) else { return }
            let outer = v.shape[..<a].reduce(1, *), inner = v.shape[(a + 1)...].reduce(1, *)
            var picked: [Int] = []
            for o in 0..<outer {
                for i in indices {
                    let row = i < 0 ? i + size : i
                    for k in 0..<inner { picked.append(v.terms[(o * size + row) * inner + k]) }
                }
            }
            setValue(n.out, Value(dtype: v.dtype, shape: Array(v.shape[..<a]) + indexShape + Array(v.shape[(a + 1)...]),
                                terms: picked))
        } else {
            setShape(n, Array(dims[..<a]) + indexDims + Array(dims[(a + 1)...]))
        }
    }

    mutating func foldConcat(_ n: Visit) {
        let inputs = n.node.inputs.filter { !$0.isEmpty }
        guard let name = inputs.first, let first = shapeOf(name), !first.isEmpty else { return }
        let axis = n.node.intAttribute("axis", default: 0)
        let a = axis < 0 ? axis + first.count : axis
        guard a >= 0 && a < first.count else { return }
        let parts = inputs.compactMap { valueOf($0) }
        if parts.count == inputs.count, parts.allSatisfy({ $0.dtype == parts[0].dtype && $0.shape.count == first.count }) {
            let outer = parts[0].shape[..<a].reduce(1, *)
            guard parts.allSatisfy({ $0.shape[..<a].reduce(1, *) == outer && Array($0.shape[(a + 1)...]) == Array(parts[0].shape[(a + 1)...]) })
            else { return }
            var joined: [Int] = []
            for o in 0..<outer {
                for p in parts {
                    let rows = p.terms.count / max(outer, 1)
                    joined += p.terms[(o * rows)..<((o + 1) * rows)]
                }
            }
            var outShape = parts[0].shape
            outShape[a] = parts.reduce(0) { $0 + $1.shape[a] }
            setValue(n.out, Value(dtype: parts[0].dtype, shape: outShape, terms: joined))
        } else {
            let all = inputs.compactMap { shapeOf($0) }
            guard all.count == inputs.count, all.allSatisfy({ $0.count == first.count }) else { return }
            var total = terms.literal(0)
            for s in all {
                guard let t = terms.apply(.add, total, s[a]) else { return }
                total = t
            }
            var result = first
            result[a] = total
            setShape(n, result)
        }
    }

    mutating func foldArithmetic(_ n: Visit) {
        let ops: [String: ShapeTerms.Operation] = ["Add": .add, "Sub": .subtract, "Mul": .multiply, "Div": .divide,
                                                   "Min": .minimum, "Max": .maximum]
        if n.node.inputs.count == 2, let a = value(n, 0), let b = value(n, 1), a.dtype == .int64, b.dtype == .int64 {
            elementwise(n.out, [a, b], dtype: .int64) { t, x in t.apply(ops[n.node.opType]!, x[0], x[1]) }
        } else {
            broadcastShapes(n.node)
        }
    }

    mutating func foldComparison(_ n: Visit) {
        if let a = value(n, 0), let b = value(n, 1), a.dtype == .int64, b.dtype == .int64 {
            elementwise(n.out, [a, b], dtype: .bool) { t, x in
                switch n.node.opType {
                case "Equal": t.apply(.equal, x[0], x[1])
                case "Less": t.apply(.less, x[0], x[1])
                case "Greater": t.apply(.less, x[1], x[0])
                case "LessOrEqual": t.apply(.lessOrEqual, x[0], x[1])
                default: t.apply(.lessOrEqual, x[1], x[0])
                }
            }
        } else {
            broadcastShapes(n.node)
        }
    }

    mutating func foldLogic(_ n: Visit) {
        if let a = value(n, 0), let b = value(n, 1), a.dtype == .bool, b.dtype == .bool {
            elementwise(n.out, [a, b], dtype: .bool) { t, x in t.apply(n.node.opType == "And" ? .and : .or, x[0], x[1]) }
        } else {
            broadcastShapes(n.node)
        }
    }

    mutating func foldNot(_ n: Visit) {
        if let a = value(n, 0), a.dtype == .bool {
            elementwise(n.out, [a], dtype: .bool) { t, x in t.apply(.equal, x[0], t.literal(0)) }
        } else {
            setShape(n, shape(n, 0))
        }
    }

    mutating func foldWhere(_ n: Visit) {
        if let c = value(n, 0), let a = value(n, 1), let b = value(n, 2), c.dtype == .bool, a.dtype == b.dtype {
            elementwise(n.out, [c, a, b], dtype: a.dtype) { t, x in t.select(x[0], x[1], x[2]) }
        } else {
            broadcastShapes(n.node)
        }
    }

    mutating func foldExpand(_ n: Visit) {
        guard let dims = shape(n, 0), let target = value(n, 1), target.shape.count == 1 else { return }
        if let v = value(n, 0), let t = constantInts(n.input(1)), let outShape = try? Broadcast.shape([v.shape, t]) {
            elementwise(n.out, [v], dtype: v.dtype, shape: outShape) { _, x in x[0] }
        } else {
            setShape(n, broadcast([dims, target.terms]))
        }
    }

    mutating func foldConstantOfShape(_ n: Visit) {
        guard let target = value(n, 0), target.shape.count == 1 else { return }
        let fill = n.node.attributes["value"]?.t
        if let size = constantInts(n.input(0)), size.allSatisfy({ $0 >= 0 }), let count = elementCount(size), count <= ShapeFolding.maxElements,
           let fill, let tensor = try? Tensor(proto: fill, model: nil), tensor.count == 1,
           tensor.dtype == .int64 || tensor.dtype == .bool {
            let element = tensor.dtype == .bool ? Int64(tensor.rawPointer.load(as: UInt8.self) != 0 ? 1 : 0) : tensor.int64s()[0]
            setValue(n.out, Value(dtype: tensor.dtype, shape: size,
                                terms: Array(repeating: terms.literal(element), count: count)))
        } else {
            setShape(n, target.terms)
        }
    }

    mutating func foldRange(_ n: Visit) {
        guard let start = value(n, 0), let limit = value(n, 1), let delta = constantInts(n.input(2)),
              start.dtype == .int64, limit.dtype == .int64, start.terms.count == 1, limit.terms.count == 1,
              delta.count == 1, delta[0] > 0 else { return }
        if let count = stepCount(from: start.terms[0], to: limit.terms[0], step: delta[0]) { setShape(n, [count]) }
    }

    mutating func foldMatMul(_ n: Visit) {
        guard let a = shape(n, 0), let b = shape(n, 1), a.count >= 2, b.count >= 2 else { return }
        let batch = broadcast([Array(a.dropLast(2)), Array(b.dropLast(2))])
        setShape(n, batch + [a[a.count - 2], b[b.count - 1]])
    }

    /// Broadcast of the node's inputs' shapes, when all are known.
    mutating func broadcastShapes(_ node: Node) {
        let all = node.inputs.filter { !$0.isEmpty }.compactMap { shapeOf($0) }
        guard all.count == node.inputs.filter({ !$0.isEmpty }).count, !all.isEmpty, let out = node.outputs.first, !out.isEmpty else { return }
        shapes[out] = broadcast(all)
    }

    /// A view op's result: the value with a new static shape, or the shape.
    mutating func reshape(_ out: String, _ value: Value?, _ dims: [Int]) {
        if let value {
            guard let s = staticShape(dims), s.reduce(1, *) == value.terms.count else { return }
            setValue(out, Value(dtype: value.dtype, shape: s, terms: value.terms))
        } else if !out.isEmpty {
            shapes[out] = dims
        }
    }

    /// `f` on the broadcast elements of `operands` (static shapes).
    mutating func elementwise(_ out: String, _ operands: [Value], dtype: DataType, shape: [Int]? = nil,
                              _ f: (inout ShapeTerms, [Int]) -> Int?) {
        guard let outShape = shape ?? (try? Broadcast.shape(operands.map(\.shape))),
              let n = elementCount(outShape), n <= ShapeFolding.maxElements else { return }
        let strides = operands.map { Broadcast.strides($0.shape, to: outShape) }
        var result: [Int] = []
        for index in forEachIndex(outShape) {
            let args = operands.indices.map { k in operands[k].terms[zip(index, strides[k]).reduce(0) { $0 + $1.0 * $1.1 }] }
            guard let t = f(&terms, args) else { return }
            result.append(t)
        }
        setValue(out, Value(dtype: dtype, shape: outShape, terms: result))
    }

    /// Slice: of a value with constant bounds, element by element; of other tensors, the shape
    /// (constant bounds and positive steps, or bounds that cannot be negative).
    mutating func slice(_ node: Node, opset: Int) {
        guard let data = node.inputs.first, let dims = shapeOf(data), let out = node.outputs.first, !out.isEmpty else { return }
        func boundTerms(_ i: Int, _ attribute: String) -> [Int]? {
            if opset < 10 { return node.intsAttribute(attribute)?.map { terms.literal(Int64($0)) } }
            guard i < node.inputs.count, !node.inputs[i].isEmpty else { return nil }
            return valueOf(node.inputs[i])?.terms
        }
        guard let starts = boundTerms(1, "starts"), let ends = boundTerms(2, "ends"), starts.count == ends.count else { return }
        let axes: [Int]
        if opset < 10 {
            axes = node.intsAttribute("axes") ?? Array(0..<starts.count)
        } else if node.inputs.count > 3 && !node.inputs[3].isEmpty {
            guard let a = constantInts(node.inputs[3]) else { return }
            axes = a
        } else {
            axes = Array(0..<starts.count)
        }
        var steps = [Int](repeating: 1, count: starts.count)
        if opset >= 10 && node.inputs.count > 4 && !node.inputs[4].isEmpty {
            guard let s = constantInts(node.inputs[4]) else { return }
            steps = s
        }
        guard axes.count == starts.count, steps.count == starts.count else { return }
        var result = dims
        var begin = [Int](repeating: 0, count: dims.count)
        var stepOf = [Int](repeating: 1, count: dims.count)
        var sliced = Set<Int>()
        for k in starts.indices {
            let axis = axes[k] < 0 ? axes[k] + dims.count : axes[k]
            guard axis >= 0 && axis < dims.count, sliced.insert(axis).inserted else { return }
            let step = steps[k]
            guard step != 0, step != Int.min else { return }
            if let dim = terms.constant(dims[axis]), let s0 = terms.constant(starts[k]), let e0 = terms.constant(ends[k]) {
                // All known: SliceOperator's arithmetic.
                let (first, count) = sliceAxis(start: Int(truncatingIfNeeded: s0), end: Int(truncatingIfNeeded: e0),
                                               step: step, dim: Int(dim))
                result[axis] = terms.literal(Int64(count))
                begin[axis] = first
                stepOf[axis] = step
            } else {
                guard step > 0, valueOf(data) == nil,
                      let s = clampedBound(starts[k], dims[axis]), let e = clampedBound(ends[k], dims[axis]),
                      let n = stepCount(from: s, to: e, step: step) else { return }
                result[axis] = n
            }
        }
        guard let v = valueOf(data) else {
            shapes[out] = result
            return
        }
        guard let outShape = staticShape(result) else { return }
        let strides = contiguousStrides(v.shape)
        let picked = forEachIndex(outShape).map { index in
            v.terms[index.indices.reduce(0) { $0 + (begin[$1] + index[$1] * stepOf[$1]) * strides[$1] }]
        }
        setValue(out, Value(dtype: v.dtype, shape: outShape, terms: picked))
    }

    /// ⌈(end − start) / step⌉ if end > start, else 0 (step > 0): Slice's and Range's lengths,
    /// written so that no intermediate exceeds end − start.
    mutating func stepCount(from start: Int, to end: Int, step: Int) -> Int? {
        guard let span = terms.apply(.subtract, end, start), let less = terms.apply(.subtract, span, terms.literal(1)),
              let whole = terms.apply(.divide, less, terms.literal(Int64(step))),
              let count = terms.apply(.add, whole, terms.literal(1)),
              let positive = terms.apply(.less, start, end) else { return nil }
        return terms.select(positive, count, terms.literal(0))
    }

    /// A Slice bound on an axis of size `dim` (positive step), clamped to [0, dim] after adding
    /// `dim` to a negative one; nil when its sign is not known.
    mutating func clampedBound(_ bound: Int, _ dim: Int) -> Int? {
        if let c = terms.constant(bound), c < 0 {
            guard let shifted = terms.apply(.add, dim, bound) else { return nil }
            return terms.apply(.maximum, shifted, terms.literal(0))
        }
        guard terms.isNonNegative(bound) else { return nil }
        return terms.apply(.minimum, bound, dim)
    }

    // MARK: The program

    /// The `ShapeProgram` node producing `outputs`: the terms they need, renumbered in order,
    /// and the inputs whose dimensions those read.
    func program(_ outputs: [(name: String, value: Value)]) -> Node {
        var used = Set<Int>()
        var stack = outputs.flatMap(\.value.terms)
        while let id = stack.popLast() {
            guard used.insert(id).inserted else { continue }
            switch terms[id] {
            case .constant, .dimension: break
            case .apply(_, let a, let b): stack += [a, b]
            case .select(let c, let a, let b): stack += [c, a, b]
            }
        }
        let order = used.sorted()
        var newId: [Int: Int] = [:]
        var inputs: [String] = []
        var inputId: [Int: Int] = [:]
        var flat: [Int64] = []
        for (k, id) in order.enumerated() {
            newId[id] = k
            switch terms[id] {
            case .constant(let v): flat += [0, v, 0, 0]
            case .dimension(let input, let axis):
                if inputId[input] == nil {
                    inputId[input] = inputs.count
                    inputs.append(inputNames[input])
                }
                flat += [1, Int64(inputId[input]!), Int64(axis), 0]
            case .apply(let op, let a, let b): flat += [2 + op.rawValue, Int64(newId[a]!), Int64(newId[b]!), 0]
            case .select(let c, let a, let b):
                flat += [ShapeProgramOperator.selectCode, Int64(newId[c]!), Int64(newId[a]!), Int64(newId[b]!)]
            }
        }
        var encoded: [Int64] = []
        for (_, v) in outputs {
            encoded += [Int64(v.dtype.rawValue), Int64(v.shape.count)] + v.shape.map(Int64.init) + v.terms.map { Int64(newId[$0]!) }
        }
        return Node(name: "ShapeFolding/" + ShapeFolding.opType, opType: ShapeFolding.opType, domain: PrivateOps.domain,
                    inputs: inputs, outputs: outputs.map(\.name),
                    attributes: ["terms": .ints("terms", flat), "outputs": .ints("outputs", encoded)])
    }
}

/// The element count of `shape`, nil when a dimension is negative or the count too large
/// (`checkedShape`'s limits).
private func elementCount(_ shape: [Int]) -> Int? {
    (try? checkedShape(shape)).map(Tensor.elementCount)
}

/// Every index of `shape` in row-major order.
private func forEachIndex(_ shape: [Int]) -> [[Int]] {
    guard let count = elementCount(shape), count > 0 else { return [] }
    var result: [[Int]] = []
    result.reserveCapacity(count)
    var index = [Int](repeating: 0, count: shape.count)
    repeat { result.append(index) } while advance(&index, within: shape)
    return result
}
