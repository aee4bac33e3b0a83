import Foundation

/// The optional graph rewrites a `Session` runs while planning, in pipeline order. They cut nodes,
/// copies and intermediate tensors and leave the results unchanged, bit for bit (the fusions
/// compute what the ops they replace compute), except `attention`: the fused kernel sums scores
/// and values in its own order and applies the scale to the sums, so the logits move by rounding
/// (within a few float16 ulps on the q4f16 fixture, `GraphPassTests`). `SessionOptions.passes` chooses them (all by
/// default); `qwen-run graph --passes` and `--dump-plan` show their effect.
///
/// Two planning steps are not in this list because they change what the graph computes, and have
/// options of their own: `SessionOptions.lastPositionOnlyOutput` (logits for the last position
/// only) and `SessionOptions.float16Numerics` (ONNX Runtime's float16 rounding, between the cache
/// and the MLP passes below).
public enum GraphPass: String, CaseIterable, Sendable, CustomStringConvertible {
    /// The exports' op-by-op attention → one `FusedAttention` (`AttentionFusion`).
    case attention
    /// The three-copy float16 KV-cache Concat → one `AppendKV` that appends in place (`CacheAppend`).
    case cacheAppend = "cache-append"
    /// The SiLU-gated MLP's Mul(Mul(X, Sigmoid(X)), U) → one `SiLUMul` (`SiLUMulFusion`).
    case siluMul = "silu-mul"
    /// The rotary embedding's slices, negation, concat and products → one `Rotary` (`RotaryFusion`).
    case rotary
    /// Nodes whose inputs are all constants → constants (`ConstantFolding`).
    case constantFolding = "constant-folding"
    /// The op-by-op RMSNorm → one `RMSNorm` (`RMSNormFusion`; matches folded constants).
    case rmsNorm = "rmsnorm"
    /// The shape arithmetic (Shape → Gather → … → Reshape targets, Slice bounds) → one
    /// `ShapeProgram` node evaluating the same integers (`ShapeFolding`; needs folded constants).
    case shapeFolding = "shape-folding"
    /// Nodes computing what an earlier node computes → removed (`CommonSubexpressions`).
    case commonSubexpressions = "cse"
    /// MatMulNBits nodes sharing their activations (Q/K/V, gate/up) → one `MatMulNBitsGroup`, and
    /// bias Adds into their MatMulNBits (`MatMulNBitsGrouping`).
    case matMulNBitsGroups = "matmulnbits-groups"

    /// Every pass: what a session runs by default.
    public static let all = Set(allCases)

    /// The passes that replace ops with this runtime's own (`PrivateOps`): without them the
    /// graph runs on standard ops only, folded.
    public static let fusions: Set<GraphPass> = [.attention, .cacheAppend, .siluMul, .rotary, .rmsNorm, .matMulNBitsGroups]

    public var description: String { rawValue }

    /// The passes that must run for this one to (a pattern it matches exists only after them).
    public var requires: [GraphPass] {
        switch self {
        case .rmsNorm, .shapeFolding: [.constantFolding]
        default: []
        }
    }

    /// Passes from `none`, `default` (every pass) or comma-separated names; the reason when a name
    /// is unknown or a pass lacks one it requires.
    public static func parse(_ text: String) -> Result<Set<GraphPass>, PassListError> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "none" { return .success([]) }
        if trimmed == "default" || trimmed == "all" { return .success(all) }
        var passes = Set<GraphPass>()
        for name in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let name = name.trimmingCharacters(in: .whitespaces)
            guard let pass = GraphPass(rawValue: name) else { return .failure(.unknown(name)) }
            passes.insert(pass)
        }
        if let error = validate(passes) { return .failure(error) }
        return .success(passes)
    }

    /// Why this set of passes cannot run (a pass without one it requires), or nil.
    public static func validate(_ passes: Set<GraphPass>) -> PassListError? {
        for pass in allCases where passes.contains(pass) {
            if let missing = pass.requires.first(where: { !passes.contains($0) }) { return .missingRequirement(pass, missing) }
        }
        return nil
    }

    /// Runs this pass on `graph`; returns the number of rewrites it made.
    @discardableResult
    func run(_ graph: inout Graph) throws -> Int {
        switch self {
        case .attention: return AttentionFusion.run(&graph)
        case .cacheAppend: return CacheAppend.run(&graph)
        case .siluMul: return SiLUMulFusion.run(&graph)
        case .rotary: return RotaryFusion.run(&graph)
        case .constantFolding:
            let before = graph.nodes.count
            try ConstantFolding.run(&graph)
            return before - graph.nodes.count
        case .rmsNorm: return RMSNormFusion.run(&graph)
        case .shapeFolding: return ShapeFolding.run(&graph)
        case .commonSubexpressions: return CommonSubexpressions.run(&graph)
        case .matMulNBitsGroups: return MatMulNBitsGrouping.run(&graph)
        }
    }
}

/// What is wrong with a list of passes.
public enum PassListError: Error, Equatable, CustomStringConvertible, Sendable {
    case unknown(String)
    case missingRequirement(GraphPass, GraphPass)

    public var description: String {
        switch self {
        case .unknown(let name):
            "unknown pass '\(name)' (passes: \(GraphPass.allCases.map(\.rawValue).joined(separator: ", ")); or none, default)"
        case .missingRequirement(let pass, let missing):
            "pass '\(pass)' needs '\(missing)' (it matches what that pass leaves)"
        }
    }
}
