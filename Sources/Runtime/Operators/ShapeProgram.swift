import ONNX

/// Integer expressions over the dimensions of a graph's inputs: what `ShapeFolding` derives the
/// exports' shape arithmetic (Shape → Gather → Unsqueeze → Concat → Reshape, …) to be, and what
/// one `ShapeProgram` node evaluates per run instead of those hundreds of nodes.
///
/// Terms are hash-consed: building the same expression twice gives the same id, so the shape
/// chains each decoder layer spells out again collapse into one. Ids increase in dependency order
/// (a term's operands have smaller ids), so a program is evaluated in one pass over its terms.
struct ShapeTerms {
    enum Operation: Int64, CaseIterable {
        // Wrapping, as the int64 ops compute.
        case add = 1, subtract, multiply
        /// Truncating division that fails on a zero divisor, as `Div` on int64 does.
        case divide
        /// Truncating division giving 0 for a zero divisor: for dimensions this pass infers
        /// itself (Reshape's -1), which never decide a failure the graph would not have had.
        case quotient
        case minimum, maximum
        /// 1 or 0.
        case equal, less, lessOrEqual
        /// Of truth values (non-zero is true): 1 or 0.
        case and, or
    }

    enum Term: Hashable {
        case constant(Int64)
        /// Dimension `axis` of the program's input `input`.
        case dimension(input: Int, axis: Int)
        case apply(Operation, Int, Int)
        /// `condition != 0 ? whenTrue : whenFalse`.
        case select(Int, Int, Int)
    }

    private(set) var terms: [Term] = []
    private var ids: [Term: Int] = [:]

    subscript(id: Int) -> Term { terms[id] }

    /// The constant value of term `id`, if it is one.
    func constant(_ id: Int) -> Int64? {
        if case .constant(let v) = terms[id] { return v }
        return nil
    }

    mutating func intern(_ term: Term) -> Int {
        if let id = ids[term] { return id }
        terms.append(term)
        ids[term] = terms.count - 1
        return terms.count - 1
    }

    mutating func literal(_ v: Int64) -> Int { intern(.constant(v)) }

    /// `a op b`, folded when both are constants (nil when that would divide by zero: the graph
    /// fails there, and `ShapeFolding` leaves the node to fail as it was written) and simplified
    /// for the identities that occur (x+0, x·1, x/1, min/max/equal of x and x).
    mutating func apply(_ op: Operation, _ a: Int, _ b: Int) -> Int? {
        if let x = constant(a), let y = constant(b) {
            guard let v = ShapeTerms.evaluate(op, x, y) else { return nil }
            return literal(v)
        }
        switch op {
        case .add where constant(b) == 0, .subtract where constant(b) == 0: return a
        case .add where constant(a) == 0: return b
        case .multiply where constant(b) == 1, .divide where constant(b) == 1, .quotient where constant(b) == 1: return a
        case .multiply where constant(a) == 1: return b
        case .minimum where a == b, .maximum where a == b: return a
        case .equal where a == b, .lessOrEqual where a == b: return literal(1)
        case .less where a == b: return literal(0)
        default: return intern(.apply(op, a, b))
        }
    }

    mutating func select(_ condition: Int, _ whenTrue: Int, _ whenFalse: Int) -> Int {
        if let c = constant(condition) { return c != 0 ? whenTrue : whenFalse }
        if whenTrue == whenFalse { return whenTrue }
        return intern(.select(condition, whenTrue, whenFalse))
    }

    /// Whether term `id` is never negative (dimensions, and what sums, products, quotients,
    /// minima and maxima of such terms give), for the Reshape and Slice rules that treat
    /// negative values differently.
    func isNonNegative(_ id: Int) -> Bool {
        switch terms[id] {
        case .constant(let v): return v >= 0
        case .dimension: return true
        case .apply(let op, let a, let b):
            switch op {
            case .add, .multiply, .divide, .quotient, .minimum:
                // Sums and products of non-negative int64s could wrap; dimensions are far from it.
                return isNonNegative(a) && isNonNegative(b)
            case .maximum: return isNonNegative(a) || isNonNegative(b)
            case .equal, .less, .lessOrEqual, .and, .or: return true
            case .subtract: return false
            }
        case .select(_, let a, let b): return isNonNegative(a) && isNonNegative(b)
        }
    }

    /// `x op y`; nil for `divide` by zero.
    @inline(__always)
    static func evaluate(_ op: Operation, _ x: Int64, _ y: Int64) -> Int64? {
        switch op {
        case .add: return x &+ y
        case .subtract: return x &- y
        case .multiply: return x &* y
        case .divide: return y == 0 ? nil : x.dividedReportingOverflow(by: y).partialValue
        case .quotient: return y == 0 ? 0 : x.dividedReportingOverflow(by: y).partialValue
        case .minimum: return Swift.min(x, y)
        case .maximum: return Swift.max(x, y)
        case .equal: return x == y ? 1 : 0
        case .less: return x < y ? 1 : 0
        case .lessOrEqual: return x <= y ? 1 : 0
        case .and: return x != 0 && y != 0 ? 1 : 0
        case .or: return x != 0 || y != 0 ? 1 : 0
        }
    }
}

/// `qwen.swift` ShapeProgram (see `ShapeFolding`): evaluates integer expressions over its inputs'
/// dimensions (their data is never read) and returns them as small int64 or bool tensors.
///
/// Attributes: `terms`, four ints per term in dependency order — `[0, value, 0, 0]` a constant,
/// `[1, input, axis, 0]` a dimension, `[2 + operation, a, b, 0]` an operation on earlier terms,
/// `[100, condition, a, b]` a selection; `outputs`, per output `[element type, rank, dims…,
/// term ids…]`.
struct ShapeProgramOperator: Operator {
    /// Only the shapes are read: KV-cache views are not copied.
    var readsCacheViews: Bool { true }

    enum Step {
        case constant(Int64)
        case dimension(input: Int, axis: Int)
        case apply(ShapeTerms.Operation, Int, Int)
        case select(Int, Int, Int)
    }

    struct Output {
        let dtype: DataType
        let shape: [Int]
        let terms: [Int]
    }

    let steps: [Step]
    let outputs: [Output]
    let inputCount: Int

    static let selectCode: Int64 = 100

    /// Decodes and checks the attributes: every operand names an earlier term, every output a
    /// term, every dimension an input (the axis is checked against the input's rank at run time).
    init(node: Node) throws {
        guard let flat = node.attributes["terms"]?.ints, flat.count % 4 == 0,
              let encoded = node.attributes["outputs"]?.ints else {
            throw node.invalid("attributes 'terms' (four ints per term) and 'outputs' are required")
        }
        var steps: [Step] = []
        steps.reserveCapacity(flat.count / 4)
        for t in 0..<(flat.count / 4) {
            let code = flat[4 * t], x = flat[4 * t + 1], y = flat[4 * t + 2], z = flat[4 * t + 3]
            func earlier(_ v: Int64) throws -> Int {
                guard v >= 0 && v < Int64(t) else { throw node.invalid("term \(t) reads term \(v), which does not precede it") }
                return Int(v)
            }
            switch code {
            case 0: steps.append(.constant(x))
            case 1:
                guard x >= 0 && x < Int64(node.inputs.count), y >= 0 && y < 64 else {
                    throw node.invalid("term \(t) reads dimension \(y) of input \(x) (\(node.inputs.count) inputs)")
                }
                steps.append(.dimension(input: Int(x), axis: Int(y)))
            case ShapeProgramOperator.selectCode: steps.append(.select(try earlier(x), try earlier(y), try earlier(z)))
            default:
                guard let op = ShapeTerms.Operation(rawValue: code - 2) else { throw node.invalid("term \(t) has unknown code \(code)") }
                steps.append(.apply(op, try earlier(x), try earlier(y)))
            }
        }
        var outputs: [Output] = []
        var i = 0
        func next() throws -> Int64 {
            guard i < encoded.count else { throw node.invalid("attribute 'outputs' ends early") }
            i += 1
            return encoded[i - 1]
        }
        while i < encoded.count {
            guard let dtype = DataType(rawValue: Int32(truncatingIfNeeded: try next())), dtype == .int64 || dtype == .bool else {
                throw node.invalid("outputs are int64 or bool")
            }
            let rank = try next()
            guard rank >= 0 && rank <= 8 else { throw node.invalid("output rank \(rank)") }
            var shape: [Int] = []
            var count = 1
            for _ in 0..<rank {
                let d = try next()
                guard d >= 0 && d <= 4096 else { throw node.invalid("output dimension \(d)") }
                shape.append(Int(d))
                count *= Int(d)
                guard count <= 4096 else { throw node.invalid("output of more than 4096 elements") }
            }
            var terms: [Int] = []
            for _ in 0..<count {
                let id = try next()
                guard id >= 0 && id < Int64(steps.count) else { throw node.invalid("output reads term \(id) of \(steps.count)") }
                terms.append(Int(id))
            }
            outputs.append(Output(dtype: dtype, shape: shape, terms: terms))
        }
        guard outputs.count == node.outputs.count else {
            throw node.invalid("\(outputs.count) outputs described, \(node.outputs.count) declared")
        }
        self.steps = steps
        self.outputs = outputs
        inputCount = node.inputs.count
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        var values = [Int64](repeating: 0, count: steps.count)
        for (t, step) in steps.enumerated() {
            switch step {
            case .constant(let v): values[t] = v
            case .dimension(let input, let axis):
                let x = try inputs.required(input)
                guard axis < x.rank else { throw OpError("input \(input) has rank \(x.rank), the program reads its dimension \(axis)") }
                values[t] = Int64(x.shape[axis])
            case .apply(let op, let a, let b):
                guard let v = ShapeTerms.evaluate(op, values[a], values[b]) else { throw OpError("integer division by zero") }
                values[t] = v
            case .select(let c, let a, let b): values[t] = values[c] != 0 ? values[a] : values[b]
            }
        }
        return outputs.map { output in
            let out = Tensor(dtype: output.dtype, shape: output.shape)
            if output.dtype == .bool {
                let p = out.pointer(as: UInt8.self)
                for (k, id) in output.terms.enumerated() { p[k] = values[id] != 0 ? 1 : 0 }
            } else {
                let p = out.pointer(as: Int64.self)
                for (k, id) in output.terms.enumerated() { p[k] = values[id] }
            }
            return out
        }
    }
}
