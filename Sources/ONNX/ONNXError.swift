/// Everything that can be wrong with an ONNX file or its external data.
///
/// Each case says where (file, tensor, field) and what was expected versus found, so that a user
/// who hands us a broken export can tell what to fix.
public enum ONNXError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file could not be opened or mapped.
    case cannotOpen(path: String, reason: String)
    /// The protobuf bytes are malformed (truncated, wrong wire type, absurd length...).
    case malformed(file: String, offset: Int, context: String, reason: String)
    /// Messages nested deeper than we accept (a recursion bomb, or a graph nested absurdly deep).
    case nestingTooDeep(file: String, context: String, limit: Int)
    /// A tensor's declared shape/type disagrees with its payload, or is not representable.
    case invalidTensor(name: String, reason: String)
    /// An external-data reference is unsafe or unusable (absolute path, `..`, symlink escape,
    /// missing file, range past the end).
    case invalidExternalData(tensor: String, location: String, reason: String)
    /// The model uses a feature this reader does not support.
    case unsupported(context: String, reason: String)
    /// A mapped model or external data file was truncated or rewritten in place after loading.
    case fileChanged(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open '\(path)': \(reason)"
        case let .malformed(file, offset, context, reason):
            return "malformed ONNX protobuf in '\(file)' at byte \(offset) (\(context)): \(reason)"
        case let .nestingTooDeep(file, context, limit):
            return "ONNX protobuf in '\(file)' nests deeper than \(limit) messages (\(context)); refusing to parse"
        case let .invalidTensor(name, reason):
            return "tensor '\(name)': \(reason)"
        case let .invalidExternalData(tensor, location, reason):
            return "external data of tensor '\(tensor)' (location '\(location)'): \(reason)"
        case let .unsupported(context, reason):
            return "unsupported ONNX feature in \(context): \(reason)"
        case let .fileChanged(path, reason):
            return "'\(path)' changed on disk while loaded: \(reason); reload the model"
        }
    }
}
