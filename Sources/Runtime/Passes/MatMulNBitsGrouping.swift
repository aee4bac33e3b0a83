import ONNX

/// Joins the MatMulNBits nodes that multiply the same activations into one `MatMulNBitsGroup`
/// node (`MatMulNBitsGroupOperator`): a layer's Q, K and V projections, and its MLP's gate and up
/// projections. The group quantizes or packs the activations once and runs every member's rows
/// (decode) or columns (prefill) in one parallel loop, with each member's own kernel on its own
/// repacked weights, so every output element is computed exactly as before. It saves per layer
/// three activation quantizations and three parallel loops in a decode step (the 896 × 128 K and V
/// products are too small to keep two threads busy on their own), and three packings of A and
/// their loops in a prefill.
///
/// Members: `com.microsoft` MatMulNBits with constant B, scales and bias (if any), no zero points
/// or g_idx, the same activations, and the same K, bits, block_size, accuracy_level and scale
/// type. The group takes the first member's place in the node order; its outputs are the
/// members' outputs, its attribute `member_names` their names (for errors).
///
/// First, a float32 `Add` of a constant bias `[N]` that is the only reader of a float32
/// MatMulNBits result becomes that node's bias input (the exports add the Q/K/V biases so): the
/// operator adds it in float32 to the same sums, so the result is the Add's, one node fewer.
enum MatMulNBitsGrouping {
    static let opType = "MatMulNBitsGroup"

    @discardableResult
    static func run(_ graph: inout Graph) -> Int {
        absorbBiases(&graph)
        struct Key: Hashable {
            let a: String, k: Int, bits: Int, blockSize: Int, accuracyLevel: Int, scales: DataType
        }
        var groups: [Key: [Int]] = [:]
        var order: [Key] = []
        for (i, node) in graph.nodes.enumerated() where node.opType == "MatMulNBits" && node.domain == "com.microsoft" {
            let inputs = node.inputs
            // A bias must be a constant too: the group runs at the first member's place, where
            // a computed bias of a later member may not exist yet.
            let bias = inputs.count > 5 ? inputs[5] : ""
            guard inputs.count >= 3, inputs.count <= 6, inputs.dropFirst(3).prefix(2).allSatisfy(\.isEmpty),
                  bias.isEmpty || graph.constants[bias] != nil,
                  node.outputs.count == 1, !node.outputs[0].isEmpty,
                  !inputs[0].isEmpty, let b = graph.constants[inputs[1]], b.dtype == .uint8,
                  let scales = graph.constants[inputs[2]],
                  let k = node.intAttribute("K"), let n = node.intAttribute("N"), k > 0, n > 0, n % 8 == 0,
                  let blockSize = node.intAttribute("block_size")
            else { continue }
            let key = Key(a: inputs[0], k: k, bits: node.intAttribute("bits", default: 4), blockSize: blockSize,
                          accuracyLevel: node.intAttribute("accuracy_level", default: 0), scales: scales.dtype)
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(i)
        }
        var rewrite = NodeRewrite()
        for key in order {
            guard let members = groups[key], members.count > 1 else { continue }
            let nodes = members.map { graph.nodes[$0] }
            let first = nodes[0]
            var attributes = first.attributes
            attributes["N"] = nil
            attributes["Ns"] = .ints("Ns", nodes.map { Int64($0.intAttribute("N")!) })
            var names = AttributeProto()
            names.name = "member_names"
            names.kind = .strings
            names.strings = nodes.map { Array($0.name.utf8) }
            attributes["member_names"] = names
            rewrite.replace(members[0],
                            with: Node(name: first.name + "/grouped", opType: opType, domain: PrivateOps.domain,
                                       inputs: [key.a] + nodes.flatMap { [$0.inputs[1], $0.inputs[2], $0.inputs.count > 5 ? $0.inputs[5] : ""] },
                                       outputs: nodes.map { $0.outputs[0] }, attributes: attributes),
                            removing: members.dropFirst())
        }
        return rewrite.apply(to: &graph)
    }

    /// `Add(bias, Y)` or `Add(Y, bias)` after `Y = MatMulNBits(A, B, scales)` → `MatMulNBits(A, B,
    /// scales, "", "", bias)`, where Y and the bias are float32, the bias a constant of N values,
    /// and the Add Y's only reader (Y not a graph output).
    @discardableResult
    static func absorbBiases(_ graph: inout Graph) -> Int {
        let index = GraphIndex(graph)
        let types = TypeInference.elementTypes(graph)
        var rewrite = NodeRewrite()
        for (i, add) in graph.nodes.enumerated() where add.opType == "Add" && add.domain.isEmpty && add.inputs.count == 2 {
            for side in 0..<2 {
                let y = add.inputs[side], biasName = add.inputs[1 - side]
                guard let p = index.producer[y], rewrite.isFree([p]) else { continue }
                let mm = graph.nodes[p]
                guard mm.opType == "MatMulNBits", mm.domain == "com.microsoft", mm.inputs.count == 3, mm.outputs == [y],
                      let n = mm.intAttribute("N"), let bias = graph.constants[biasName], bias.dtype == .float,
                      bias.rank == 1, bias.count == n, types[y] == .float, !index.graphOutputs.contains(y),
                      index.consumers[y] == [i] else { continue }
                var fused = mm
                fused.inputs = mm.inputs + ["", "", biasName]
                fused.outputs = add.outputs
                rewrite.replace(p, with: fused, removing: [i])
                break
            }
        }
        return rewrite.apply(to: &graph)
    }
}
