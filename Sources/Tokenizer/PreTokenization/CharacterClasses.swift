/// The character classes of the split patterns (and NFC safety), as bit flags.
///
/// Membership comes from `UnicodeTables.swift`, generated from the reference regex engine, so the
/// scanners agree with Hugging Face `tokenizers` even where the Swift standard library's newer
/// Unicode data would classify a code point differently.
struct CharacterClass: OptionSet, Sendable {
    let rawValue: UInt8
    /// `\p{L}`
    static let letter = CharacterClass(rawValue: 1)
    /// `\p{N}`
    static let number = CharacterClass(rawValue: 2)
    /// `\s`
    static let whitespace = CharacterClass(rawValue: 4)
    /// Not a pattern class: the code point may change, or change its neighbours, under NFC.
    static let nfcUnsafe = CharacterClass(rawValue: 8)
}

/// A lookup table from code point to `CharacterClass` bits: one byte per code point (1.1 MB),
/// built in about a millisecond; text in one script touches only a few cache lines of it.
struct CharacterClassTable: @unchecked Sendable {
    private let table: UnsafeMutablePointer<UInt8>  // [0x110000], never freed (process lifetime)

    /// The table built from the generated range lists (once per process).
    static let shared = CharacterClassTable()

    private init() {
        table = .allocate(capacity: 0x110000)
        table.initialize(repeating: 0, count: 0x110000)
        func fill(_ ranges: [UInt32], _ cls: CharacterClass) {
            for i in stride(from: 0, to: ranges.count, by: 2) {
                for cp in Int(ranges[i])...Int(ranges[i + 1]) { table[cp] |= cls.rawValue }
            }
        }
        fill(letterRanges, .letter)
        fill(numberRanges, .number)
        fill(whitespaceRanges, .whitespace)
        fill(nfcUnsafeRanges, .nfcUnsafe)
    }

    /// The classes of code point `cp` (which must be below 0x110000).
    @inline(__always)
    func classes(of cp: UInt32) -> CharacterClass {
        CharacterClass(rawValue: table[Int(cp)])
    }
}
