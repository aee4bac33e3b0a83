import Foundation

/// A token from the `added_tokens` list of `tokenizer.json` (`<|im_start|>` and friends).
public struct AddedToken: Sendable, Equatable {
    public var id: Int
    public var content: String
    /// Only matches when not inside a word.
    public var singleWord: Bool
    /// Swallows the whitespace on its left.
    public var lstrip: Bool
    /// Swallows the whitespace on its right.
    public var rstrip: Bool
    /// Matched in the normalized text (after NFC) rather than the raw text.
    public var normalized: Bool
    /// Skipped by `decode(_:skipSpecialTokens: true)`.
    public var special: Bool
}

/// Finds added tokens in text before normalization and BPE, with the semantics of Hugging Face's
/// `AddedVocabulary`: leftmost-longest matching, then the `single_word`, `lstrip` and `rstrip`
/// adjustments.
struct AddedTokenMatcher: Sendable {
    /// A piece of the input: either plain text to tokenize or an added token's id.
    enum Piece: Equatable {
        case text(Range<Int>)
        case token(Int)
    }

    private let tokens: [AddedToken]
    private let patterns: [[UInt8]]
    /// Candidate token indexes for each first byte, longest pattern first.
    private let byFirstByte: [[Int]]

    /// `tokens` are the tokens this matcher looks for; `patterns` their byte strings as they must
    /// appear in the text (the normalized content for normalized tokens).
    init(tokens: [AddedToken], patterns: [String]) {
        self.tokens = tokens
        let bytes = patterns.map { Array($0.utf8) }
        self.patterns = bytes
        var table = [[Int]](repeating: [], count: 256)
        for (i, p) in bytes.enumerated() where !p.isEmpty { table[Int(p[0])].append(i) }
        for b in 0..<256 {
            table[b].sort { bytes[$0].count > bytes[$1].count || (bytes[$0].count == bytes[$1].count && $0 < $1) }
        }
        byFirstByte = table
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// The longest pattern matching at `i`, as a token index.
    @inline(__always)
    private func longestMatch(_ text: UnsafeBufferPointer<UInt8>, at i: Int) -> Int? {
        for candidate in byFirstByte[Int(text[i])] {
            let p = patterns[candidate]
            if i + p.count <= text.count && p.withUnsafeBufferPointer({ p in
                memcmp(p.baseAddress!, text.baseAddress! + i, p.count) == 0
            }) {
                return candidate
            }
        }
        return nil
    }

    /// Splits `text` (UTF-8) into text pieces and added tokens, covering it exactly.
    func split(_ text: UnsafeBufferPointer<UInt8>) -> [Piece] {
        if tokens.isEmpty || text.isEmpty { return [.text(0..<text.count)] }
        var pieces: [Piece] = []
        var startOffset = 0
        var i = 0
        while i < text.count {
            guard !byFirstByte[Int(text[i])].isEmpty, let index = longestMatch(text, at: i) else {
                i += 1
                continue
            }
            let token = tokens[index]
            var start = i
            var stop = i + patterns[index].count
            // Non-overlapping matches: the scan resumes after this match whether or not it is kept.
            i = stop
            if token.singleWord {
                let startSpace = start == 0 || !endsWithWordCharacter(text, before: start)
                let stopSpace = stop == text.count || !startsWithWordCharacter(text, at: stop)
                if !startSpace || !stopSpace { continue }
            }
            if token.lstrip {
                start = max(whitespaceRunStart(text, before: start), startOffset)
            }
            if token.rstrip {
                stop = whitespaceRunEnd(text, from: stop)
            }
            if startOffset < start { pieces.append(.text(startOffset..<start)) }
            pieces.append(.token(token.id))
            startOffset = stop
        }
        if startOffset != text.count { pieces.append(.text(startOffset..<text.count)) }
        return pieces
    }

    // MARK: Word and space boundaries (Rust regex `\w` and `\s`, Unicode)

    private func scalarBefore(_ text: UnsafeBufferPointer<UInt8>, _ i: Int) -> (Unicode.Scalar, Int) {
        var j = i - 1
        while j > 0 && text[j] & 0xC0 == 0x80 { j -= 1 }
        let (cp, _) = decodeScalar(text, at: j)
        return (Unicode.Scalar(cp) ?? "\u{FFFD}", j)
    }

    private static func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
        let p = s.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    private func endsWithWordCharacter(_ text: UnsafeBufferPointer<UInt8>, before i: Int) -> Bool {
        i > 0 && Self.isWordCharacter(scalarBefore(text, i).0)
    }

    private func startsWithWordCharacter(_ text: UnsafeBufferPointer<UInt8>, at i: Int) -> Bool {
        guard i < text.count else { return false }
        return Self.isWordCharacter(Unicode.Scalar(decodeScalar(text, at: i).0) ?? "\u{FFFD}")
    }

    /// Start of the whitespace run that ends at `i`.
    private func whitespaceRunStart(_ text: UnsafeBufferPointer<UInt8>, before i: Int) -> Int {
        var j = i
        while j > 0 {
            let (s, start) = scalarBefore(text, j)
            guard s.properties.isWhitespace else { break }
            j = start
        }
        return j
    }

    /// End of the whitespace run that starts at `i`.
    private func whitespaceRunEnd(_ text: UnsafeBufferPointer<UInt8>, from i: Int) -> Int {
        var j = i
        while j < text.count {
            let (cp, n) = decodeScalar(text, at: j)
            guard Unicode.Scalar(cp)?.properties.isWhitespace == true else { break }
            j += n
        }
        return j
    }
}
