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
    /// integer, boolean, null and array; an array's `items` (every element following it; without
    /// `items`, any JSON array) and `minItems` / `maxItems` (up to 64); an object without `properties` whose `additionalProperties` is a
    /// schema (Pydantic's `dict[str, X]`: any keys, every value following it; otherwise any JSON
    /// object); `enum` and `const` of strings, numbers, booleans and null; `anyOf`, `oneOf` and
    /// lists of types (Pydantic's `Optional[X]`, `X | None`, `int | str | list[str]`, `Cat | Dog`,
    /// discriminated unions): branches that begin alike are written as one up to where they
    /// part, and the byte where they part tells which branch is written (`union`); branches
    /// that are plain types may share a kind, as number and integer do in `anyOf`); `$ref` to `#/$defs/…` or `#/definitions/…` (nested models), not recursive;
    /// a string's `pattern`, `minLength`, `maxLength` and `format` (`TextPattern.formats`) and an
    /// integer's or a number's `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` and
    /// `multipleOf` (`TextPattern`; such a number is written without exponent); `allOf` of one
    /// schema (that schema), `allOf` of several object schemas (one object with all their
    /// properties, `appendMergedObjects`); `prefixItems` of a tuple (Pydantic's `tuple[int, str]`:
    /// as many items as `minItems` and `maxItems` say, or `items: false`). Anything else (`allOf`
    /// of other schemas, `not`, branches that part where the text cannot tell them apart — an
    /// integer and a number after the same key —, other formats, `prefixItems` with a variable
    /// tail) is refused with a `SchemaError` naming where, rather
    /// than ignored.
    public init(jsonSchema schema: JSONValue) throws(SchemaError) {
        var parts: [Part] = []
        // An object schema, or several merged by `allOf` (which must come out an object).
        guard schema.objectValue != nil, Self.type(of: schema) == "object" || schema["allOf"] != nil else {
            throw SchemaError(path: "#", reason: "the root must be an object schema ({\"type\": \"object\", ...})")
        }
        try Self.append(schema, path: "#", root: schema, depth: 0, to: &parts)
        self.init(Self.merged(parts))
        if let problem { throw SchemaError(path: "#", reason: problem) }
    }

    /// The largest `minItems` / `maxItems` followed (each element up to it is written out in the
    /// pattern's program).
    static let maxItemsUnrolled = 64

    private static let ignoredKeywords: Set<String> = ["title", "description", "$schema", "$id", "examples", "default",
                                                      "additionalProperties", "required", "strict", "name", "$comment",
                                                      "$defs", "definitions", "discriminator"]

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

    /// The kind of a const or enum value (a number with a fraction part or exponent: number).
    private static func kind(of value: JSONValue) -> JSONKinds {
        switch value {
        case .string: .string
        case .int: .integer
        case .double: .number
        case .bool: .boolean
        case .null: .null
        case .array: .array
        case .object: .object
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
            let known = ["type", "properties", "items", "prefixItems", "minItems", "maxItems", "enum", "const", "anyOf", "oneOf", "allOf",
                         "$ref"].contains(key)
                || valueKeywords.contains(key) || ignoredKeywords.contains(key)
            guard known else { throw SchemaError(path: "\(path)/\(key)", reason: "the keyword '\(key)' is not supported") }
        }
        // Keywords that each decide the value alone: one at a time, and a union or reference
        // without the structural keywords beside it (all would apply together; not followed).
        let deciding = ["$ref", "anyOf", "oneOf", "allOf", "const", "enum"].filter { object[$0] != nil }
        if deciding.count > 1 {
            throw SchemaError(path: "\(path)/\(deciding[1])", reason: "'\(deciding[0])' and '\(deciding[1])' together are not supported")
        }
        if let keyword = deciding.first {
            let beside = ["const", "enum"].contains(keyword) ? valueKeywords
                : ["type", "properties", "items", "prefixItems", "minItems", "maxItems"] + valueKeywords
            for key in beside where object[key] != nil {
                throw SchemaError(path: "\(path)/\(key)", reason: "'\(key)' beside '\(keyword)' is not supported")
            }
        }
        if let keyword = deciding.first, ["const", "enum"].contains(keyword), let name = object["type"]?.stringValue,
           let allowed = kinds(name) {
            // Each value must be of the type given beside it.
            let values = keyword == "const" ? [object["const"]!] : object["enum"]?.arrayValue ?? []
            for (i, value) in values.enumerated() where !allowed.contains(kind(of: value)) {
                throw SchemaError(path: keyword == "const" ? "\(path)/const" : "\(path)/enum/\(i)",
                                  reason: "\(value.jsonText) is not of type '\(name)'")
            }
        }
        if let reference = object["$ref"] {
            guard let target = reference.stringValue else { throw SchemaError(path: "\(path)/$ref", reason: "'$ref' must be a string") }
            try append(try resolve(target, in: root, path: "\(path)/$ref"), path: target, root: root, depth: depth + 1, to: &parts)
            return
        }
        if let all = object["allOf"] {
            guard let list = all.arrayValue, !list.isEmpty else {
                throw SchemaError(path: "\(path)/allOf", reason: "'allOf' must be a non-empty array")
            }
            // One schema that all must follow: that schema (as generators wrap a `$ref` with
            // a description beside it).
            if list.count == 1 {
                try append(list[0], path: "\(path)/allOf/0", root: root, depth: depth + 1, to: &parts)
            } else {
                try appendMergedObjects(list, path: "\(path)/allOf", root: root, depth: depth, to: &parts)
            }
            return
        }
        for keyword in ["anyOf", "oneOf"] {
            guard let branches = object[keyword] else { continue }
            guard let list = branches.arrayValue, !list.isEmpty else {
                throw SchemaError(path: "\(path)/\(keyword)", reason: "'\(keyword)' must be a non-empty array")
            }
            parts += try union(list.enumerated().map { ($1, "\(path)/\(keyword)/\($0)") }, exclusive: keyword == "oneOf",
                               path: "\(path)/\(keyword)", root: root, depth: depth)
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
            // A list of types: each the schema with that type alone.
            guard !names.isEmpty else { throw SchemaError(path: "\(path)/type", reason: "an empty list of types") }
            var branches: [(JSONValue, String)] = []
            for (i, item) in names.enumerated() {
                guard let name = item.stringValue, kinds(name) != nil else {
                    throw SchemaError(path: "\(path)/type/\(i)", reason: "unknown type \(item.jsonText)")
                }
                var branch = object
                branch["type"] = .string(name)
                branches.append((.object(branch), "\(path)/type/\(i)"))
            }
            parts += try union(branches, exclusive: false, path: "\(path)/type", root: root, depth: depth)
            return
        }
        guard let name = type.stringValue else {
            throw SchemaError(path: "\(path)/type", reason: "'type' must be a string or a list of strings, got \(type.kindName)")
        }
        switch name {
        case "object":
            guard let properties = object["properties"] else {
                if let values = object["additionalProperties"], values.objectValue != nil {
                    parts.append(.map(try pattern(values, path: "\(path)/additionalProperties", root: root, depth: depth + 1)))
                } else if object["additionalProperties"] == .bool(false) {
                    parts.append(.literal("{}"))
                } else {
                    parts.append(.json(.object))
                }
                return
            }
            guard let fields = properties.objectValue else {
                throw SchemaError(path: "\(path)/properties", reason: "'properties' must be an object")
            }
            try appendObject(fields.keys.map { ($0, fields[$0]!, "\(path)/properties/\($0)") }, root: root, depth: depth, to: &parts)
        case "array":
            var counts: [Int?] = []
            for keyword in ["minItems", "maxItems"] {
                guard let value = object[keyword] else { counts.append(nil); continue }
                guard let n = value.intValue, (0...Self.maxItemsUnrolled).contains(n) else {
                    throw SchemaError(path: "\(path)/\(keyword)", reason: "'\(keyword)' must be an integer from 0 to \(Self.maxItemsUnrolled)")
                }
                counts.append(n)
            }
            let (minItems, maxItems) = (counts[0] ?? 0, counts[1])
            if let maxItems, maxItems < minItems {
                throw SchemaError(path: "\(path)/maxItems", reason: "'maxItems' \(maxItems) is below 'minItems' \(minItems)")
            }
            if let prefix = object["prefixItems"] {
                // A tuple (Pydantic's `tuple[int, str]`): exactly these items, in order.
                guard let schemas = prefix.arrayValue else {
                    throw SchemaError(path: "\(path)/prefixItems", reason: "'prefixItems' must be an array")
                }
                guard minItems == schemas.count, maxItems == schemas.count || object["items"] == .bool(false) else {
                    throw SchemaError(path: "\(path)/prefixItems", reason: "'prefixItems' is followed as a tuple only: 'minItems' and 'maxItems' (or 'items': false) equal to its \(schemas.count) schemas")
                }
                for (i, item) in schemas.enumerated() {
                    parts.append(.literal(i == 0 ? "[" : ", "))
                    try append(item, path: "\(path)/prefixItems/\(i)", root: root, depth: depth + 1, to: &parts)
                }
                parts.append(.literal(schemas.isEmpty ? "[]" : "]"))
            } else if let items = object["items"] {
                parts.append(.array(try pattern(items, path: "\(path)/items", root: root, depth: depth + 1),
                                    minItems: minItems, maxItems: maxItems))
            } else if counts.contains(where: { $0 != nil }) {
                parts.append(.array(OutputPattern([.json(.any)]), minItems: minItems, maxItems: maxItems))
            } else {
                parts.append(.json(.array))
            }
        case "string": parts.append(try string(object, path: path))
        case "number": parts.append(try number(object, path: path))
        case "integer": parts.append(try integer(object, path: path))
        case "boolean": parts.append(.oneOf(["true", "false"]))
        case "null": parts.append(.literal("null"))
        default: throw SchemaError(path: "\(path)/type", reason: "unknown type '\(name)'")
        }
    }

    /// Keywords an object schema merged by `allOf` may hold besides `properties`.
    private static let mergedObjectKeywords: Set<String> = ["type", "properties", "required", "additionalProperties", "title",
                                                            "description", "$comment", "examples", "default"]

    /// Several object schemas that all must hold (`allOf`: zod's intersections, a base schema's
    /// fields and more): one object with every branch's properties, in branch order, written as
    /// an object schema's are (all of them, in order). Each branch (a `$ref` followed) must be an
    /// object schema with `properties`; a property in two branches must be the same schema there.
    private static func appendMergedObjects(_ branches: [JSONValue], path: String, root: JSONValue, depth: Int,
                                            to parts: inout [Part]) throws(SchemaError) {
        var fields: [(key: String, schema: JSONValue, path: String)] = []
        for (i, branch) in branches.enumerated() {
            let (schema, at) = try dereferenced(branch, path: "\(path)/\(i)", root: root)
            guard let object = schema.objectValue, object["type"] == nil || object["type"] == .string("object"),
                  let properties = object["properties"]?.objectValue else {
                throw SchemaError(path: at, reason: "'allOf' of several schemas is followed for object schemas with 'properties' only")
            }
            for key in object.keys where !mergedObjectKeywords.contains(key) {
                throw SchemaError(path: "\(at)/\(key)", reason: "'\(key)' in a schema merged by 'allOf' is not supported")
            }
            for key in properties.keys {
                if let earlier = fields.first(where: { $0.key == key }) {
                    guard earlier.schema == properties[key]! else {
                        throw SchemaError(path: "\(at)/properties/\(key)", reason: "'\(key)' is also at \(earlier.path) with another schema")
                    }
                } else {
                    fields.append((key, properties[key]!, "\(at)/properties/\(key)"))
                }
            }
        }
        try appendObject(fields, root: root, depth: depth, to: &parts)
    }

    /// `schema` with its `$ref`s followed (32 at most), and the path of the schema it ends at.
    private static func dereferenced(_ schema: JSONValue, path: String, root: JSONValue) throws(SchemaError) -> (JSONValue, String) {
        var schema = schema, at = path
        for _ in 0..<32 {
            guard let reference = schema["$ref"] else { break }
            guard let target = reference.stringValue else { throw SchemaError(path: "\(at)/$ref", reason: "'$ref' must be a string") }
            schema = try resolve(target, in: root, path: "\(at)/$ref")
            at = target
        }
        return (schema, at)
    }

    /// An object with every one of `fields` in order, each value following its schema (found at
    /// its path), written compactly: `{"a": …, "b": …}`, or `{}`.
    private static func appendObject(_ fields: [(key: String, schema: JSONValue, path: String)], root: JSONValue, depth: Int,
                                     to parts: inout [Part]) throws(SchemaError) {
        guard !fields.isEmpty else {
            parts.append(.literal("{}"))
            return
        }
        for (i, field) in fields.enumerated() {
            parts.append(.literal((i == 0 ? "{" : ", ") + JSONValue.string(field.key).jsonText + ": "))
            try append(field.schema, path: field.path, root: root, depth: depth + 1, to: &parts)
        }
        parts.append(.literal("}"))
    }

    /// The string keywords (`pattern`, `format`, `minLength`, `maxLength`) and the number
    /// keywords (bounds). Each applies to values of its type only (JSON Schema's reading): beside
    /// another type, as a list of types puts them, they are passed over.
    private static let stringKeywords = ["pattern", "format", "minLength", "maxLength"]
    private static let numberKeywords = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]
    private static let valueKeywords = stringKeywords + numberKeywords + ["multipleOf"]

    /// A string, following the string keywords when there are any.
    private static func string(_ object: JSONObject, path: String) throws(SchemaError) -> Part {
        guard stringKeywords.contains(where: { object[$0] != nil }) else { return .json(.string) }
        var texts: [String: String] = [:], counts: [String: Int] = [:]
        for key in ["pattern", "format"] {
            guard let value = object[key] else { continue }
            guard let text = value.stringValue else { throw SchemaError(path: "\(path)/\(key)", reason: "'\(key)' must be a string") }
            texts[key] = text
        }
        for key in ["minLength", "maxLength"] {
            guard let value = object[key] else { continue }
            guard let n = value.intValue, n >= 0 else {
                throw SchemaError(path: "\(path)/\(key)", reason: "'\(key)' must be a non-negative integer")
            }
            counts[key] = n
        }
        do {
            return .text(try TextPattern.string(matching: texts["pattern"], minLength: counts["minLength"] ?? 0,
                                                maxLength: counts["maxLength"], format: texts["format"]))
        } catch {
            let key = ["pattern", "format", "maxLength", "minLength"].first { object[$0] != nil }!
            throw SchemaError(path: "\(path)/\(key)", reason: error.reason)
        }
    }

    /// The bounds present, each a finite number (nil: none).
    private static func bounds(_ object: JSONObject, path: String) throws(SchemaError) -> [String: Double] {
        var found: [String: Double] = [:]
        for key in numberKeywords {
            guard let value = object[key] else { continue }
            switch value {
            case .int(let i): found[key] = Double(i)
            case .double(let d) where d.isFinite: found[key] = d
            default: throw SchemaError(path: "\(path)/\(key)", reason: "'\(key)' must be a number")
            }
        }
        return found
    }

    /// `multipleOf` when present: a number above zero.
    private static func multipleOf(_ object: JSONObject, path: String) throws(SchemaError) -> Double? {
        switch object["multipleOf"] {
        case nil: return nil
        case .int(let i)? where i > 0: return Double(i)
        case .double(let d)? where d.isFinite && d > 0: return d
        default: throw SchemaError(path: "\(path)/multipleOf", reason: "'multipleOf' must be a number above 0")
        }
    }

    /// The path of what `TextPattern` refused: the keyword's it names, otherwise the schema's.
    private static func failurePath(_ failure: TextPattern.Failure, _ path: String) -> String {
        failure.keyword.map { "\(path)/\($0)" } ?? path
    }

    /// A number, within the bounds and a multiple of `multipleOf` when there are any
    /// (`TextPattern.number`: no exponent).
    private static func number(_ object: JSONObject, path: String) throws(SchemaError) -> Part {
        let found = try bounds(object, path: path), multiple = try multipleOf(object, path: path)
        guard !found.isEmpty || multiple != nil else { return .json([.number, .integer]) }
        // The tighter of two bounds on one side (an exclusive one wins a tie).
        func tighter(_ inclusive: String, _ exclusive: String, below: Bool) -> (value: Double, inclusive: Bool)? {
            switch (found[inclusive], found[exclusive]) {
            case (nil, nil): return nil
            case (let a?, nil): return (a, true)
            case (nil, let b?): return (b, false)
            case (let a?, let b?): return (below ? a > b : a < b) ? (a, true) : (b, false)
            }
        }
        do {
            return .text(try TextPattern.number(minimum: tighter("minimum", "exclusiveMinimum", below: true),
                                                maximum: tighter("maximum", "exclusiveMaximum", below: false),
                                                multipleOf: multiple))
        } catch {
            throw SchemaError(path: failurePath(error, path), reason: error.reason)
        }
    }

    /// An integer, within the bounds (fractional bounds taken to the integers inside them) and a
    /// multiple of `multipleOf` when there are any.
    private static func integer(_ object: JSONObject, path: String) throws(SchemaError) -> Part {
        let found = try bounds(object, path: path), multiple = try multipleOf(object, path: path)
        guard !found.isEmpty || multiple != nil else { return .json(.integer) }
        var minimum: Double? = nil, maximum: Double? = nil
        for key in numberKeywords {
            guard let bound = found[key] else { continue }
            guard abs(bound) <= 1e18 else { throw SchemaError(path: "\(path)/\(key)", reason: "the bound \(bound) is beyond ±10^18") }
            switch key {
            case "minimum": minimum = max(minimum ?? -.infinity, bound.rounded(.up))
            case "exclusiveMinimum": minimum = max(minimum ?? -.infinity, bound.rounded(.down) + 1)
            case "maximum": maximum = min(maximum ?? .infinity, bound.rounded(.down))
            default: maximum = min(maximum ?? .infinity, bound.rounded(.up) - 1)
            }
        }
        do {
            return .text(try TextPattern.integer(minimum: minimum.map { Int($0) }, maximum: maximum.map { Int($0) },
                                                 multipleOf: multiple))
        } catch {
            throw SchemaError(path: failurePath(error, path), reason: error.reason)
        }
    }

    /// The pattern of `schema` alone, its adjacent literals joined.
    private static func pattern(_ schema: JSONValue, path: String, root: JSONValue, depth: Int) throws(SchemaError) -> OutputPattern {
        var parts: [Part] = []
        try append(schema, path: path, root: root, depth: depth, to: &parts)
        return OutputPattern(merged(parts))
    }

    /// The parts of a value following one of `branches` (each with its path): branches that are
    /// plain JSON kinds join into one `.json` part, which no other branch may begin as (in anyOf,
    /// one whose values the plain kinds all take is left out: their union is the plain kind); the rest
    /// are alternatives, and those that begin alike (Pydantic's `Cat | Dog`, two objects) are
    /// written as one up to where they differ (`OutputPattern.leftFactored`): the first byte
    /// where they part must tell them apart, in a literal (a key, a `const`) or as different
    /// kinds of value. `exclusive` (oneOf): no value may follow two branches, so even plain kinds
    /// may not overlap (number and integer), and branches that begin alike must be objects that
    /// differ in a property's `const` (a discriminator, as Pydantic's discriminated unions have
    /// it); a list of types and anyOf are not exclusive.
    private static func union(_ branches: [(JSONValue, String)], exclusive: Bool, path: String, root: JSONValue,
                              depth: Int) throws(SchemaError) -> [Part] {
        var plain: JSONKinds = [], alternatives: [OutputPattern] = []
        // The first kinds of the branches that stay alternatives, and of the plain ones.
        var structuredKinds: JSONKinds = [], plainKinds: JSONKinds = []
        var alike: String?   // the first branch that begins as an earlier alternative does
        // Each branch's pattern, and its kinds when it is a plain one (a `.json` part alone).
        var patterns: [(pattern: OutputPattern, path: String, plain: JSONKinds?)] = []
        for (branch, branchPath) in branches {
            let alternative = try pattern(branch, path: branchPath, root: root, depth: depth + 1)
            var plainBranch: JSONKinds? = nil
            if alternative.parts.count == 1, case .json(let kinds) = alternative.parts[0] { plainBranch = kinds }
            patterns.append((alternative, branchPath, plainBranch))
        }
        // anyOf: a branch whose every value a plain branch takes adds nothing (`Literal["auto"] |
        // str`, `Model | dict`): the plain kind is written. (Integers are numbers, not the reverse.)
        let plainAll = patterns.reduce(into: JSONKinds()) { $0.formUnion($1.plain ?? []) }
        for (alternative, branchPath, plainBranch) in patterns {
            guard let first = alternative.firstKinds else {
                throw SchemaError(path: branchPath, reason: "a branch must be a JSON value")
            }
            if plainBranch == nil, !exclusive, first.isSubset(of: plainAll.byFirstByte),
               first.isDisjoint(with: [.number, .integer]) || plainAll.contains(.number) {
                continue
            }
            let taken = plainBranch == nil ? plainKinds : exclusive ? structuredKinds.union(plainKinds) : structuredKinds
            guard taken.isDisjoint(with: first) else {
                throw SchemaError(path: branchPath, reason: "this branch begins as the same kind of JSON value as an earlier one, so the written value could not tell which it follows")
            }
            if let kinds = plainBranch {
                plain.formUnion(kinds)
                plainKinds.formUnion(first)
            } else {
                if alike == nil && !structuredKinds.isDisjoint(with: first) { alike = branchPath }
                alternatives.append(alternative)
                structuredKinds.formUnion(first)
            }
        }
        if let alike {
            if exclusive, !discriminated(branches.map(\.0), root: root) {
                throw SchemaError(path: alike, reason: "this oneOf branch begins as the same kind of JSON value as an earlier one: branches alike must be objects that differ in one property's 'const' (a discriminator), so that no value follows two")
            }
            guard let factored = OutputPattern.leftFactored(alternatives) else {
                throw SchemaError(path: alike, reason: "this branch begins as an earlier one does and the two part where the written text could not tell them apart (not at a key, a 'const' or a different kind of value)")
            }
            alternatives = factored
        }
        if !plain.isEmpty { alternatives.append(OutputPattern([.json(plain)])) }
        if alternatives.count == 1 { return alternatives[0].parts }
        let part = Part.anyOf(alternatives)
        if let problem = OutputPattern([part]).problem { throw SchemaError(path: path, reason: problem) }
        return [part]
    }

    /// Whether `branches` are object schemas (through `$ref`s) sharing a property whose `const`
    /// (or one-value `enum`) differs from branch to branch: no object follows two of them.
    private static func discriminated(_ branches: [JSONValue], root: JSONValue) -> Bool {
        var tags: [[String: String]] = []
        for branch in branches {
            guard let (schema, _) = try? dereferenced(branch, path: "#", root: root),
                  let properties = schema["properties"]?.objectValue else { return false }
            var own: [String: String] = [:]
            for name in properties.keys {
                if let schema = properties[name], let value = schema["const"] ?? schema["enum"]?.arrayValue.flatMap({ $0.count == 1 ? $0[0] : nil }) {
                    own[name] = value.jsonText
                }
            }
            tags.append(own)
        }
        return tags[0].keys.contains { name in
            let values = tags.compactMap { $0[name] }
            return values.count == tags.count && Set(values).count == values.count
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
