/// Turns generated token ids into text as they arrive.
///
/// A byte-level token may end in the middle of a UTF-8 character (an emoji or a CJK character is
/// often split over two or three tokens). The detokenizer holds back such an incomplete tail and
/// releases it once the next token completes the character, so it never prints U+FFFD for a
/// character that is merely split. Bytes that can never form a character become U+FFFD, exactly
/// where `Tokenizer.decode` would put them: the concatenation of everything `append` and `finish`
/// return equals `decode` of all the ids.
public struct StreamingDetokenizer: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecialTokens: Bool
    private var pending: [UInt8] = []

    init(tokenizer: Tokenizer, skipSpecialTokens: Bool) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds a token and returns the text it completes (empty while a character is incomplete).
    /// Unknown ids are skipped, as `decode` does.
    public mutating func append(_ id: Int) -> String {
        guard tokenizer.contains(id), !(skipSpecialTokens && tokenizer.isSpecial(id)), let bytes = tokenizer.tokenBytes(id) else {
            return ""
        }
        pending.append(contentsOf: bytes)
        let keep = incompleteTailLength(pending)
        guard pending.count > keep else { return "" }
        let text = String(decoding: pending[..<(pending.count - keep)], as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// Adds several tokens; returns the text they complete.
    public mutating func append(contentsOf ids: some Sequence<Int>) -> String {
        var text = ""
        for id in ids { text += append(id) }
        return text
    }

    /// Returns what is still held back (an incomplete character becomes U+FFFD) and resets.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Whether bytes are held back waiting for the rest of a character.
    public var hasPendingBytes: Bool { !pending.isEmpty }
}

/// The length of the trailing bytes that are a valid but incomplete UTF-8 sequence (0…3).
///
/// Such a tail starts with a lead byte, so no invalid subsequence before it can extend into it:
/// decoding the bytes before it now and the tail later gives the same text as decoding all at once.
func incompleteTailLength(_ bytes: [UInt8]) -> Int {
    let n = bytes.count
    var start = n - 1
    // Find the last byte that is not a continuation byte, at most 3 back.
    while start >= 0 && start >= n - 3 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
    guard start >= 0 else { return 0 }
    let lead = bytes[start]
    let needed: Int
    switch lead {
    case 0xC2...0xDF: needed = 2
    case 0xE0...0xEF: needed = 3
    case 0xF0...0xF4: needed = 4
    default: return 0  // ASCII or an invalid lead byte: nothing to wait for
    }
    let have = n - start
    guard have < needed else { return 0 }
    // The second byte's range depends on the lead byte (no overlongs, surrogates or > U+10FFFF).
    if have >= 2 {
        let second = bytes[start + 1]
        let ok: Bool
        switch lead {
        case 0xE0: ok = (0xA0...0xBF).contains(second)
        case 0xED: ok = (0x80...0x9F).contains(second)
        case 0xF0: ok = (0x90...0xBF).contains(second)
        case 0xF4: ok = (0x80...0x8F).contains(second)
        default: ok = (0x80...0xBF).contains(second)
        }
        if !ok { return 0 }
    }
    return have
}
