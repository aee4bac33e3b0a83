import Tokenizer

extension OutputPattern {
    /// A JSON Schema the pattern cannot follow, with where in the schema and why.
    public struct SchemaError: Error, CustomStringConvertible, Sendable {
        /// Where in the schema, as a JSON pointer-like path ("#/properties/city").
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// The output pattern of JSON documents that follow `schema` (OpenAI's structured outputs,
    /// `response_format` `json_schema`), written compactly as Python's `json.dumps` writes them
    /// (`{"a": 1, "b": [2, 3]}`).
    ///
    /// The subset followed: the root an object; `type` object with `properties` (every property
    /// written, in the order given, as OpenAI's strict mode requires them all), string, number,
    /// integer, boolean, null and array; `enum` and `const` of strings, numbers, booleans and
    /// null; an object without `properties`, and an array's items, any JSON of its kind (their
    /// syntax only: `items` and an object's `additionalProperties` are not enforced). Anything
    /// else (`anyOf`, `oneOf`, `allOf`, `$ref`, a list of types, string formats, patterns, bounds) is
    /// refused with a `SchemaError` naming where, rather than ignored.
    public init(jsonSchema schema: JSONValue) throws(SchemaError) {
        var parts: [Part] = []
        guard schema.objectValue != nil, Self.type(of: schema) == "object" else {
            throw SchemaError(path: "#", reason: "the root must be an object schema ({\"type\": \"object\", ...})")
        }
        try Self.append(schema, path: "#", to: &parts)
        self.init(Self.merged(parts))
    }

    private static let ignoredKeywords: Set<String> = ["title", "description", "$schema", "$id", "examples", "default",
                                                      "additionalProperties", "required", "strict", "name", "$comment"]

    private static func type(of schema: JSONValue) -> String? { schema["type"]?.stringValue }

    private static func append(_ schema: JSONValue, path: String, to parts: inout [Part]) throws(SchemaError) {
        guard let object = schema.objectValue else {
            throw SchemaError(path: path, reason: "a schema must be an object, got \(schema.kindName)")
        }
        for key in object.keys {
            let known = ["type", "properties", "items", "enum", "const"].contains(key) || ignoredKeywords.contains(key)
            guard known else { throw SchemaError(path: "\(path)/\(key)", reason: "the keyword '\(key)' is not supported") }
        }
        if let value = object["const"] {
            parts.append(.literal(try literal(value, path: "\(path)/const")))
            return
        }
        if let values = object["enum"] {
            guard let items = values.arrayValue, !items.isEmpty else {
                throw SchemaError(path: "\(path)/enum", reason: "'enum' must be a non-empty array")
            }
            var choices: [String] = []
            for (i, item) in items.enumerated() { choices.append(try literal(item, path: "\(path)/enum/\(i)")) }
            if let problem = OutputPattern([.oneOf(choices)]).problem {
                throw SchemaError(path: "\(path)/enum", reason: "the values cannot be told apart while written: \(problem)")
            }
            parts.append(choices.count == 1 ? .literal(choices[0]) : .oneOf(choices))
            return
        }
        guard let type = object["type"] else { throw SchemaError(path: path, reason: "'type' (or 'enum' / 'const') is required") }
        guard let name = type.stringValue else {
            throw SchemaError(path: "\(path)/type", reason: "one type is supported, got \(type.kindName)")
        }
        switch name {
        case "object":
            guard let properties = object["properties"] else {
                parts.append(.json(.object))
                return
            }
            guard let fields = properties.objectValue else {
                throw SchemaError(path: "\(path)/properties", reason: "'properties' must be an object")
            }
            if fields.keys.isEmpty {
                parts.append(.literal("{}"))
                return
            }
            for (i, key) in fields.keys.enumerated() {
                parts.append(.literal((i == 0 ? "{" : ", ") + JSONValue.string(key).jsonText + ": "))
                try append(fields[key]!, path: "\(path)/properties/\(key)", to: &parts)
            }
            parts.append(.literal("}"))
        case "array":
            // Any JSON array (the doc comment says `items` is not enforced).
            parts.append(.json(.array))
        case "string": parts.append(.json(.string))
        case "number": parts.append(.json(.number))
        case "integer": parts.append(.json(.integer))
        case "boolean": parts.append(.oneOf(["true", "false"]))
        case "null": parts.append(.literal("null"))
        default: throw SchemaError(path: "\(path)/type", reason: "unknown type '\(name)'")
        }
    }

    /// A const or enum value as written.
    private static func literal(_ value: JSONValue, path: String) throws(SchemaError) -> String {
        switch value {
        case .string, .int, .double, .bool, .null: return value.jsonText
        default: throw SchemaError(path: path, reason: "only strings, numbers, booleans and null are supported, got \(value.kindName)")
        }
    }

    /// Adjacent literals joined (fewer parts to step through).
    private static func merged(_ parts: [Part]) -> [Part] {
        var out: [Part] = []
        for part in parts {
            if case .literal(let b) = part, case .literal(let a)? = out.last {
                out[out.count - 1] = .literal(a + b)
            } else {
                out.append(part)
            }
        }
        return out
    }
}
