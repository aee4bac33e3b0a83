/// For generation, only the last position's logits are used, but a decoder graph projects every
/// position through the LM head (for a 128-token prompt on Qwen2.5-0.5B that is 17 of ~64 GFLOP).
/// This pass slices the LM head's input to the last position, so the `logits` output becomes
/// `[batch, 1, vocab]`.
///
/// It applies when the output is produced (directly or through a Cast) by a MatMulNBits or MatMul
/// projection whose first input is `[batch, sequence, hidden]` (the optimum exports); otherwise the graph is left
/// as it is and the output keeps every position.
enum LastPositionLogits {
    static func run(_ graph: inout Graph, output: String) {
        guard var index = graph.nodes.firstIndex(where: { $0.outputs.first == output }) else { return }
        // float16 exports end in a Cast to float32 (keep_io_types): look through it.
        if graph.nodes[index].opType == "Cast", let source = graph.nodes[index].inputs.first,
           let producer = graph.nodes.firstIndex(where: { $0.outputs.first == source }),
           graph.nodes.filter({ $0.inputs.contains(source) }).count == 1 {
            index = producer
        }
        let head = graph.nodes[index]
        let isProjection = (head.opType == "MatMulNBits" && head.domain == "com.microsoft")
            || (head.opType == "MatMul" && head.domain.isEmpty)
        guard isProjection, head.inputs.count >= 2, !head.inputs[0].isEmpty else { return }

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
