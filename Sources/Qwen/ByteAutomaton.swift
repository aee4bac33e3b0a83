/// Sets of Unicode scalar values as sorted, disjoint, non-touching closed ranges (surrogate code
/// points are never members: they are not scalars and have no UTF-8 form).
struct ScalarSet: Equatable, Sendable {
    private(set) var ranges: [ClosedRange<UInt32>]

    init(_ ranges: [ClosedRange<UInt32>]) {
        var pieces: [ClosedRange<UInt32>] = []
        for r in ranges where r.lowerBound <= 0x10FFFF {
            let r = r.lowerBound...min(r.upperBound, 0x10FFFF)
            if r.lowerBound < 0xD800 { pieces.append(r.lowerBound...min(r.upperBound, 0xD7FF)) }
            if r.upperBound > 0xDFFF { pieces.append(max(r.lowerBound, 0xE000)...r.upperBound) }
        }
        pieces.sort { $0.lowerBound < $1.lowerBound }
        var out: [ClosedRange<UInt32>] = []
        for piece in pieces {
            if let last = out.last, piece.lowerBound <= last.upperBound + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, piece.upperBound)
            } else {
                out.append(piece)
            }
        }
        self.ranges = out
    }

    init(_ scalars: ClosedRange<Unicode.Scalar>) { self.init([scalars.lowerBound.value...scalars.upperBound.value]) }
    init(_ scalar: Unicode.Scalar) { self.init([scalar.value...scalar.value]) }

    static let all = ScalarSet([0...0x10FFFF])
    static let none = ScalarSet([])

    func union(_ other: ScalarSet) -> ScalarSet { ScalarSet(ranges + other.ranges) }

    /// Every scalar not in the set.
    var inverted: ScalarSet {
        var out: [ClosedRange<UInt32>] = [], next: UInt32 = 0
        for r in ranges {
            if r.lowerBound > next { out.append(next...r.lowerBound - 1) }
            next = r.upperBound + 1
        }
        if next <= 0x10FFFF { out.append(next...0x10FFFF) }
        return ScalarSet(out)
    }

    func intersection(_ other: ScalarSet) -> ScalarSet { inverted.union(other.inverted).inverted }
    func subtracting(_ other: ScalarSet) -> ScalarSet { intersection(other.inverted) }
}

/// A regular language over Unicode scalars, as the pattern compilers build it.
indirect enum RegexNode: Sendable {
    /// One scalar of the set.
    case set(ScalarSet)
    case sequence([RegexNode])
    case choice([RegexNode])
    /// `min` to `max` (nil: any number of) copies in a row.
    case repeated(RegexNode, min: Int, max: Int?)

    static func literal(_ s: String) -> RegexNode { .sequence(s.unicodeScalars.map { .set(ScalarSet($0)) }) }
    static let empty = RegexNode.sequence([])

    /// An upper estimate of the NFA states the node builds (saturating), to refuse nested counts
    /// before building them.
    var estimatedStates: Int {
        let cap = 1 << 40
        switch self {
        case .set(let set): return 8 + 4 * set.ranges.count
        case .sequence(let items), .choice(let items): return min(cap, items.reduce(1) { $0 + $1.estimatedStates })
        case .repeated(let item, let min, let max):
            return Swift.min(cap, item.estimatedStates * ((max ?? min) + 1) + 1)
        }
    }
}

/// How a `RegexNode`'s scalars are written as bytes.
enum ScalarEncoding: Sendable {
    /// UTF-8 (the compilers use it for ASCII-only languages: integers).
    case utf8
    /// A JSON string, the node's text between quotes (which the automaton adds) as
    /// `json.dumps(ensure_ascii=False)` writes it: `"` and `\` escaped, control characters as
    /// `\b \t \n \f \r` or `\u00xx`, everything else in UTF-8. One text per string, so that a
    /// mask over the vocabulary never doubts where a character ends.
    case jsonString
}

/// A deterministic automaton over bytes, each state's moves as sorted, disjoint byte ranges.
/// Built from a `RegexNode` (Thompson's construction, then subsets), and intersected with another.
struct ByteAutomaton: Equatable, Sendable {
    struct Failure: Error, Sendable { let reason: String }

    /// The most states one automaton may have (both while building and as the result).
    static let maxStates = 60_000
    /// The most work (NFA states in the subsets built, byte intervals filled) one
    /// determinization may take: a pattern whose automaton would take longer to build (a long
    /// alternation searched for anywhere, say) is refused rather than stall its request.
    static let maxWork = 5_000_000

    /// For state s: moves first[s] ..< first[s + 1] of lo, hi and target.
    private(set) var first: [Int32] = [0]
    private(set) var lo: [UInt8] = []
    private(set) var hi: [UInt8] = []
    private(set) var target: [Int32] = []
    private(set) var accepting: [Bool] = []
    /// State 0 begins.
    var stateCount: Int { accepting.count }
    var moveCount: Int { lo.count }

    /// State `state`'s moves as (first byte, last byte, target).
    func moves(of state: Int) -> [(UInt8, UInt8, Int)] {
        (Int(first[state])..<Int(first[state + 1])).map { (lo[$0], hi[$0], Int(target[$0])) }
    }

    /// Whether the automaton reads `bytes` whole and ends in an accepting state (through a
    /// table of its own: a check, not a reader's path).
    func accepts<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        let table = AutomatonTable([self])
        defer { table.deallocate() }
        var s = 0
        for b in bytes {
            guard let n = table.next(s, b) else { return false }
            s = n
        }
        return table.isAccepting(s)
    }

    /// Whether any text is accepted (an accepting state can be reached).
    var acceptsSomething: Bool {
        var seen = [Bool](repeating: false, count: stateCount), stack = [0]
        seen[0] = true
        while let s = stack.popLast() {
            if accepting[s] { return true }
            for i in Int(first[s])..<Int(first[s + 1]) where !seen[Int(target[i])] {
                seen[Int(target[i])] = true
                stack.append(Int(target[i]))
            }
        }
        return false
    }

    private mutating func addState(moves: [(lo: UInt8, hi: UInt8, to: Int)], accepting a: Bool) {
        for m in moves {
            lo.append(m.lo)
            hi.append(m.hi)
            target.append(Int32(m.to))
        }
        first.append(Int32(lo.count))
        accepting.append(a)
    }

    init(_ node: RegexNode, encoding: ScalarEncoding) throws(Failure) {
        guard node.estimatedStates <= NFA.maxStates else {
            throw Failure(reason: "it needs more than \(NFA.maxStates) states before determinizing (counts too large?)")
        }
        var nfa = NFA()
        let end = try nfa.state()
        if case .jsonString = encoding {
            // `"` + the node's text + `"`.
            let (open, close) = (try nfa.state(), try nfa.state())
            nfa.edges[0].append(NFA.Edge(lo: 0x22, hi: 0x22, to: Int32(open)))
            try nfa.build(node, from: open, to: close, encoding: encoding)
            nfa.edges[close].append(NFA.Edge(lo: 0x22, hi: 0x22, to: Int32(end)))
        } else {
            try nfa.build(node, from: 0, to: end, encoding: encoding)
        }
        try self.init(determinizing: nfa, accepting: end)
    }

    /// The JSON strings `a` accepts whose characters number as `lengths` asks: states of `a`
    /// paired with a `CharacterCounter`, as far as they are reached.
    init(intersecting a: ByteAutomaton, _ lengths: CharacterCount) throws(Failure) {
        struct Key: Hashable { var a: Int, counter: CharacterCounter }
        try self.init(exploring: Key(a: 0, counter: CharacterCounter(lengths)), moves: { key in
            var moves: [(lo: UInt8, hi: UInt8, to: Key)] = []
            for i in Int(a.first[key.a])..<Int(a.first[key.a + 1]) {
                // The counter moves alike on bytes of one class; split a range where it changes.
                var b = Int(a.lo[i])
                while b <= Int(a.hi[i]) {
                    let end = min(Int(a.hi[i]), CharacterCounter.classEnd(UInt8(b)))
                    var counter = key.counter
                    if counter.read(UInt8(b)) { moves.append((UInt8(b), UInt8(end), Key(a: Int(a.target[i]), counter: counter))) }
                    b = end + 1
                }
            }
            return moves
        }, accepting: { key in a.accepting[key.a] && key.counter.isComplete },
           overflow: "with its lengths it needs more than \(Self.maxStates) automaton states")
    }

    /// The automaton whose states are the keys reached from `start` through `moves` (a key's
    /// moves as byte ranges in increasing order, each to a key), accepting where `accepting` says;
    /// pruned of the states from which nothing can end.
    init<Key: Hashable>(exploring start: Key, moves: (Key) -> [(lo: UInt8, hi: UInt8, to: Key)],
                        accepting: (Key) -> Bool, overflow: String) throws(Failure) {
        var states = try StateNumbering(start: start, overflow: overflow)
        while let key = states.nextToBuild() {
            var numbered: [(lo: UInt8, hi: UInt8, to: Int)] = []
            for m in moves(key) { numbered.append((m.lo, m.hi, try states.id(m.to))) }
            addState(moves: Self.joined(numbered), accepting: accepting(key))
        }
        self = self.pruned()
    }

    /// The texts of decimal numbers (an optional `-`, digits, an optional `.` and digits; any
    /// syntax beyond that is left to the automaton this one is intersected with) whose value is
    /// a whole multiple of `p` / 10^`k`: the digits read as one integer are tracked modulo `p`,
    /// and past `k` fraction digits only zeros may follow. At most `p` × (`k` + 5) states.
    init(decimalMultiplesOf p: Int, fractionDigits k: Int) throws(Failure) {
        precondition(p > 0 && k >= 0)
        // powers[i] = 10^i mod p, i ≤ k: a value with j ≤ k fraction digits is a multiple
        // when its digits' integer times 10^(k - j) is one of p.
        var powers = [1 % p]
        for _ in 0..<k { powers.append(powers.last! * 10 % p) }
        let digits = UInt8(ascii: "0")
        try self.init(exploring: DecimalDigits.start, moves: { state in
            func digit(_ d: Int, _ next: DecimalDigits.Phase) -> (lo: UInt8, hi: UInt8, to: DecimalDigits) {
                (digits + UInt8(d), digits + UInt8(d), DecimalDigits(phase: next, remainder: (state.remainder * 10 + d) % p))
            }
            switch state.phase {
            case .start:
                return [(0x2D, 0x2D, DecimalDigits(phase: .signed, remainder: 0))] + (0...9).map { digit($0, .integer) }
            case .signed:
                return (0...9).map { digit($0, .integer) }
            case .integer:
                return [(0x2E, 0x2E, DecimalDigits(phase: .fraction(0), remainder: state.remainder))]
                    + (0...9).map { digit($0, .integer) }
            case .fraction(let j) where j < k:
                return (0...9).map { digit($0, .fraction(j + 1)) }
            case .fraction(let j):
                // Past the multiple's own fraction digits: trailing zeros, the value unchanged.
                return [(digits, digits, DecimalDigits(phase: .fraction(min(j + 1, k + 1)), remainder: state.remainder))]
            }
        }, accepting: { state in
            switch state.phase {
            case .integer: state.remainder * powers[k] % p == 0
            case .fraction(let j) where j > 0: state.remainder * powers[k - min(j, k)] % p == 0
            default: false
            }
        }, overflow: "multiples of \(p) / 10^\(k) need more than \(Self.maxStates) automaton states")
    }

    /// A state of `init(decimalMultiplesOf:fractionDigits:)`: where in the number's text, and its
    /// digits so far as an integer modulo p.
    private struct DecimalDigits: Hashable {
        enum Phase: Hashable { case start, signed, integer, fraction(Int) }
        var phase: Phase
        var remainder: Int
        static let start = DecimalDigits(phase: .start, remainder: 0)
    }

    /// The same language without the states from which no accepting state can be reached (a
    /// reader never goes where nothing can end); state 0 stays the start.
    func pruned() -> ByteAutomaton {
        var into = [[Int]](repeating: [], count: stateCount)
        for s in 0..<stateCount {
            for i in Int(first[s])..<Int(first[s + 1]) { into[Int(target[i])].append(s) }
        }
        var live = accepting, stack = (0..<stateCount).filter { accepting[$0] }
        while let s = stack.popLast() {
            for t in into[s] where !live[t] {
                live[t] = true
                stack.append(t)
            }
        }
        if live.allSatisfy({ $0 }) { return self }
        var out = ByteAutomaton()
        for s in 0..<stateCount {
            var moves: [(lo: UInt8, hi: UInt8, to: Int)] = []
            for i in Int(first[s])..<Int(first[s + 1]) where live[Int(target[i])] {
                moves.append((lo[i], hi[i], Int(target[i])))
            }
            out.addState(moves: moves, accepting: accepting[s])
        }
        return out
    }

    private init() {}

    /// The texts of `a` and those of `b`, which must begin with different bytes (their start
    /// states joined; neither start state may be entered again).
    init(eitherOf a: ByteAutomaton, _ b: ByteAutomaton) throws(Failure) {
        guard !a.target.contains(0), !b.target.contains(0),
              (Int(a.first[0])..<Int(a.first[1])).allSatisfy({ i in
                  (Int(b.first[0])..<Int(b.first[1])).allSatisfy { j in a.hi[i] < b.lo[j] || b.hi[j] < a.lo[i] } }) else {
            throw Failure(reason: "alternatives that begin alike")
        }
        // State 0 joined; then a's other states, then b's.
        func moves(_ x: ByteAutomaton, _ s: Int, offset: Int) -> [(lo: UInt8, hi: UInt8, to: Int)] {
            (Int(x.first[s])..<Int(x.first[s + 1])).map { (x.lo[$0], x.hi[$0], Int(x.target[$0]) + offset) }
        }
        let offsetB = a.stateCount - 1
        addState(moves: (moves(a, 0, offset: 0) + moves(b, 0, offset: offsetB)).sorted { $0.lo < $1.lo },
                 accepting: a.accepting[0] || b.accepting[0])
        for s in 1..<a.stateCount { addState(moves: moves(a, s, offset: 0), accepting: a.accepting[s]) }
        for s in 1..<b.stateCount { addState(moves: moves(b, s, offset: offsetB), accepting: b.accepting[s]) }
    }

    /// The texts both `a` and `b` accept (pairs of states, as far as they are reached).
    init(intersecting a: ByteAutomaton, _ b: ByteAutomaton) throws(Failure) {
        struct Key: Hashable { var a: Int, b: Int }
        try self.init(exploring: Key(a: 0, b: 0), moves: { key in
            var moves: [(lo: UInt8, hi: UInt8, to: Key)] = []
            var i = Int(a.first[key.a]), j = Int(b.first[key.b])
            while i < Int(a.first[key.a + 1]) && j < Int(b.first[key.b + 1]) {
                let low = max(a.lo[i], b.lo[j]), high = min(a.hi[i], b.hi[j])
                if low <= high { moves.append((low, high, Key(a: Int(a.target[i]), b: Int(b.target[j])))) }
                if a.hi[i] < b.hi[j] { i += 1 } else { j += 1 }
            }
            return moves
        }, accepting: { key in a.accepting[key.a] && b.accepting[key.b] },
           overflow: "it needs more than \(Self.maxStates) automaton states")
    }

    /// The texts `a` accepts and `b` does not (pairs of states, b's side nil once b can read no
    /// further, as far as they are reached).
    init(subtracting b: ByteAutomaton, from a: ByteAutomaton) throws(Failure) {
        struct Key: Hashable { var a: Int, b: Int? }
        try self.init(exploring: Key(a: 0, b: 0), moves: { key in
            var moves: [(lo: UInt8, hi: UInt8, to: Key)] = []
            for i in Int(a.first[key.a])..<Int(a.first[key.a + 1]) {
                let target = Int(a.target[i])
                var next = Int(a.lo[i])
                if let sb = key.b {
                    // a's range in pieces: where b moves too, and the gaps where it cannot.
                    for j in Int(b.first[sb])..<Int(b.first[sb + 1]) where Int(b.hi[j]) >= next && Int(b.lo[j]) <= Int(a.hi[i]) {
                        if Int(b.lo[j]) > next { moves.append((UInt8(next), b.lo[j] - 1, Key(a: target, b: nil))) }
                        let high = min(b.hi[j], a.hi[i])
                        moves.append((UInt8(max(Int(b.lo[j]), next)), high, Key(a: target, b: Int(b.target[j]))))
                        next = Int(high) + 1
                    }
                }
                if next <= Int(a.hi[i]) { moves.append((UInt8(next), a.hi[i], Key(a: target, b: nil))) }
            }
            return moves
        }, accepting: { key in a.accepting[key.a] && !(key.b.map { b.accepting[$0] } ?? false) },
           overflow: "it needs more than \(Self.maxStates) automaton states")
    }

    /// Adjacent ranges with the same target as one.
    private static func joined(_ moves: [(lo: UInt8, hi: UInt8, to: Int)]) -> [(lo: UInt8, hi: UInt8, to: Int)] {
        var out: [(lo: UInt8, hi: UInt8, to: Int)] = []
        for m in moves {
            if let last = out.last, last.to == m.to, Int(last.hi) + 1 == Int(m.lo) {
                out[out.count - 1].hi = m.hi
            } else {
                out.append(m)
            }
        }
        return out
    }

    /// Subset construction: each state a set of NFA states closed under empty moves.
    private init(determinizing nfa: NFA, accepting end: Int) throws(Failure) {
        var work = 0
        func closure(_ states: [Int32]) throws(Failure) -> [Int32] {
            let set = nfa.closure(states)
            work += set.count
            guard work <= Self.maxWork else { throw Failure(reason: "its automaton would take too long to build") }
            return set
        }
        var subsets = try StateNumbering(start: try closure([0]),
                                         overflow: "it needs more than \(Self.maxStates) automaton states")
        while let states = subsets.nextToBuild() {
            // The byte intervals on which the set of targets is constant: from each boundary
            // (an edge's first byte, or the byte after its last) to the next.
            var boundary = [Bool](repeating: false, count: 257), edges: [NFA.Edge] = []
            for s in states {
                for e in nfa.edges[Int(s)] {
                    edges.append(e)
                    boundary[Int(e.lo)] = true
                    boundary[Int(e.hi) + 1] = true
                }
            }
            var interval = [Int](repeating: 0, count: 256), starts: [Int] = []
            for b in 0..<256 {
                if boundary[b] { starts.append(b) }
                interval[b] = starts.count - 1
            }
            var targets = [[Int32]](repeating: [], count: starts.count)
            for e in edges {
                for k in interval[Int(e.lo)]...interval[Int(e.hi)] { targets[k].append(e.to) }
                work += interval[Int(e.hi)] - interval[Int(e.lo)] + 1
            }
            var moves: [(lo: UInt8, hi: UInt8, to: Int)] = []
            for (k, t) in targets.enumerated() where !t.isEmpty {
                let high = k + 1 < starts.count ? starts[k + 1] - 1 : 255
                moves.append((UInt8(starts[k]), UInt8(high), try subsets.id(try closure(t))))
            }
            addState(moves: Self.joined(moves), accepting: states.contains(Int32(end)))
        }
        self = self.pruned()
    }
}

/// The states of an automaton being built (sets of NFA states, pairs of states), numbered in the
/// order they are first reached, and the queue of those whose moves are still to be built: state
/// 0 is `start`, and more than `ByteAutomaton.maxStates` is refused with `overflow`.
private struct StateNumbering<Key: Hashable> {
    private var ids: [Key: Int] = [:]
    private var queue: [Key] = []
    private var head = 0
    private let overflow: String

    init(start: Key, overflow: String) throws(ByteAutomaton.Failure) {
        self.overflow = overflow
        _ = try id(start)
    }

    /// The number of the state `key`, given (and queued) when it is first reached.
    mutating func id(_ key: Key) throws(ByteAutomaton.Failure) -> Int {
        if let id = ids[key] { return id }
        guard ids.count < ByteAutomaton.maxStates else { throw ByteAutomaton.Failure(reason: overflow) }
        ids[key] = ids.count
        queue.append(key)
        return ids.count - 1
    }

    /// The next state whose moves are to be built, in the order of their numbers.
    mutating func nextToBuild() -> Key? {
        guard head < queue.count else { return nil }
        head += 1
        return queue[head - 1]
    }
}

/// Thompson's construction over bytes: the automaton `ByteAutomaton` determinizes.
private struct NFA {
    struct Edge { var lo: UInt8, hi: UInt8, to: Int32 }
    var edges: [[Edge]] = [[]]
    var empty: [[Int32]] = [[]]

    /// The most NFA states one pattern may build.
    static let maxStates = 200_000

    mutating func state() throws(ByteAutomaton.Failure) -> Int {
        guard edges.count < Self.maxStates else {
            throw ByteAutomaton.Failure(reason: "it needs more than \(Self.maxStates) states before determinizing (counts too large?)")
        }
        edges.append([])
        empty.append([])
        return edges.count - 1
    }

    /// Sorted states reachable from `states` by empty moves.
    func closure(_ states: [Int32]) -> [Int32] {
        var seen = Set(states), stack = states
        while let s = stack.popLast() {
            for t in empty[Int(s)] where seen.insert(t).inserted { stack.append(t) }
        }
        return seen.sorted()
    }

    mutating func build(_ node: RegexNode, from: Int, to: Int, encoding: ScalarEncoding) throws(ByteAutomaton.Failure) {
        switch node {
        case .set(let set):
            // The sequences as a trie: escapes and UTF-8 lead bytes share their prefixes' states.
            var inner: [[Int]: Int] = [:]
            for sequence in Self.byteSequences(set, encoding: encoding) {
                var at = from
                for (i, range) in sequence.enumerated() {
                    if i == sequence.count - 1 {
                        edges[at].append(Edge(lo: range.lowerBound, hi: range.upperBound, to: Int32(to)))
                    } else if let next = inner[[at, Int(range.lowerBound), Int(range.upperBound)]] {
                        at = next
                    } else {
                        let next = try state()
                        inner[[at, Int(range.lowerBound), Int(range.upperBound)]] = next
                        edges[at].append(Edge(lo: range.lowerBound, hi: range.upperBound, to: Int32(next)))
                        at = next
                    }
                }
            }
        case .sequence(let items):
            var at = from
            for (i, item) in items.enumerated() {
                let next = i == items.count - 1 ? to : try state()
                try build(item, from: at, to: next, encoding: encoding)
                at = next
            }
            if items.isEmpty { empty[from].append(Int32(to)) }
        case .choice(let items):
            for item in items { try build(item, from: from, to: to, encoding: encoding) }
        case .repeated(let item, let min, let max):
            var at = from
            for _ in 0..<min {
                let next = try state()
                try build(item, from: at, to: next, encoding: encoding)
                at = next
            }
            if let max {
                for _ in min..<max {
                    let next = try state()
                    empty[at].append(Int32(to))
                    try build(item, from: at, to: next, encoding: encoding)
                    at = next
                }
                empty[at].append(Int32(to))
            } else {
                // A loop through its own state, so that the copies cannot join earlier ones.
                let loop = try state()
                empty[at].append(Int32(loop))
                try build(item, from: loop, to: loop, encoding: encoding)
                empty[loop].append(Int32(to))
            }
        }
    }

    /// The byte strings of `set`'s scalars in `encoding`: sequences of byte ranges.
    static func byteSequences(_ set: ScalarSet, encoding: ScalarEncoding) -> [[ClosedRange<UInt8>]] {
        var out: [[ClosedRange<UInt8>]] = []
        var plain = set
        if case .jsonString = encoding {
            let escaped = ScalarSet([0...0x1F, 0x22...0x22, 0x5C...0x5C]).intersection(set)
            for r in escaped.ranges {
                for c in r { out.append(Array(jsonEscape(c).utf8).map { $0...$0 }) }
            }
            plain = set.subtracting(escaped)
        }
        for r in plain.ranges { utf8Sequences(r.lowerBound, r.upperBound, into: &out) }
        return out
    }

    /// How `json.dumps` escapes the scalar c (a control character, quote or backslash).
    static func jsonEscape(_ c: UInt32) -> String {
        switch c {
        case 0x22: return "\\\""
        case 0x5C: return "\\\\"
        case 0x08: return "\\b"
        case 0x09: return "\\t"
        case 0x0A: return "\\n"
        case 0x0C: return "\\f"
        case 0x0D: return "\\r"
        default:
            let hex = String(c, radix: 16)
            return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        }
    }

    /// UTF-8 forms of the scalars lo...hi (no surrogates) as sequences of byte ranges: split
    /// until every byte position of a piece ranges freely between its ends.
    static func utf8Sequences(_ lo: UInt32, _ hi: UInt32, into out: inout [[ClosedRange<UInt8>]]) {
        for limit: UInt32 in [0x7F, 0x7FF, 0xFFFF] where lo <= limit && hi > limit {
            utf8Sequences(lo, limit, into: &out)
            utf8Sequences(limit + 1, hi, into: &out)
            return
        }
        let length = hi <= 0x7F ? 1 : hi <= 0x7FF ? 2 : hi <= 0xFFFF ? 3 : 4
        for i in 1..<max(length, 1) {
            let m: UInt32 = (1 << (6 * UInt32(i))) - 1
            if lo & ~m != hi & ~m {
                if lo & m != 0 {
                    utf8Sequences(lo, lo | m, into: &out)
                    utf8Sequences((lo | m) + 1, hi, into: &out)
                    return
                }
                if hi & m != m {
                    utf8Sequences(lo, (hi & ~m) - 1, into: &out)
                    utf8Sequences(hi & ~m, hi, into: &out)
                    return
                }
            }
        }
        let a = Array(String(Unicode.Scalar(lo)!).utf8), b = Array(String(Unicode.Scalar(hi)!).utf8)
        out.append(zip(a, b).map { $0...$1 })
    }
}

/// How many characters a JSON string may hold (`minLength` / `maxLength`).
struct CharacterCount: Equatable, Hashable, Sendable {
    var minimum = 0
    var maximum: Int? = nil
    var isFree: Bool { minimum == 0 && maximum == nil }
}

/// Counts the characters of a JSON string as its bytes go by (quotes, escapes and UTF-8
/// continuation bytes told apart; the bytes are those of a valid string, which the automaton
/// beside it checks): `read` refuses a character past the maximum and the closing quote before
/// the minimum.
struct CharacterCounter: Hashable, Sendable {
    let limits: CharacterCount
    private(set) var count = 0
    /// 0 before the opening quote, 1 between characters, 2 after a backslash, 3 + k with k
    /// more bytes of the character to come (hex digits of `\u`, UTF-8 continuation bytes), 255
    /// after the closing quote.
    private var phase: UInt8 = 0

    init(_ limits: CharacterCount) { self.limits = limits }

    var isComplete: Bool { phase == 255 }
    /// Inside the string, no escape or multi-byte character begun.
    var isBetweenCharacters: Bool { phase == 1 }

    mutating func read(_ b: UInt8) -> Bool {
        switch phase {
        case 0:
            phase = 1
        case 1:
            if b == UInt8(ascii: "\"") {
                guard count >= limits.minimum else { return false }
                phase = 255
                return true
            }
            guard count < limits.maximum ?? .max else { return false }
            // Without a maximum the count matters only up to the minimum: counters past it are
            // alike (so a product with a pattern stays finite).
            if limits.maximum != nil || count < limits.minimum { count += 1 }
            phase = b == UInt8(ascii: "\\") ? 2 : b < 0xC0 ? 1 : b < 0xE0 ? 4 : b < 0xF0 ? 5 : 6
        case 2:
            phase = b == UInt8(ascii: "u") ? 7 : 1
        case 255:
            return false
        default:
            phase = phase == 4 ? 1 : phase - 1
        }
        return true
    }

    /// The last byte from `b` on that every counter reads as it reads `b` (the byte classes
    /// above: quote, backslash, `u`, other ASCII and continuation bytes, and UTF-8 lead bytes
    /// of each length).
    static func classEnd(_ b: UInt8) -> Int {
        switch b {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "u"): return Int(b)
        case ..<UInt8(ascii: "\""): return Int(UInt8(ascii: "\"")) - 1
        case ..<UInt8(ascii: "\\"): return Int(UInt8(ascii: "\\")) - 1
        case ..<UInt8(ascii: "u"): return Int(UInt8(ascii: "u")) - 1
        case ..<0xC0: return 0xBF
        case ..<0xE0: return 0xDF
        case ..<0xF0: return 0xEF
        default: return 0xFF
        }
    }
}

/// Automata laid end to end in flat buffers that a reader steps through without reference
/// counting (a vocabulary mask reads hundreds of thousands of bytes per decode step): state
/// numbers are global, each automaton's from where it begins. A plain value of pointers: its
/// owner (`PatternProgram`) frees it with `deallocate()`.
struct AutomatonTable: @unchecked Sendable {
    // Immutable after init.
    private let first: UnsafeMutableBufferPointer<Int32>
    private let lo: UnsafeMutableBufferPointer<UInt8>
    private let hi: UnsafeMutableBufferPointer<UInt8>
    private let target: UnsafeMutableBufferPointer<Int32>
    private let accepting: UnsafeMutableBufferPointer<Bool>

    init(_ automata: [ByteAutomaton]) {
        let states = automata.reduce(0) { $0 + $1.stateCount }
        let moves = automata.reduce(0) { $0 + $1.moveCount }
        first = .allocate(capacity: states + 1)
        lo = .allocate(capacity: max(moves, 1))
        hi = .allocate(capacity: max(moves, 1))
        target = .allocate(capacity: max(moves, 1))
        accepting = .allocate(capacity: max(states, 1))
        var s = 0, m = 0
        for a in automata {
            let base = Int32(s)
            for state in 0..<a.stateCount {
                first[s] = Int32(m)
                accepting[s] = a.accepting[state]
                for (l, h, t) in a.moves(of: state) {
                    lo[m] = l
                    hi[m] = h
                    target[m] = base + Int32(t)
                    m += 1
                }
                s += 1
            }
        }
        first[s] = Int32(m)
    }

    func deallocate() {
        first.deallocate()
        lo.deallocate()
        hi.deallocate()
        target.deallocate()
        accepting.deallocate()
    }

    @inline(__always)
    func next(_ state: Int, _ b: UInt8) -> Int? {
        var i = Int(first[state])
        let end = Int(first[state + 1])
        while i < end {
            if b < lo[i] { return nil }
            if b <= hi[i] { return Int(target[i]) }
            i += 1
        }
        return nil
    }

    @inline(__always) func isAccepting(_ state: Int) -> Bool { accepting[state] }
    @inline(__always) func hasMoves(_ state: Int) -> Bool { first[state + 1] > first[state] }
}
