/// A pull reader over UTF-8 JSON bytes.
///
/// It can build a whole `JSONValue` tree, but its point is the streaming methods
/// (`readObject`, `readArray`, `readStringBytes`) that let the tokenizer loader walk the 151k-entry
/// vocabulary and merges of a `tokenizer.json` without building an intermediate tree: that is
/// what keeps loading well under the 0.3 s budget on Linux, where `JSONSerialization` is slow.
///
/// The reader does not own the bytes: it lives inside a `withUnsafeBufferPointer` call.
struct JSONReader {
    private let bytes: UnsafeBufferPointer<UInt8>
    /// Byte offset of the next unread byte.
    private(set) var position: Int = 0
    /// Names the input in error messages.
    let source: String
    /// Nesting depth, bounded so hostile input cannot overflow the stack.
    private var depth = 0
    private static let maxDepth = 512

    init(_ bytes: UnsafeBufferPointer<UInt8>, source: String) {
        self.bytes = bytes
        self.source = source
    }

    // MARK: Errors

    func error(_ message: String, at offset: Int? = nil) -> TokenizerError {
        .invalidJSON(file: source, offset: offset ?? position, message: message)
    }

    private func describeByte(at offset: Int) -> String {
        guard offset < bytes.count else { return "end of input" }
        let b = bytes[offset]
        if b >= 0x20 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x" + String(b, radix: 16)
    }

    // MARK: Low-level scanning

    @inline(__always)
    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    /// The next significant byte (after whitespace), not consumed; `nil` at end of input.
    @inline(__always)
    mutating func peek() -> UInt8? {
        skipWhitespace()
        return position < bytes.count ? bytes[position] : nil
    }

    @inline(__always)
    mutating func expect(_ byte: UInt8) throws {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == byte else {
            throw error("expected '\(Character(Unicode.Scalar(byte)))', found \(describeByte(at: position))")
        }
        position += 1
    }

    /// Throws unless only whitespace remains.
    mutating func expectEnd() throws {
        skipWhitespace()
        if position != bytes.count { throw error("unexpected \(describeByte(at: position)) after the JSON value") }
    }

    /// The kind of the next value, for error messages: "string", "object", ...
    mutating func peekKind() -> String {
        switch peek() {
        case UInt8(ascii: "\""): return "string"
        case UInt8(ascii: "{"): return "object"
        case UInt8(ascii: "["): return "array"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return "boolean"
        case UInt8(ascii: "n"): return "null"
        case nil: return "end of input"
        default: return "number"
        }
    }

    // MARK: Containers

    /// Reads an object, calling `body` with each key; `body` must consume the member's value.
    mutating func readObject(_ body: (inout JSONReader, String) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        try enter()
        if peek() == UInt8(ascii: "}") {
            position += 1
            depth -= 1
            return
        }
        while true {
            guard peek() == UInt8(ascii: "\"") else { throw error("expected an object key, found \(describeByte(at: position))") }
            let key = try readString()
            try expect(UInt8(ascii: ":"))
            try body(&self, key)
            switch peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"):
                position += 1
                depth -= 1
                return
            default: throw error("expected ',' or '}' in object, found \(describeByte(at: position))")
            }
        }
    }

    /// Reads an object whose keys are appended, unescaped, to `arena`; `body` gets each key's range
    /// in `arena` and must consume the member's value. No `String` is made for the keys.
    mutating func readObject(keysInto arena: inout [UInt8], _ body: (inout JSONReader, Range<Int>) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        try enter()
        if peek() == UInt8(ascii: "}") {
            position += 1
            depth -= 1
            return
        }
        while true {
            guard peek() == UInt8(ascii: "\"") else { throw error("expected an object key, found \(describeByte(at: position))") }
            let start = arena.count
            try readStringBytes(into: &arena)
            let keyRange = start..<arena.count
            try expect(UInt8(ascii: ":"))
            try body(&self, keyRange)
            switch peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"):
                position += 1
                depth -= 1
                return
            default: throw error("expected ',' or '}' in object, found \(describeByte(at: position))")
            }
        }
    }

    /// Reads an array, calling `body` once per element; `body` must consume the element.
    mutating func readArray(_ body: (inout JSONReader) throws -> Void) throws {
        try expect(UInt8(ascii: "["))
        try enter()
        if peek() == UInt8(ascii: "]") {
            position += 1
            depth -= 1
            return
        }
        while true {
            try body(&self)
            switch peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"):
                position += 1
                depth -= 1
                return
            default: throw error("expected ',' or ']' in array, found \(describeByte(at: position))")
            }
        }
    }

    private mutating func enter() throws {
        depth += 1
        if depth > Self.maxDepth { throw error("nesting deeper than \(Self.maxDepth) levels") }
    }

    // MARK: Strings

    /// Appends the unescaped UTF-8 bytes of the next string value to `out`.
    /// The bytes are validated as UTF-8 (escapes included).
    mutating func readStringBytes(into out: inout [UInt8]) throws {
        try expect(UInt8(ascii: "\""))
        let start = position
        var runStart = position
        while position < bytes.count {
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                try appendValidated(from: runStart, to: position, into: &out)
                position += 1
                return
            } else if b == UInt8(ascii: "\\") {
                try appendValidated(from: runStart, to: position, into: &out)
                try readEscape(into: &out)
                runStart = position
            } else if b < 0x20 {
                throw error("unescaped control character 0x\(String(b, radix: 16)) in string")
            } else {
                position += 1
            }
        }
        throw error("unterminated string", at: start - 1)
    }

    /// Reads the next string value.
    mutating func readString() throws -> String {
        try expect(UInt8(ascii: "\""))
        // Fast path: no escapes, so the string is a slice of the input.
        let start = position
        while position < bytes.count {
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<position])
                guard let s = String(validating: slice, as: UTF8.self) else {
                    throw error("invalid UTF-8 in string", at: start + (firstInvalidUTF8(slice) ?? 0))
                }
                position += 1
                return s
            }
            if b == UInt8(ascii: "\\") || b < 0x20 { break }
            position += 1
        }
        position = start - 1
        var buffer: [UInt8] = []
        try readStringBytes(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)  // already validated
    }

    private mutating func appendValidated(from start: Int, to end: Int, into out: inout [UInt8]) throws {
        guard start < end else { return }
        let slice = UnsafeBufferPointer(rebasing: bytes[start..<end])
        // ASCII runs need no validation; anything else goes through the stdlib validator.
        var ascii = true
        for b in slice where b >= 0x80 {
            ascii = false
            break
        }
        if !ascii, let bad = firstInvalidUTF8(slice) {
            throw error("invalid UTF-8 in string", at: start + bad)
        }
        out.append(contentsOf: slice)
    }

    private mutating func readEscape(into out: inout [UInt8]) throws {
        let escapeStart = position
        position += 1  // the backslash
        guard position < bytes.count else { throw error("unterminated escape", at: escapeStart) }
        let c = bytes[position]
        position += 1
        switch c {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try readHex4(escapeStart)
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low surrogate.
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                    bytes[position + 1] == UInt8(ascii: "u")
                else { throw error("unpaired surrogate \\u\(String(scalar, radix: 16))", at: escapeStart) }
                position += 2
                let low = try readHex4(escapeStart)
                guard (0xDC00..<0xE000).contains(low) else {
                    throw error("unpaired surrogate \\u\(String(scalar, radix: 16))", at: escapeStart)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw error("unpaired surrogate \\u\(String(scalar, radix: 16))", at: escapeStart)
            }
            appendUTF8(Unicode.Scalar(scalar)!, to: &out)
        default:
            throw error("invalid escape '\\\(Character(Unicode.Scalar(c)))'", at: escapeStart)
        }
    }

    private mutating func readHex4(_ escapeStart: Int) throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("truncated \\u escape", at: escapeStart) }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[position]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw error("invalid hex digit in \\u escape", at: escapeStart)
            }
            v = v << 4 | UInt32(d)
            position += 1
        }
        return v
    }

    // MARK: Scalars

    /// Reads an integer value (no fraction or exponent).
    mutating func readInt() throws -> Int {
        let start = (skipWhitespace(), position).1
        guard case .int(let i) = try readNumber() else {
            throw error("expected an integer", at: start)
        }
        return i
    }

    mutating func readNumber() throws -> JSONValue {
        skipWhitespace()
        let start = position
        var isInteger = true
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
        let intStart = position
        while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 { position += 1 }
        let intDigits = position - intStart
        if intDigits == 0 { throw error("expected a value, found \(describeByte(at: start))", at: start) }
        if intDigits > 1 && bytes[intStart] == UInt8(ascii: "0") { throw error("leading zero in number", at: start) }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            let fracStart = position
            while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 { position += 1 }
            if position == fracStart { throw error("expected digits after '.'", at: start) }
        }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            let expStart = position
            while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 { position += 1 }
            if position == expStart { throw error("expected digits in exponent", at: start) }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        if isInteger, let i = Int(text) { return .int(i) }
        guard let d = Double(text) else { throw error("invalid number '\(text)'", at: start) }
        return .double(d)
    }

    private mutating func readLiteral(_ word: StaticString, _ value: JSONValue) throws -> JSONValue {
        let start = position
        let n = word.utf8CodeUnitCount
        guard position + n <= bytes.count else { throw error("unexpected end of input", at: start) }
        let matches = word.withUTF8Buffer { w in
            (0..<n).allSatisfy { bytes[start + $0] == w[$0] }
        }
        guard matches else { throw error("unexpected \(describeByte(at: start))", at: start) }
        position += n
        return value
    }

    // MARK: Whole values

    /// Reads the next value into a tree.
    mutating func parseValue() throws -> JSONValue {
        switch peek() {
        case UInt8(ascii: "{"):
            var object = JSONObject()
            try readObject { reader, key in object[key] = try reader.parseValue() }
            return .object(object)
        case UInt8(ascii: "["):
            var array: [JSONValue] = []
            try readArray { reader in array.append(try reader.parseValue()) }
            return .array(array)
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "t"): return try readLiteral("true", .bool(true))
        case UInt8(ascii: "f"): return try readLiteral("false", .bool(false))
        case UInt8(ascii: "n"): return try readLiteral("null", .null)
        case nil: throw error("unexpected end of input")
        default: return try readNumber()
        }
    }

    /// Skips the next value without building it.
    mutating func skipValue() throws {
        switch peek() {
        case UInt8(ascii: "{"): try readObject { reader, _ in try reader.skipValue() }
        case UInt8(ascii: "["): try readArray { reader in try reader.skipValue() }
        case UInt8(ascii: "\""):
            var sink: [UInt8] = []
            try readStringBytes(into: &sink)
        default: _ = try parseValue()
        }
    }
}

/// The offset of the first byte that is not part of valid UTF-8, or `nil` if all is valid.
func firstInvalidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
    var i = 0
    let n = bytes.count
    while i < n {
        let b = bytes[i]
        if b < 0x80 {
            i += 1
            continue
        }
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch b {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: return i
        }
        guard i + 1 < n, bytes[i + 1] >= low, bytes[i + 1] <= high else { return i }
        for k in 2..<length {
            guard i + k < n, bytes[i + k] & 0xC0 == 0x80 else { return i }
        }
        i += length
    }
    return nil
}

/// Appends the UTF-8 encoding of `scalar`.
@inline(__always)
func appendUTF8(_ scalar: Unicode.Scalar, to out: inout [UInt8]) {
    let v = scalar.value
    if v < 0x80 {
        out.append(UInt8(v))
    } else if v < 0x800 {
        out.append(UInt8(0xC0 | (v >> 6)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else if v < 0x10000 {
        out.append(UInt8(0xE0 | (v >> 12)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else {
        out.append(UInt8(0xF0 | (v >> 18)))
        out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    }
}
