/// What went wrong while parsing or rendering a chat template.
public enum ChatTemplateError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The tokenizer has no chat template (`tokenizer_config.json` lacks `chat_template`).
    case noTemplate
    /// The template is not valid Jinja.
    case syntax(message: String, line: Int)
    /// The template uses Jinja that this implementation does not provide; `construct` names it
    /// (e.g. "tag 'include'", "filter 'wordwrap'", "string method 'format'").
    case unsupported(construct: String, line: Int)
    /// Rendering failed, as it would in Jinja (undefined attribute access, type errors, ...).
    case runtime(message: String, line: Int)
    /// The template called `raise_exception(message)`.
    case raised(message: String)

    public var description: String {
        switch self {
        case .noTemplate: return "chat template: the tokenizer has no chat_template"
        case .syntax(let message, let line): return "chat template line \(line): syntax error: \(message)"
        case .unsupported(let construct, let line): return "chat template line \(line): unsupported \(construct)"
        case .runtime(let message, let line): return "chat template line \(line): \(message)"
        case .raised(let message): return "chat template raised an exception: \(message)"
        }
    }
}
