/// Folds nodes whose inputs are all constants (shape arithmetic on fixed shapes, weight
/// transposes, precomputed rotary tables) into constants, so they run once at load.
enum ConstantFolding {
    /// Folding stops growing a constant past this size: folding must not turn a small
    /// expression into a huge tensor kept in memory for the session's lifetime...
    static let maxFoldedBytes = 16 << 20
    /// ...unless the result is at most this many times the constants it was computed from: a
    /// weight transposed, dequantized (uint8 → float32: 4×) or widened is folded whatever its
    /// size, once at load, as ONNX Runtime folds it (the quantize_dynamic exports of tied
    /// embeddings compute the LM head as `DequantizeLinear(Transpose(embedding))` at every step
    /// otherwise: 136 MB transposed and 544 MB dequantized per token on Qwen2.5-0.5B).
    static let maxGrowth = 4

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
                  results.allSatisfy({ result in
                      result.byteCount <= maxFoldedBytes
                          || result.byteCount <= maxGrowth * node.inputs.reduce(0) { $0 + (graph.constants[$1]?.byteCount ?? 0) }
                  })
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
