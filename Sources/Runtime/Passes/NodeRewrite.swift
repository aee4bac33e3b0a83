/// The domain of the operators this runtime adds to a graph when it plans it (fused attention,
/// cache appends, norms, rotary embeddings, grouped products, shape programs): no ONNX file uses it.
public enum PrivateOps {
    public static let domain = "qwen.swift"
}

/// The edits a rewriting pass collects while it scans a graph's nodes, applied at once: node i
/// replaced by another, nodes removed. The nodes keep their order; a replacement takes the place
/// of the node it replaces.
struct NodeRewrite {
    private(set) var replaced: [Int: Node] = [:]
    private(set) var removed = Set<Int>()

    /// Replacements so far (what the passes report).
    var count: Int { replaced.count }

    /// Whether none of `indices` has been removed or replaced yet (a match may use a node once).
    func isFree(_ indices: some Sequence<Int>) -> Bool {
        indices.allSatisfy { !removed.contains($0) && replaced[$0] == nil }
    }

    /// Puts `node` in place of node `index` and removes `removing`.
    mutating func replace(_ index: Int, with node: Node, removing: some Sequence<Int> = [Int]()) {
        replaced[index] = node
        removed.formUnion(removing)
    }

    /// The graph's nodes with the edits made.
    func apply(to nodes: [Node]) -> [Node] {
        nodes.enumerated().compactMap { i, n in removed.contains(i) ? nil : (replaced[i] ?? n) }
    }

    /// Makes the edits in `graph`; returns the number of replacements.
    @discardableResult
    func apply(to graph: inout Graph) -> Int {
        guard count > 0 || !removed.isEmpty else { return 0 }
        graph.nodes = apply(to: graph.nodes)
        return count
    }
}
