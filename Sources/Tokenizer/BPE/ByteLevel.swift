/// GPT-2's reversible byte ↔ character mapping ("byte-level" alphabet).
///
/// Byte-level BPE vocabularies spell every byte as a printable character: the printable Latin-1
/// bytes stand for themselves, the 68 others (controls, space, 0x7F–0xA0, 0xAD) are moved to
/// U+0100… in order. So `Ġ` (U+0120) is the space byte and `Ċ` (U+010A) is `\n`.
enum ByteLevel {
    /// The character that spells each byte.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte spelled by each character below U+0144, or -1 (`scalarToByte[c]`).
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in byteToScalar.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// The bytes a byte-level token string stands for, or `nil` if a character of it is outside
    /// the alphabet (the Hugging Face decoder then falls back to the token's own UTF-8).
    static func decode(_ token: some Sequence<Unicode.Scalar>) -> [UInt8]? {
        var out: [UInt8] = []
        for s in token {
            guard s.value < 0x144 else { return nil }
            let b = scalarToByte[Int(s.value)]
            guard b >= 0 else { return nil }
            out.append(UInt8(b))
        }
        return out
    }

    /// The byte-level spelling (as UTF-8) of raw bytes.
    static func encode(_ bytes: some Sequence<UInt8>, into out: inout [UInt8]) {
        for b in bytes { appendUTF8(byteToScalar[Int(b)], to: &out) }
    }
}
