/// Recursive-descent parser for the Jinja subset used by chat templates, following the grammar
/// and operator precedence of Jinja2's own parser.
struct JinjaParser {
    private let tokens: [JinjaToken]
    private var index = 0
    private var loopDepth = 0
    /// Expression and block nesting, bounded so that hostile templates cannot exhaust the stack.
    private var nesting = 0
    private static let maxNesting = 200

    static func parse(_ source: String) throws -> [JinjaNode] {
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
        let (nodes, endTag) = try parser.parseBody(until: [])
        if let endTag { throw ChatTemplateError.syntax(message: "unexpected '\(endTag)'", line: parser.current.line) }
        return nodes
    }

    private init(tokens: [JinjaToken]) { self.tokens = tokens }

    // MARK: Token helpers

    private var current: JinjaToken { tokens[index] }
    private var peekNext: JinjaToken { tokens[min(index + 1, tokens.count - 1)] }

    private mutating func advance() -> JinjaToken {
        let t = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return t
    }

    private func isOp(_ op: String) -> Bool { current.kind == .op(op) }
    private func isName(_ name: String) -> Bool { current.kind == .name(name) }

    private mutating func skipOp(_ op: String) -> Bool {
        if isOp(op) {
            _ = advance()
            return true
        }
        return false
    }

    private mutating func skipName(_ name: String) -> Bool {
        if isName(name) {
            _ = advance()
            return true
        }
        return false
    }

    private func describe(_ kind: JinjaToken.Kind) -> String {
        switch kind {
        case .data: return "template data"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .name(let n): return "'\(n)'"
        case .string: return "a string"
        case .integer(let i): return "'\(i)'"
        case .float(let f): return "'\(f)'"
        case .op(let o): return "'\(o)'"
        case .end: return "end of template"
        }
    }

    private func error(_ message: String) -> ChatTemplateError { .syntax(message: message, line: current.line) }

    private mutating func expectOp(_ op: String) throws {
        guard skipOp(op) else { throw error("expected '\(op)', found \(describe(current.kind))") }
    }

    private mutating func expectBlockEnd() throws {
        guard current.kind == .blockEnd else { throw error("expected '%}', found \(describe(current.kind))") }
        _ = advance()
    }

    private mutating func expectName() throws -> String {
        guard case .name(let n) = current.kind else { throw error("expected a name, found \(describe(current.kind))") }
        _ = advance()
        return n
    }

    // MARK: Statements

    /// Parses nodes until a block tag named in `endTags` (returned, with the tag name consumed)
    /// or the end of the template (returns `nil`).
    private mutating func parseBody(until endTags: Set<String>) throws -> ([JinjaNode], String?) {
        var nodes: [JinjaNode] = []
        while true {
            let token = current
            switch token.kind {
            case .end:
                if !endTags.isEmpty {
                    throw error("unexpected end of template, expected one of: \(endTags.sorted().joined(separator: ", "))")
                }
                return (nodes, nil)
            case .data(let text):
                _ = advance()
                nodes.append(.text(text))
            case .variableBegin:
                _ = advance()
                let expr = try parseTuple()
                guard current.kind == .variableEnd else { throw error("expected '}}', found \(describe(current.kind))") }
                _ = advance()
                nodes.append(.output(expr, line: token.line))
            case .blockBegin:
                _ = advance()
                guard case .name(let tag) = current.kind else { throw error("expected a tag name, found \(describe(current.kind))") }
                if endTags.contains(tag) {
                    _ = advance()
                    return (nodes, tag)
                }
                nodes.append(try parseStatement(tag))
            default:
                throw error("unexpected \(describe(token.kind))")
            }
        }
    }

    private mutating func parseStatement(_ tag: String) throws -> JinjaNode {
        let line = current.line
        nesting += 1
        defer { nesting -= 1 }
        if nesting > Self.maxNesting { throw error("blocks nested deeper than \(Self.maxNesting) levels") }
        _ = advance()  // the tag name
        switch tag {
        case "if":
            return try parseIf(line: line)
        case "for":
            return try parseFor(line: line)
        case "set":
            return try parseSet(line: line)
        case "macro":
            return try parseMacro(line: line)
        case "filter":
            var filters: [JinjaFilterCall] = []
            repeat { filters.append(try parseFilterCall()) } while skipOp("|")
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endfilter"])
            try expectBlockEnd()
            return .filterBlock(filters: filters, body: body, line: line)
        case "generation":
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endgeneration"])
            try expectBlockEnd()
            return .generation(body: body)
        case "break", "continue":
            guard loopDepth > 0 else { throw ChatTemplateError.syntax(message: "'\(tag)' outside of a loop", line: line) }
            try expectBlockEnd()
            return tag == "break" ? .breakLoop(line: line) : .continueLoop(line: line)
        case "include", "extends", "block", "import", "from", "with", "call", "autoescape", "do", "trans":
            throw ChatTemplateError.unsupported(construct: "tag '\(tag)'", line: line)
        default:
            throw ChatTemplateError.syntax(message: "unknown tag '\(tag)'", line: line)
        }
    }

    private mutating func parseIf(line: Int) throws -> JinjaNode {
        var branches: [(condition: JinjaExpr, body: [JinjaNode])] = []
        var condition = try parseTuple(withCondexpr: false)
        while true {
            try expectBlockEnd()
            let (body, end) = try parseBody(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            switch end {
            case "elif":
                condition = try parseTuple(withCondexpr: false)
            case "else":
                try expectBlockEnd()
                let (otherwise, _) = try parseBody(until: ["endif"])
                try expectBlockEnd()
                return .ifChain(branches: branches, otherwise: otherwise, line: line)
            default:
                try expectBlockEnd()
                return .ifChain(branches: branches, otherwise: [], line: line)
            }
        }
    }

    private mutating func parseFor(line: Int) throws -> JinjaNode {
        let target = try parseAssignTarget(allowAttribute: false)
        guard skipName("in") else { throw error("expected 'in' in for loop, found \(describe(current.kind))") }
        let iterable = try parseTuple(withCondexpr: false, extraEnd: ["recursive", "if"])
        if isName("recursive") { throw ChatTemplateError.unsupported(construct: "recursive for loop", line: line) }
        var condition: JinjaExpr?
        if skipName("if") { condition = try parseExpression() }
        try expectBlockEnd()
        loopDepth += 1
        let (body, end) = try parseBody(until: ["endfor", "else"])
        loopDepth -= 1
        var otherwise: [JinjaNode] = []
        if end == "else" {
            try expectBlockEnd()
            (otherwise, _) = try parseBody(until: ["endfor"])
        }
        try expectBlockEnd()
        return .forLoop(JinjaForLoop(
            target: target, iterable: iterable, condition: condition, body: body, otherwise: otherwise, line: line))
    }

    private mutating func parseSet(line: Int) throws -> JinjaNode {
        let target = try parseAssignTarget(allowAttribute: true)
        if skipOp("=") {
            let value = try parseTuple()
            try expectBlockEnd()
            return .set(target: target, value: value, line: line)
        }
        var filters: [JinjaFilterCall] = []
        while skipOp("|") { filters.append(try parseFilterCall()) }
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endset"])
        try expectBlockEnd()
        return .setBlock(target: target, body: body, filters: filters, line: line)
    }

    private mutating func parseMacro(line: Int) throws -> JinjaNode {
        let name = try expectName()
        try expectOp("(")
        var parameters: [(name: String, defaultValue: JinjaExpr?)] = []
        while !isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let parameter = try expectName()
            var defaultValue: JinjaExpr?
            if skipOp("=") { defaultValue = try parseExpression() }
            parameters.append((parameter, defaultValue))
        }
        try expectOp(")")
        try expectBlockEnd()
        let savedDepth = loopDepth
        loopDepth = 0
        let (body, _) = try parseBody(until: ["endmacro"])
        loopDepth = savedDepth
        if case .name = current.kind { _ = advance() }  // {% endmacro name %}
        try expectBlockEnd()
        return .macro(JinjaMacroDefinition(name: name, parameters: parameters, body: body, line: line))
    }

    /// `name`, `a, b` or (for `set`) `ns.attribute`.
    private mutating func parseAssignTarget(allowAttribute: Bool) throws -> JinjaTarget {
        func single(_ parser: inout JinjaParser) throws -> JinjaTarget {
            if parser.skipOp("(") {
                let inner = try parser.parseAssignTarget(allowAttribute: false)
                try parser.expectOp(")")
                return inner
            }
            let name = try parser.expectName()
            if allowAttribute && parser.skipOp(".") {
                return .attribute(object: name, name: try parser.expectName())
            }
            return .name(name)
        }
        let first = try single(&self)
        guard isOp(",") else { return first }
        var items = [first]
        while skipOp(",") {
            if case .name = current.kind { items.append(try single(&self)) } else { break }
        }
        return .tuple(items)
    }

    // MARK: Expressions

    /// A comma-separated list becomes a tuple; a single expression stays itself.
    private mutating func parseTuple(withCondexpr: Bool = true, extraEnd: Set<String> = []) throws -> JinjaExpr {
        var items: [JinjaExpr] = []
        var sawComma = false
        while true {
            if !items.isEmpty {
                guard skipOp(",") else { break }
                sawComma = true
            }
            if isTupleEnd(extraEnd) { break }
            items.append(withCondexpr ? try parseExpression() : try parseOr())
        }
        if !sawComma {
            guard let only = items.first else { throw error("expected an expression, found \(describe(current.kind))") }
            return only
        }
        return .tuple(items)
    }

    private func isTupleEnd(_ extraEnd: Set<String>) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .end: return true
        case .op(let o): return o == ")" || o == "]" || o == "}"
        case .name(let n): return extraEnd.contains(n)
        default: return false
        }
    }

    private mutating func parseExpression() throws -> JinjaExpr {
        nesting += 1
        defer { nesting -= 1 }
        if nesting > Self.maxNesting { throw error("expression nested deeper than \(Self.maxNesting) levels") }
        var expr = try parseOr()
        while skipName("if") {
            let condition = try parseOr()
            var otherwise: JinjaExpr?
            if skipName("else") { otherwise = try parseExpression() }
            expr = .conditional(condition: condition, then: expr, otherwise: otherwise)
        }
        return expr
    }

    private mutating func parseOr() throws -> JinjaExpr {
        var left = try parseAnd()
        while skipName("or") { left = .or(left, try parseAnd()) }
        return left
    }

    private mutating func parseAnd() throws -> JinjaExpr {
        var left = try parseNot()
        while skipName("and") { left = .and(left, try parseNot()) }
        return left
    }

    private mutating func parseNot() throws -> JinjaExpr {
        if skipName("not") { return .not(try parseNot()) }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> JinjaExpr {
        let line = current.line
        let first = try parseMath1()
        var ops: [(op: String, rhs: JinjaExpr)] = []
        while true {
            if case .op(let o) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                _ = advance()
                ops.append((o, try parseMath1()))
            } else if isName("in") {
                _ = advance()
                ops.append(("in", try parseMath1()))
            } else if isName("not") && peekNext.kind == .name("in") {
                _ = advance()
                _ = advance()
                ops.append(("not in", try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? first : .compare(first, ops, line: line)
    }

    private mutating func parseMath1() throws -> JinjaExpr {
        var left = try parseConcat()
        while case .op(let o) = current.kind, o == "+" || o == "-" {
            let line = advance().line
            left = .binary(o, left, try parseConcat(), line: line)
        }
        return left
    }

    private mutating func parseConcat() throws -> JinjaExpr {
        let line = current.line
        var items = [try parseMath2()]
        while skipOp("~") { items.append(try parseMath2()) }
        return items.count == 1 ? items[0] : .concat(items, line: line)
    }

    private mutating func parseMath2() throws -> JinjaExpr {
        var left = try parsePow()
        while case .op(let o) = current.kind, ["*", "/", "//", "%"].contains(o) {
            let line = advance().line
            left = .binary(o, left, try parsePow(), line: line)
        }
        return left
    }

    private mutating func parsePow() throws -> JinjaExpr {
        var left = try parseUnary()
        while isOp("**") {
            let line = advance().line
            left = .binary("**", left, try parseUnary(), line: line)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> JinjaExpr {
        let line = current.line
        var node: JinjaExpr
        nesting += 1
        defer { nesting -= 1 }
        if nesting > Self.maxNesting { throw error("expression nested deeper than \(Self.maxNesting) levels") }
        if skipOp("-") {
            node = .unary("-", try parseUnary(withFilter: false), line: line)
        } else if skipOp("+") {
            node = .unary("+", try parseUnary(withFilter: false), line: line)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws -> JinjaExpr {
        let token = advance()
        switch token.kind {
        case .name(let n):
            switch n {
            case "true", "True": return .boolean(true)
            case "false", "False": return .boolean(false)
            case "none", "None": return .none
            default: return .name(n, line: token.line)
            }
        case .string(var s):
            // Adjacent string literals concatenate.
            while case .string(let more) = current.kind {
                s += more
                _ = advance()
            }
            return .string(s)
        case .integer(let i):
            return .integer(i)
        case .float(let f):
            return .float(f)
        case .op("("):
            if skipOp(")") { return .tuple([]) }
            let inner = try parseTupleInParentheses()
            try expectOp(")")
            return inner
        case .op("["):
            var items: [JinjaExpr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return .list(items)
        case .op("{"):
            var pairs: [(key: JinjaExpr, value: JinjaExpr)] = []
            while !isOp("}") {
                if !pairs.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                pairs.append((key, try parseExpression()))
            }
            try expectOp("}")
            return .dict(pairs)
        default:
            throw ChatTemplateError.syntax(message: "unexpected \(describe(token.kind))", line: token.line)
        }
    }

    /// Inside `( … )`: an expression, or a tuple when there is a comma.
    private mutating func parseTupleInParentheses() throws -> JinjaExpr {
        let first = try parseExpression()
        guard isOp(",") else { return first }
        var items = [first]
        while skipOp(",") {
            if isOp(")") { break }
            items.append(try parseExpression())
        }
        return .tuple(items)
    }

    private mutating func parsePostfix(_ node: JinjaExpr) throws -> JinjaExpr {
        var node = node
        while true {
            let line = current.line
            if skipOp(".") {
                switch advance().kind {
                case .name(let n): node = .attribute(node, n, line: line)
                case .integer(let i): node = .item(node, .integer(i), line: line)
                default: throw ChatTemplateError.syntax(message: "expected an attribute name after '.'", line: line)
                }
            } else if skipOp("[") {
                node = try parseSubscript(node, line: line)
            } else if isOp("(") {
                node = .call(node, try parseCallArguments(), line: line)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ node: JinjaExpr, line: Int) throws -> JinjaExpr {
        // [index] or [start:stop:step]
        var parts: [JinjaExpr?] = []
        var part: JinjaExpr? = nil
        var isSlice = false
        while true {
            if isOp(":") {
                _ = advance()
                isSlice = true
                parts.append(part)
                part = nil
            } else if isOp("]") {
                _ = advance()
                parts.append(part)
                break
            } else {
                guard part == nil else { throw error("expected ']' or ':' in subscript") }
                part = try parseExpression()
            }
        }
        if !isSlice {
            guard let index = parts[0] else { throw ChatTemplateError.syntax(message: "empty subscript", line: line) }
            return .item(node, index, line: line)
        }
        guard parts.count <= 3 else { throw ChatTemplateError.syntax(message: "too many ':' in slice", line: line) }
        return .slice(
            node, start: parts[0], stop: parts.count > 1 ? parts[1] : nil, step: parts.count > 2 ? parts[2] : nil, line: line)
    }

    private mutating func parseCallArguments() throws -> JinjaArguments {
        try expectOp("(")
        var arguments = JinjaArguments()
        while !isOp(")") {
            if !arguments.positional.isEmpty || !arguments.keyword.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            if isOp("*") || isOp("**") {
                throw ChatTemplateError.unsupported(construct: "argument unpacking (* / **)", line: current.line)
            }
            if case .name(let n) = current.kind, peekNext.kind == .op("=") {
                _ = advance()
                _ = advance()
                arguments.keyword.append((n, try parseExpression()))
            } else {
                guard arguments.keyword.isEmpty else { throw error("positional argument after keyword argument") }
                arguments.positional.append(try parseExpression())
            }
        }
        try expectOp(")")
        return arguments
    }

    private mutating func parseFilterCall() throws -> JinjaFilterCall {
        let line = current.line
        var name = try expectName()
        while skipOp(".") { name += "." + (try expectName()) }
        let arguments = isOp("(") ? try parseCallArguments() : JinjaArguments()
        return JinjaFilterCall(name: name, arguments: arguments, line: line)
    }

    private mutating func parseFilterExpression(_ node: JinjaExpr) throws -> JinjaExpr {
        var node = node
        while true {
            if skipOp("|") {
                node = .filter(node, try parseFilterCall())
            } else if isName("is") {
                let line = advance().line
                let negated = skipName("not")
                var name = try expectName()
                while skipOp(".") { name += "." + (try expectName()) }
                var arguments = JinjaArguments()
                if isOp("(") {
                    arguments = try parseCallArguments()
                } else if startsTestArgument() {
                    if isName("is") { throw error("you cannot chain multiple tests with 'is'") }
                    arguments.positional = [try parsePostfix(try parsePrimary())]
                }
                node = .test(node, name: name, arguments: arguments, negated: negated, line: line)
            } else if isOp("(") {
                node = .call(node, try parseCallArguments(), line: current.line)
            } else {
                return node
            }
        }
    }

    /// Whether the token after a test name starts its single unparenthesized argument.
    private func startsTestArgument() -> Bool {
        switch current.kind {
        case .name(let n): return n != "else" && n != "or" && n != "and"
        case .string, .integer, .float: return true
        case .op(let o): return o == "[" || o == "{"
        default: return false
        }
    }
}
