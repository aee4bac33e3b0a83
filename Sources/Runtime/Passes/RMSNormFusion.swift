import ONNX

/// Replaces the RMSNorm the Qwen2/Llama exports spell out in float32 (after `Float16Precision`
/// and `ConstantFolding`, so the float16 exports' Cast chains are gone and the weight is a
/// constant) with one `RMSNorm` node (`RMSNormOperator`):
///
///     W · (X · Div(1, Sqrt(Add(ReduceMean(Pow(X, 2), axis -1, keepdims), ε))))
///
/// (with any Casts to float32 between the two products, which are identities on float32 values).
/// The fused op performs the same float32 operations in the same order (x·x summed in sequence,
/// the mean divided in double as ReduceMean does, 1/√(m + ε), then two products), so its results
/// are bit-identical to the op-by-op graph; it saves six nodes, their dispatch and five
/// intermediate tensors per norm (49 per token on the 0.5B).
enum RMSNormFusion {
    @discardableResult
    static func run(_ graph: inout Graph) -> Int {
        let index = GraphIndex(graph)
        let constants = graph.constants
        func node(_ value: String, _ opType: String) -> (index: Int, node: Node)? { index.node(value, opType) }
        func scalar(_ name: String) -> Float? {
            guard let t = constants[name], t.count == 1, t.dtype == .float else { return nil }
            return t.pointer(as: Float.self)[0]
        }

        var rewrite = NodeRewrite()
        for (i, outer) in graph.nodes.enumerated() where outer.opType == "Mul" && outer.domain.isEmpty && outer.inputs.count == 2 {
            guard let w = outer.inputs.firstIndex(where: { constants[$0].map { $0.rank == 1 && $0.dtype == .float } ?? false })
            else { continue }
            let weight = outer.inputs[w]
            // The exports put Cast(to float32) nodes between the two products (identities on float32).
            var matched: [Int] = []
            var normed = outer.inputs[1 - w]
            while let cast = node(normed, "Cast"), cast.node.intAttribute("to") == Int(DataType.float.rawValue) {
                matched.append(cast.index)
                normed = cast.node.inputs[0]
            }
            guard let inner = node(normed, "Mul") else { continue }
            // inner = X · R, R = Div(1, Sqrt(Add(ReduceMean(Pow(X, 2)), ε)))
            matched.append(inner.index)
            var found: (x: String, eps: String)?
            for side in 0..<2 {
                let x = inner.node.inputs[side]
                guard let div = node(inner.node.inputs[1 - side], "Div"), scalar(div.node.inputs[0]) == 1,
                      let sqrt = node(div.node.inputs[1], "Sqrt"), let add = node(sqrt.node.inputs[0], "Add"),
                      let e = add.node.inputs.firstIndex(where: { scalar($0) != nil }),
                      let mean = node(add.node.inputs[1 - e], "ReduceMean"), mean.node.intAttribute("keepdims", default: 1) == 1,
                      let pow = node(mean.node.inputs[0], "Pow"), pow.node.inputs[0] == x, scalar(pow.node.inputs[1]) == 2
                else { continue }
                let axes = mean.node.inputs.count > 1 && !mean.node.inputs[1].isEmpty
                    ? constants[mean.node.inputs[1]].map { $0.int64s().map(Int.init) } : mean.node.intsAttribute("axes")
                guard axes == [-1] else { continue }
                matched += [div.index, sqrt.index, add.index, mean.index, pow.index]
                found = (x, add.node.inputs[e])
                break
            }
            guard let (x, eps) = found, rewrite.isFree(matched) else { continue }
            // The intermediates are read only inside the pattern.
            let private_ = index.outputsStayInside(matched, Set(matched + [i]))
            guard private_ else { continue }
            rewrite.replace(i, with: Node(name: outer.name + "/RMSNorm", opType: "RMSNorm", domain: PrivateOps.domain,
                                          inputs: [x, weight, eps], outputs: outer.outputs), removing: matched)
        }
        return rewrite.apply(to: &graph)
    }
}
