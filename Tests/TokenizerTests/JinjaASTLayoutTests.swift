import Testing

@testable import Tokenizer

/// LeakSanitizer decides what is still reachable by scanning memory for pointers. A Swift
/// multi-payload enum may keep its case tag in the spare high bits of a pointer payload; a node
/// reached only through such a tagged pointer looks leaked. That was the "10.6 KB in 228
/// allocations from JinjaParser" report: the Qwen template held by a test-wide `static let`,
/// every box behind a tagged `indirect enum` pointer (no reference cycle; the same memory was
/// freed as soon as its last owner went away). The AST now keeps tags out of pointer words (only
/// the recursive `JinjaExpr` cases are `indirect`, so inline `Int` payloads leave no common spare
/// bits; `JinjaNode` is not indirect; a for loop is a class). This test checks that on a parse
/// tree holding every node and expression kind, so that a layout change cannot silently bring
/// the false report (and with it the noise that hides real leaks) back.
@Suite struct JinjaASTLayoutTests {
    /// Bits Swift may use for enum tags in a heap pointer (x86_64: top byte and low 3 bits;
    /// arm64: top nibble and low 3 bits): the intersection that both platforms fill first.
    static let tagBits: UInt = 0xF000_0000_0000_0007

    static let template = """
        {% macro m(a, b=1) %}{{ a }}{% endmacro %}\
        {% for x, y in items if x %}{{ x.a[0][1:2] ~ y | upper }}{% if x %}{% break %}{% endif %}\
        {% continue %}{% else %}e{% endfor %}\
        {% if a is defined and not b or -c < d <= e %}{{ f(1, k=2) }}{% elif g in [1, 2] %}{{ {"a": 1} }}\
        {% else %}{{ (1, 2.5, none, true, 'x') }}{% endif %}\
        {% set ns.x = 1 if a else 2 %}{% set y | trim %}body{% endset %}{% filter upper %}t{% endfilter %}\
        {% generation %}g{% endgeneration %}{{ 2 ** 3 * 4 + 1 }}
        """

    private func words<T>(_ value: T) -> [UInt] {
        withUnsafeBytes(of: value) { raw in
            (0..<raw.count / 8).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt.self) }
        }
    }

    private func address<T>(_ array: [T]) -> UInt { withUnsafeBytes(of: array) { $0.load(as: UInt.self) } }
    private func address(_ object: AnyObject) -> UInt { UInt(bitPattern: Unmanaged.passUnretained(object).toOpaque()) }

    private final class Visit {
        var nodeKinds: Set<String> = []
        var exprKinds: Set<String> = []
        var untagged = 0
    }

    /// `holder` must contain `pointer` bit for bit (not a tagged copy of it).
    private func expectUntagged<T>(_ pointer: UInt, in holder: T, _ what: String, _ visit: Visit) {
        #expect(pointer & Self.tagBits == 0, "\(what): the pointer itself carries tag bits")
        #expect(words(holder).contains(pointer), "\(what): stored with tag bits (\(words(holder)))")
        visit.untagged += 1
    }

    private func check(_ nodes: [JinjaNode], _ visit: Visit) {
        for node in nodes {
            switch node {
            case .text:
                visit.nodeKinds.insert("text")
            case .output(let e, _):
                visit.nodeKinds.insert("output")
                checkEmbedded(e, in: node, visit)
            case .ifChain(let branches, let otherwise, _):
                visit.nodeKinds.insert("if")
                expectUntagged(address(branches), in: node, "if branches", visit)
                expectUntagged(address(otherwise), in: node, "if otherwise", visit)
                for b in branches {
                    check(b.condition, visit)
                    check(b.body, visit)
                }
                check(otherwise, visit)
            case .forLoop(let loop):
                visit.nodeKinds.insert("for")
                expectUntagged(address(loop), in: node, "for", visit)
                check(loop.iterable, visit)
                if let c = loop.condition { check(c, visit) }
                check(loop.body, visit)
                check(loop.otherwise, visit)
            case .set(_, let e, _):
                visit.nodeKinds.insert("set")
                checkEmbedded(e, in: node, visit)
            case .setBlock(_, let body, let filters, _):
                visit.nodeKinds.insert("setBlock")
                expectUntagged(address(body), in: node, "set block body", visit)
                expectUntagged(address(filters), in: node, "set block filters", visit)
                check(body, visit)
            case .macro(let m):
                visit.nodeKinds.insert("macro")
                expectUntagged(address(m), in: node, "macro", visit)
                check(m.body, visit)
            case .filterBlock(let filters, let body, _):
                visit.nodeKinds.insert("filterBlock")
                expectUntagged(address(filters), in: node, "filter block filters", visit)
                expectUntagged(address(body), in: node, "filter block body", visit)
                check(body, visit)
            case .generation(let body):
                visit.nodeKinds.insert("generation")
                expectUntagged(address(body), in: node, "generation body", visit)
                check(body, visit)
            case .breakLoop:
                visit.nodeKinds.insert("break")
            case .continueLoop:
                visit.nodeKinds.insert("continue")
            }
        }
    }

    /// An expression stored inside a node: its pointer word must survive unchanged there.
    private func checkEmbedded(_ e: JinjaExpr, in node: JinjaNode, _ visit: Visit) {
        if let pointer = pointerWord(e) { expectUntagged(pointer, in: node, "expression in a node", visit) }
        check(e, visit)
    }

    /// The first word of an expression whose payload is a box or an array.
    private func pointerWord(_ e: JinjaExpr) -> UInt? {
        switch e {
        case .string, .integer, .float, .boolean, .none, .name: return nil
        default: return words(e)[0]
        }
    }

    private func check(_ e: JinjaExpr, _ visit: Visit) {
        func box(_ kind: String) {
            visit.exprKinds.insert(kind)
            let word = words(e)[0]
            #expect(word != 0 && word & Self.tagBits == 0, "\(kind): box pointer \(word) carries tag bits")
            visit.untagged += 1
        }
        func array<T>(_ kind: String, _ items: [T]) {
            visit.exprKinds.insert(kind)
            expectUntagged(address(items), in: e, kind, visit)
        }
        switch e {
        case .string: visit.exprKinds.insert("string")
        case .integer: visit.exprKinds.insert("integer")
        case .float: visit.exprKinds.insert("float")
        case .boolean: visit.exprKinds.insert("boolean")
        case .none: visit.exprKinds.insert("none")
        case .name: visit.exprKinds.insert("name")
        case .list(let items):
            array("list", items)
            items.forEach { check($0, visit) }
        case .tuple(let items):
            array("tuple", items)
            items.forEach { check($0, visit) }
        case .dict(let pairs):
            array("dict", pairs)
            pairs.forEach { check($0.key, visit); check($0.value, visit) }
        case .concat(let items, _):
            array("concat", items)
            items.forEach { check($0, visit) }
        case .attribute(let o, _, _):
            box("attribute")
            check(o, visit)
        case .item(let o, let i, _):
            box("item")
            check(o, visit)
            check(i, visit)
        case .slice(let o, let a, let b, let c, _):
            box("slice")
            check(o, visit)
            for x in [a, b, c] { if let x { check(x, visit) } }
        case .call(let f, let args, _):
            box("call")
            check(f, visit)
            args.positional.forEach { check($0, visit) }
            args.keyword.forEach { check($0.value, visit) }
        case .filter(let o, _):
            box("filter")
            check(o, visit)
        case .test(let o, _, _, _, _):
            box("test")
            check(o, visit)
        case .unary(_, let o, _):
            box("unary")
            check(o, visit)
        case .binary(_, let l, let r, _):
            box("binary")
            check(l, visit)
            check(r, visit)
        case .and(let l, let r):
            box("and")
            check(l, visit)
            check(r, visit)
        case .or(let l, let r):
            box("or")
            check(l, visit)
            check(r, visit)
        case .not(let o):
            box("not")
            check(o, visit)
        case .compare(let l, let ops, _):
            box("compare")
            check(l, visit)
            ops.forEach { check($0.rhs, visit) }
        case .conditional(let c, let t, let o):
            box("conditional")
            check(c, visit)
            check(t, visit)
            if let o { check(o, visit) }
        }
    }

    @Test func caseTagsStayOutOfPointerWords() throws {
        let visit = Visit()
        check(try JinjaParser.parse(Self.template), visit)
        // The template must reach every kind, or the check proves less than it says.
        #expect(visit.nodeKinds == [
            "text", "output", "if", "for", "set", "setBlock", "macro", "filterBlock", "generation", "break", "continue",
        ])
        #expect(visit.exprKinds == [
            "string", "integer", "float", "boolean", "none", "name", "list", "tuple", "dict", "concat", "attribute",
            "item", "slice", "call", "filter", "test", "unary", "binary", "and", "or", "not", "compare", "conditional",
        ])
        #expect(visit.untagged >= 30)
    }
}
