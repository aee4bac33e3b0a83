/// The split patterns this tokenizer understands, each implemented by a hand-written scanner that
/// reproduces the regex's leftmost-first, greedy, backtracking semantics exactly.
enum SplitPattern: Sendable, Equatable {
    /// Qwen2 / Qwen2.5 (`maxDigits` 1) and the cl100k / Llama-3 family (`maxDigits` 3):
    ///
    ///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}
    ///     | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    case qwen2(maxDigits: Int)
    /// GPT-2, as used by `ByteLevel(use_regex: true)`:
    ///
    ///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    case gpt2

    static let qwen2Regex =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let cl100kRegex =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let gpt2Regex = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// The pattern whose regex source is exactly `regex`, or `nil` if we have no scanner for it.
    init?(regex: String) {
        switch regex {
        case Self.qwen2Regex: self = .qwen2(maxDigits: 1)
        case Self.cl100kRegex: self = .qwen2(maxDigits: 3)
        case Self.gpt2Regex: self = .gpt2
        default: return nil
        }
    }
}

/// Cuts valid UTF-8 text into the pieces a split pattern matches, in order. Every position of the
/// input starts a match for these patterns, so the pieces tile the input exactly.
struct SplitScanner {
    private let bytes: UnsafeBufferPointer<UInt8>
    private let pattern: SplitPattern
    private let table = CharacterClassTable.shared
    private var position = 0

    /// `bytes` must be valid UTF-8 (it comes from a Swift `String`).
    init(_ bytes: UnsafeBufferPointer<UInt8>, pattern: SplitPattern) {
        self.bytes = bytes
        self.pattern = pattern
    }

    /// The byte range of the next piece, or `nil` at the end of the input.
    mutating func next() -> Range<Int>? {
        let start = position
        guard start < bytes.count else { return nil }
        let end: Int
        switch pattern {
        case .qwen2(let maxDigits): end = qwen2Match(at: start, maxDigits: maxDigits)
        case .gpt2: end = gpt2Match(at: start)
        }
        position = end
        return start..<end
    }

    // MARK: Decoding

    /// The scalar value starting at byte `i` and its length in bytes.
    @inline(__always)
    private func scalar(at i: Int) -> (value: UInt32, length: Int) {
        decodeScalar(bytes, at: i)
    }

    @inline(__always)
    private func classes(_ cp: UInt32) -> CharacterClass { table.classes(of: cp) }

    private static let letterNumberSpace: CharacterClass = [.letter, .number, .whitespace]

    @inline(__always)
    private static func isNewline(_ cp: UInt32) -> Bool { cp == 0x0A || cp == 0x0D }

    // MARK: Runs

    /// End of the run of characters, starting at `i`, whose classes intersect `want`.
    @inline(__always)
    private func run(from i: Int, of want: CharacterClass) -> Int {
        var j = i
        while j < bytes.count {
            let (cp, n) = scalar(at: j)
            if classes(cp).isDisjoint(with: want) { break }
            j += n
        }
        return j
    }

    /// End of the run of "other" characters (`[^\s\p{L}\p{N}]+`) starting at `i`.
    @inline(__always)
    private func otherRun(from i: Int) -> Int {
        var j = i
        while j < bytes.count {
            let (cp, n) = scalar(at: j)
            if !classes(cp).isDisjoint(with: Self.letterNumberSpace) { break }
            j += n
        }
        return j
    }

    /// End of the run of `\r` / `\n` starting at `i` (`[\r\n]*`).
    @inline(__always)
    private func newlineRun(from i: Int) -> Int {
        var j = i
        while j < bytes.count, bytes[j] == 0x0A || bytes[j] == 0x0D { j += 1 }
        return j
    }

    /// The whitespace alternatives shared by both patterns, at `start` where a whitespace character
    /// begins. With `newlines`, tries `\s*[\r\n]+` first (Qwen2); then `\s+(?!\S)`, then `\s+`.
    @inline(__always)
    private func whitespaceMatch(at start: Int, newlines: Bool) -> Int {
        var j = start
        var lastStart = start  // start of the run's last character
        var afterLastNewline = -1  // end of the last \r or \n inside the run
        while j < bytes.count {
            let (cp, n) = scalar(at: j)
            guard classes(cp).contains(.whitespace) else { break }
            if Self.isNewline(cp) { afterLastNewline = j + n }
            lastStart = j
            j += n
        }
        // \s*[\r\n]+ : the greedy \s* backs off to the last newline of the run.
        if newlines && afterLastNewline >= 0 { return afterLastNewline }
        // \s+(?!\S) : at the end of the input the whole run; otherwise all but its last character,
        // which must leave at least one character.
        if j == bytes.count { return j }
        if lastStart > start { return lastStart }
        // \s+
        return j
    }

    // MARK: Patterns

    /// Length of a case-insensitive contraction (`'s`, `'RE`, ...) at `start`, or 0.
    @inline(__always)
    private func contractionLength(at start: Int, caseInsensitive: Bool) -> Int {
        guard bytes[start] == UInt8(ascii: "'"), start + 1 < bytes.count else { return 0 }
        let (d, dn) = scalar(at: start + 1)
        // Under (?i), only 's' has a non-ASCII case variant accepted by the reference engine:
        // U+017F LATIN SMALL LETTER LONG S (checked by scripts/tokenizer_unicode_tables.py).
        let lower: UInt32
        if caseInsensitive {
            if d == 0x17F { return 1 + dn }
            lower = (d >= 0x41 && d <= 0x5A) ? d | 0x20 : d
        } else {
            lower = d
        }
        switch lower {
        case 0x73, 0x74, 0x6D, 0x64:  // s t m d
            return 2
        case 0x72, 0x76, 0x6C:  // r v l  ->  're 've 'll
            guard start + 2 < bytes.count else { return 0 }
            var e = UInt32(bytes[start + 2])
            if caseInsensitive && e >= 0x41 && e <= 0x5A { e |= 0x20 }
            let want: UInt32 = lower == 0x6C ? 0x6C : 0x65
            return e == want ? 3 : 0
        default:
            return 0
        }
    }

    private func qwen2Match(at start: Int, maxDigits: Int) -> Int {
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        let contraction = contractionLength(at: start, caseInsensitive: true)
        if contraction > 0 { return start + contraction }

        let (c, n) = scalar(at: start)
        let cc = classes(c)
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if cc.contains(.letter) { return run(from: start + n, of: .letter) }
        if !cc.contains(.number) && !Self.isNewline(c) && start + n < bytes.count {
            let (d, dn) = scalar(at: start + n)
            if classes(d).contains(.letter) { return run(from: start + n + dn, of: .letter) }
        }
        // \p{N}{1,maxDigits}
        if cc.contains(.number) {
            var j = start + n
            var count = 1
            while count < maxDigits && j < bytes.count {
                let (d, dn) = scalar(at: j)
                guard classes(d).contains(.number) else { break }
                j += dn
                count += 1
            }
            return j
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        if c == 0x20 && start + 1 < bytes.count {
            let (d, _) = scalar(at: start + 1)
            if classes(d).isDisjoint(with: Self.letterNumberSpace) {
                return newlineRun(from: otherRun(from: start + 1))
            }
        }
        if cc.isDisjoint(with: Self.letterNumberSpace) {
            return newlineRun(from: otherRun(from: start + n))
        }
        // \s*[\r\n]+|\s+(?!\S)|\s+
        return whitespaceMatch(at: start, newlines: true)
    }

    private func gpt2Match(at start: Int) -> Int {
        // 's|'t|'re|'ve|'m|'ll|'d
        let contraction = contractionLength(at: start, caseInsensitive: false)
        if contraction > 0 { return start + contraction }

        let (c, n) = scalar(at: start)
        var cc = classes(c)
        var from = start + n
        //  ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+ : a leading space joins the run that follows it.
        if c == 0x20 && start + 1 < bytes.count {
            let (d, dn) = scalar(at: start + 1)
            let dc = classes(d)
            if !dc.contains(.whitespace) {
                cc = dc
                from = start + 1 + dn
            }
        }
        if cc.contains(.letter) { return run(from: from, of: .letter) }
        if cc.contains(.number) { return run(from: from, of: .number) }
        if !cc.contains(.whitespace) { return otherRun(from: from) }
        // \s+(?!\S)|\s+
        return whitespaceMatch(at: start, newlines: false)
    }
}
