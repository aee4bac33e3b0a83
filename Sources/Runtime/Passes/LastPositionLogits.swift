/// For generation, only the last position's logits are used, but a decoder graph projects every
/// position through the LM head (for a 128-token prompt on Qwen2.5-0.5B that is 17 of ~64 GFLOP).
/// This pass slices the LM head's input to the last position, so the `logits` output becomes
/// `[batch, 1, vocab]`.
///
/// It applies when the output is produced by a projection — MatMul, MatMulNBits, MatMulBnb4, or
/// MatMulInteger (sliced after its input was quantized, so the dynamic quantization's range still
/// spans every position, as in the full graph) — whose first input is `[batch, sequence, hidden]`,
/// directly or through ops that act on each logit alone: a Cast, or a Mul/Add by a constant of
/// rank ≤ 1 or by the scalar scale product of `quantize_dynamic` (`Mul(x_scale, w_scale)` of a
/// DynamicQuantizeLinear's scale and a constant). Otherwise the graph is left as it is and the
/// output keeps every position.
enum LastPositionLogits {
    static let projections: Set<String> = ["MatMul", "MatMulNBits", "MatMulBnb4", "MatMulInteger"]

    static func run(_ graph: inout Graph, output: String) {
        var producer: [String: Int] = [:]
        var readers: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for o in node.outputs where !o.isEmpty { producer[o] = i }
            for v in node.inputs where !v.isEmpty { readers[v, default: 0] += 1 }
        }
        let graphOutputs = Set(graph.outputs.map(\.name))
        /// Whether `v` is a scalar by construction: a constant of one element, a
        /// DynamicQuantizeLinear's scale, or a Mul of such.
        func isScalar(_ v: String, depth: Int = 0) -> Bool {
            if let c = graph.constants[v] { return c.count == 1 }
            guard depth < 3, let p = producer[v] else { return false }
            let node = graph.nodes[p]
            if node.opType == "DynamicQuantizeLinear" { return node.outputs.firstIndex(of: v) == 1 }
            if node.opType == "Mul", node.inputs.count == 2 { return node.inputs.allSatisfy { isScalar($0, depth: depth + 1) } }
            return false
        }
        guard var index = producer[output] else { return }
        // Walk back through per-logit ops to the projection.
        while !projections.contains(graph.nodes[index].opType) {
            let node = graph.nodes[index]
            guard node.inputs.count >= 1 else { return }
            var through: String?
            switch node.opType {
            case "Cast":
                through = node.inputs[0]
            case "Mul", "Add":
                guard node.inputs.count == 2 else { return }
                for (k, v) in node.inputs.enumerated() {
                    let other = node.inputs[1 - k]
                    let perLogit = graph.constants[other].map { $0.rank <= 1 } ?? isScalar(other)
                    if perLogit && producer[v] != nil { through = v; break }
                }
            default:
                return
            }
            guard let value = through, readers[value] == 1, !graphOutputs.contains(value), let next = producer[value] else { return }
            index = next
        }
        let head = graph.nodes[index]
        let domainOK = head.opType == "MatMul" || head.opType == "MatMulInteger" ? head.domain.isEmpty : head.domain == "com.microsoft"
        guard domainOK, head.inputs.count >= 2, !head.inputs[0].isEmpty else { return }

        let input = head.inputs[0]
        let sliced = input + "::last_position"
        let starts = sliced + "::starts", ends = sliced + "::ends", axes = sliced + "::axes"
        graph.constants[starts] = Tensor(int64s: [-1], shape: [1])
        graph.constants[ends] = Tensor(int64s: [Int64.max], shape: [1])
        graph.constants[axes] = Tensor(int64s: [-2], shape: [1])
        let slice = Node(name: head.name + "/LastPosition", opType: "Slice",
                         inputs: [input, starts, ends, axes], outputs: [sliced])
        graph.nodes[index].inputs[0] = sliced
        graph.nodes.insert(slice, at: index)
    }
}
