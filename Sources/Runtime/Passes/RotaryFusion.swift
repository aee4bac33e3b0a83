import ONNX

/// Replaces the rotary position embedding as the exports spell it (HF `apply_rotary_pos_emb`,
/// float32 after `Float16Precision`):
///
///     Add(Mul(x, cos), Mul(Concat(Neg(Slice(x, h, end)), Slice(x, 0, h)), sin))
///
/// (either operand order in the Add and the Muls) by one `Rotary` node (`RotaryOperator`) that
/// computes each element as `x·cos + (±x')·sin` with the same two float32 products and the same
/// sum, so its results are bit-identical. Per layer it replaces 14 nodes (7 each for Q and K)
/// and five intermediate tensors per use. The Slices' bounds are computed at run time by the
/// exports (half of `Shape(x)[-1]`), so they stay inputs: the operator checks them and computes
/// the op-by-op form when they are not the halves of the last axis.
enum RotaryFusion {
    static let opType = "Rotary"

    @discardableResult
    static func run(_ graph: inout Graph) -> Int {
        guard (graph.opsets[""] ?? 0) >= 10 else { return 0 }   // Slice with its bounds as inputs
        let index = GraphIndex(graph)
        let types = TypeInference.elementTypes(graph)
        func isFloat(_ v: String) -> Bool { types[v] == .float }
        /// The data input and the bounds (starts, ends, axes, steps; "" where omitted) of a Slice.
        func slice(_ value: String) -> (index: Int, x: String, bounds: [String])? {
            guard let s = index.node(value, "Slice"), s.node.inputs.count >= 3 else { return nil }
            let inputs = s.node.inputs
            return (s.index, inputs[0], (1...4).map { $0 < inputs.count ? inputs[$0] : "" })
        }
        var rewrite = NodeRewrite()
        for (i, add) in graph.nodes.enumerated() where add.opType == "Add" && add.domain.isEmpty && add.inputs.count == 2 {
            var found: (x: String, cos: String, sin: String, kept: [String], negated: [String], axis: Int, matched: [Int])?
            search: for side in 0..<2 {
                guard let direct = index.node(add.inputs[side], "Mul"), let rotated = index.node(add.inputs[1 - side], "Mul"),
                      direct.node.inputs.count == 2, rotated.node.inputs.count == 2 else { continue }
                for c in 0..<2 {
                    guard let concat = index.node(rotated.node.inputs[c], "Concat"), concat.node.inputs.count == 2,
                          let axis = concat.node.intAttribute("axis"),
                          let neg = index.node(concat.node.inputs[0], "Neg"),
                          let negated = slice(neg.node.inputs[0]), let kept = slice(concat.node.inputs[1]),
                          negated.x == kept.x else { continue }
                    let x = kept.x
                    guard let d = direct.node.inputs.firstIndex(of: x) else { continue }
                    found = (x, direct.node.inputs[1 - d], rotated.node.inputs[1 - c], kept.bounds, negated.bounds, axis,
                             [direct.index, rotated.index, concat.index, neg.index, negated.index, kept.index])
                    break search
                }
            }
            guard let f = found, isFloat(f.x), isFloat(f.cos), isFloat(f.sin), rewrite.isFree(f.matched),
                  index.outputsStayInside(f.matched, Set(f.matched + [i])),
                  // The fused node's inputs must not be values the replaced nodes produce.
                  !([f.x, f.cos, f.sin] + f.kept + f.negated).contains(where: { v in
                      index.producer[v].map(f.matched.contains) ?? false
                  }) else { continue }
            rewrite.replace(i, with: Node(name: add.name + "/Rotary", opType: opType, domain: PrivateOps.domain,
                                          inputs: [f.x, f.cos, f.sin] + f.kept + f.negated, outputs: add.outputs,
                                          attributes: ["axis": .int("axis", f.axis)]),
                            removing: f.matched)
        }
        return rewrite.apply(to: &graph)
    }
}
