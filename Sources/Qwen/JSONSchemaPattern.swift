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
    /// syntax only: `items` and an object's `additionalProperties` are not enforced); a list of
    /// types, and `anyOf` whose branches are types alone (Pydantic's `Optional[int]`: `{"anyOf":
    /// [{"type": "integer"}, {"type": "null"}]}`), as any value of those kinds; `$ref` to
    /// `#/$defs/…` or `#/definitions/…` (nested models), not recursive. Anything else (`oneOf`,
    /// `allOf`, a union holding an object with properties, string formats, patterns, bounds) is
    /// refused with a `SchemaError` naming where, rather than ignored.
    public init(jsonSchema schema: JSONValue) throws(SchemaError) {
        var parts: [Part] = []
        guard schema.objectValue != nil, Self.type(of: schema) == "object" else {
            throw SchemaError(path: "#", reason: "the root must be an object schema ({\"type\": \"object\", ...})")
        }
        try Self.append(schema, path: "#", root: schema, depth: 0, to: &parts)
        self.init(Self.merged(parts))
    }

    private static let ignoredKeywords: Set<String> = ["title", "description", "$schema", "$id", "examples", "default",
                                                      "additionalProperties", "required", "strict", "name", "$comment",
                                                      "$defs", "definitions"]

    /// The kinds a type name stands for in a union (nil: not a kind alone).
    private static func kinds(_ name: String) -> JSONKinds? {
        switch name {
        case "object": .object
        case "array": .array
        case "string": .string
        case "number": [.number, .integer]
        case "integer": .integer
        case "boolean": .boolean
        case "null": .null
        default: nil
        }
    }

    /// `#/$defs/Name` or `#/definitions/Name` in `root`.
    private static func resolve(_ reference: String, in root: JSONValue, path: String) throws(SchemaError) -> JSONValue {
        for prefix in ["#/$defs/", "#/definitions/"] where reference.hasPrefix(prefix) {
            let name = String(reference.dropFirst(prefix.count))
            if let target = root[String(prefix.dropFirst(2).dropLast())]?[name] { return target }
        }
        throw SchemaError(path: path, reason: "'\(reference)' is not a schema under #/$defs or #/definitions")
    }

    private static func type(of schema: JSONValue) -> String? { schema["type"]?.stringValue }

    private static func append(_ schema: JSONValue, path: String, root: JSONValue, depth: Int,
                               to parts: inout [Part]) throws(SchemaError) {
        guard let object = schema.objectValue else {
            throw SchemaError(path: path, reason: "a schema must be an object, got \(schema.kindName)")
        }
        guard depth < 32 else { throw SchemaError(path: path, reason: "nested 32 deep: a recursive $ref?") }
        for key in object.keys {
            let known = ["type", "properties", "items", "enum", "const", "anyOf", "$ref"].contains(key) || ignoredKeywords.contains(key)
            guard known else { throw SchemaError(path: "\(path)/\(key)", reason: "the keyword '\(key)' is not supported") }
        }
        if let reference = object["$ref"] {
            guard let target = reference.stringValue else { throw SchemaError(path: "\(path)/$ref", reason: "'$ref' must be a string") }
            try append(try resolve(target, in: root, path: "\(path)/$ref"), path: target, root: root, depth: depth + 1, to: &parts)
            return
        }
        if let branches = object["anyOf"] {
            // A union of kinds: each branch a type alone (or a $ref to one).
            guard let list = branches.arrayValue, !list.isEmpty else {
                throw SchemaError(path: "\(path)/anyOf", reason: "'anyOf' must be a non-empty array")
            }
            var union: JSONKinds = []
            for (i, branch) in list.enumerated() {
                var resolved = branch
                if let reference = branch["$ref"]?.stringValue { resolved = try resolve(reference, in: root, path: "\(path)/anyOf/\(i)/$ref") }
                let extra = resolved.objectValue?.keys.filter { !["type"].contains($0) && !ignoredKeywords.contains($0) } ?? []
                guard extra.isEmpty || (extra == ["items"] && resolved["type"]?.stringValue == "array"),
                      let name = resolved["type"]?.stringValue, let kinds = kinds(name),
                      !(name == "object" && resolved["properties"] != nil) else {
                    throw SchemaError(path: "\(path)/anyOf/\(i)", reason: "a union's branches must be types alone (string, number, integer, boolean, null, array, an object without properties)")
                }
                union.formUnion(kinds)
            }
            parts.append(.json(union))
            return
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
        if let names = type.arrayValue {
            // A list of types: any value of those kinds (an object among them without properties).
            var union: JSONKinds = []
            for (i, item) in names.enumerated() {
                guard let name = item.stringValue, let kinds = kinds(name) else {
                    throw SchemaError(path: "\(path)/type/\(i)", reason: "unknown type \(item.jsonText)")
                }
                union.formUnion(kinds)
            }
            guard !union.isEmpty, !(union.contains(.object) && object["properties"] != nil) else {
                throw SchemaError(path: "\(path)/type", reason: "a list of types with 'properties' is not supported")
            }
            parts.append(.json(union))
            return
        }
        guard let name = type.stringValue else {
            throw SchemaError(path: "\(path)/type", reason: "'type' must be a string or a list of strings, got \(type.kindName)")
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
                try append(fields[key]!, path: "\(path)/properties/\(key)", root: root, depth: depth + 1, to: &parts)
            }
            parts.append(.literal("}"))
        case "array":
            // Any JSON array (the doc comment says `items` is not enforced).
            parts.append(.json(.array))
        case "string": parts.append(.json(.string))
        case "number": parts.append(.json([.number, .integer]))
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
