import Tokenizer

/// JSON syntax (RFC 8259) read one UTF-8 byte at a time, with a top-level object, as OpenAI's
/// `response_format: {"type": "json_object"}` asks: `accept(_:)` says whether a byte can continue
/// what was read so far into some valid document, and `isComplete` when the object has closed.
/// A plain value (no allocation), so that a decode step can try every token's bytes from it.
///
/// Stricter than the grammar in bounded ways, so that a constrained generation cannot run on
/// without end or idle before it starts: at most `maxDepth` nested containers, at most
/// `maxWhitespace` whitespace bytes in a row, and none before the object's `{`.
struct JSONSyntax: Equatable, Sendable {
    static let maxDepth = 64
    static let maxWhitespace = 24

    enum Mode: UInt8, Sendable {
        /// A value must begin (the top level: an object).
        case value
        /// After `[`: a value or `]`.
        case firstElementOrEnd
        /// After `{`: a key or `}`.
        case firstKeyOrEnd
        /// After `,` in an object: a key.
        case key
        /// After a key: `:`.
        case colon
        /// After a value: `,` or the container's end.
        case afterValue
        case string, stringEscape, stringUnicode
        /// Continuation bytes of a multi-byte UTF-8 character in a string.
        case stringUTF8
        /// `-`, a leading `0`, integer digits, `.`, fraction digits, `e`, the exponent's sign, its digits.
        case minus, zero, integer, dot, fraction, exponentMark, exponentSign, exponent
        /// Inside `true`, `false` or `null`.
        case literal
        /// The top-level object has closed: whitespace only.
        case complete
    }

    private(set) var mode = Mode.value
    /// Bit i: the container at depth i is an object (else an array).
    private var objects: UInt64 = 0
    private var depth: UInt8 = 0
    /// Whether the string being read is an object's key.
    private var inKey = false
    /// Hex digits of a `\u` escape still to come; continuation bytes still to come.
    private var remaining: UInt8 = 0
    /// The range the next UTF-8 continuation byte must be in (narrower after E0, ED, F0, F4).
    private var low: UInt8 = 0x80, high: UInt8 = 0xBF
    /// Which literal, and how far into it.
    private var literal: UInt8 = 0, literalIndex: UInt8 = 0
    private var whitespace: UInt8 = 0

    private static let literals: [[UInt8]] = [Array("true".utf8), Array("false".utf8), Array("null".utf8)]

    var isComplete: Bool { mode == .complete }

    /// Inside a string, between characters (no escape or multi-byte character begun).
    var isBetweenStringCharacters: Bool { mode == .string }

    /// Reads `bytes`; false (and self unspecified) at the first one that cannot continue.
    mutating func accept<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        for b in bytes where !accept(b) { return false }
        return true
    }

    mutating func accept(_ b: UInt8) -> Bool {
        switch mode {
        case .string: return string(b)
        case .stringEscape:
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                 UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                mode = .string
            case UInt8(ascii: "u"):
                mode = .stringUnicode
                remaining = 4
            default: return false
            }
            return true
        case .stringUnicode:
            guard JSONSyntax.isHex(b) else { return false }
            remaining -= 1
            if remaining == 0 { mode = .string }
            return true
        case .stringUTF8:
            guard b >= low && b <= high else { return false }
            (low, high) = (0x80, 0xBF)
            remaining -= 1
            if remaining == 0 { mode = .string }
            return true
        case .literal:
            let word = JSONSyntax.literals[Int(literal)]
            guard b == word[Int(literalIndex)] else { return false }
            literalIndex += 1
            if Int(literalIndex) == word.count { endValue() }
            return true
        case .minus:
            guard JSONSyntax.isDigit(b) else { return false }
            mode = b == UInt8(ascii: "0") ? .zero : .integer
            return true
        case .zero, .integer:
            if mode == .integer && JSONSyntax.isDigit(b) { return true }
            if b == UInt8(ascii: ".") { mode = .dot; return true }
            if b == UInt8(ascii: "e") || b == UInt8(ascii: "E") { mode = .exponentMark; return true }
            return endNumber(b)
        case .dot:
            guard JSONSyntax.isDigit(b) else { return false }
            mode = .fraction
            return true
        case .fraction:
            if JSONSyntax.isDigit(b) { return true }
            if b == UInt8(ascii: "e") || b == UInt8(ascii: "E") { mode = .exponentMark; return true }
            return endNumber(b)
        case .exponentMark:
            if b == UInt8(ascii: "+") || b == UInt8(ascii: "-") { mode = .exponentSign; return true }
            guard JSONSyntax.isDigit(b) else { return false }
            mode = .exponent
            return true
        case .exponentSign:
            guard JSONSyntax.isDigit(b) else { return false }
            mode = .exponent
            return true
        case .exponent:
            if JSONSyntax.isDigit(b) { return true }
            return endNumber(b)
        default:
            break
        }
        // Between tokens: whitespace, bounded (none before the top-level object).
        if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D {
            if mode == .value && depth == 0 { return false }
            whitespace += 1
            return Int(whitespace) <= JSONSyntax.maxWhitespace
        }
        whitespace = 0
        switch mode {
        case .value: return beginValue(b)
        case .firstElementOrEnd:
            if b == UInt8(ascii: "]") { return close() }
            return beginValue(b)
        case .firstKeyOrEnd:
            if b == UInt8(ascii: "}") { return close() }
            return beginKey(b)
        case .key: return beginKey(b)
        case .colon:
            guard b == UInt8(ascii: ":") else { return false }
            mode = .value
            return true
        case .afterValue:
            let inObject = objects >> (depth - 1) & 1 == 1
            switch b {
            case UInt8(ascii: ","): mode = inObject ? .key : .value
            case UInt8(ascii: "}") where inObject: return close()
            case UInt8(ascii: "]") where !inObject: return close()
            default: return false
            }
            return true
        default:   // .complete: whitespace only
            return false
        }
    }

    private mutating func beginValue(_ b: UInt8) -> Bool {
        // The top level is an object.
        if depth == 0 && b != UInt8(ascii: "{") { return false }
        switch b {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            guard Int(depth) < JSONSyntax.maxDepth else { return false }
            let object = b == UInt8(ascii: "{")
            if object { objects |= 1 << depth } else { objects &= ~(1 << depth) }
            depth += 1
            mode = object ? .firstKeyOrEnd : .firstElementOrEnd
        case UInt8(ascii: "\""):
            inKey = false
            mode = .string
        case UInt8(ascii: "-"): mode = .minus
        case UInt8(ascii: "0"): mode = .zero
        case UInt8(ascii: "1")...UInt8(ascii: "9"): mode = .integer
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            literal = b == UInt8(ascii: "t") ? 0 : b == UInt8(ascii: "f") ? 1 : 2
            literalIndex = 1
            mode = .literal
        default: return false
        }
        return true
    }

    private mutating func beginKey(_ b: UInt8) -> Bool {
        guard b == UInt8(ascii: "\"") else { return false }
        inKey = true
        mode = .string
        return true
    }

    /// A byte of a string's content, or its closing quote.
    private mutating func string(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "\""):
            if inKey { mode = .colon } else { endValue() }
        case UInt8(ascii: "\\"): mode = .stringEscape
        case 0x00..<0x20: return false
        case 0x20..<0x80: break
        case 0xC2...0xDF: utf8(1, 0x80, 0xBF)
        case 0xE0: utf8(2, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE, 0xEF: utf8(2, 0x80, 0xBF)
        case 0xED: utf8(2, 0x80, 0x9F)
        case 0xF0: utf8(3, 0x90, 0xBF)
        case 0xF1...0xF3: utf8(3, 0x80, 0xBF)
        case 0xF4: utf8(3, 0x80, 0x8F)
        default: return false   // a continuation byte without its lead, C0, C1, F5–FF
        }
        return true
    }

    private mutating func utf8(_ continuations: UInt8, _ first: UInt8, _ last: UInt8) {
        mode = .stringUTF8
        remaining = continuations
        (low, high) = (first, last)
    }

    private mutating func endValue() {
        mode = depth == 0 ? .complete : .afterValue
    }

    /// A number ends at `b`, which must then follow a value.
    private mutating func endNumber(_ b: UInt8) -> Bool {
        endValue()
        return accept(b)
    }

    private mutating func close() -> Bool {
        depth -= 1
        endValue()
        return true
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
    private static func isHex(_ b: UInt8) -> Bool {
        isDigit(b) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "F"))
    }
}

/// Every token's bytes in byte order, for finding the tokens that can continue a `JSONSyntax`
/// state: tokens sharing a prefix with the one before them start from the state that prefix left,
/// so a step reads about as many bytes as the vocabulary's prefix tree has nodes, not all of them.
final class TokenBytesIndex: Sendable {
    /// Ids of the ordinary (not special) tokens, sorted by their bytes.
    let order: [Int32]
    let bytes: [[UInt8]]
    /// For order[i]: the bytes it shares with order[i - 1] (0 for the first).
    let sharedPrefix: [Int32]
    /// Tokens that continue any string between its characters and leave it so: whole UTF-8
    /// characters, no quote, backslash or control byte. Most of a vocabulary; inside a string,
    /// `masked` passes them without reading their bytes.
    let stringSafe: [Bool]
    let vocabularySize: Int

    init(tokenizer: Tokenizer, vocabularySize: Int) {
        var bytes = [[UInt8]](repeating: [], count: vocabularySize)
        var ids: [Int32] = []
        for id in 0..<vocabularySize where tokenizer.contains(id) && !tokenizer.isSpecial(id) {
            guard let b = tokenizer.tokenBytes(id), !b.isEmpty else { continue }
            bytes[id] = b
            ids.append(Int32(id))
        }
        ids.sort { bytes[Int($0)].lexicographicallyPrecedes(bytes[Int($1)]) }
        var shared = [Int32](repeating: 0, count: ids.count)
        for i in ids.indices.dropFirst() {
            let a = bytes[Int(ids[i - 1])], b = bytes[Int(ids[i])]
            var n = 0
            while n < a.count && n < b.count && a[n] == b[n] { n += 1 }
            shared[i] = Int32(n)
        }
        var inString = JSONSyntax()
        _ = inString.accept(Array("{\"".utf8))
        stringSafe = bytes.map { b in
            var s = inString
            return !b.isEmpty && !b.contains(UInt8(ascii: "\"")) && !b.contains(UInt8(ascii: "\\"))
                && s.accept(b) && s.isBetweenStringCharacters
        }
        self.bytes = bytes
        order = ids
        sharedPrefix = shared
        self.vocabularySize = vocabularySize
    }

    /// Whether token `id`'s bytes can follow `state`.
    func allows(_ id: Int, after state: JSONSyntax) -> Bool {
        guard id >= 0, id < bytes.count, !bytes[id].isEmpty else { return false }
        var s = state
        return s.accept(bytes[id])
    }

    /// `logits` with every token that cannot follow `state` set to −∞ (special tokens too).
    func masked(_ logits: [Float], after state: JSONSyntax) -> [Float] {
        var out = [Float](repeating: -.infinity, count: logits.count)
        if state.isBetweenStringCharacters {
            for token in order {
                let id = Int(token)
                guard id < logits.count else { continue }
                if stringSafe[id] || allows(id, after: state) { out[id] = logits[id] }
            }
            return out
        }
        var states = [JSONSyntax](repeating: state, count: 64)
        // Bytes of the previous token that were accepted (their states are in `states`).
        var accepted = 0
        for (i, token) in order.enumerated() {
            let id = Int(token), b = bytes[id], shared = Int(sharedPrefix[i])
            // The shared prefix went past a rejected byte: this token is rejected too.
            guard shared <= accepted else { continue }
            if b.count >= states.count { states += [JSONSyntax](repeating: state, count: b.count + 1 - states.count) }
            var s = states[shared], ok = true, n = shared
            while n < b.count {
                guard s.accept(b[n]) else { ok = false; break }
                n += 1
                states[n] = s
            }
            accepted = n
            if ok && id < logits.count { out[id] = logits[id] }
        }
        return out
    }
}
