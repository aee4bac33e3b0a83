/// What went wrong while loading or using a tokenizer.
///
/// Every case names the file (or the input) and says what was expected and what was found, so a
/// user can fix the file without reading this code.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A file the tokenizer needs does not exist.
    case fileNotFound(path: String)
    /// A file exists but could not be read.
    case unreadableFile(path: String, reason: String)
    /// A file is not valid JSON; `offset` is the byte offset of the problem.
    case invalidJSON(file: String, offset: Int, message: String)
    /// A required field is absent; `path` is a dotted path such as `model.vocab`.
    case missingField(file: String, path: String)
    /// A field holds a value of the wrong JSON type.
    case wrongType(file: String, path: String, expected: String, found: String)
    /// A field holds a value of the right type that makes no sense (e.g. a merge of unknown tokens).
    case invalidValue(file: String, path: String, message: String)
    /// The file asks for a tokenizer feature this implementation does not provide.
    case unsupported(file: String, path: String, feature: String)
    /// A token id outside the vocabulary was given to `decode` or the detokenizer.
    case unknownTokenID(Int)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): file not found"
        case .unreadableFile(let path, let reason):
            return "\(path): cannot read file: \(reason)"
        case .invalidJSON(let file, let offset, let message):
            return "\(file): invalid JSON at byte \(offset): \(message)"
        case .missingField(let file, let path):
            return "\(file): missing field '\(path)'"
        case .wrongType(let file, let path, let expected, let found):
            return "\(file): field '\(path)' should be \(expected), found \(found)"
        case .invalidValue(let file, let path, let message):
            return "\(file): field '\(path)': \(message)"
        case .unsupported(let file, let path, let feature):
            return "\(file): unsupported \(feature) (at '\(path)')"
        case .unknownTokenID(let id):
            return "token id \(id) is not in the vocabulary"
        }
    }
}
