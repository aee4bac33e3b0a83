/// What a generation's text must be, in order: literal pieces, a choice among literals, JSON
/// values of some kinds (`JSONSyntax`), constrained values (`TextPattern`), arrays and
/// string-keyed objects whose members follow a pattern, alternatives told apart by their first
/// byte, and copies of a pattern up to the end of the text. A tool call forced by OpenAI's
/// `tool_choice` is `<tool_call>\n{"name": "` + one of the functions' names + `", "arguments": ` +
/// an object + `}\n</tool_call>`; `response_format` json_object is one object; a `json_schema`
/// is compiled into one (`init(jsonSchema:)`).
public struct OutputPattern: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case literal(String)
        /// One of these strings; none may begin another (so that where one ends is never in doubt).
        case oneOf([String])
        case jsonObject
        /// A JSON value of one of some kinds (its syntax only; a number ends where the next part
        /// begins).
        case json(JSONKinds)
        /// A JSON array written compactly, `[a, b]` (or `[]`), each element following the pattern,
        /// at least `minItems` of them and, when given, at most `maxItems`.
        case array(OutputPattern, minItems: Int = 0, maxItems: Int? = nil)
        /// A JSON object with any string keys written compactly, `{"k": a, "l": b}` (or `{}`),
        /// each value following the pattern.
        case map(OutputPattern)
        /// One of these patterns, chosen by the first byte: no two may begin with the same byte
        /// (`firstBytes`), so that which one is being written is never in doubt. (Alternatives
        /// that begin alike are written as one first: `leftFactored`.)
        case anyOf([OutputPattern])
        /// One JSON value's text as the automaton allows it: a string matching a regular
        /// expression, of some length or in a format; an integer or a number within bounds.
        case text(TextPattern)
        /// One or more copies of the pattern, `separator` between them. The text may end after
        /// any copy (`PatternState.canEnd`: the generation's stop token ends it), so this is the
        /// last part.
        case oneOrMore(OutputPattern, separator: String)
    }

    /// The JSON values a `.json` part reads (an integer: no fraction, no exponent).
    public struct JSONKinds: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let object = JSONKinds(rawValue: 1)
        public static let array = JSONKinds(rawValue: 2)
        public static let string = JSONKinds(rawValue: 4)
        public static let number = JSONKinds(rawValue: 8)
        public static let integer = JSONKinds(rawValue: 16)
        public static let boolean = JSONKinds(rawValue: 32)
        public static let null = JSONKinds(rawValue: 64)
        public static let any: JSONKinds = [.object, .array, .string, .number, .integer, .boolean, .null]

        /// The kinds of value a JSON text beginning with `b` can be (empty for none): numbers and
        /// integers begin alike, so either stands for both.
        static func beginning(with b: UInt8) -> JSONKinds {
            switch b {
            case UInt8(ascii: "{"): .object
            case UInt8(ascii: "["): .array
            case UInt8(ascii: "\""): .string
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): [.number, .integer]
            case UInt8(ascii: "t"), UInt8(ascii: "f"): .boolean
            case UInt8(ascii: "n"): .null
            default: []
            }
        }

        /// These kinds with number and integer joined (they begin alike).
        var byFirstByte: JSONKinds { isDisjoint(with: [.number, .integer]) ? self : union([.number, .integer]) }
    }

    public var parts: [Part]

    public init(_ parts: [Part]) { self.parts = parts }

    public static let jsonObject = OutputPattern([.jsonObject])

    /// Qwen2.5's tool-call block (its chat template's format) calling one of `names`.
    public static func toolCall(oneOf names: [String]) -> OutputPattern {
        OutputPattern([.literal("<tool_call>\n{\"name\": \""), .oneOf(names.map { $0 + "\"" }),
                       .literal(", \"arguments\": "), .jsonObject, .literal("}\n</tool_call>")])
    }

    /// One or more tool-call blocks, each calling one of `names`, on lines of their own (as the
    /// chat template writes an assistant's several `tool_calls`): OpenAI's parallel tool calls.
    public static func toolCalls(oneOf names: [String]) -> OutputPattern {
        OutputPattern([.oneOrMore(toolCall(oneOf: names), separator: "\n")])
    }

    /// The kinds of JSON value the pattern's text can begin as (by its first byte; number and
    /// integer joined), or nil when its first byte is not one that begins a JSON value.
    public var firstKinds: JSONKinds? {
        guard let first = parts.first else { return nil }
        var kinds: JSONKinds = []
        switch first {
        case .literal(let s):
            guard let b = s.utf8.first else { return nil }
            kinds = JSONKinds.beginning(with: b)
        case .oneOf(let choices):
            for choice in choices {
                guard let b = choice.utf8.first else { return nil }
                kinds.formUnion(JSONKinds.beginning(with: b))
            }
        case .jsonObject, .map: kinds = .object
        case .json(let k): kinds = k.byFirstByte
        case .text(let t): kinds = t.kinds.byFirstByte
        case .oneOrMore(let element, _): return element.firstKinds
        case .array: kinds = .array
        case .anyOf(let alternatives):
            for alternative in alternatives {
                guard let k = alternative.firstKinds else { return nil }
                kinds.formUnion(k)
            }
        }
        return kinds.isEmpty ? nil : kinds
    }

    /// The bytes the pattern's text can begin with (a JSON value's by its kinds), or nil when
    /// it reads nothing first (no parts, an empty literal).
    var firstBytes: ByteSet? {
        guard let first = parts.first else { return nil }
        var bytes = ByteSet()
        switch first {
        case .literal(let s):
            guard let b = s.utf8.first else { return nil }
            bytes.insert(b)
        case .oneOf(let choices):
            for choice in choices {
                guard let b = choice.utf8.first else { return nil }
                bytes.insert(b)
            }
        case .jsonObject, .map: bytes.insert(UInt8(ascii: "{"))
        case .array: bytes.insert(UInt8(ascii: "["))
        case .json(let kinds): bytes = ByteSet(beginning: kinds)
        case .text(let t): bytes = ByteSet(beginning: t.kinds)
        case .oneOrMore(let element, _): return element.firstBytes
        case .anyOf(let alternatives):
            for alternative in alternatives {
                guard let b = alternative.firstBytes else { return nil }
                bytes.formUnion(b)
            }
        }
        return bytes.isEmpty ? nil : bytes
    }

    /// `alternatives` as alternatives that begin with different bytes and read the same texts:
    /// those that begin alike become one, their common beginning once and then the alternatives
    /// of what follows it (left factoring: `{"name": "` + `cat"…` or `dog"…`; a union of objects
    /// whose first properties agree, or that differ in a discriminating `const`), so that while a
    /// text is written its next byte always tells which alternative it follows. Nil when that
    /// cannot be done: alternatives that begin alike with parts other than two literals or two
    /// equal parts (an integer and a number, a string and a string of a format), or one that
    /// ends where another goes on.
    public static func leftFactored(_ alternatives: [OutputPattern]) -> [OutputPattern]? {
        let cursors = alternatives.map { Cursor(parts: $0.parts) }
        guard let groups = beginningAlike(cursors) else { return nil }
        var out: [OutputPattern] = []
        for group in groups {
            guard let one = joined(group) else { return nil }
            out.append(one)
        }
        return out
    }

    /// An alternative's parts from a point on: `parts[index...]`, the first of them `literal` when
    /// set (what is left of a literal whose beginning was read in common). Moving on copies no parts.
    private struct Cursor {
        let parts: [Part]
        var index = 0
        var literal: [Unicode.Scalar]?

        init(parts: [Part]) { self.parts = parts }

        var head: Part? {
            if let literal { return .literal(String(String.UnicodeScalarView(literal))) }
            return index < parts.count ? parts[index] : nil
        }
        var rest: [Part] { (head.map { [$0] } ?? []) + parts[min(index + 1, parts.count)...] }
    }

    /// `members` in groups whose first bytes meet (joined transitively), or nil when one reads
    /// nothing first (it ended where another goes on).
    private static func beginningAlike(_ members: [Cursor]) -> [[Cursor]]? {
        var groups: [(bytes: ByteSet, members: [Cursor])] = []
        for member in members {
            guard let head = member.head, let bytes = OutputPattern([head]).firstBytes else { return nil }
            // The groups it meets become one, where the first of them was (groups keep the order
            // of their first members).
            let meeting = groups.indices.filter { !groups[$0].bytes.isDisjoint(with: bytes) }
            var group = (bytes: bytes, members: [Cursor]())
            for g in meeting { group = (group.bytes.union(groups[g].bytes), group.members + groups[g].members) }
            group.members.append(member)
            for g in meeting.reversed() { groups.remove(at: g) }
            groups.insert(group, at: meeting.first ?? groups.count)
        }
        return groups.map(\.members)
    }

    /// Alternatives that begin with a common byte as one pattern (see `leftFactored`): the parts
    /// they begin with alike (the longest common prefix of their literals, or a part they all
    /// begin with), again while they all go on alike, then the alternatives of the rests. A loop
    /// over the common parts that copies none (two objects agreeing on a thousand properties take
    /// linear time and no deeper a stack); a recursion only where the alternatives split into
    /// groups, each of fewer. Equal alternatives go on together to their common end.
    private static func joined(_ group: [Cursor]) -> OutputPattern? {
        if group.count == 1 { return OutputPattern(group[0].rest) }
        var members = group, common: [Part] = []
        func append(_ part: Part) {
            if case .literal(let b) = part, case .literal(let a)? = common.last {
                common[common.count - 1] = .literal(a + b)
            } else {
                common.append(part)
            }
        }
        while true {
            let heads = members.compactMap(\.head)
            guard heads.count == members.count else { return nil }
            let literals = heads.compactMap { if case .literal(let s) = $0 { Array(s.unicodeScalars) } else { nil } }
            if literals.count == heads.count {
                var n = 0
                while literals.allSatisfy({ n < $0.count && $0[n] == literals[0][n] }) { n += 1 }
                guard n > 0 else { return nil }   // different characters sharing a first byte
                append(.literal(String(String.UnicodeScalarView(literals[0][..<n]))))
                for i in members.indices {
                    if n < literals[i].count {
                        members[i].literal = Array(literals[i][n...])
                    } else {
                        members[i].literal = nil
                        members[i].index += 1
                    }
                }
            } else if heads.allSatisfy({ $0 == heads[0] }) {
                // A part that may end the text (`.oneOrMore`) comes last: nothing to tell apart after it.
                if case .oneOrMore = heads[0] { return nil }
                append(heads[0])
                for i in members.indices {
                    members[i].literal = nil
                    members[i].index += 1
                }
            } else {
                return nil
            }
            if members.allSatisfy({ $0.head == nil }) { return OutputPattern(common) }
            guard let groups = beginningAlike(members) else { return nil }
            if groups.count == 1 {
                members = groups[0]
                continue
            }
            var alternatives: [OutputPattern] = []
            for g in groups {
                guard let one = joined(g) else { return nil }
                alternatives.append(one)
            }
            return OutputPattern(common + [.anyOf(alternatives)])
        }
    }

    /// The most steps a pattern may compile to (`PatternProgram`: bounded arrays are written out
    /// element by element, so nesting multiplies them).
    public static let maxSteps = 100_000

    /// The steps the pattern compiles to, or `maxSteps + 1` when more.
    var stepCount: Int {
        let over = Self.maxSteps + 1
        func add(_ a: Int, _ b: Int) -> Int { min(over, a + b) }
        func times(_ a: Int, _ n: Int) -> Int { a == 0 || n <= over / a ? min(over, a * n) : over }
        var total = 0
        for part in parts {
            switch part {
            case .literal, .oneOf, .jsonObject, .json, .text: total = add(total, 1)
            case .array(let element, let minItems, let maxItems):
                if maxItems == 0 { total = add(total, 1); continue }
                let each = element.stepCount, written = max(minItems, 1)
                total = add(total, add(3, times(add(each, 1), written)))
                if let maxItems { total = add(total, times(add(each, 1), max(0, maxItems - written))) }
            case .map(let value): total = add(total, add(5, value.stepCount))
            case .oneOrMore(let element, _): total = add(total, add(element.stepCount, 1))
            case .anyOf(let alternatives):
                total = add(total, 1)
                for alternative in alternatives { total = add(total, add(alternative.stepCount, 1)) }
            }
        }
        return total
    }

    /// Why the pattern cannot be followed, or nil: an empty literal or choice, more than 64
    /// choices, a choice that begins another, an empty array or object member pattern,
    /// alternatives that can begin alike, or more than `maxSteps` steps.
    public var problem: String? {
        if stepCount > Self.maxSteps { return "the pattern would take more than \(Self.maxSteps) steps (nested item counts?)" }
        return partProblem
    }

    private var partProblem: String? {
        for (i, part) in parts.enumerated() {
            switch part {
            case .literal(let s):
                if s.isEmpty { return "an empty literal" }
            case .oneOf(let choices):
                if choices.isEmpty { return "a choice of no strings" }
                if choices.count > 64 { return "a choice of \(choices.count) strings (at most 64)" }
                for a in choices where a.isEmpty { return "an empty string among choices" }
                for (i, a) in choices.enumerated() {
                    for (j, b) in choices.enumerated() where i != j && b.utf8.starts(with: a.utf8) {
                        return "'\(a)' begins '\(b)'"
                    }
                }
            case .array(let element, let minItems, let maxItems):
                if element.parts.isEmpty { return "an array whose elements are empty" }
                if minItems < 0 || (maxItems ?? minItems) < minItems {
                    return "an array of \(minItems) to \(maxItems.map(String.init) ?? "any") elements"
                }
                if let problem = element.partProblem { return problem }
            case .map(let value):
                if value.parts.isEmpty { return "an object whose values are empty" }
                if let problem = value.partProblem { return problem }
            case .anyOf(let alternatives):
                if alternatives.isEmpty { return "a choice of no patterns" }
                var seen = ByteSet()
                for alternative in alternatives {
                    if let problem = alternative.partProblem { return problem }
                    guard let bytes = alternative.firstBytes else { return "an alternative that reads nothing first" }
                    if !seen.isDisjoint(with: bytes) { return "two alternatives can begin with the same byte" }
                    seen.formUnion(bytes)
                }
            case .text(let t):
                if !t.automaton.acceptsSomething { return "a text pattern that no text follows" }
            case .oneOrMore(let element, let separator):
                if i != parts.count - 1 { return "copies that may end the text before the parts after them" }
                if element.parts.isEmpty || separator.isEmpty { return "an empty copy or separator" }
                if element.parts.contains(where: { if case .oneOrMore = $0 { true } else { false } }) {
                    return "copies of copies"
                }
                if let problem = element.partProblem { return problem }
            case .jsonObject, .json: break
            }
        }
        return nil
    }
}

/// `OutputPattern` compiled into steps read one byte at a time (shared by every state): the
/// parts in order, arrays and objects as loops, alternatives as a branch on the first byte.
final class PatternProgram: Sendable {
    enum Step: Sendable {
        case literal([UInt8])
        case oneOf([[UInt8]])
        case json(OutputPattern.JSONKinds)
        /// A text the automaton (in `automata`, from its state `start` on) accepts, and, for a
        /// string of lengths alone, whose characters the counter allows: it ends in an accepting
        /// state with no moves left, or at the first byte it cannot read from an accepting state
        /// (which the next step reads).
        case text(start: Int, lengths: CharacterCount?)
        /// After a container's opening byte: `close` ends it (then on at `exit`); any other byte
        /// begins its first member (the next step).
        case firstOrClose(close: UInt8, exit: Int)
        /// After a member: `, ` and the next member (at `member`), or `close` (then on at `exit`).
        case nextOrClose(close: UInt8, member: Int, exit: Int)
        /// The alternative whose first bytes hold the byte (at its step).
        case select([(bytes: ByteSet, at: Int)])
        /// On at `to`, reading nothing (an alternative's end).
        case jump(Int)
        /// After a copy of `.oneOrMore`: the text may end here, or `separator` and the next copy
        /// (at `copy`) follow.
        case moreOrEnd(separator: [UInt8], copy: Int)
    }
    let steps: [Step]

    /// The `.text` steps' automata, end to end.
    let automata: AutomatonTable

    init(_ pattern: OutputPattern) {
        var steps: [Step] = [], texts: [ByteAutomaton] = []
        Self.compile(pattern, into: &steps, texts: &texts)
        self.steps = steps
        automata = AutomatonTable(texts)
    }

    deinit { automata.deallocate() }

    private static func compile(_ pattern: OutputPattern, into steps: inout [Step], texts: inout [ByteAutomaton]) {
        for part in pattern.parts {
            switch part {
            case .literal(let s): steps.append(.literal(Array(s.utf8)))
            case .oneOf(let choices): steps.append(.oneOf(choices.map { Array($0.utf8) }))
            case .jsonObject: steps.append(.json(.object))
            case .json(let kind): steps.append(.json(kind))
            case .oneOrMore(let element, let separator):
                let copy = steps.count
                compile(element, into: &steps, texts: &texts)
                steps.append(.moreOrEnd(separator: Array(separator.utf8), copy: copy))
            case .text(let t):
                // Unrolled copies of one pattern share one automaton (their arrays compare at once).
                var start = 0
                if let i = texts.firstIndex(of: t.automaton) {
                    start = texts[..<i].reduce(0) { $0 + $1.stateCount }
                } else {
                    start = texts.reduce(0) { $0 + $1.stateCount }
                    texts.append(t.automaton)
                }
                steps.append(.text(start: start, lengths: t.lengths))
            case .array(let element, let minItems, let maxItems):
                container(open: "[", close: "]", minItems: minItems, maxItems: maxItems, into: &steps) { steps in
                    compile(element, into: &steps, texts: &texts)
                }
            case .map(let value):
                container(open: "{", close: "}", into: &steps) { steps in
                    steps.append(.json(.string))
                    steps.append(.literal(Array(": ".utf8)))
                    compile(value, into: &steps, texts: &texts)
                }
            case .anyOf(let alternatives):
                let select = steps.count
                steps.append(.select([]))
                var targets: [(bytes: ByteSet, at: Int)] = []
                var jumps: [Int] = []
                for alternative in alternatives {
                    targets.append((alternative.firstBytes ?? ByteSet(), steps.count))
                    compile(alternative, into: &steps, texts: &texts)
                    jumps.append(steps.count)
                    steps.append(.jump(0))
                }
                steps[select] = .select(targets)
                for i in jumps { steps[i] = .jump(steps.count) }
            }
        }
    }

    /// `open`, the members (`member` appends one's steps) separated by `, `, `close`: the first
    /// `minItems` in a row, then (without `maxItems`) a loop back to the last of them, or (with
    /// it) each further one unrolled behind a branch to the end. Arrays and maps alike.
    private static func container(open: Character, close: Character, minItems: Int = 0, maxItems: Int? = nil,
                                  into steps: inout [Step], member: (inout [Step]) -> Void) {
        let (open, close) = (open.asciiValue!, close.asciiValue!)
        if maxItems == 0 {
            steps.append(.literal([open, close]))
            return
        }
        steps.append(.literal([open]))
        var exits: [Int] = []   // branches whose `close` ends the container
        if minItems == 0 {
            exits.append(steps.count)
            steps.append(.firstOrClose(close: close, exit: 0))
        }
        var last = steps.count   // where the last member written in a row begins
        for i in 0..<max(minItems, 1) {
            if i > 0 { steps.append(.literal(Array(", ".utf8))) }
            last = steps.count
            member(&steps)
        }
        if let maxItems {
            for _ in max(minItems, 1)..<maxItems {
                exits.append(steps.count)
                steps.append(.nextOrClose(close: close, member: steps.count + 1, exit: 0))
                member(&steps)
            }
            steps.append(.literal([close]))
        } else {
            // More members: the last one's steps again (no second copy of them).
            steps.append(.nextOrClose(close: close, member: last, exit: steps.count + 1))
        }
        for i in exits {
            switch steps[i] {
            case .firstOrClose(let c, _): steps[i] = .firstOrClose(close: c, exit: steps.count)
            case .nextOrClose(let c, let member, _): steps[i] = .nextOrClose(close: c, member: member, exit: steps.count)
            default: break
            }
        }
    }
}

/// Where a generation is in its `OutputPattern`: complete once every step has been read.
struct PatternState: ByteConstraint {
    unowned(unsafe) let program: PatternProgram
    private var step = 0
    private var offset = 0
    /// The choices of a `oneOf` step still matching (bit i: choice i).
    private var alive: UInt64 = 0
    private var json = JSONSyntax()
    /// The characters of a `.text` string with lengths.
    private var counter = CharacterCounter(CharacterCount())

    init(_ program: PatternProgram) {
        self.program = program
        go(to: 0)
    }

    var isComplete: Bool { step == program.steps.count }
    /// A key for states whose vocabulary mask depends on it alone, or nil: inside a `.text`
    /// step without a counter, where the step and the automaton's state decide every byte to
    /// come (later steps start afresh), so a generation can keep the mask it walked once.
    var maskKey: Int? {
        guard step < program.steps.count, case .text(_, nil) = program.steps[step] else { return nil }
        return step << 32 | offset
    }

    /// The text may end here: every step read, or a copy of `.oneOrMore` read and no separator
    /// begun.
    var canEnd: Bool {
        guard step < program.steps.count else { return true }
        if case .moreOrEnd = program.steps[step] { return offset == 0 }
        return false
    }
    var stringCharacterRoom: Int? {
        guard step < program.steps.count else { return nil }
        switch program.steps[step] {
        case .json: return json.stringCharacterRoom
        case .text(_, let lengths?):
            // A string of lengths alone (any characters): room up to its maximum.
            return counter.isBetweenCharacters ? (lengths.maximum ?? .max) - counter.count : nil
        default: return nil
        }
    }

    mutating func accept(_ b: UInt8) -> Bool {
        guard step < program.steps.count else { return false }
        switch program.steps[step] {
        case .literal(let bytes):
            guard bytes[offset] == b else { return false }
            offset += 1
            if offset == bytes.count { go(to: step + 1) }
        case .oneOf(let choices):
            var still: UInt64 = 0, ended = false
            for (i, choice) in choices.enumerated() where alive >> i & 1 == 1 && choice[offset] == b {
                still |= 1 << i
                if choice.count == offset + 1 { ended = true }
            }
            guard still != 0 else { return false }
            alive = still
            offset += 1
            if ended { go(to: step + 1) }
        case .json:
            let before = json
            // A number ends at the first byte not part of it, which the next step then reads (not
            // the value's own syntax, which would let whitespace follow a finished number).
            guard json.accept(b), !(before.canEndNumber && json.isComplete) else {
                guard before.canEndNumber else { return false }
                go(to: step + 1)
                return accept(b)
            }
            if json.isComplete { go(to: step + 1) }
        case .text(_, let lengths):
            // `offset` is the state in `program.automata`.
            let automata = program.automata
            guard let next = automata.next(offset, b) else {
                guard automata.isAccepting(offset) else { return false }
                go(to: step + 1)
                return accept(b)
            }
            if lengths != nil { guard counter.read(b) else { return false } }
            offset = next
            if automata.isAccepting(next) && !automata.hasMoves(next) { go(to: step + 1) }
        case .firstOrClose(let close, let exit):
            if b == close {
                go(to: exit)
                return true
            }
            go(to: step + 1)
            return accept(b)
        case .nextOrClose(let close, let member, let exit):
            if offset == 1 {
                guard b == UInt8(ascii: " ") else { return false }
                go(to: member)
            } else if b == UInt8(ascii: ",") {
                offset = 1
            } else {
                guard b == close else { return false }
                go(to: exit)
            }
        case .select(let alternatives):
            guard let alternative = alternatives.first(where: { $0.bytes.contains(b) }) else { return false }
            go(to: alternative.at)
            return accept(b)
        case .moreOrEnd(let separator, let copy):
            guard separator[offset] == b else { return false }
            offset += 1
            if offset == separator.count { go(to: copy) }
        case .jump:
            preconditionFailure("go(to:) passes jumps")
        }
        return true
    }

    /// Moves to step `i` (past any jumps) and sets up what it reads.
    private mutating func go(to i: Int) {
        step = i
        while step < program.steps.count, case .jump(let target) = program.steps[step] { step = target }
        offset = 0
        guard step < program.steps.count else { return }
        switch program.steps[step] {
        case .oneOf(let choices): alive = choices.count >= 64 ? ~0 : (1 << UInt64(choices.count)) - 1
        case .json(let kind): json = JSONSyntax(kind)
        case .text(let start, let lengths):
            offset = start
            if let lengths { counter = CharacterCounter(lengths) }
        default: break
        }
    }
}

/// A set of bytes: 256 bits.
struct ByteSet: Equatable, Sendable {
    private var words: [UInt64] = [0, 0, 0, 0]

    init() {}

    /// The bytes a JSON value of one of `kinds` can begin with (`JSONKinds.beginning(with:)`).
    init(beginning kinds: OutputPattern.JSONKinds) {
        for b in 0...UInt8.max where !OutputPattern.JSONKinds.beginning(with: b).isDisjoint(with: kinds) { insert(b) }
    }

    mutating func insert(_ b: UInt8) { words[Int(b >> 6)] |= 1 << UInt64(b & 63) }
    func contains(_ b: UInt8) -> Bool { words[Int(b >> 6)] >> UInt64(b & 63) & 1 == 1 }
    var isEmpty: Bool { words.allSatisfy { $0 == 0 } }
    func union(_ other: ByteSet) -> ByteSet {
        var out = self
        out.formUnion(other)
        return out
    }
    mutating func formUnion(_ other: ByteSet) { for i in 0..<4 { words[i] |= other.words[i] } }
    func isDisjoint(with other: ByteSet) -> Bool { (0..<4).allSatisfy { words[$0] & other.words[$0] == 0 } }
}
