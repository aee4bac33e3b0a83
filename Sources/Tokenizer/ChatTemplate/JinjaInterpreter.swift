import Foundation

/// A variable scope. `for` iterations and macro calls get their own; `if` does not, as in Jinja.
final class JinjaScope {
    var variables: [String: JinjaValue] = [:]
    let parent: JinjaScope?

    init(parent: JinjaScope?) { self.parent = parent }

    func lookup(_ name: String) -> JinjaValue? {
        var scope: JinjaScope? = self
        while let s = scope {
            if let v = s.variables[name] { return v }
            scope = s.parent
        }
        return nil
    }
}

/// Bounds on one render, so that a hostile template fails with a runtime error instead of
/// hanging or exhausting memory. Jinja itself has none; real chat templates stay far below.
struct JinjaRenderLimits: Sendable {
    /// Loop iterations plus macro calls.
    var iterations = 200_000
    /// The sizes of all strings (in 16-byte units) and lists (in elements) that expressions
    /// produce, plus one per expression.
    var work = 2_000_000
    /// The largest string (UTF-8 bytes) or list (elements) one expression may produce.
    var valueSize = 10_000_000
    /// The largest rendered text (or captured block), in UTF-8 bytes.
    var outputBytes = 100_000_000

    static let standard = JinjaRenderLimits()
}

/// Renders a parsed template. One interpreter per render call.
final class JinjaInterpreter {
    private let root: JinjaScope
    /// Line of the statement being executed, for error messages.
    private var line = 0
    /// Macro call depth, bounded like Python's recursion limit.
    private var callDepth = 0
    private static let maxCallDepth = 200
    /// Largest string or list an operator may build (Jinja's sandbox caps `range` at 100,000).
    private static let maxRange = 100_000
    private static let maxRepeatedLength = 10_000_000
    private var iterations = 0
    private var work = 0

    private enum Flow { case normal, breakLoop, continueLoop }

    private let limits: JinjaRenderLimits

    init(context: [String: JinjaValue], limits: JinjaRenderLimits = .standard) {
        root = JinjaScope(parent: nil)
        root.variables = context
        self.limits = limits
    }

    func render(_ nodes: [JinjaNode]) throws -> String {
        var out = ""
        _ = try execute(nodes, scope: root, into: &out)
        return out
    }

    // MARK: Errors

    private func runtime(_ message: String) -> ChatTemplateError { .runtime(message: message, line: line) }
    private func unsupported(_ construct: String) -> ChatTemplateError { .unsupported(construct: construct, line: line) }

    private func undefinedError(_ value: JinjaValue) -> ChatTemplateError {
        if case .undefined(let reason) = value { return runtime(reason) }
        return runtime("undefined value")
    }

    // MARK: Statements

    private func execute(_ nodes: [JinjaNode], scope: JinjaScope, into out: inout String) throws -> Flow {
        for node in nodes {
            switch node {
            case .text(let text):
                out += text
                try checkOutput(out)
            case .output(let expr, let line):
                self.line = line
                let value = try evaluate(expr, scope)
                out += value.pythonString
                try checkOutput(out)
            case .ifChain(let branches, let otherwise, let line):
                self.line = line
                var taken = false
                for branch in branches where try evaluate(branch.condition, scope).isTruthy {
                    taken = true
                    let flow = try execute(branch.body, scope: scope, into: &out)
                    if flow != .normal { return flow }
                    break
                }
                if !taken {
                    let flow = try execute(otherwise, scope: scope, into: &out)
                    if flow != .normal { return flow }
                }
            case .forLoop(let loop):
                try executeFor(loop, scope: scope, into: &out)
            case .set(let target, let valueExpr, let line):
                self.line = line
                try assign(target, try evaluate(valueExpr, scope), in: scope)
            case .setBlock(let target, let body, let filters, let line):
                self.line = line
                var captured = ""
                _ = try execute(body, scope: scope, into: &captured)
                var value = JinjaValue.string(captured)
                for filter in filters { value = try applyFilter(filter, to: value, scope) }
                try assign(target, value, in: scope)
            case .macro(let definition):
                scope.variables[definition.name] = .macro(definition)
            case .filterBlock(let filters, let body, let line):
                self.line = line
                var captured = ""
                _ = try execute(body, scope: scope, into: &captured)
                var value = JinjaValue.string(captured)
                for filter in filters { value = try applyFilter(filter, to: value, scope) }
                out += value.pythonString
                try checkOutput(out)
            case .generation(let body):
                let flow = try execute(body, scope: scope, into: &out)
                if flow != .normal { return flow }
            case .breakLoop:
                return .breakLoop
            case .continueLoop:
                return .continueLoop
            }
        }
        return .normal
    }

    private func executeFor(_ loop: JinjaForLoop, scope: JinjaScope, into out: inout String) throws {
        line = loop.line
        var items = try iterate(try evaluate(loop.iterable, scope))
        if let condition = loop.condition {
            items = try items.filter { item in
                let filterScope = JinjaScope(parent: scope)
                try assign(loop.target, item, in: filterScope)
                return try evaluate(condition, filterScope).isTruthy
            }
        }
        if items.isEmpty {
            _ = try execute(loop.otherwise, scope: scope, into: &out)
            return
        }
        for (i, item) in items.enumerated() {
            try countIteration()
            let iterationScope = JinjaScope(parent: scope)
            try assign(loop.target, item, in: iterationScope)
            iterationScope.variables["loop"] = .loop(JinjaLoopState(
                index0: i, length: items.count, previous: i > 0 ? items[i - 1] : nil,
                next: i + 1 < items.count ? items[i + 1] : nil))
            let flow = try execute(loop.body, scope: iterationScope, into: &out)
            if flow == .breakLoop { break }
            line = loop.line
        }
    }

    /// `n` spaces (none for a negative `n`, as Python's `" " * n`), within the value size limit.
    private func spaces(_ n: Int) throws -> String {
        guard n <= limits.valueSize else { throw runtime("a width of \(n) is too large") }
        return String(repeating: " ", count: max(0, n))
    }

    private func countIteration() throws {
        iterations += 1
        if iterations > limits.iterations {
            throw runtime("more than \(limits.iterations) loop iterations and macro calls; giving up")
        }
    }

    /// Fails when an output buffer (the result or a captured block) has grown past the limit.
    private func checkOutput(_ out: String) throws {
        if out.utf8.count > limits.outputBytes {
            throw runtime("the rendered text exceeds \(limits.outputBytes) bytes; giving up")
        }
    }

    private func assign(_ target: JinjaTarget, _ value: JinjaValue, in scope: JinjaScope) throws {
        switch target {
        case .name(let name):
            scope.variables[name] = value
        case .attribute(let object, let name):
            guard case .namespace(let ns)? = scope.lookup(object) else {
                throw runtime("cannot assign attribute on non-namespace object '\(object)'")
            }
            ns[name] = value
        case .tuple(let targets):
            let items = try iterate(value)
            guard items.count == targets.count else {
                throw runtime("cannot unpack \(items.count) values into \(targets.count) names")
            }
            for (t, v) in zip(targets, items) { try assign(t, v, in: scope) }
        }
    }

    // MARK: Expressions

    /// Evaluates `expr`, charging its result to the render's work budget.
    func evaluate(_ expr: JinjaExpr, _ scope: JinjaScope) throws -> JinjaValue {
        let value = try evaluateUncharged(expr, scope)
        var size = 0, cost = 1
        switch value {
        case .string(let s):
            size = s.utf8.count
            cost += size / 16
        case .list(let items), .tuple(let items):
            size = items.count
            cost += size
        default:
            break
        }
        if size > limits.valueSize {
            throw runtime("an expression produced a value of \(size) bytes or items; the limit is \(limits.valueSize)")
        }
        work += cost
        if work > limits.work {
            throw runtime("rendering takes more work than \(limits.work) units (values produced); giving up")
        }
        return value
    }

    private func evaluateUncharged(_ expr: JinjaExpr, _ scope: JinjaScope) throws -> JinjaValue {
        switch expr {
        case .string(let s): return .string(s)
        case .integer(let i): return .int(i)
        case .float(let d): return .double(d)
        case .boolean(let b): return .bool(b)
        case .none: return .none
        case .name(let name, _):
            if let v = scope.lookup(name) { return v }
            if ["range", "namespace", "dict", "raise_exception", "strftime_now"].contains(name) { return .builtin(name) }
            return .undefined(reason: "'\(name)' is undefined")
        case .list(let items): return .list(try items.map { try evaluate($0, scope) })
        case .tuple(let items): return .tuple(try items.map { try evaluate($0, scope) })
        case .dict(let pairs):
            var d = JinjaDict()
            for (k, v) in pairs { d[try evaluate(k, scope)] = try evaluate(v, scope) }
            return .dict(d)
        case .attribute(let objectExpr, let name, _):
            return try attribute(of: try evaluate(objectExpr, scope), name)
        case .item(let objectExpr, let keyExpr, _):
            return try item(of: try evaluate(objectExpr, scope), try evaluate(keyExpr, scope))
        case .slice(let objectExpr, let start, let stop, let step, _):
            let object = try evaluate(objectExpr, scope)
            func bound(_ e: JinjaExpr?) throws -> Int? {
                guard let e else { return nil }
                let v = try evaluate(e, scope)
                if case .none = v { return nil }
                guard let i = v.integer else { throw runtime("slice indices must be integers or None") }
                return i
            }
            return try slice(object, start: try bound(start), stop: try bound(stop), step: try bound(step))
        case .call(let calleeExpr, let arguments, _):
            let callee = try evaluate(calleeExpr, scope)
            let (positional, keyword) = try evaluateArguments(arguments, scope)
            return try call(callee, positional, keyword)
        case .filter(let valueExpr, let filter):
            return try applyFilter(filter, to: try evaluate(valueExpr, scope), scope)
        case .test(let valueExpr, let name, let arguments, let negated, _):
            let value = try evaluate(valueExpr, scope)
            let (positional, _) = try evaluateArguments(arguments, scope)
            let result = try applyTest(name, value, positional)
            return .bool(negated ? !result : result)
        case .unary(let op, let operandExpr, _):
            let operand = try evaluate(operandExpr, scope)
            if operand.isUndefined { throw undefinedError(operand) }
            switch (op, operand) {
            case ("-", .int(let i)): return .int(-i)
            case ("-", .double(let d)): return .double(-d)
            case ("-", .bool(let b)): return .int(b ? -1 : 0)
            case ("+", .int), ("+", .double): return operand
            case ("+", .bool(let b)): return .int(b ? 1 : 0)
            default: throw runtime("bad operand type for unary \(op): '\(operand.typeName)'")
            }
        case .binary(let op, let lhs, let rhs, _):
            return try binary(op, try evaluate(lhs, scope), try evaluate(rhs, scope))
        case .and(let lhs, let rhs):
            let left = try evaluate(lhs, scope)
            return left.isTruthy ? try evaluate(rhs, scope) : left
        case .or(let lhs, let rhs):
            let left = try evaluate(lhs, scope)
            return left.isTruthy ? left : try evaluate(rhs, scope)
        case .not(let operand):
            return .bool(!(try evaluate(operand, scope).isTruthy))
        case .compare(let firstExpr, let ops, _):
            var left = try evaluate(firstExpr, scope)
            for (op, rhsExpr) in ops {
                let right = try evaluate(rhsExpr, scope)
                guard try compare(op, left, right) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let condition, let then, let otherwise):
            if try evaluate(condition, scope).isTruthy { return try evaluate(then, scope) }
            guard let otherwise else { return .undefined(reason: "the inline if-expression evaluated to false and no else section was defined") }
            return try evaluate(otherwise, scope)
        case .concat(let items, _):
            return .string(try items.map { try evaluate($0, scope).pythonString }.joined())
        }
    }

    private func evaluateArguments(_ arguments: JinjaArguments, _ scope: JinjaScope) throws -> ([JinjaValue], [(String, JinjaValue)]) {
        (try arguments.positional.map { try evaluate($0, scope) }, try arguments.keyword.map { ($0.name, try evaluate($0.value, scope)) })
    }

    // MARK: Attribute and item access (Jinja's getattr / getitem)

    private static let stringMethods: Set<String> = [
        "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "upper", "lower", "title", "capitalize",
        "replace", "find", "rfind", "index", "count", "join", "splitlines", "isdigit", "isalpha", "isalnum", "isspace",
        "isupper", "islower", "format", "zfill", "center", "ljust", "rjust", "removeprefix", "removesuffix", "casefold",
        "swapcase", "partition", "rpartition", "encode", "expandtabs", "istitle", "isnumeric", "isdecimal",
    ]
    private static let dictMethods: Set<String> = [
        "items", "keys", "values", "get", "copy", "pop", "popitem", "setdefault", "update", "clear", "fromkeys",
    ]
    private static let listMethods: Set<String> = [
        "index", "count", "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", "copy",
    ]

    private func attribute(of object: JinjaValue, _ name: String) throws -> JinjaValue {
        switch object {
        case .undefined:
            throw undefinedError(object)
        case .dict(let d):
            if Self.dictMethods.contains(name) { return .method(receiver: object, name: name) }
            return d[name] ?? .undefined(reason: "'dict object' has no attribute '\(name)'")
        case .string:
            if Self.stringMethods.contains(name) { return .method(receiver: object, name: name) }
        case .list:
            if Self.listMethods.contains(name) { return .method(receiver: object, name: name) }
        case .namespace(let ns):
            if let v = ns[name] { return v }
        case .loop(let state):
            if name == "cycle" { return .method(receiver: object, name: name) }
            if let v = state.attribute(name) { return v }
        default:
            break
        }
        return .undefined(reason: "'\(object.typeName) object' has no attribute '\(name)'")
    }

    private func item(of object: JinjaValue, _ key: JinjaValue) throws -> JinjaValue {
        switch object {
        case .undefined:
            throw undefinedError(object)
        case .dict(let d):
            if let v = d[key] { return v }
        case .list(let items), .tuple(let items):
            if let i = key.integer {
                let index = i < 0 ? items.count + i : i
                if index >= 0 && index < items.count { return items[index] }
                return .undefined(reason: "'\(object.typeName) object' has no element \(i)")
            }
        case .string(let s):
            if let i = key.integer {
                let scalars = Array(s.unicodeScalars)
                let index = i < 0 ? scalars.count + i : i
                if index >= 0 && index < scalars.count { return .string(String(scalars[index])) }
                return .undefined(reason: "'str object' has no element \(i)")
            }
        default:
            break
        }
        if case .string(let name) = key { return try attribute(of: object, name) }
        return .undefined(reason: "'\(object.typeName) object' has no element \(key.pythonRepr)")
    }

    private func slice(_ object: JinjaValue, start: Int?, stop: Int?, step: Int?) throws -> JinjaValue {
        let step = step ?? 1
        guard step != 0 else { throw runtime("slice step cannot be zero") }
        func indices(count: Int) -> [Int] {
            func clamp(_ v: Int?, _ defaultValue: Int) -> Int {
                guard var v else { return defaultValue }
                if v < 0 { v += count }
                return step > 0 ? min(max(v, 0), count) : min(max(v, -1), count - 1)
            }
            let lo = clamp(start, step > 0 ? 0 : count - 1)
            let hi = clamp(stop, step > 0 ? count : -1)
            return Array(stride(from: lo, to: hi, by: step))
        }
        switch object {
        case .undefined: throw undefinedError(object)
        case .list(let items): return .list(indices(count: items.count).map { items[$0] })
        case .tuple(let items): return .tuple(indices(count: items.count).map { items[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var view = String.UnicodeScalarView()
            for i in indices(count: scalars.count) { view.append(scalars[i]) }
            return .string(String(view))
        default:
            throw runtime("'\(object.typeName)' object is not subscriptable")
        }
    }

    /// Python iteration: lists, tuples, dict keys, string characters (code points); Undefined is empty.
    private func iterate(_ value: JinjaValue) throws -> [JinjaValue] {
        switch value {
        case .undefined: return []
        case .list(let items), .tuple(let items): return items
        case .dict(let d): return d.entries.map(\.key)
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        default: throw runtime("'\(value.typeName)' object is not iterable")
        }
    }

    // MARK: Operators

    private func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        if a.isUndefined { throw undefinedError(a) }
        if b.isUndefined { throw undefinedError(b) }
        func typeError() -> ChatTemplateError {
            runtime("unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
        }
        switch op {
        case "+":
            switch (a, b) {
            case (.string(let x), .string(let y)): return .string(x + y)
            case (.list(let x), .list(let y)): return .list(x + y)
            case (.tuple(let x), .tuple(let y)): return .tuple(x + y)
            default: break
            }
            if let x = a.integer, let y = b.integer {
                let (r, overflow) = x.addingReportingOverflow(y)
                if overflow { throw unsupported("integer arithmetic beyond 64 bits") }
                return .int(r)
            }
            if let x = a.number, let y = b.number { return .double(x + y) }
            if case .string = a { throw runtime("can only concatenate str (not \"\(b.typeName)\") to str") }
            throw typeError()
        case "-":
            if let x = a.integer, let y = b.integer {
                let (r, overflow) = x.subtractingReportingOverflow(y)
                if overflow { throw unsupported("integer arithmetic beyond 64 bits") }
                return .int(r)
            }
            if let x = a.number, let y = b.number { return .double(x - y) }
            throw typeError()
        case "*":
            if let n = a.integer ?? b.integer, n > 0 {
                let other = a.integer == nil ? a : b
                var size = 0
                switch other {
                case .string(let s): size = s.utf8.count
                case .list(let items): size = items.count
                default: break
                }
                if size > 0 && n > Self.maxRepeatedLength / size { throw runtime("result of '*' is too large") }
            }
            switch (a, b) {
            case (.string(let s), _) where b.integer != nil: return .string(String(repeating: s, count: max(0, b.integer!)))
            case (_, .string(let s)) where a.integer != nil: return .string(String(repeating: s, count: max(0, a.integer!)))
            case (.list(let items), _) where b.integer != nil:
                return .list(Array(repeatElement(items, count: max(0, b.integer!)).joined()))
            default: break
            }
            if let x = a.integer, let y = b.integer {
                let (r, overflow) = x.multipliedReportingOverflow(by: y)
                if overflow { throw unsupported("integer arithmetic beyond 64 bits") }
                return .int(r)
            }
            if let x = a.number, let y = b.number { return .double(x * y) }
            throw typeError()
        case "/":
            guard let x = a.number, let y = b.number else { throw typeError() }
            guard y != 0 else { throw runtime("division by zero") }
            return .double(x / y)
        case "//":
            if let x = a.integer, let y = b.integer {
                guard y != 0 else { throw runtime("integer division or modulo by zero") }
                let q = x / y
                return .int((x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q)
            }
            guard let x = a.number, let y = b.number else { throw typeError() }
            guard y != 0 else { throw runtime("float floor division by zero") }
            return .double((x / y).rounded(.down))
        case "%":
            if case .string = a { throw unsupported("printf-style string formatting ('%' on a string)") }
            if let x = a.integer, let y = b.integer {
                guard y != 0 else { throw runtime("integer division or modulo by zero") }
                let r = x % y
                return .int((r != 0 && (r < 0) != (y < 0)) ? r + y : r)
            }
            guard let x = a.number, let y = b.number else { throw typeError() }
            guard y != 0 else { throw runtime("float modulo") }
            let r = x.truncatingRemainder(dividingBy: y)
            return .double((r != 0 && (r < 0) != (y < 0)) ? r + y : r)
        case "**":
            if let x = a.integer, let y = b.integer, y >= 0 {
                var result = 1
                for _ in 0..<y {
                    let (r, overflow) = result.multipliedReportingOverflow(by: x)
                    if overflow { throw unsupported("integer arithmetic beyond 64 bits") }
                    result = r
                }
                return .int(result)
            }
            guard let x = a.number, let y = b.number else { throw typeError() }
            return .double(pow(x, y))
        default:
            throw unsupported("operator '\(op)'")
        }
    }

    private func compare(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
        switch op {
        case "==": return pythonEquals(a, b)
        case "!=": return !pythonEquals(a, b)
        case "in": return try contains(b, a)
        case "not in": return !(try contains(b, a))
        default:
            if a.isUndefined { throw undefinedError(a) }
            if b.isUndefined { throw undefinedError(b) }
            func less(_ x: JinjaValue, _ y: JinjaValue) throws -> Bool {
                guard let r = pythonLess(x, y) else {
                    throw runtime("'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
                }
                return r
            }
            switch op {
            case "<": return try less(a, b)
            case ">": return try less(b, a)
            case "<=": return try !less(b, a)
            case ">=": return try !less(a, b)
            default: throw unsupported("comparison '\(op)'")
            }
        }
    }

    /// Python `needle in container`.
    private func contains(_ container: JinjaValue, _ needle: JinjaValue) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let n) = needle else {
                if needle.isUndefined { throw undefinedError(needle) }
                throw runtime("'in <string>' requires string as left operand, not \(needle.typeName)")
            }
            return n.isEmpty || s.utf8.firstRange(of: n.utf8) != nil
        case .list(let items), .tuple(let items): return items.contains { pythonEquals($0, needle) }
        case .dict(let d): return d[needle] != nil
        case .undefined: return false
        default: throw runtime("argument of type '\(container.typeName)' is not iterable")
        }
    }

    // MARK: Calls

    private func call(_ callee: JinjaValue, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        switch callee {
        case .undefined:
            throw undefinedError(callee)
        case .macro(let definition):
            return try callMacro(definition, args, kwargs)
        case .builtin(let name):
            return try callBuiltin(name, args, kwargs)
        case .method(let receiver, let name):
            return try callMethod(receiver, name, args, kwargs)
        default:
            throw runtime("'\(callee.typeName)' object is not callable")
        }
    }

    private func callMacro(_ definition: JinjaMacroDefinition, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        guard args.count <= definition.parameters.count else {
            throw runtime("macro '\(definition.name)' takes not more than \(definition.parameters.count) argument(s)")
        }
        let savedLine = line
        try countIteration()
        callDepth += 1
        defer { callDepth -= 1 }
        if callDepth > Self.maxCallDepth { throw runtime("maximum macro recursion depth exceeded in '\(definition.name)'") }
        let scope = JinjaScope(parent: root)
        for (i, parameter) in definition.parameters.enumerated() {
            if i < args.count {
                scope.variables[parameter.name] = args[i]
            } else if let kw = kwargs.last(where: { $0.0 == parameter.name }) {
                scope.variables[parameter.name] = kw.1
            } else if let defaultValue = parameter.defaultValue {
                scope.variables[parameter.name] = try evaluate(defaultValue, scope)
            } else {
                scope.variables[parameter.name] = .undefined(reason: "parameter '\(parameter.name)' was not provided")
            }
        }
        for (name, _) in kwargs where !definition.parameters.contains(where: { $0.name == name }) {
            throw runtime("macro '\(definition.name)' takes no keyword argument '\(name)'")
        }
        var out = ""
        _ = try execute(definition.body, scope: scope, into: &out)
        line = savedLine
        return .string(out)
    }

    private func callBuiltin(_ name: String, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        switch name {
        case "raise_exception":
            throw ChatTemplateError.raised(message: args.first?.pythonString ?? "")
        case "namespace":
            let ns = JinjaNamespace()
            if let first = args.first {
                guard case .dict(let d) = first else { throw runtime("namespace() expects a mapping") }
                for (k, v) in d.entries { ns[k.pythonString] = v }
            }
            for (k, v) in kwargs { ns[k] = v }
            return .namespace(ns)
        case "dict":
            var d = JinjaDict()
            if let first = args.first {
                guard case .dict(let source) = first else { throw unsupported("dict() from a non-mapping") }
                d = source
            }
            for (k, v) in kwargs { d[.string(k)] = v }
            return .dict(d)
        case "range":
            let ints = try args.map { v -> Int in
                guard let i = v.integer else { throw runtime("range() arguments must be integers") }
                return i
            }
            let (start, stop, step): (Int, Int, Int)
            switch ints.count {
            case 1: (start, stop, step) = (0, ints[0], 1)
            case 2: (start, stop, step) = (ints[0], ints[1], 1)
            case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw runtime("range expected 1 to 3 arguments, got \(ints.count)")
            }
            guard step != 0 else { throw runtime("range() arg 3 must not be zero") }
            let values = stride(from: start, to: stop, by: step)
            guard (Double(stop) - Double(start)) / Double(step) <= Double(Self.maxRange) else {
                throw runtime("Range too big. The sandbox blocks ranges larger than MAX_RANGE (\(Self.maxRange)).")
            }
            return .list(values.map { .int($0) })
        case "strftime_now":
            guard case .string(let format)? = args.first else { throw runtime("strftime_now() expects a format string") }
            return .string(strftime(format, Date()))
        default:
            throw unsupported("function '\(name)'")
        }
    }

    /// C `strftime` in the local time zone, like Python's `datetime.now().strftime`.
    private func strftime(_ format: String, _ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var tmValue = tm()
        localtime_r(&t, &tmValue)
        var buffer = [Int8](repeating: 0, count: 512)
        let n = Foundation.strftime(&buffer, buffer.count, format, &tmValue)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Methods

    private func callMethod(_ receiver: JinjaValue, _ name: String, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        func arg(_ i: Int, _ keyword: String) -> JinjaValue? {
            if i < args.count { return args[i] }
            return kwargs.last { $0.0 == keyword }?.1
        }
        func stringArg(_ i: Int, _ keyword: String) throws -> String? {
            switch arg(i, keyword) {
            case nil, .none?: return nil
            case .string(let s)?: return s
            case let other?: throw runtime("\(name)() argument must be str or None, not \(other.typeName)")
            }
        }
        switch receiver {
        case .string(let s):
            return try callStringMethod(s, name, args, arg: arg, stringArg: stringArg)
        case .dict(let d):
            switch name {
            case "items": return .list(d.entries.map { .tuple([$0.key, $0.value]) })
            case "keys": return .list(d.entries.map(\.key))
            case "values": return .list(d.entries.map(\.value))
            case "get":
                guard let key = arg(0, "key") else { throw runtime("get expected at least 1 argument, got 0") }
                return d[key] ?? arg(1, "default") ?? .none
            case "copy": return receiver
            default: throw unsupported("dict method '\(name)' (templates run in an immutable sandbox)")
            }
        case .list(let items):
            switch name {
            case "index":
                guard let needle = arg(0, "value"), let i = items.firstIndex(where: { pythonEquals($0, needle) }) else {
                    throw runtime("value is not in list")
                }
                return .int(i)
            case "count":
                guard let needle = arg(0, "value") else { throw runtime("count() takes exactly one argument") }
                return .int(items.filter { pythonEquals($0, needle) }.count)
            case "copy": return receiver
            default: throw unsupported("list method '\(name)' (templates run in an immutable sandbox)")
            }
        case .loop(let state):
            guard name == "cycle", !args.isEmpty else { throw runtime("no items for cycling given") }
            return args[state.index0 % args.count]
        default:
            throw unsupported("method '\(name)' on \(receiver.typeName)")
        }
    }

    private func callStringMethod(
        _ s: String, _ name: String, _ args: [JinjaValue], arg: (Int, String) -> JinjaValue?,
        stringArg: (Int, String) throws -> String?
    ) throws -> JinjaValue {
        switch name {
        case "strip": return .string(pythonStrip(s, try stringArg(0, "chars"), leading: true, trailing: true))
        case "lstrip": return .string(pythonStrip(s, try stringArg(0, "chars"), leading: true, trailing: false))
        case "rstrip": return .string(pythonStrip(s, try stringArg(0, "chars"), leading: false, trailing: true))
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "casefold": return .string(s.lowercased())
        case "title": return .string(pythonTitle(s))
        case "capitalize": return .string(pythonCapitalize(s))
        case "split", "rsplit":
            let maxSplit = arg(1, "maxsplit")?.integer ?? -1
            if name == "rsplit" && maxSplit >= 0 { throw unsupported("rsplit with maxsplit") }
            return .list(pythonSplit(s, try stringArg(0, "sep"), maxSplit: maxSplit).map { .string($0) })
        case "splitlines":
            return .list(pythonSplitLines(s).map { .string($0) })
        case "startswith", "endswith":
            guard let first = arg(0, "prefix") else { throw runtime("\(name)() takes at least 1 argument") }
            let candidates: [JinjaValue]
            switch first {
            case .string: candidates = [first]
            case .tuple(let items): candidates = items
            default: throw runtime("\(name) first arg must be str or a tuple of str, not \(first.typeName)")
            }
            for candidate in candidates {
                guard case .string(let c) = candidate else { throw runtime("\(name) arguments must be str") }
                if name == "startswith" ? s.utf8.starts(with: c.utf8) : s.utf8.reversed().starts(with: c.utf8.reversed()) {
                    return .bool(true)
                }
            }
            return .bool(false)
        case "replace":
            guard let old = try stringArg(0, "old"), let new = try stringArg(1, "new") else {
                throw runtime("replace() takes at least 2 arguments")
            }
            let count = arg(2, "count")?.integer ?? -1
            return .string(pythonReplace(s, old, new, count: count))
        case "find", "rfind", "index":
            guard let needle = try stringArg(0, "sub") else { throw runtime("\(name)() takes at least 1 argument") }
            let hay = Array(s.unicodeScalars)
            let n = Array(needle.unicodeScalars)
            var found = -1
            if n.count <= hay.count {
                let positions = Array(0...(hay.count - n.count))
                for p in (name == "rfind" ? positions.reversed() : positions) where Array(hay[p..<(p + n.count)]) == n {
                    found = p
                    break
                }
            }
            if name == "index" && found < 0 { throw runtime("substring not found") }
            return .int(found)
        case "count":
            guard let needle = try stringArg(0, "sub") else { throw runtime("count() takes at least 1 argument") }
            if needle.isEmpty { return .int(s.unicodeScalars.count + 1) }
            return .int(pythonSplit(s, needle, maxSplit: -1).count - 1)
        case "join":
            guard let iterable = arg(0, "iterable") else { throw runtime("join() takes exactly one argument") }
            let parts = try iterate(iterable).map { v -> String in
                guard case .string(let part) = v else { throw runtime("sequence item: expected str instance, \(v.typeName) found") }
                return part
            }
            return .string(parts.joined(separator: s))
        case "isdigit", "isdecimal", "isnumeric":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType != nil })
        case "isalpha":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
        case "isalnum":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        case "isspace":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(isPythonWhitespace))
        case "isupper":
            return .bool(s.contains { $0.isCased } && s == s.uppercased())
        case "islower":
            return .bool(s.contains { $0.isCased } && s == s.lowercased())
        case "removeprefix":
            guard let p = try stringArg(0, "prefix") else { throw runtime("removeprefix() takes exactly one argument") }
            return .string(s.utf8.starts(with: p.utf8) ? String(decoding: s.utf8.dropFirst(p.utf8.count), as: UTF8.self) : s)
        case "removesuffix":
            guard let p = try stringArg(0, "suffix") else { throw runtime("removesuffix() takes exactly one argument") }
            return .string(
                !p.isEmpty && s.utf8.reversed().starts(with: p.utf8.reversed())
                    ? String(decoding: s.utf8.dropLast(p.utf8.count), as: UTF8.self) : s)
        default:
            throw unsupported("string method '\(name)'")
        }
    }

    // MARK: Filters

    private func applyFilter(_ filter: JinjaFilterCall, to value: JinjaValue, _ scope: JinjaScope) throws -> JinjaValue {
        line = filter.line
        let (args, kwargs) = try evaluateArguments(filter.arguments, scope)
        func arg(_ i: Int, _ keyword: String) -> JinjaValue? {
            if i < args.count { return args[i] }
            return kwargs.last { $0.0 == keyword }?.1
        }
        func text(_ v: JinjaValue) -> String { v.pythonString }
        switch filter.name {
        case "tojson":
            var indent: String?
            switch arg(0, "indent") {
            case nil, .none?: indent = nil
            case .int(let n)?: indent = try spaces(n)
            case .string(let s)?: indent = s
            case let other?: throw runtime("tojson indent must be an int or a string, not \(other.typeName)")
            }
            var separators: (String, String)?
            if let sep = arg(2, "separators"), case .tuple(let parts) = sep, parts.count == 2 {
                separators = (text(parts[0]), text(parts[1]))
            } else if let sep = arg(2, "separators"), case .list(let parts) = sep, parts.count == 2 {
                separators = (text(parts[0]), text(parts[1]))
            }
            if let ensureASCII = arg(1, "ensure_ascii"), ensureASCII.isTruthy {
                throw unsupported("tojson(ensure_ascii=True)")
            }
            let encoder = PythonJSONEncoder(indent: indent, separators: separators, sortKeys: arg(3, "sort_keys")?.isTruthy ?? false)
            do {
                return .string(try encoder.encode(value))
            } catch {
                throw runtime(error.message)
            }
        case "trim":
            return .string(pythonStrip(text(value), arg(0, "chars").map(text), leading: true, trailing: true))
        case "length", "count":
            switch value {
            case .undefined: return .int(0)
            case .string(let s): return .int(s.unicodeScalars.count)
            case .list(let a), .tuple(let a): return .int(a.count)
            case .dict(let d): return .int(d.count)
            default: throw runtime("object of type '\(value.typeName)' has no len()")
            }
        case "string":
            return .string(text(value))
        case "upper":
            return .string(text(value).uppercased())
        case "lower":
            return .string(text(value).lowercased())
        case "capitalize":
            return .string(pythonCapitalize(text(value)))
        case "title":
            return .string(jinjaTitle(text(value)))
        case "default", "d":
            let useIfFalsy = arg(1, "boolean")?.isTruthy ?? false
            if value.isUndefined || (useIfFalsy && !value.isTruthy) { return arg(0, "default_value") ?? .string("") }
            return value
        case "first":
            return try iterate(value).first ?? .undefined(reason: "no first item, sequence was empty")
        case "last":
            return try iterate(value).last ?? .undefined(reason: "no last item, sequence was empty")
        case "list":
            return .list(try iterate(value))
        case "reverse":
            if case .string(let s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .list(try iterate(value).reversed())
        case "join":
            let separator = arg(0, "d").map(text) ?? ""
            var items = try iterate(value)
            if let attribute = arg(1, "attribute") {
                items = try items.map { try self.item(of: $0, attribute) }
            }
            return .string(items.map(text).joined(separator: separator))
        case "items":
            guard case .dict(let d) = value else {
                if value.isUndefined { return .list([]) }
                throw runtime("items filter expects a mapping, got \(value.typeName)")
            }
            return .list(d.entries.map { .tuple([$0.key, $0.value]) })
        case "dictsort":
            guard case .dict(let d) = value else { throw runtime("dictsort filter expects a mapping") }
            let byValue = (arg(1, "by").map(text) ?? "key") == "value"
            var pairs = d.entries
            var failure: ChatTemplateError?
            pairs.sort { x, y in
                let (a, b) = byValue ? (x.value, y.value) : (x.key, y.key)
                guard let r = pythonLess(caseFolded(a), caseFolded(b)) else {
                    failure = failure ?? self.runtime("dictsort: values cannot be compared")
                    return false
                }
                return r
            }
            if let failure { throw failure }
            if arg(2, "reverse")?.isTruthy ?? false { pairs.reverse() }
            return .list(pairs.map { .tuple([$0.key, $0.value]) })
        case "sort":
            let reverse = arg(0, "reverse")?.isTruthy ?? false
            let caseSensitive = arg(1, "case_sensitive")?.isTruthy ?? false
            let attribute = arg(2, "attribute")
            var items = try iterate(value)
            var keys = try items.map { v -> JinjaValue in
                let k = try attribute.map { try self.item(of: v, $0) } ?? v
                return caseSensitive ? k : caseFolded(k)
            }
            var failure: ChatTemplateError?
            let order = Array(items.indices).sorted { i, j in
                guard let r = pythonLess(keys[i], keys[j]) else {
                    failure = failure ?? self.runtime("sort: values cannot be compared")
                    return false
                }
                if r { return true }
                if pythonLess(keys[j], keys[i]) == true { return false }
                return i < j  // stable
            }
            if let failure { throw failure }
            items = order.map { items[$0] }
            keys = []
            return .list(reverse ? items.reversed() : items)
        case "unique":
            var seen: [JinjaValue] = []
            for v in try iterate(value) where !seen.contains(where: { pythonEquals(caseFolded($0), caseFolded(v)) }) {
                seen.append(v)
            }
            return .list(seen)
        case "replace":
            guard let old = arg(0, "old"), let new = arg(1, "new") else { throw runtime("replace filter needs two arguments") }
            return .string(pythonReplace(text(value), text(old), text(new), count: arg(2, "count")?.integer ?? -1))
        case "int":
            let fallback = arg(0, "default") ?? .int(0)
            switch value {
            case .int: return value
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return d.isFinite ? .int(Int(d)) : fallback
            case .string(let s):
                let t = pythonStrip(s, nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
                if let i = Int(t) { return .int(i) }
                if let d = Double(t), d.isFinite { return .int(Int(d)) }
                return fallback
            default: return fallback
            }
        case "float":
            let fallback = arg(0, "default") ?? .double(0)
            switch value {
            case .double: return value
            case .int(let i): return .double(Double(i))
            case .bool(let b): return .double(b ? 1 : 0)
            case .string(let s): return Double(pythonStrip(s, nil, leading: true, trailing: true)).map { .double($0) } ?? fallback
            default: return fallback
            }
        case "abs":
            switch value {
            case .int(let i): return .int(abs(i))
            case .double(let d): return .double(abs(d))
            case .bool(let b): return .int(b ? 1 : 0)
            default: throw runtime("bad operand type for abs(): '\(value.typeName)'")
            }
        case "round":
            let precision = arg(0, "precision")?.integer ?? 0
            let method = arg(1, "method").map(text) ?? "common"
            switch method {
            case "common":
                if case .int(let i) = value, precision >= 0 { return .int(i) }
                guard let x = value.number else { throw runtime("round filter expects a number") }
                return .double(pythonRound(x, precision))
            case "ceil", "floor":
                guard let x = value.number else { throw runtime("round filter expects a number") }
                let scale = pow(10.0, Double(precision))
                return .double((x * scale).rounded(method == "ceil" ? .up : .down) / scale)
            default:
                throw runtime("method must be common, ceil or floor")
            }
        case "min", "max":
            let items = try iterate(value)
            guard var best = items.first else { return .undefined(reason: "no \(filter.name) item, sequence was empty") }
            for v in items.dropFirst() {
                guard let less = pythonLess(caseFolded(v), caseFolded(best)) else { throw runtime("\(filter.name): values cannot be compared") }
                let greater = pythonLess(caseFolded(best), caseFolded(v)) ?? false
                if filter.name == "min" ? less : greater { best = v }
            }
            return best
        case "sum":
            var total = JinjaValue.int(arg(1, "start")?.integer ?? 0)
            for v in try iterate(value) {
                let term = try arg(0, "attribute").map { try self.item(of: v, $0) } ?? v
                total = try binary("+", total, term)
            }
            return total
        case "map":
            let items = try iterate(value)
            if let attribute = kwargs.last(where: { $0.0 == "attribute" })?.1 {
                let fallback = kwargs.last { $0.0 == "default" }?.1
                return .list(try items.map { v in
                    let r = try self.item(of: v, attribute)
                    if r.isUndefined, let fallback { return fallback }
                    return r
                })
            }
            guard case .string(let filterName)? = args.first else { throw runtime("map requires a filter name or attribute=") }
            let inner = JinjaFilterCall(
                name: filterName, arguments: JinjaArguments(positional: filter.arguments.positional.dropFirst().map { $0 }),
                line: filter.line)
            return .list(try items.map { try applyFilter(inner, to: $0, scope) })
        case "select", "reject":
            let items = try iterate(value)
            let keep = filter.name == "select"
            return .list(try items.filter { v in
                let passes: Bool
                if case .string(let testName)? = args.first {
                    passes = try applyTest(testName, v, Array(args.dropFirst()))
                } else {
                    passes = v.isTruthy
                }
                return passes == keep
            })
        case "selectattr", "rejectattr":
            guard let attribute = args.first else { throw runtime("\(filter.name) requires an attribute name") }
            let keep = filter.name == "selectattr"
            return .list(try iterate(value).filter { v in
                let field = try self.item(of: v, attribute)
                let passes: Bool
                if args.count > 1, case .string(let testName) = args[1] {
                    passes = try applyTest(testName, field, Array(args.dropFirst(2)))
                } else {
                    passes = field.isTruthy
                }
                return passes == keep
            })
        case "indent":
            let indentation: String
            switch arg(0, "width") {
            case nil: indentation = "    "
            case .string(let w)?: indentation = w
            case let w?: indentation = try spaces(w.integer ?? 4)
            }
            // Jinja appends a newline so that splitlines() keeps a trailing empty line.
            var lines = pythonSplitLines(text(value) + "\n")
            var result: String
            if arg(2, "blank")?.isTruthy ?? false {
                result = lines.joined(separator: "\n" + indentation)
            } else {
                result = lines.isEmpty ? "" : lines.removeFirst()
                if !lines.isEmpty {
                    result += "\n" + lines.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
                }
            }
            if arg(1, "first")?.isTruthy ?? false { result = indentation + result }
            return .string(result)
        case "safe", "e", "escape", "forceescape":
            if filter.name == "safe" { return value }
            return .string(htmlEscape(text(value)))
        case "wordcount":
            return .int(pythonSplit(text(value), nil, maxSplit: -1).count)
        case "center":
            let width = arg(0, "width")?.integer ?? 80
            let s = text(value)
            let n = s.unicodeScalars.count
            guard width > n else { return .string(s) }
            let total = width - n
            let left = total / 2 + (total & width & 1)
            return .string(try spaces(left) + s + spaces(total - left))
        case "batch", "slice", "groupby", "wordwrap", "truncate", "urlencode", "urlize", "xmlattr", "filesizeformat",
            "pprint", "random", "striptags", "format", "attr":
            throw unsupported("filter '\(filter.name)'")
        default:
            throw unsupported("filter '\(filter.name)'")
        }
    }

    private func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Jinja's sort helpers compare strings case-insensitively unless asked not to.
    private func caseFolded(_ v: JinjaValue) -> JinjaValue {
        if case .string(let s) = v { return .string(s.lowercased()) }
        return v
    }

    // MARK: Tests

    private func applyTest(_ name: String, _ value: JinjaValue, _ args: [JinjaValue]) throws -> Bool {
        func other() throws -> JinjaValue {
            guard let a = args.first else { throw runtime("test '\(name)' needs an argument") }
            return a
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "number":
            switch value {
            case .int, .double, .bool: return true
            default: return false
            }
        case "string": if case .string = value { return true } else { return false }
        case "mapping": if case .dict = value { return true } else { return false }
        case "sequence":
            switch value {
            case .list, .tuple, .string, .dict: return true
            default: return false
            }
        case "iterable":
            switch value {
            case .list, .tuple, .string, .dict: return true
            default: return false
            }
        case "callable":
            switch value {
            case .macro, .builtin, .method: return true
            default: return false
            }
        case "sameas":
            let o = try other()
            switch (value, o) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.int(let a), .int(let b)): return a == b && (-5...256).contains(a)  // CPython's cached small ints
            case (.namespace(let a), .namespace(let b)): return a === b
            default: return false
            }
        case "eq", "equalto", "==": return pythonEquals(value, try other())
        case "ne", "!=": return !pythonEquals(value, try other())
        case "lt", "lessthan", "<": return try compare("<", value, try other())
        case "le", "<=": return try compare("<=", value, try other())
        case "gt", "greaterthan", ">": return try compare(">", value, try other())
        case "ge", ">=": return try compare(">=", value, try other())
        case "in": return try contains(try other(), value)
        case "odd", "even":
            guard let i = value.integer else { throw runtime("test '\(name)' expects an integer") }
            return (i % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard let i = value.integer, let d = try other().integer, d != 0 else { throw runtime("divisibleby expects integers") }
            return i % d == 0
        case "lower":
            let s = value.pythonString
            return s == s.lowercased()
        case "upper":
            let s = value.pythonString
            return s == s.uppercased()
        case "filter", "test", "escaped":
            throw unsupported("test '\(name)'")
        default:
            throw unsupported("test '\(name)'")
        }
    }
}

// MARK: - Python string helpers

/// `str.strip([chars])` and friends; without `chars`, Python whitespace.
func pythonStrip(_ s: String, _ chars: String?, leading: Bool, trailing: Bool) -> String {
    let set = chars.map { Set($0.unicodeScalars) }
    func strips(_ c: Unicode.Scalar) -> Bool { set?.contains(c) ?? isPythonWhitespace(c) }
    let scalars = Array(s.unicodeScalars)
    var lo = 0
    var hi = scalars.count
    if leading { while lo < hi && strips(scalars[lo]) { lo += 1 } }
    if trailing { while hi > lo && strips(scalars[hi - 1]) { hi -= 1 } }
    if lo == 0 && hi == scalars.count { return s }
    var view = String.UnicodeScalarView()
    view.append(contentsOf: scalars[lo..<hi])
    return String(view)
}

/// `str.split(sep, maxsplit)`; without `sep`, runs of whitespace separate and edges are dropped.
func pythonSplit(_ s: String, _ separator: String?, maxSplit: Int) -> [String] {
    let scalars = Array(s.unicodeScalars)
    func string(_ r: Range<Int>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[r])
        return String(view)
    }
    var parts: [String] = []
    guard let separator else {
        var i = 0
        while i < scalars.count {
            while i < scalars.count && isPythonWhitespace(scalars[i]) { i += 1 }
            if i == scalars.count { break }
            if maxSplit >= 0 && parts.count == maxSplit {
                var end = scalars.count
                while end > i && isPythonWhitespace(scalars[end - 1]) { end -= 1 }
                parts.append(string(i..<end))
                return parts
            }
            let start = i
            while i < scalars.count && !isPythonWhitespace(scalars[i]) { i += 1 }
            parts.append(string(start..<i))
        }
        return parts
    }
    let sep = Array(separator.unicodeScalars)
    guard !sep.isEmpty else { return [s] }
    var start = 0
    var i = 0
    while i + sep.count <= scalars.count {
        if (maxSplit < 0 || parts.count < maxSplit) && Array(scalars[i..<(i + sep.count)]) == sep {
            parts.append(string(start..<i))
            i += sep.count
            start = i
        } else {
            i += 1
        }
    }
    parts.append(string(start..<scalars.count))
    return parts
}

/// `str.replace(old, new, count)`.
func pythonReplace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
    if old.isEmpty {
        // Python inserts `new` between every character (and at both ends).
        var out = new
        var n = 0
        for c in s.unicodeScalars {
            out.unicodeScalars.append(c)
            n += 1
            if count < 0 || n < count { out += new }
        }
        return out
    }
    let parts = pythonSplit(s, old, maxSplit: count)
    return parts.joined(separator: new)
}

/// `str.splitlines()`.
func pythonSplitLines(_ s: String) -> [String] {
    var lines: [String] = []
    var current = String.UnicodeScalarView()
    var previousCR = false
    for c in s.unicodeScalars {
        if previousCR && c == "\n" {
            previousCR = false
            continue
        }
        previousCR = c == "\r"
        if [0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029].contains(c.value) {
            lines.append(String(current))
            current = String.UnicodeScalarView()
        } else {
            current.append(c)
        }
    }
    if !current.isEmpty { lines.append(String(current)) }
    return lines
}

/// `str.capitalize()`: first character title-cased, the rest lower-cased.
func pythonCapitalize(_ s: String) -> String {
    guard let first = s.unicodeScalars.first else { return s }
    return first.properties.titlecaseMapping + String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())).lowercased()
}

/// `str.title()`: a cased character after an uncased one starts a word and is title-cased;
/// other cased characters are lower-cased.
func pythonTitle(_ s: String) -> String {
    var out = ""
    var previousCased = false
    for c in s.unicodeScalars {
        out += previousCased ? c.properties.lowercaseMapping : c.properties.titlecaseMapping
        previousCased = c.properties.isCased
    }
    return out
}

/// Jinja's `title` filter: after each run of `-`, whitespace, `(`, `{`, `[` or `<`, the first
/// character upper-cased and the rest of the word lower-cased.
func jinjaTitle(_ s: String) -> String {
    func isSeparator(_ c: Unicode.Scalar) -> Bool { "-({[<".unicodeScalars.contains(c) || isPythonWhitespace(c) }
    var out = ""
    var word = String.UnicodeScalarView()
    var wordIsSeparator = false
    func flush() {
        guard let first = word.first else { return }
        out += String(first).uppercased() + String(String.UnicodeScalarView(word.dropFirst())).lowercased()
        word = String.UnicodeScalarView()
    }
    for c in s.unicodeScalars {
        let separator = isSeparator(c)
        if !word.isEmpty && separator != wordIsSeparator { flush() }
        wordIsSeparator = separator
        word.append(c)
    }
    flush()
    return out
}

/// Python's `round(x, ndigits)` for floats: the exact binary value rounded half to even.
func pythonRound(_ x: Double, _ digits: Int) -> Double {
    guard x.isFinite else { return x }
    if digits == 0 { return x.rounded(.toNearestOrEven) }
    if digits > 0 {
        // printf rounds the exact binary value correctly, as Python's dtoa-based round() does.
        return Double(String(format: "%.\(min(digits, 340))f", x)) ?? x
    }
    let scale = pow(10.0, Double(-digits))
    return (x / scale).rounded(.toNearestOrEven) * scale
}
