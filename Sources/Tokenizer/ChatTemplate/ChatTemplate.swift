/// A parsed chat template (the Jinja `chat_template` of `tokenizer_config.json`).
///
/// Rendering follows transformers' `apply_chat_template(..., tokenize=False)`: Jinja with
/// `trim_blocks` and `lstrip_blocks`, `tojson` as `json.dumps(ensure_ascii=False)`, and the globals
/// `raise_exception`, `strftime_now`, `namespace`, `range` and `dict`. A template that uses Jinja
/// beyond the supported subset fails with `ChatTemplateError.unsupported`, naming the construct.
public struct ChatTemplate: Sendable {
    /// The template source.
    public let source: String
    private let nodes: [JinjaNode]
    /// A separate template for calls with tools (`chat_template` given as a list with a
    /// `tool_use` entry), as transformers picks it.
    private let toolUse: ChatTemplateBody?

    private struct ChatTemplateBody: Sendable {
        let source: String
        let nodes: [JinjaNode]
    }

    /// Parses a template. Throws `ChatTemplateError.syntax` or `.unsupported`.
    public init(_ source: String) throws {
        self.source = source
        self.nodes = try JinjaParser.parse(source)
        self.toolUse = nil
    }

    private init(defaultSource: String, toolUseSource: String?) throws {
        self.source = defaultSource
        self.nodes = try JinjaParser.parse(defaultSource)
        self.toolUse = try toolUseSource.map { ChatTemplateBody(source: $0, nodes: try JinjaParser.parse($0)) }
    }

    /// Renders the template with `context` variables (`messages`, `add_generation_prompt`, ...).
    /// With `useToolTemplate`, a `tool_use` template is preferred when there is one.
    public func render(_ context: [String: JSONValue], useToolTemplate: Bool = false) throws -> String {
        try render(context, useToolTemplate: useToolTemplate, limits: .standard)
    }

    /// Renders within `limits` (the public `render` uses ``JinjaRenderLimits/standard``).
    func render(_ context: [String: JSONValue], useToolTemplate: Bool = false, limits: JinjaRenderLimits) throws -> String {
        let interpreter = JinjaInterpreter(context: context.mapValues(JinjaValue.init), limits: limits)
        if useToolTemplate, let toolUse { return try interpreter.render(toolUse.nodes) }
        return try interpreter.render(nodes)
    }

    /// The template of a `tokenizer_config.json`: `chat_template` as a string, or as a list of
    /// `{"name", "template"}` entries (the one named `default` is used, `tool_use` with tools).
    static func fromConfig(_ config: JSONObject, file: String) throws -> ChatTemplate? {
        switch config["chat_template"] {
        case nil, .null?:
            return nil
        case .string(let s)?:
            return try ChatTemplate(s)
        case .array(let entries)?:
            var named: [String: String] = [:]
            for (i, entry) in entries.enumerated() {
                guard let name = entry["name"]?.stringValue, let template = entry["template"]?.stringValue else {
                    throw TokenizerError.invalidValue(
                        file: file, path: "chat_template[\(i)]", message: "expected an object with 'name' and 'template' strings")
                }
                named[name] = template
            }
            guard let defaultTemplate = named["default"] else {
                throw TokenizerError.invalidValue(file: file, path: "chat_template", message: "no template named 'default'")
            }
            return try ChatTemplate(defaultSource: defaultTemplate, toolUseSource: named["tool_use"])
        case let other?:
            throw TokenizerError.wrongType(file: file, path: "chat_template", expected: "a string or a list", found: other.kindName)
        }
    }
}
