/// Who produces and who reads each value of a graph: the lookups the pattern-matching passes
/// (`AttentionFusion`, `CacheAppend`, `RMSNormFusion`) walk the graph with.
struct GraphIndex {
    let nodes: [Node]
    /// The index of the node producing each value.
    let producer: [String: Int]
    /// The indices of the nodes reading each value (once per input slot).
    let consumers: [String: [Int]]
    let graphOutputs: Set<String>

    init(_ graph: Graph) {
        var producer: [String: Int] = [:]
        var consumers: [String: [Int]] = [:]
        producer.reserveCapacity(2 * graph.nodes.count)
        consumers.reserveCapacity(2 * graph.nodes.count)
        for (i, node) in graph.nodes.enumerated() {
            for o in node.outputs where !o.isEmpty { producer[o] = i }
            for v in node.inputs where !v.isEmpty { consumers[v, default: []].append(i) }
        }
        nodes = graph.nodes
        self.producer = producer
        self.consumers = consumers
        graphOutputs = Set(graph.outputs.map(\.name))
    }

    /// The ONNX-domain node of type `opType` producing `value`, if that is what produces it.
    func node(_ value: String, _ opType: String) -> (index: Int, node: Node)? {
        guard let i = producer[value], nodes[i].opType == opType, nodes[i].domain.isEmpty else { return nil }
        return (i, nodes[i])
    }

    /// Whether every output of the nodes `matched` is read only by nodes in `inside` and is not
    /// a graph output (so the nodes can be replaced as a whole).
    func outputsStayInside(_ matched: [Int], _ inside: Set<Int>) -> Bool {
        matched.allSatisfy { m in
            nodes[m].outputs.allSatisfy { o in
                o.isEmpty || (!graphOutputs.contains(o) && (consumers[o] ?? []).allSatisfy(inside.contains))
            }
        }
    }
}
