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

/// A two-level lookup table from code point to `CharacterClass` bits.
///
/// Stage 1 maps each 256-code-point block to a deduplicated stage-2 block; most blocks are all
/// letters or all nothing, so the table stays small (tens of kilobytes) and lookups are two loads.
struct CharacterClassTable: Sendable {
    private let blockIndex: [UInt16]  // [0x110000 >> 8]
    private let blocks: [UInt8]  // [uniqueBlocks * 256]

    /// The table built from the generated range lists (once per process).
    static let shared = CharacterClassTable()

    private init() {
        var flat = [UInt8](repeating: 0, count: 0x110000)
        func fill(_ ranges: [UInt32], _ cls: CharacterClass) {
            for i in stride(from: 0, to: ranges.count, by: 2) {
                for cp in Int(ranges[i])...Int(ranges[i + 1]) { flat[cp] |= cls.rawValue }
            }
        }
        fill(letterRanges, .letter)
        fill(numberRanges, .number)
        fill(whitespaceRanges, .whitespace)
        fill(nfcUnsafeRanges, .nfcUnsafe)

        var index = [UInt16](repeating: 0, count: 0x110000 >> 8)
        var blocks: [UInt8] = []
        var seen: [[UInt8]: UInt16] = [:]
        for block in 0..<(0x110000 >> 8) {
            let slice = Array(flat[(block << 8)..<((block + 1) << 8)])
            if let existing = seen[slice] {
                index[block] = existing
            } else {
                let id = UInt16(seen.count)
                seen[slice] = id
                blocks.append(contentsOf: slice)
                index[block] = id
            }
        }
        self.blockIndex = index
        self.blocks = blocks
    }

    /// The classes of code point `cp` (which must be below 0x110000).
    @inline(__always)
    func classes(of cp: UInt32) -> CharacterClass {
        let block = Int(blockIndex[Int(cp >> 8)])
        return CharacterClass(rawValue: blocks[block << 8 | Int(cp & 0xFF)])
    }
}
