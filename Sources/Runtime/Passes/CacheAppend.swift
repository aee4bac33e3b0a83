import ONNX

/// The float16 exports grow the KV cache with three copies of the whole history per step and
/// layer: `Cast(past, float16)`, `Concat(past16, new, axis 2)`, `Cast(…, float32)` → `present`.
/// This pass replaces them with one `AppendKV(past, new)` (`AppendKVOperator`), which writes
/// `present` directly in one pass, rounding `past` to float16 and back exactly as the two Casts
/// did, and points the Concat's other readers (the fused attention, Shape nodes) at `present`,
/// which holds the same values widened to float32.
///
/// Applies when the Concat's first input is a Cast to float16 of a float32 graph input, its
/// output's readers include a Cast to float32 that is a graph output, and every other reader is
/// `Shape` or `FusedAttention` (which read float32 as well as float16).
///
/// The float32 exports grow the cache with one plain `Concat(past, new, axis 2)` → `present`,
/// still one copy of the whole history per step and layer: when the past is a float32 graph
/// input and the Concat's output a graph output, it becomes an `AppendKV` with `float16 = 0`,
/// which appends in place the same way and copies values as they are.
enum CacheAppend {
    @discardableResult
    static func run(_ graph: inout Graph) -> Int {
        let index = GraphIndex(graph)
        let producer = index.producer, consumers = index.consumers, graphOutputs = index.graphOutputs
        let inputTypes = Dictionary(graph.inputs.map { ($0.name, $0.elementType) }, uniquingKeysWith: { a, _ in a })
        let inputRanks = Dictionary(graph.inputs.map { ($0.name, $0.shape?.count) }, uniquingKeysWith: { a, _ in a })

        var replaced: [Int: Node] = [:]   // Concat → AppendKV
        var dropped = Set<Int>()            // the Casts to present
        var rewired: [Int: Node] = [:]
        for (i, concat) in graph.nodes.enumerated() where concat.opType == "Concat" && concat.domain.isEmpty && concat.inputs.count == 2 {
            let axis = concat.intAttribute("axis", default: 0)
            guard axis == 2 || axis == -2 else { continue }
            guard let castIn = producer[concat.inputs[0]] else {
                // The float32 form: Concat(past, new) → present, past declared [B, H, P, D].
                if inputTypes[concat.inputs[0]] == .float, inputRanks[concat.inputs[0]] == 4,
                   graphOutputs.contains(concat.outputs[0]) {
                    replaced[i] = Node(name: concat.name + "/AppendKV", opType: "AppendKV", domain: PrivateOps.domain,
                                       inputs: concat.inputs, outputs: concat.outputs, attributes: ["float16": .int("float16", 0)])
                }
                continue
            }
            let down = graph.nodes[castIn]
            guard down.opType == "Cast", down.castTarget == .float16, let past = down.inputs.first,
                  inputTypes[past] == .float else { continue }
            let readers = consumers[concat.outputs[0]] ?? []
            let ups = readers.filter { r in
                graph.nodes[r].opType == "Cast" && graph.nodes[r].castTarget == .float && graphOutputs.contains(graph.nodes[r].outputs[0])
            }
            guard ups.count == 1, let up = ups.first, !graphOutputs.contains(concat.outputs[0]) else { continue }
            let others = readers.filter { $0 != up }
            guard others.allSatisfy({ ["Shape", "FusedAttention"].contains(graph.nodes[$0].opType) }) else { continue }

            // AppendKV takes the Concat's place (before all its readers) and writes `present`.
            let present = graph.nodes[up].outputs[0]
            replaced[i] = Node(name: concat.name + "/AppendKV", opType: "AppendKV", domain: PrivateOps.domain,
                               inputs: [past, concat.inputs[1]], outputs: [present])
            dropped.insert(up)
            for r in others {
                var n = rewired[r] ?? graph.nodes[r]
                n.inputs = n.inputs.map { $0 == concat.outputs[0] ? present : $0 }
                rewired[r] = n
            }
        }
        guard !replaced.isEmpty else { return 0 }
        var nodes: [Node] = []
        for (i, n) in graph.nodes.enumerated() where !dropped.contains(i) {
            nodes.append(replaced[i] ?? rewired[i] ?? n)
        }
        // The Casts of the past that fed the Concats are dead now.
        graph.nodes = Float16Precision.removeDeadNodes(nodes, keeping: graphOutputs)
        return replaced.count
    }
}
