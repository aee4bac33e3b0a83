/// Folds nodes whose inputs are all constants (shape arithmetic on fixed shapes, weight
/// transposes, precomputed rotary tables) into constants, so they run once at load.
enum ConstantFolding {
    /// Folding stops growing a constant past this size: folding must not turn a small
    /// expression into a huge tensor kept in memory for the session's lifetime.
    static let maxFoldedBytes = 16 << 20

    static func run(_ graph: inout Graph) throws {
        var kept: [Node] = []
        kept.reserveCapacity(graph.nodes.count)
        let graphOutputs = Set(graph.outputs.map(\.name))
        for node in graph.nodes {
            let foldable = !node.inputs.isEmpty
                && node.inputs.allSatisfy { $0.isEmpty || graph.constants[$0] != nil }
                && node.outputs.allSatisfy { !graphOutputs.contains($0) }
            guard foldable,
                  let op = try? OperatorRegistry.make(node, opsets: graph.opsets, constants: graph.constants, model: graph.model),
                  let results = try? op.run(node.inputs.map { $0.isEmpty ? nil : graph.constants[$0] }),
                  results.count >= node.outputs.filter({ !$0.isEmpty }).count,
                  results.allSatisfy({ $0.byteCount <= maxFoldedBytes })
            else {
                kept.append(node)
                continue
            }
            for (k, name) in node.outputs.enumerated() where !name.isEmpty {
                graph.constants[name] = results[k]
            }
        }
        graph.nodes = kept
    }
}
