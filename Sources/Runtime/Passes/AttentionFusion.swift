import ONNX

/// Replaces the attention that optimum's Qwen2 / Llama-family exports spell out op by op with
/// one `FusedAttention` node (`FusedAttentionOperator`):
///
///     K' = Reshape(Expand(Unsqueeze(K, axis 2)))         repeat_kv (grouped-query attention),
///     V' = Reshape(Expand(Unsqueeze(V, axis 2)))         or K and V themselves
///     S  = MatMul(Q, Mul(Transpose(K', [0,1,3,2]), c))   the Mul by a scalar c is optional
///     P  = Where(IsNaN(Softmax(Add(S, mask))), 0, …)     Add and the IsNaN guard are optional
///     O  = MatMul(P, V')
///
/// The unfused graph copies the whole key/value history several times per step (repeat, then
/// transpose, then scale), O(context) work and memory per token that the fused op avoids; it
/// reads K and V where the cache Concat left them.
///
/// Every intermediate must be read only inside the pattern, except that `Shape` nodes may read
/// the repeated K'/V' when all their readers `Gather` a constant axis other than the head axis
/// (the exports take the key length from it): those read K/V instead, whose other dimensions
/// are equal. Anything else leaves the graph unchanged.
enum AttentionFusion {
    @discardableResult
    static func run(_ graph: inout Graph) -> Int {
        let index = GraphIndex(graph)
        let consumers = index.consumers, constants = graph.constants
        func node(_ value: String, _ opType: String) -> (index: Int, node: Node)? { index.node(value, opType) }
        func constantInts(_ name: String) -> [Int]? {
            guard let t = constants[name], t.dtype == .int64 else { return nil }
            return (0..<t.count).map { Int(t.pointer(as: Int64.self)[$0]) }
        }
        func isScalarConstant(_ name: String, equalTo value: Float? = nil) -> Bool {
            guard let t = constants[name], t.count == 1, t.dtype == .float || t.dtype == .float16 else { return false }
            guard let value else { return true }
            return (t.dtype == .float ? t.pointer(as: Float.self)[0] : Float(t.pointer(as: Float16.self)[0])) == value
        }
        /// K behind repeat_kv's Unsqueeze(axis 2) → Expand → Reshape, with the nodes walked.
        func unrepeat(_ value: String) -> (source: String, nodes: [Int])? {
            guard let reshape = node(value, "Reshape"), let expand = node(reshape.node.inputs[0], "Expand"),
                  let unsqueeze = node(expand.node.inputs[0], "Unsqueeze") else { return nil }
            let axes = unsqueeze.node.inputs.count > 1 ? constantInts(unsqueeze.node.inputs[1]) : unsqueeze.node.intsAttribute("axes")
            guard axes == [2] || axes == [-3] else { return nil }
            return (unsqueeze.node.inputs[0], [reshape.index, expand.index, unsqueeze.index])
        }

        var fused = 0
        var removed = Set<Int>()
        var replacements: [Int: Node] = [:]
        var rewired: [Int: Node] = [:]
        for (outIndex, out) in graph.nodes.enumerated() where out.opType == "MatMul" && out.domain.isEmpty && out.inputs.count == 2 {
            var matched: [Int] = [outIndex]
            // P, optionally behind the NaN guard.
            var probabilities = out.inputs[0]
            var nanToZero = false
            if let guardNode = node(probabilities, "Where"), let isNaN = node(guardNode.node.inputs[0], "IsNaN"),
               isNaN.node.inputs[0] == guardNode.node.inputs[2], isScalarConstant(guardNode.node.inputs[1], equalTo: 0) {
                matched += [guardNode.index, isNaN.index]
                probabilities = guardNode.node.inputs[2]
                nanToZero = true
            }
            guard let softmax = node(probabilities, "Softmax"),
                  [-1, 3].contains(softmax.node.intAttribute("axis", default: -1)),
                  (graph.opsets[""] ?? 1) >= 13 else { continue }
            matched.append(softmax.index)
            var logits = softmax.node.inputs[0]
            var mask = ""
            if let add = node(logits, "Add") {
                let scoreSide = add.node.inputs.firstIndex { node($0, "MatMul") != nil }
                guard let scoreSide else { continue }
                mask = add.node.inputs[1 - scoreSide]
                logits = add.node.inputs[scoreSide]
                matched.append(add.index)
            }
            guard let scores = node(logits, "MatMul") else { continue }
            matched.append(scores.index)
            let query = scores.node.inputs[0]
            var keysT = scores.node.inputs[1]
            var scale = ""
            if let mul = node(keysT, "Mul") {
                guard let c = mul.node.inputs.firstIndex(where: { isScalarConstant($0) }) else { continue }
                scale = mul.node.inputs[c]
                keysT = mul.node.inputs[1 - c]
                matched.append(mul.index)
            }
            guard let transpose = node(keysT, "Transpose"), transpose.node.intsAttribute("perm") == [0, 1, 3, 2] else { continue }
            matched.append(transpose.index)
            var keys = transpose.node.inputs[0], values = out.inputs[1]
            var shapeReaders: [(index: Int, source: String)] = []
            for side in 0..<2 {
                let value = side == 0 ? keys : values
                guard let (source, nodes) = unrepeat(value) else { continue }
                matched += nodes
                // Shape readers of the repeated tensor: allowed when they only Gather a non-head axis.
                for reader in consumers[value] ?? [] where graph.nodes[reader].opType == "Shape" {
                    let shapeNode = graph.nodes[reader]
                    let gathersOnly = (consumers[shapeNode.outputs[0]] ?? []).allSatisfy { g in
                        let gather = graph.nodes[g]
                        guard gather.opType == "Gather", gather.inputs.count == 2, gather.inputs[0] == shapeNode.outputs[0],
                              let index = constantInts(gather.inputs[1]), index.count == 1 else { return false }
                        return index[0] != 1 && index[0] != -3
                    }
                    guard gathersOnly, shapeNode.attributes["start"] == nil, shapeNode.attributes["end"] == nil else { continue }
                    shapeReaders.append((reader, source))
                }
                if side == 0 { keys = source } else { values = source }
            }
            // Every intermediate is read only inside the pattern (or by the allowed Shape readers).
            let inside = Set(matched).union(shapeReaders.map(\.index))
            let intermediatesPrivate = index.outputsStayInside(matched.filter { $0 != outIndex }, inside)
            guard intermediatesPrivate, removed.isDisjoint(with: matched) else { continue }

            replacements[outIndex] = Node(name: out.name + "/FusedAttention", opType: "FusedAttention", domain: PrivateOps.domain,
                                          inputs: [query, keys, values, scale, mask], outputs: out.outputs,
                                          attributes: ["nan_to_zero": .int("nan_to_zero", nanToZero ? 1 : 0)])
            for (reader, source) in shapeReaders {
                var n = graph.nodes[reader]
                n.inputs[0] = source
                rewired[reader] = n
            }
            removed.formUnion(matched.filter { $0 != outIndex })
            fused += 1
        }
        guard fused > 0 else { return 0 }
        var nodes: [Node] = []
        for (i, n) in graph.nodes.enumerated() where !removed.contains(i) {
            nodes.append(replacements[i] ?? rewired[i] ?? n)
        }
        // The repeat's shape arithmetic (Expand's target shape) is dead now.
        graph.nodes = Float16Precision.removeDeadNodes(nodes, keeping: index.graphOutputs)
        return fused
    }
}
