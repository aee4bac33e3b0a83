import ONNX

/// One executable node: built once from the node's attributes when a session is planned, then
/// run many times. Operators are immutable (and so may serve concurrent runs) and never write into
/// their inputs.
public protocol Operator: Sendable {
    /// Computes the node's outputs. `inputs[i]` is nil for an omitted optional input; the result
    /// has one tensor per declared output (unused trailing optional outputs may be left out).
    func run(_ inputs: [Tensor?]) throws -> [Tensor]

    /// Whether `run` takes KV-cache views (`Tensor.cacheCapacity`) as they are; for every other
    /// operator the session passes contiguous copies. False unless an operator says otherwise.
    var readsCacheViews: Bool { get }

    /// Whether, and how, a batched run (`Session.runBatch`) may stack one row per sequence along
    /// the first axis and run the node once (for the weight-bound products, weights read once for
    /// all sequences). `.none` unless an operator says otherwise.
    var rowStacking: RowStacking { get }

    /// `run` on inputs whose first axis stacks the single-row inputs of several sequences; row i
    /// of every output must be, bit for bit, what `run` gives sequence i's inputs alone (so a
    /// product must not switch to a kernel of other numerics because there are more rows). The
    /// default is `run`, for operators whose arithmetic per row does not depend on the row count.
    func runStacked(_ inputs: [Tensor?]) throws -> [Tensor]

    /// Whether `runStacked` can take these stacked inputs (else each sequence runs the node on
    /// its own). True unless an operator says otherwise.
    func stacks(_ inputs: [Tensor?]) -> Bool

    /// `run` on each of several sequences' inputs (a batched run's node that does not stack):
    /// result i must be what `run(inputSets[i])` gives. The default runs them in turn; an
    /// operator whose work per sequence is small (decode attention) may run all of them in one
    /// parallel loop.
    func runEach(_ inputSets: [[Tensor?]]) throws -> [[Tensor]]

    /// How the node will run, for a plan dump (`Session.planDescription`): the kernels a product
    /// chose at planning time (weight layout, activation types). Nil unless an operator says.
    var plan: String? { get }
}

extension Operator {
    public var plan: String? { nil }
    public var readsCacheViews: Bool { false }
    public var rowStacking: RowStacking { .none }
    public func runStacked(_ inputs: [Tensor?]) throws -> [Tensor] { try run(inputs) }
    public func stacks(_ inputs: [Tensor?]) -> Bool { true }
    public func runEach(_ inputSets: [[Tensor?]]) throws -> [[Tensor]] { try inputSets.map(run) }
}

/// What a factory knows when it builds an operator.
public struct OperatorContext: Sendable {
    public let node: Node
    /// The opset version imported for the node's domain.
    public let opset: Int
    /// Constant inputs known at planning time (initializers), by input position.
    public let constantInputs: [Int: Tensor]
    /// The model file, for tensors in attributes whose payload lives in it.
    public let model: ONNXModel?
    /// Whether operators may repack constant weights into their kernels' layouts
    /// (`SessionOptions.prepackWeights`).
    public var prepackWeights = true
    /// Where repacked weights are looked up and recorded (`SessionOptions.packedWeightCacheDirectory`).
    var weightCache: PackedWeightCache?
    /// `SessionOptions.int8Activations`.
    public var int8Activations = Int8Activations.accuracyLevel4
    /// `SessionOptions.decodeActivations`.
    public var decodeActivations = DecodeActivations.automatic
}

/// How an operator's inputs may stack the rows of several sequences (see `Operator.rowStacking`).
/// Either way `runStacked` computes each row from that row alone, exactly as `run` computes it.
public enum RowStacking: Sendable, Equatable {
    case none
    /// Only the first input differs between sequences (activations); the others are shared
    /// (weights, perm-like parameters): products, norms, casts, transposes keeping axis 0.
    case firstInput
    /// As `.firstInput`, and the inputs at these positions may hold one value per sequence (a
    /// scalar or a one-element tensor each), passed stacked as a 1-D tensor of one value per
    /// sequence: MatMulInteger's `a_zero_point`, which each sequence's own dynamic quantization
    /// (DynamicQuantizeLinear, the q8 exports) computes.
    case firstInputAndValues([Int])
    /// Any inputs may differ; those that do have one rank r, and shared inputs of rank r have a
    /// first axis of 1, so broadcasting pairs each row with its own: elementwise arithmetic.
    case elementwise
    /// As `.elementwise`, for operators whose outputs are their operands broadcast (NumPy rules)
    /// and combined value by value: an input that differs between sequences may also have a lower
    /// rank than the stacked rows, and stacks after leading axes of 1 (a scalar per sequence
    /// becomes [n, 1, …, 1], paired with its own row): the q8 exports' `Mul` of a product by its
    /// sequence's activation scale.
    case broadcasting
}

public typealias OperatorFactory = @Sendable (OperatorContext) throws -> any Operator

/// The ops this runtime implements, registered by (domain, op type) with the opset versions they
/// cover, as ONNX Runtime registers kernels.
public enum OperatorRegistry {
    struct Key: Hashable {
        let domain: String
        let opType: String
    }

    struct Entry {
        let opsets: ClosedRange<Int>
        let factory: OperatorFactory
    }

    static let entries: [Key: [Entry]] = {
        var table: [Key: [Entry]] = [:]
        func add(_ opType: String, domain: String = "", opsets: ClosedRange<Int> = 1...Int.max, _ f: @escaping OperatorFactory) {
            table[Key(domain: domain, opType: opType), default: []].append(Entry(opsets: opsets, factory: f))
        }
        registerElementwise(add)
        registerShapeOperators(add)
        registerReductions(add)
        registerMatMul(add)
        registerContrib(add)
        registerAttention(add)
        registerQuantization(add)
        registerBlockQuantized(add)
        registerRotaryEmbedding(add)
        registerGroupQueryAttention(add)
        registerMultiHeadAttention(add)
        return table
    }()

    typealias Register = (_ opType: String, _ domain: String, _ opsets: ClosedRange<Int>, _ factory: @escaping OperatorFactory) -> Void

    /// The newest ai.onnx opset that exists (onnx 1.23, the pinned tool chain's version). Ops
    /// registered without an upper bound cover opsets up to this one: a model importing a newer
    /// opset may rely on changed semantics, so it is refused rather than run as if it were older.
    public static let newestONNXOpset = 28

    static func covers(_ entry: Entry, domain: String, opset: Int) -> Bool {
        entry.opsets.contains(opset) && (!domain.isEmpty || opset <= newestONNXOpset)
    }

    /// Builds the operator for `node`, or throws `unsupportedOperator`.
    public static func make(_ node: Node, opsets: [String: Int], constants: [String: Tensor], model: ONNXModel? = nil,
                            prepackWeights: Bool = true) throws -> any Operator {
        try make(node, opsets: opsets, constants: constants, model: model, prepackWeights: prepackWeights, weightCache: nil,
                 int8Activations: .accuracyLevel4, decodeActivations: .automatic)
    }

    static func make(_ node: Node, opsets: [String: Int], constants: [String: Tensor], model: ONNXModel?,
                     prepackWeights: Bool, weightCache: PackedWeightCache?, int8Activations: Int8Activations,
                     decodeActivations: DecodeActivations) throws -> any Operator {
        let opset = opsets[node.domain] ?? 1
        guard let candidates = entries[Key(domain: node.domain, opType: node.opType)],
              let entry = candidates.first(where: { covers($0, domain: node.domain, opset: opset) })
        else {
            throw RuntimeError.unsupportedOperator(opType: node.opType, domain: node.domain, opset: opset, node: node.name)
        }
        var constantInputs: [Int: Tensor] = [:]
        for (i, name) in node.inputs.enumerated() where !name.isEmpty {
            if let t = constants[name] { constantInputs[i] = t }
        }
        return try entry.factory(OperatorContext(node: node, opset: opset, constantInputs: constantInputs, model: model,
                                                 prepackWeights: prepackWeights, weightCache: weightCache,
                                                 int8Activations: int8Activations, decodeActivations: decodeActivations))
    }

    /// Whether an op is implemented, for `inspect`.
    public static func supports(opType: String, domain: String, opset: Int) -> Bool {
        let domain = domain == "ai.onnx" ? "" : domain
        return entries[Key(domain: domain, opType: opType)]?.contains { covers($0, domain: domain, opset: opset) } ?? false
    }
}

// MARK: - Attributes of the nodes the passes make

extension AttributeProto {
    /// The integer attribute `name` = `value`.
    static func int(_ name: String, _ value: Int) -> AttributeProto {
        var a = AttributeProto()
        a.name = name
        a.kind = .int
        a.i = Int64(value)
        return a
    }

    /// The integer-list attribute `name` = `values`.
    static func ints(_ name: String, _ values: [Int64]) -> AttributeProto {
        var a = AttributeProto()
        a.name = name
        a.kind = .ints
        a.ints = values
        return a
    }
}

// MARK: - Attribute access with errors that name the node

extension Node {
    func invalid(_ reason: String) -> RuntimeError {
        .invalidNode(node: name, opType: opType, reason: reason)
    }

    func intAttribute(_ key: String) -> Int? {
        attributes[key].map { Int(truncatingIfNeeded: $0.i) }
    }

    func intAttribute(_ key: String, default value: Int) -> Int {
        intAttribute(key) ?? value
    }

    /// The type a Cast node's `to` names; nil when it is missing or no ONNX type code.
    var castTarget: DataType? {
        attributes["to"].flatMap { Int32(exactly: $0.i) }.flatMap { DataType(rawValue: $0) }
    }

    func intsAttribute(_ key: String) -> [Int]? {
        attributes[key].map { $0.ints.map { Int(truncatingIfNeeded: $0) } }
    }

    func floatAttribute(_ key: String, default value: Float) -> Float {
        attributes[key]?.f ?? value
    }

    func stringAttribute(_ key: String) -> String? {
        attributes[key].map { String(decoding: $0.s, as: UTF8.self) }
    }
}

// MARK: - Input access inside operators

extension Array where Element == Tensor? {
    /// The required input `i`, or an error naming its position.
    @inline(__always)
    func required(_ i: Int) throws -> Tensor {
        guard i < count, let t = self[i] else { throw OpError("missing required input \(i)") }
        return t
    }

    @inline(__always)
    func optional(_ i: Int) -> Tensor? {
        i < count ? self[i] : nil
    }
}

/// Normalises a possibly negative axis against `rank`.
@inline(__always)
func normalizeAxis(_ axis: Int, rank: Int) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < max(rank, 1) else { throw OpError("axis \(axis) is out of range for rank \(rank)") }
    return a
}
