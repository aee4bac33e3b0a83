import ONNX

/// Errors raised while planning or running a graph. Each names the node (op type and name) or
/// the graph value concerned and says what was expected and what was found.
public enum RuntimeError: Error, CustomStringConvertible, Sendable {
    /// An op (type, domain, opset) this runtime does not implement.
    case unsupportedOperator(opType: String, domain: String, opset: Int, node: String)
    /// The graph structure is invalid (cycle, undefined input, duplicate output...).
    case invalidGraph(String)
    /// A node's attributes or inputs are not what its op requires.
    case invalidNode(node: String, opType: String, reason: String)
    /// A user feed is missing, unknown, or has the wrong type or rank.
    case invalidFeed(name: String, reason: String)
    /// A node failed while running; `reason` is the underlying error.
    case nodeFailed(node: String, opType: String, reason: String)
    /// A model tensor cannot be turned into a runtime tensor.
    case invalidInitializer(name: String, reason: String)

    public var description: String {
        switch self {
        case let .unsupportedOperator(opType, domain, opset, node):
            return "unsupported operator \(domain.isEmpty ? "ai.onnx" : domain)::\(opType) (opset \(opset)) at node '\(node)'"
        case let .invalidGraph(reason):
            return "invalid graph: \(reason)"
        case let .invalidNode(node, opType, reason):
            return "node '\(node)' (\(opType)): \(reason)"
        case let .invalidFeed(name, reason):
            return "input '\(name)': \(reason)"
        case let .nodeFailed(node, opType, reason):
            return "node '\(node)' (\(opType)) failed: \(reason)"
        case let .invalidInitializer(name, reason):
            return "initializer '\(name)': \(reason)"
        }
    }
}

/// Error thrown inside an operator; the session wraps it with the node's name and op type.
struct OpError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
