/// The syntax tree of a parsed template. Immutable and `Sendable`, so a parsed `ChatTemplate` can
/// be shared; rendering state lives in `JinjaInterpreter`.
enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr, line: Int)
    case ifChain(branches: [(condition: JinjaExpr, body: [JinjaNode])], otherwise: [JinjaNode], line: Int)
    case forLoop(JinjaForLoop)
    case set(target: JinjaTarget, value: JinjaExpr, line: Int)
    case setBlock(target: JinjaTarget, body: [JinjaNode], filters: [JinjaFilterCall], line: Int)
    case macro(JinjaMacroDefinition)
    case filterBlock(filters: [JinjaFilterCall], body: [JinjaNode], line: Int)
    /// `{% generation %}` (transformers' assistant-mask extension): renders its body.
    case generation(body: [JinjaNode])
    case breakLoop(line: Int)
    case continueLoop(line: Int)
}

final class JinjaForLoop: Sendable {
    let target: JinjaTarget
    let iterable: JinjaExpr
    let condition: JinjaExpr?
    let body: [JinjaNode]
    let otherwise: [JinjaNode]
    let line: Int

    init(target: JinjaTarget, iterable: JinjaExpr, condition: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode], line: Int) {
        self.target = target
        self.iterable = iterable
        self.condition = condition
        self.body = body
        self.otherwise = otherwise
        self.line = line
    }
}

final class JinjaMacroDefinition: Sendable {
    let name: String
    let parameters: [(name: String, defaultValue: JinjaExpr?)]
    let body: [JinjaNode]
    let line: Int

    init(name: String, parameters: [(name: String, defaultValue: JinjaExpr?)], body: [JinjaNode], line: Int) {
        self.name = name
        self.parameters = parameters
        self.body = body
        self.line = line
    }
}

/// What `set` and `for` assign to.
enum JinjaTarget: Sendable {
    case name(String)
    /// `ns.attribute` (namespace objects only).
    case attribute(object: String, name: String)
    case tuple([JinjaTarget])
}

struct JinjaFilterCall: Sendable {
    var name: String
    var arguments: JinjaArguments
    var line: Int
}

struct JinjaArguments: Sendable {
    var positional: [JinjaExpr] = []
    var keyword: [(name: String, value: JinjaExpr)] = []
}

enum JinjaExpr: Sendable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case none
    case name(String, line: Int)
    case list([JinjaExpr])
    case tuple([JinjaExpr])
    case dict([(key: JinjaExpr, value: JinjaExpr)])
    indirect case attribute(JinjaExpr, String, line: Int)
    indirect case item(JinjaExpr, JinjaExpr, line: Int)
    indirect case slice(JinjaExpr, start: JinjaExpr?, stop: JinjaExpr?, step: JinjaExpr?, line: Int)
    indirect case call(JinjaExpr, JinjaArguments, line: Int)
    indirect case filter(JinjaExpr, JinjaFilterCall)
    indirect case test(JinjaExpr, name: String, arguments: JinjaArguments, negated: Bool, line: Int)
    indirect case unary(String, JinjaExpr, line: Int)
    indirect case binary(String, JinjaExpr, JinjaExpr, line: Int)
    indirect case and(JinjaExpr, JinjaExpr)
    indirect case or(JinjaExpr, JinjaExpr)
    indirect case not(JinjaExpr)
    /// `a < b <= c`: each operator compares neighbours.
    indirect case compare(JinjaExpr, [(op: String, rhs: JinjaExpr)], line: Int)
    indirect case conditional(condition: JinjaExpr, then: JinjaExpr, otherwise: JinjaExpr?)
    /// `a ~ b ~ c`
    case concat([JinjaExpr], line: Int)
}
