import Foundation

/// A runtime value of the template language, with Python's semantics (Jinja runs on Python):
/// `str()` / `repr()` spellings, truthiness, equality by code points, integer/float arithmetic.
indirect enum JinjaValue {
    /// An undefined variable or missing attribute; `reason` says which, for error messages.
    case undefined(reason: String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaValue])
    case tuple([JinjaValue])
    case dict(JinjaDict)
    case namespace(JinjaNamespace)
    case loop(JinjaLoopState)
    case macro(JinjaMacroDefinition)
    /// A global function: `range`, `namespace`, `dict`, `raise_exception`, `strftime_now`.
    case builtin(String)
    /// A method looked up on a value (`content.strip`, `message.items`), called later.
    case method(receiver: JinjaValue, name: String)

    init(_ json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .list(a.map(JinjaValue.init))
        case .object(let o): self = .dict(JinjaDict(o.entries.map { (JinjaValue.string($0.key), JinjaValue($0.value)) }))
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .loop: return "LoopContext"
        case .macro: return "Macro"
        case .builtin, .method: return "function"
        }
    }

    /// Python truthiness.
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let a), .tuple(let a): return !a.isEmpty
        case .dict(let d): return !d.isEmpty
        default: return true
        }
    }

    /// The numeric value of ints, floats and bools (Python's bool is an int).
    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    var integer: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    // MARK: str() and repr()

    /// Python's `str(value)`, which is what `{{ value }}` prints.
    var pythonString: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return pythonRepr
        }
    }

    /// Python's `repr(value)`.
    var pythonRepr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pythonFloatRepr(d)
        case .string(let s): return pythonStringRepr(s)
        case .list(let a): return "[" + a.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .tuple(let a):
            return a.count == 1 ? "(" + a[0].pythonRepr + ",)" : "(" + a.map(\.pythonRepr).joined(separator: ", ") + ")"
        case .dict(let d):
            return "{" + d.entries.map { $0.key.pythonRepr + ": " + $0.value.pythonRepr }.joined(separator: ", ") + "}"
        case .namespace(let ns):
            return "<Namespace " + JinjaValue.dict(JinjaDict(ns.entries)).pythonRepr + ">"
        case .loop: return "<LoopContext>"
        case .macro(let m): return "<Macro '\(m.name)'>"
        case .builtin(let name): return "<built-in function \(name)>"
        case .method(let receiver, let name): return "<built-in method \(name) of \(receiver.typeName) object>"
        }
    }
}

// MARK: - Containers

/// A Python dict: insertion-ordered, keys compared with Python equality.
struct JinjaDict {
    private(set) var entries: [(key: JinjaValue, value: JinjaValue)] = []

    init(_ pairs: [(JinjaValue, JinjaValue)] = []) {
        for (k, v) in pairs { self[k] = v }
    }

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    subscript(key: JinjaValue) -> JinjaValue? {
        get {
            if case .string(let s) = key {
                for e in entries { if case .string(let k) = e.key, k.utf8.elementsEqual(s.utf8) { return e.value } }
                return nil
            }
            return entries.first { pythonEquals($0.key, key) }?.value
        }
        set {
            if let i = entries.firstIndex(where: { pythonEquals($0.key, key) }) {
                if let newValue { entries[i].value = newValue } else { entries.remove(at: i) }
            } else if let newValue {
                entries.append((key, newValue))
            }
        }
    }

    subscript(key: String) -> JinjaValue? { self[.string(key)] }
}

/// The mutable object `namespace(...)` returns; `{% set ns.x = … %}` writes through it from any scope.
final class JinjaNamespace {
    private(set) var entries: [(JinjaValue, JinjaValue)] = []

    subscript(name: String) -> JinjaValue? {
        get { entries.first { pythonEquals($0.0, .string(name)) }?.1 }
        set {
            if let i = entries.firstIndex(where: { pythonEquals($0.0, .string(name)) }) {
                entries[i].1 = newValue ?? .none
            } else {
                entries.append((.string(name), newValue ?? .none))
            }
        }
    }
}

/// The `loop` variable inside a `for` body.
struct JinjaLoopState {
    var index0: Int
    var length: Int
    var previous: JinjaValue?
    var next: JinjaValue?

    func attribute(_ name: String) -> JinjaValue? {
        switch name {
        case "index": return .int(index0 + 1)
        case "index0": return .int(index0)
        case "revindex": return .int(length - index0)
        case "revindex0": return .int(length - index0 - 1)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(index0 == length - 1)
        case "length": return .int(length)
        case "depth": return .int(1)
        case "depth0": return .int(0)
        case "previtem": return previous ?? .undefined(reason: "there is no previous item")
        case "nextitem": return next ?? .undefined(reason: "there is no next item")
        default: return nil
        }
    }
}

// MARK: - Python semantics

/// Python `a == b`.
func pythonEquals(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
    switch (a, b) {
    case (.undefined, .undefined), (.none, .none): return true
    case (.string(let x), .string(let y)): return x.utf8.elementsEqual(y.utf8)
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { pythonEquals($0, $1) }
    case (.dict(let x), .dict(let y)):
        return x.count == y.count && x.entries.allSatisfy { e in y[e.key].map { pythonEquals(e.value, $0) } ?? false }
    case (.namespace(let x), .namespace(let y)): return x === y
    case (.macro(let x), .macro(let y)): return x === y
    case (.builtin(let x), .builtin(let y)): return x == y
    default:
        if let x = a.integer, let y = b.integer { return x == y }
        if let x = a.number, let y = b.number { return x == y }
        return false
    }
}

/// Python `a < b`, or `nil` when Python would raise `TypeError`.
func pythonLess(_ a: JinjaValue, _ b: JinjaValue) -> Bool? {
    switch (a, b) {
    case (.string(let x), .string(let y)):
        return x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars) { $0.value < $1.value }
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        for (p, q) in zip(x, y) where !pythonEquals(p, q) { return pythonLess(p, q) }
        return x.count < y.count
    default:
        if let x = a.integer, let y = b.integer { return x < y }
        if let x = a.number, let y = b.number { return x < y }
        return nil
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional between 1e-4 and 1e16,
/// scientific (`1e-05`, `1e+16`) outside.
func pythonFloatRepr(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
    // Swift's description also prints the shortest round-trip digits; only the layout differs.
    var text = "\(abs(d))"
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponent = Int(text[text.index(after: e)...])!
        text = String(text[..<e])
    }
    var digits = ""
    var pointPosition = 0
    if let dot = text.firstIndex(of: ".") {
        digits = String(text[..<dot]) + String(text[text.index(after: dot)...])
        pointPosition = text.distance(from: text.startIndex, to: dot)
    } else {
        digits = text
        pointPosition = text.count
    }
    pointPosition += exponent
    while digits.hasPrefix("0") && digits.count > 1 {
        digits.removeFirst()
        pointPosition -= 1
    }
    while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
    let sign = d < 0 ? "-" : ""
    let decimalExponent = pointPosition - 1
    if decimalExponent >= -4 && decimalExponent < 16 {
        if pointPosition <= 0 {
            return sign + "0." + String(repeating: "0", count: -pointPosition) + digits
        }
        if pointPosition >= digits.count {
            return sign + digits + String(repeating: "0", count: pointPosition - digits.count) + ".0"
        }
        let split = digits.index(digits.startIndex, offsetBy: pointPosition)
        return sign + digits[..<split] + "." + digits[split...]
    }
    let mantissa = digits.count > 1 ? String(digits.first!) + "." + digits.dropFirst() : digits
    let expSign = decimalExponent < 0 ? "-" : "+"
    let expDigits = String(abs(decimalExponent))
    return sign + mantissa + "e" + expSign + (expDigits.count < 2 ? "0" + expDigits : expDigits)
}

/// Python's `repr(str)`.
func pythonStringRepr(_ s: String) -> String {
    let quote: Character = (s.contains("'") && !s.contains("\"")) ? "\"" : "'"
    var out = String(quote)
    for c in s.unicodeScalars {
        switch c {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if Character(c) == quote {
                out += "\\" + String(quote)
            } else if isPythonPrintable(c) {
                out.unicodeScalars.append(c)
            } else if c.value < 0x100 {
                out += "\\x" + hex(c.value, width: 2)
            } else if c.value < 0x10000 {
                out += "\\u" + hex(c.value, width: 4)
            } else {
                out += "\\U" + hex(c.value, width: 8)
            }
        }
    }
    out.append(quote)
    return out
}

private func hex(_ v: UInt32, width: Int) -> String {
    let h = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - h.count)) + h
}

/// Python's `str.isprintable()` for one character.
private func isPythonPrintable(_ c: Unicode.Scalar) -> Bool {
    if c == " " { return true }
    switch c.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
        return false
    default:
        return true
    }
}

// MARK: - JSON output (the `tojson` filter)

extension JSONValue {
    /// Compact JSON text, `json.dumps(value, ensure_ascii=False, separators=(",", ":"))`: object
    /// keys in their order, non-ASCII characters as they are (the `tojson` filter's encoder), but
    /// a non-finite number (a parsed `1e999`) as `null`, so that the text is always valid JSON.
    /// A `JSONValue` holds nothing else JSON cannot represent, so encoding does not fail.
    public var jsonText: String {
        var encoder = PythonJSONEncoder(separators: (",", ":"))
        encoder.nonFiniteAsNull = true
        return (try? encoder.encode(JinjaValue(self))) ?? "null"
    }
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent, separators=separators,
/// sort_keys=sortKeys)`, which transformers installs as the `tojson` filter.
struct PythonJSONEncoder {
    var indent: String?
    var itemSeparator: String
    var keySeparator: String
    var sortKeys: Bool
    /// NaN and ±infinity as `null` (strict JSON) instead of Python's `NaN` / `Infinity`.
    var nonFiniteAsNull = false

    init(indent: String? = nil, separators: (String, String)? = nil, sortKeys: Bool = false) {
        self.indent = indent
        self.itemSeparator = separators?.0 ?? (indent == nil ? ", " : ",")
        self.keySeparator = separators?.1 ?? ": "
        self.sortKeys = sortKeys
    }

    /// Throws a message for values JSON cannot represent.
    func encode(_ value: JinjaValue) throws(JSONEncodeFailure) -> String {
        var out = ""
        try write(value, level: 0, into: &out)
        return out
    }

    struct JSONEncodeFailure: Error { var message: String }

    private func newline(_ level: Int, into out: inout String) {
        guard let indent else { return }
        out += "\n" + String(repeating: indent, count: level)
    }

    private func write(_ value: JinjaValue, level: Int, into out: inout String) throws(JSONEncodeFailure) {
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if !d.isFinite && nonFiniteAsNull { out += "null" } else if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" } else { out += pythonFloatRepr(d) }
        case .string(let s): writeString(s, into: &out)
        case .list(let items), .tuple(let items):
            if items.isEmpty {
                out += "[]"
                return
            }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1, into: &out)
                try write(item, level: level + 1, into: &out)
            }
            newline(level, into: &out)
            out += "]"
        case .dict(let d):
            try writeObject(d.entries, level: level, into: &out)
        case .namespace(let ns):
            throw JSONEncodeFailure(message: "Object of type Namespace is not JSON serializable (\(JinjaValue.namespace(ns).pythonRepr))")
        default:
            throw JSONEncodeFailure(message: "Object of type \(value.typeName) is not JSON serializable")
        }
    }

    private func writeObject(_ entries: [(key: JinjaValue, value: JinjaValue)], level: Int, into out: inout String) throws(JSONEncodeFailure) {
        if entries.isEmpty {
            out += "{}"
            return
        }
        var keyed: [(String, JinjaValue)] = []
        for (key, value) in entries {
            switch key {
            case .string(let s): keyed.append((s, value))
            case .int(let i): keyed.append((String(i), value))
            case .double(let d): keyed.append((pythonFloatRepr(d), value))
            case .bool(let b): keyed.append((b ? "true" : "false", value))
            case .none: keyed.append(("null", value))
            default: throw JSONEncodeFailure(message: "keys must be str, int, float, bool or None, not \(key.typeName)")
            }
        }
        if sortKeys {
            keyed.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) { $0.value < $1.value } }
        }
        out += "{"
        for (i, (key, value)) in keyed.enumerated() {
            if i > 0 { out += itemSeparator }
            newline(level + 1, into: &out)
            writeString(key, into: &out)
            out += keySeparator
            try write(value, level: level + 1, into: &out)
        }
        newline(level, into: &out)
        out += "}"
    }

    private func writeString(_ s: String, into out: inout String) {
        out += "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value < 0x20 { out += "\\u" + hex(c.value, width: 4) } else { out.unicodeScalars.append(c) }
            }
        }
        out += "\""
    }
}
