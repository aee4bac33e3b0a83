import ONNX

/// How float16 graphs are computed.
public enum Float16Numerics: String, Sendable, CaseIterable {
    /// As ONNX Runtime's CPU provider runs the graph (its `InsertCastTransformer` and
    /// `RemoveDuplicateCastTransformer`, which run at every optimisation level): ops without a
    /// float16 CPU kernel run in float32, chains of them pass float32 values to each other
    /// unrounded (cast pairs removed, even around the graph's own Cast-to-float16 nodes), and values
    /// are rounded to float16 only where a float16-capable op (data movement, MatMulNBits...)
    /// or a graph output takes them.
    case onnxRuntime
    /// Every float16 op rounds its result to float16 (the graph's types taken literally).
    case roundEveryOp
}

/// Rewrites a float16 graph to run with ONNX Runtime's CPU numerics (see
/// `Float16Numerics.onnxRuntime`).
///
/// ONNX Runtime 1.31's CPU provider has float16 kernels only for the ops in `float16Kernels`
/// (measured: single-node graphs of each op, checking which ones it wraps in inserted Casts).
/// Every other op with a float16 input runs in float32 between Casts, and Cast pairs that cancel
/// are removed, so chains of such ops pass float32 values unrounded. An op that has a float16
/// kernel is also moved to float32 when it produces no graph output and every consumer of its
/// float16 outputs runs in float32 (repeated until nothing changes): widening its inputs is exact,
/// and it saves a rounding Cast. What remains in float16 rounds the float32 values it reads.
///
/// The rule is inferred from ONNX Runtime's behaviour, not copied from its source: it reproduces
/// ORT's outputs bit for bit on the small graphs in `Float16NumericsTests` (whose expected values
/// came from ORT 1.31), and ORT_DISABLE_ALL's logits on the real Qwen2.5-0.5B q4f16 export to
/// 0.016 (scripts/compare_graph.py), where rounding after every op is off by up to 24.
enum Float16Precision {
    /// Ops with float16 CPU kernels in ONNX Runtime 1.31.
    static let float16Kernels: Set<String> = [
        "Max", "Min", "IsNaN", "Transpose", "Identity", "Flatten", "Expand", "Reshape", "Unsqueeze",
        "Squeeze", "Concat", "Split", "Slice", "Gather", "Shape", "ScatterND", "Cast", "MatMulNBits",
        // Ours: AppendKV stands for a float16 Concat (it rounds what it reads to float16).
        "AppendKV",
        // Registered for MLFloat16 in ONNX Runtime's CPU provider (quantization and contrib ops
        // of the transformers.js and onnxruntime-genai graphs; each computes in float32 inside and
        // rounds its outputs once, as ours do).
        "DequantizeLinear", "QuantizeLinear", "GatherBlockQuantized", "RotaryEmbedding", "GroupQueryAttention", "MultiHeadAttention",
        "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization",
    ]

    static func run(_ graph: inout Graph) {
        let types = TypeInference.elementTypes(graph)
        func isHalf(_ name: String) -> Bool { !name.isEmpty && types[name] == .float16 }
        let graphOutputs = Set(graph.outputs.map(\.name))

        var producer: [String: Int] = [:]
        var consumers: [String: [Int]] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for o in node.outputs where !o.isEmpty { producer[o] = i }
            for v in node.inputs where !v.isEmpty { consumers[v, default: []].append(i) }
        }
        guard graph.nodes.contains(where: { $0.inputs.contains(where: isHalf) }) else { return }

        // 1. Which nodes run in float32.
        var fp32 = graph.nodes.map { node in
            node.inputs.contains(where: isHalf) && !float16Kernels.contains(node.opType)
        }
        if graph.nodes.count > 1 {
            // Repeated until nothing changes: forcing one node can make its neighbours isolated.
            var changed = true
            while changed {
                changed = false
                for (i, node) in graph.nodes.enumerated() where !fp32[i] {
                    guard node.inputs.contains(where: isHalf),
                          node.outputs.allSatisfy({ !graphOutputs.contains($0) })
                    else { continue }
                    let halfOutputs = node.outputs.filter { isHalf($0) && !(consumers[$0]?.isEmpty ?? true) }
                    guard !halfOutputs.isEmpty else { continue }
                    let allConsumersFP32 = halfOutputs.allSatisfy { v in consumers[v]!.allSatisfy { fp32[$0] } }
                    if allConsumersFP32 {
                        fp32[i] = true
                        changed = true
                    }
                }
            }
        }

        // 2. The float32 source of a float16 value, when one exists without rounding: the
        //    output of a node run in float32, or the input of a Cast-to-float16 of a float32 value.
        func fp32Name(_ v: String) -> String { v + "::fp32" }
        func fp32Source(_ v: String) -> String? {
            guard let p = producer[v] else { return nil }
            let node = graph.nodes[p]
            if fp32[p] { return fp32Name(v) }
            if node.opType == "Cast", types[node.inputs[0]] == .float, !graphOutputs.contains(v) {
                return node.inputs[0]
            }
            return nil
        }

        // 3. Rewrite.
        var nodes: [Node] = []
        nodes.reserveCapacity(graph.nodes.count * 2)
        var upcasts: Set<String> = []
        for (i, original) in graph.nodes.enumerated() {
            var node = original
            if fp32[i] {
                for (k, v) in node.inputs.enumerated() where isHalf(v) {
                    // MatMulNBits reads float16 scales and zero points as they are (exact).
                    if node.opType == "MatMulNBits" && k >= 2 { continue }
                    // MatMul reads a constant float16 weight as it is (exact; HalfWeightMatMulOperator),
                    // two bytes per weight instead of a widened copy.
                    if node.opType == "MatMul" && node.domain.isEmpty && k == 1, let w = graph.constants[v], w.rank == 2 { continue }
                    // FusedAttention reads float16 keys and values as they are (exact), saving a
                    // widened copy of the cache per step; a float32 source is used when there is one.
                    if node.domain == PrivateOps.domain && node.opType == "FusedAttention" && (k == 1 || k == 2) {
                        if let source = fp32Source(v) { node.inputs[k] = source }
                        continue
                    }
                    if let source = fp32Source(v) {
                        node.inputs[k] = source
                    } else {
                        let up = v + "::to_fp32"
                        if upcasts.insert(up).inserted {
                            nodes.append(cast(v, to: .float, output: up, name: "\(original.name)/InsertedCast_\(k)"))
                        }
                        node.inputs[k] = up
                    }
                }
                var downcasts: [Node] = []
                for (k, v) in node.outputs.enumerated() where isHalf(v) {
                    node.outputs[k] = fp32Name(v)
                    let needsHalf = graphOutputs.contains(v) || (consumers[v] ?? []).contains { c in
                        !fp32[c] && !(graph.nodes[c].opType == "Cast" && graph.nodes[c].castTarget == .float && !graph.nodes[c].outputs.contains(where: graphOutputs.contains))
                    }
                    if needsHalf {
                        downcasts.append(cast(fp32Name(v), to: .float16, output: v, name: "\(original.name)/InsertedCast_out\(k)"))
                    }
                }
                nodes.append(node)
                nodes += downcasts
            } else {
                // A Cast-to-float32 of a value that exists in float32 unrounded reads that value
                // (the inserted Cast-to-float16 and this Cast cancel out).
                if node.opType == "Cast", node.castTarget == .float, isHalf(node.inputs[0]),
                   !node.outputs.contains(where: graphOutputs.contains), let source = fp32Source(node.inputs[0]) {
                    node.inputs[0] = source
                }
                nodes.append(node)
            }
        }
        graph.nodes = removeDeadNodes(nodes, keeping: graphOutputs)
    }

    static func cast(_ input: String, to type: DataType, output: String, name: String) -> Node {
        Node(name: name, opType: "Cast", inputs: [input], outputs: [output], attributes: ["to": .int("to", Int(type.rawValue))])
    }

    /// Drops nodes none of whose outputs is read or is a graph output.
    static func removeDeadNodes(_ nodes: [Node], keeping outputs: Set<String>) -> [Node] {
        var live = outputs
        live.reserveCapacity(3 * nodes.count)
        var kept: [Node] = []
        kept.reserveCapacity(nodes.count)
        for node in nodes.reversed() {
            if node.outputs.contains(where: { live.contains($0) }) {
                kept.append(node)
                for v in node.inputs where !v.isEmpty { live.insert(v) }
            }
        }
        return kept.reversed()
    }
}
