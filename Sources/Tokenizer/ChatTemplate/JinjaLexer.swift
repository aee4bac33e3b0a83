/// Cuts a Jinja template into tokens with the whitespace rules transformers uses for chat
/// templates: `trim_blocks` and `lstrip_blocks` on, `keep_trailing_newline` off, `-` / `+`
/// whitespace control on tags, newlines normalized to `\n`.
struct JinjaToken: Equatable {
    enum Kind: Equatable {
        case data(String)
        case blockBegin, blockEnd
        case variableBegin, variableEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case op(String)
        case end
    }
    var kind: Kind
    var line: Int
}

struct JinjaLexer {
    private let s: [Unicode.Scalar]
    private var pos = 0
    private var line = 1
    private var tokens: [JinjaToken] = []
    /// Whether the previous tag's end consumed a newline (or we are at the start): then
    /// `lstrip_blocks` may strip the indentation before the next block tag.
    private var lineStarting = true

    static func tokenize(_ source: String) throws -> [JinjaToken] {
        var lexer = JinjaLexer(source: source)
        try lexer.run()
        return lexer.tokens
    }

    private init(source: String) {
        // Newlines: \r\n and \r become \n; one trailing newline is dropped.
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(source.unicodeScalars.count)
        var previousCR = false
        for c in source.unicodeScalars {
            if c == "\r" {
                scalars.append("\n")
                previousCR = true
                continue
            }
            if c == "\n" && previousCR {
                previousCR = false
                continue
            }
            previousCR = false
            scalars.append(c)
        }
        if scalars.last == "\n" { scalars.removeLast() }
        s = scalars
    }

    // MARK: Helpers

    private func at(_ i: Int) -> Unicode.Scalar? { i < s.count ? s[i] : nil }

    private func starts(with literal: String, at i: Int) -> Bool {
        var j = i
        for c in literal.unicodeScalars {
            guard j < s.count, s[j] == c else { return false }
            j += 1
        }
        return true
    }

    private func text(_ range: Range<Int>) -> String {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: s[range])
        return String(out)
    }

    private func countNewlines(_ range: Range<Int>) -> Int { s[range].reduce(0) { $0 + ($1 == "\n" ? 1 : 0) } }

    private func syntaxError(_ message: String) -> ChatTemplateError { .syntax(message: message, line: line) }

    // MARK: Top level

    private enum TagKind { case block, variable, comment }

    private mutating func run() throws {
        while pos < s.count {
            // The earliest tag opener.
            var open = pos
            var kind: TagKind?
            while open + 1 < s.count {
                if s[open] == "{" {
                    switch s[open + 1] {
                    case "%": kind = .block
                    case "{": kind = .variable
                    case "#": kind = .comment
                    default: break
                    }
                    if kind != nil { break }
                }
                open += 1
            }
            guard let kind else {
                emitData(pos..<s.count)
                pos = s.count
                break
            }
            let sign = at(open + 2)
            var dataEnd = open
            if sign == "-" {
                while dataEnd > pos && isPythonWhitespace(s[dataEnd - 1]) { dataEnd -= 1 }
            } else if sign != "+" && kind != .variable {
                // lstrip_blocks: drop spaces between the line start and a block or comment tag.
                var lineStart = open
                while lineStart > pos && s[lineStart - 1] != "\n" { lineStart -= 1 }
                if (lineStart > pos || (lineStart == pos && lineStarting)) && lineStart < open
                    && s[lineStart..<open].allSatisfy(isPythonWhitespace)
                {
                    dataEnd = lineStart
                }
            }
            emitData(pos..<dataEnd)
            line += countNewlines(dataEnd..<open)
            pos = open + 2 + ((sign == "-" || sign == "+") ? 1 : 0)
            switch kind {
            case .comment: try lexComment()
            case .variable: try lexTag(block: false)
            case .block:
                if try lexRawBlock() { continue }
                try lexTag(block: true)
            }
        }
        tokens.append(JinjaToken(kind: .end, line: line))
    }

    private mutating func emitData(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        tokens.append(JinjaToken(kind: .data(text(range)), line: line))
        line += countNewlines(range)
    }

    /// After a `%}`, `#}` or `}}` at `i` (start of the 2-character closer), with the closer's
    /// whitespace-control sign at `i - 1`: consumes the closer and what it trims.
    private mutating func consumeCloser(at i: Int, trimNewline: Bool) {
        let sign = i > 0 ? s[i - 1] : " "
        var end = i + 2
        if sign == "-" {
            while end < s.count && isPythonWhitespace(s[end]) { end += 1 }
        } else if sign != "+" && trimNewline && at(end) == "\n" {
            end += 1
        }
        line += countNewlines(pos..<end)
        lineStarting = end > 0 && s[end - 1] == "\n"
        pos = end
    }

    private mutating func lexComment() throws {
        var i = pos
        while i + 1 < s.count && !(s[i] == "#" && s[i + 1] == "}") { i += 1 }
        guard i + 1 < s.count else { throw syntaxError("missing end of comment tag") }
        consumeCloser(at: i, trimNewline: true)
    }

    /// `{% raw %}…{% endraw %}`: the content is data. Returns false if this block is not `raw`.
    private mutating func lexRawBlock() throws -> Bool {
        var i = pos
        while i < s.count && isPythonWhitespace(s[i]) { i += 1 }
        guard starts(with: "raw", at: i), let after = at(i + 3), isPythonWhitespace(after) || after == "-" || after == "%" else {
            return false
        }
        i += 3
        while i < s.count && isPythonWhitespace(s[i]) { i += 1 }
        if at(i) == "-" && starts(with: "%}", at: i + 1) {
            i += 3
            while i < s.count && isPythonWhitespace(s[i]) { i += 1 }
        } else if starts(with: "%}", at: i) {
            i += 2
        } else {
            throw syntaxError("expected '%}' after 'raw'")
        }
        line += countNewlines(pos..<i)
        lineStarting = i > 0 && s[i - 1] == "\n"
        // Find {%[-+]? endraw [-+]?%}
        var j = i
        while j + 1 < s.count {
            if s[j] == "{" && s[j + 1] == "%" {
                var k = j + 2
                let sign = at(k)
                if sign == "-" || sign == "+" { k += 1 }
                while k < s.count && isPythonWhitespace(s[k]) { k += 1 }
                if starts(with: "endraw", at: k) {
                    k += 6
                    while k < s.count && isPythonWhitespace(s[k]) { k += 1 }
                    let closer = (at(k) == "-" || at(k) == "+") ? k + 1 : k
                    if starts(with: "%}", at: closer) {
                        var dataEnd = j
                        if sign == "-" {
                            while dataEnd > i && isPythonWhitespace(s[dataEnd - 1]) { dataEnd -= 1 }
                        } else if sign != "+" {
                            var lineStart = j
                            while lineStart > i && s[lineStart - 1] != "\n" { lineStart -= 1 }
                            if (lineStart > i || lineStarting) && lineStart < j
                                && s[lineStart..<j].allSatisfy(isPythonWhitespace)
                            {
                                dataEnd = lineStart
                            }
                        }
                        if dataEnd > i { tokens.append(JinjaToken(kind: .data(text(i..<dataEnd)), line: line)) }
                        line += countNewlines(i..<closer)
                        pos = closer
                        consumeCloser(at: closer, trimNewline: true)
                        return true
                    }
                }
            }
            j += 1
        }
        throw syntaxError("missing end of raw directive")
    }

    // MARK: Tags

    private mutating func lexTag(block: Bool) throws {
        tokens.append(JinjaToken(kind: block ? .blockBegin : .variableBegin, line: line))
        var balance: [Unicode.Scalar] = []
        while true {
            guard pos < s.count else {
                throw syntaxError(block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'")
            }
            let c = s[pos]
            // The closer, only when brackets are balanced.
            if balance.isEmpty {
                let closer: Unicode.Scalar = block ? "%" : "}"
                if (c == "-" || c == "+") && at(pos + 1) == closer && at(pos + 2) == "}" {
                    tokens.append(JinjaToken(kind: block ? .blockEnd : .variableEnd, line: line))
                    pos += 1
                    consumeCloser(at: pos, trimNewline: block)
                    return
                }
                if c == closer && at(pos + 1) == "}" {
                    tokens.append(JinjaToken(kind: block ? .blockEnd : .variableEnd, line: line))
                    consumeCloser(at: pos, trimNewline: block)
                    return
                }
            }
            if isPythonWhitespace(c) {
                if c == "\n" { line += 1 }
                pos += 1
                continue
            }
            if c.properties.numericType == .decimal && c.isASCII {
                try lexNumber()
                continue
            }
            if c == "_" || c.properties.isXIDStart {
                var j = pos + 1
                while j < s.count && (s[j] == "_" || s[j].properties.isXIDContinue) { j += 1 }
                tokens.append(JinjaToken(kind: .name(text(pos..<j)), line: line))
                pos = j
                continue
            }
            if c == "'" || c == "\"" {
                try lexString(quote: c)
                continue
            }
            // Operators, longest first.
            let two = pos + 1 < s.count ? String(String.UnicodeScalarView([c, s[pos + 1]])) : ""
            if ["//", "**", "==", "!=", ">=", "<="].contains(two) {
                tokens.append(JinjaToken(kind: .op(two), line: line))
                pos += 2
                continue
            }
            let single = String(Character(c))
            guard "+-/*%~[](){}><=.:|,;".unicodeScalars.contains(c) else {
                throw syntaxError("unexpected character '\(single)'")
            }
            switch c {
            case "(": balance.append(")")
            case "[": balance.append("]")
            case "{": balance.append("}")
            case ")", "]", "}":
                guard let expected = balance.popLast() else { throw syntaxError("unexpected '\(single)'") }
                guard expected == c else { throw syntaxError("unexpected '\(single)', expected '\(expected)'") }
            default: break
            }
            tokens.append(JinjaToken(kind: .op(single), line: line))
            pos += 1
        }
    }

    private mutating func lexNumber() throws {
        let start = pos
        func digits(_ i: inout Int, _ isDigit: (Unicode.Scalar) -> Bool) {
            while i < s.count && (isDigit(s[i]) || (s[i] == "_" && i + 1 < s.count && isDigit(s[i + 1]))) { i += 1 }
        }
        let isDec: (Unicode.Scalar) -> Bool = { $0.value >= 0x30 && $0.value <= 0x39 }
        var i = pos
        // 0x / 0o / 0b integers
        if s[i] == "0", let p = at(i + 1), "xXoObB".unicodeScalars.contains(p) {
            let radix = (p == "x" || p == "X") ? 16 : (p == "o" || p == "O") ? 8 : 2
            i += 2
            let digitStart = i
            while i < s.count && (s[i] == "_" || s[i].properties.numericType != nil || "abcdefABCDEF".unicodeScalars.contains(s[i])) {
                i += 1
            }
            let body = text(digitStart..<i).replacingOccurrences(of: "_", with: "")
            guard let v = Int(body, radix: radix) else { throw syntaxError("invalid integer literal") }
            tokens.append(JinjaToken(kind: .integer(v), line: line))
            pos = i
            return
        }
        digits(&i, isDec)
        var isFloat = false
        // A float needs no '.' right before it (Jinja's look-behind).
        let afterDot = start > 0 && s[start - 1] == "."
        if !afterDot {
            if at(i) == ".", let d = at(i + 1), isDec(d) {
                isFloat = true
                i += 1
                digits(&i, isDec)
            }
            if let e = at(i), e == "e" || e == "E" {
                var j = i + 1
                if at(j) == "+" || at(j) == "-" { j += 1 }
                if let d = at(j), isDec(d) {
                    isFloat = true
                    i = j
                    digits(&i, isDec)
                }
            }
        }
        let literal = text(start..<i).replacingOccurrences(of: "_", with: "")
        if isFloat {
            guard let v = Double(literal) else { throw syntaxError("invalid float literal '\(literal)'") }
            tokens.append(JinjaToken(kind: .float(v), line: line))
        } else {
            guard let v = Int(literal) else { throw syntaxError("integer literal '\(literal)' is too large") }
            tokens.append(JinjaToken(kind: .integer(v), line: line))
        }
        pos = i
    }

    /// A quoted string with Python `unicode-escape` escapes.
    private mutating func lexString(quote: Unicode.Scalar) throws {
        let startLine = line
        var i = pos + 1
        var out = String.UnicodeScalarView()
        while true {
            guard i < s.count else { throw ChatTemplateError.syntax(message: "unterminated string", line: startLine) }
            let c = s[i]
            if c == quote { break }
            if c == "\n" { line += 1 }
            if c != "\\" {
                out.append(c)
                i += 1
                continue
            }
            guard let e = at(i + 1) else { throw ChatTemplateError.syntax(message: "unterminated string", line: startLine) }
            i += 2
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "v": out.append("\u{0B}")
            case "\n":
                line += 1  // line continuation
            case "x", "u", "U":
                let n = e == "x" ? 2 : e == "u" ? 4 : 8
                guard i + n <= s.count, let v = UInt32(text(i..<(i + n)), radix: 16), let scalar = Unicode.Scalar(v) else {
                    throw ChatTemplateError.syntax(message: "invalid \\\(e) escape in string", line: startLine)
                }
                out.append(scalar)
                i += n
            case "0"..."7":
                var v = e.value - 0x30
                var k = 0
                while k < 2, let d = at(i), d.value >= 0x30 && d.value <= 0x37 {
                    v = v * 8 + d.value - 0x30
                    i += 1
                    k += 1
                }
                out.append(Unicode.Scalar(v)!)
            case "N":
                throw ChatTemplateError.unsupported(construct: "string escape \\N{...}", line: startLine)
            default:
                // Python keeps unknown escapes as they are.
                out.append("\\")
                out.append(e)
                if e == "\n" { line += 1 }
            }
        }
        tokens.append(JinjaToken(kind: .string(String(out)), line: startLine))
        pos = i + 1
    }
}

/// Python's `str.isspace()`: what `\s`, `strip()` and `split()` treat as whitespace.
func isPythonWhitespace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}
