/// Token ids ↔ token strings and the bytes each token decodes to.
///
/// All strings live in two byte arenas indexed by id, so the 151k-token Qwen2 vocabulary costs a
/// handful of allocations.
struct Vocabulary: Sendable {
    /// One more than the largest id in use (model vocabulary and added tokens).
    let size: Int
    /// Token strings as written in `tokenizer.json` (byte-level spelling for model tokens).
    private let strings: [UInt8]
    private let stringStart: [Int32]  // [size + 1]; an id without a token has an empty range
    /// The bytes each token decodes to.
    private let bytes: [UInt8]
    private let bytesStart: [Int32]  // [size + 1]
    /// Ids in use (gaps are possible in hand-made files).
    private let present: [Bool]
    /// Ids of special added tokens.
    private let special: [Bool]
    /// Added token content → id; consulted before the model vocabulary, as Hugging Face's
    /// `token_to_id` does.
    private let addedIDs: [String: Int]
    /// Model token string → id.
    private let modelIndex: TokenStringIndex

    /// `model` holds the BPE vocabulary's strings (`modelRanges[i]` in `modelArena` for
    /// `modelIDs[i]`); `added` the added tokens.
    init(modelArena: [UInt8], modelRanges: [Range<Int>], modelIDs: [Int32], added: [AddedToken], modelIndex: TokenStringIndex) {
        var size = 0
        for id in modelIDs { size = max(size, Int(id) + 1) }
        for token in added { size = max(size, token.id + 1) }
        self.size = size

        // Per id: the string (added tokens override model tokens with the same id).
        var stringRange = [Range<Int>?](repeating: nil, count: size)
        var arena = modelArena
        for (i, id) in modelIDs.enumerated() { stringRange[Int(id)] = modelRanges[i] }
        var special = [Bool](repeating: false, count: size)
        for token in added {
            let start = arena.count
            arena.append(contentsOf: token.content.utf8)
            stringRange[token.id] = start..<arena.count
            special[token.id] = token.special
        }

        var strings: [UInt8] = []
        strings.reserveCapacity(arena.count)
        var stringStart: [Int32] = []
        stringStart.reserveCapacity(size + 1)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(arena.count)
        var bytesStart: [Int32] = []
        bytesStart.reserveCapacity(size + 1)
        var present = [Bool](repeating: false, count: size)
        for id in 0..<size {
            stringStart.append(Int32(strings.count))
            bytesStart.append(Int32(bytes.count))
            guard let range = stringRange[id] else { continue }
            present[id] = true
            strings.append(contentsOf: arena[range])
            // The ByteLevel decoder maps each character back to its byte; a token with a character
            // outside the byte alphabet decodes to its own UTF-8 instead.
            let mark = bytes.count
            var ok = true
            var i = range.lowerBound
            while i < range.upperBound {
                let b0 = arena[i]
                // The alphabet is U+0021…U+0143: one byte (ASCII) or two (C2–C5 lead bytes).
                if b0 < 0x80 {
                    let b = ByteLevel.scalarToByte[Int(b0)]
                    if b < 0 { ok = false; break }
                    bytes.append(UInt8(b))
                    i += 1
                } else if b0 >= 0xC2 && b0 <= 0xC5 && i + 1 < range.upperBound {
                    let cp = Int(b0 & 0x1F) << 6 | Int(arena[i + 1] & 0x3F)
                    let b = cp < ByteLevel.scalarToByte.count ? ByteLevel.scalarToByte[cp] : -1
                    if b < 0 { ok = false; break }
                    bytes.append(UInt8(b))
                    i += 2
                } else {
                    ok = false
                    break
                }
            }
            if !ok {
                bytes.removeSubrange(mark...)
                bytes.append(contentsOf: arena[range])
            }
        }
        stringStart.append(Int32(strings.count))
        bytesStart.append(Int32(bytes.count))
        self.strings = strings
        self.stringStart = stringStart
        self.bytes = bytes
        self.bytesStart = bytesStart
        self.present = present
        self.special = special

        var addedIDs: [String: Int] = [:]
        for token in added { addedIDs[token.content] = token.id }
        self.addedIDs = addedIDs
        self.modelIndex = modelIndex
    }

    /// The id of a token string (as written in `tokenizer.json`).
    func id(of token: String) -> Int? {
        if let id = addedIDs[token] { return id }
        return modelIndex.id(of: Array(token.utf8)).map(Int.init)
    }

    func contains(_ id: Int) -> Bool { id >= 0 && id < size && present[id] }

    func isSpecial(_ id: Int) -> Bool { id >= 0 && id < size && special[id] }

    /// The token string of `id` as written in `tokenizer.json`.
    func string(_ id: Int) -> String? {
        guard contains(id) else { return nil }
        return String(decoding: strings[Int(stringStart[id])..<Int(stringStart[id + 1])], as: UTF8.self)
    }

    /// Appends the bytes token `id` decodes to.
    @inline(__always)
    func appendBytes(of id: Int, to out: inout [UInt8]) {
        out.append(contentsOf: bytes[Int(bytesStart[id])..<Int(bytesStart[id + 1])])
    }
}
