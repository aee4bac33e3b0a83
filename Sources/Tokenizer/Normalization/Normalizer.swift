/// The `normalizer` section of `tokenizer.json`. Qwen2 ships `NFC`; GPT-2 ships none.
enum Normalizer: Sendable, Equatable {
    case none
    case nfc

    /// Reads a normalizer description (`null`, `{"type": "NFC"}`, or a `Sequence` of those).
    init(json: JSONValue, file: String, path: String = "normalizer") throws {
        switch json {
        case .null:
            self = .none
        case .object(let object):
            guard let type = object["type"]?.stringValue else {
                throw TokenizerError.missingField(file: file, path: path + ".type")
            }
            switch type {
            case "NFC":
                self = .nfc
            case "Sequence":
                guard let steps = object["normalizers"]?.arrayValue else {
                    throw TokenizerError.missingField(file: file, path: path + ".normalizers")
                }
                var result = Normalizer.none
                for (i, step) in steps.enumerated() {
                    let inner = try Normalizer(json: step, file: file, path: "\(path).normalizers[\(i)]")
                    if inner == .none { continue }
                    // NFC is idempotent, so any number of NFC steps is one NFC step.
                    result = inner
                }
                self = result
            default:
                throw TokenizerError.unsupported(file: file, path: path, feature: "normalizer type '\(type)'")
            }
        default:
            throw TokenizerError.wrongType(file: file, path: path, expected: "an object or null", found: json.kindName)
        }
    }

    /// The normalized form of `text`.
    func apply(_ text: String) -> String {
        switch self {
        case .none: return text
        case .nfc: return NFC.normalize(text)
        }
    }
}

/// Unicode Normalization Form C, done only where it can change something, with the Unicode data
/// of the reference normalizer (Unicode 9.0, see scripts/tokenizer_unicode_tables.py): a newer
/// normalizer (Foundation's) would reorder or compose characters the reference leaves alone.
///
/// Text made of "NFC-safe" code points (combining class 0, no decomposition, never the second half
/// of a composition) is already normalized. Around each run of unsafe code points we normalize the
/// span from the preceding safe character (a starter that a mark may compose with) to the next
/// safe character; spans are independent because a safe character never composes with what
/// precedes it and stops canonical reordering.
enum NFC {
    static func normalize(_ text: String) -> String {
        var text = text
        return text.withUTF8 { bytes in
            let table = CharacterClassTable.shared
            var output: [UInt8] = []
            var copied = 0  // bytes of `bytes` already in `output`
            var lastSafeStart = 0  // start of the last safe code point seen
            var i = 0
            var span: [UInt32] = []
            while i < bytes.count {
                let (cp, n) = decodeScalar(bytes, at: i)
                guard table.classes(of: cp).contains(.nfcUnsafe) else {
                    lastSafeStart = i
                    i += n
                    continue
                }
                // An unsafe run: extend to the next safe code point.
                let spanStart = max(lastSafeStart, copied)
                var j = i + n
                while j < bytes.count {
                    let (next, m) = decodeScalar(bytes, at: j)
                    if !table.classes(of: next).contains(.nfcUnsafe) { break }
                    j += m
                }
                if output.isEmpty { output.reserveCapacity(bytes.count + 16) }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied..<spanStart]))
                span.removeAll(keepingCapacity: true)
                var k = spanStart
                while k < j {
                    let (c, m) = decodeScalar(bytes, at: k)
                    span.append(c)
                    k += m
                }
                for c in NFCData.shared.compose(NFCData.shared.decompose(span)) {
                    appendUTF8(Unicode.Scalar(c)!, to: &output)
                }
                copied = j
                lastSafeStart = j
                i = j
            }
            if copied == 0 { return nil }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied..<bytes.count]))
            return String(decoding: output, as: UTF8.self)
        } ?? text
    }
}

/// Lookup tables for NFC built from the generated data in `UnicodeTables.swift`.
final class NFCData: Sendable {
    static let shared = NFCData()

    private let combiningClass: [UInt32: UInt8]
    private let decomposition: [UInt32: [UInt32]]
    private let composition: [UInt64: UInt32]

    private init() {
        var classes: [UInt32: UInt8] = [:]
        for i in stride(from: 0, to: nfcCombiningClasses.count, by: 2) {
            classes[nfcCombiningClasses[i]] = UInt8(nfcCombiningClasses[i + 1])
        }
        var decompositions: [UInt32: [UInt32]] = [:]
        var i = 0
        while i < nfcDecompositions.count {
            let n = Int(nfcDecompositions[i + 1])
            decompositions[nfcDecompositions[i]] = Array(nfcDecompositions[(i + 2)..<(i + 2 + n)])
            i += 2 + n
        }
        var compositions: [UInt64: UInt32] = [:]
        for i in stride(from: 0, to: nfcCompositions.count, by: 3) {
            compositions[UInt64(nfcCompositions[i]) << 32 | UInt64(nfcCompositions[i + 1])] = nfcCompositions[i + 2]
        }
        combiningClass = classes
        decomposition = decompositions
        composition = compositions
    }

    // Hangul syllables are composed and decomposed arithmetically.
    private static let sBase: UInt32 = 0xAC00, lBase: UInt32 = 0x1100, vBase: UInt32 = 0x1161, tBase: UInt32 = 0x11A7
    private static let lCount: UInt32 = 19, vCount: UInt32 = 21, tCount: UInt32 = 28
    private static let sCount = lCount * vCount * tCount

    func ccc(_ c: UInt32) -> UInt8 { combiningClass[c] ?? 0 }

    /// Full canonical decomposition, then canonical ordering (a stable sort of each run of
    /// non-starters by combining class).
    func decompose(_ scalars: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(scalars.count + 4)
        for c in scalars {
            if c >= Self.sBase && c < Self.sBase + Self.sCount {
                let s = c - Self.sBase
                out.append(Self.lBase + s / (Self.vCount * Self.tCount))
                out.append(Self.vBase + (s % (Self.vCount * Self.tCount)) / Self.tCount)
                if s % Self.tCount != 0 { out.append(Self.tBase + s % Self.tCount) }
            } else if let d = decomposition[c] {
                out.append(contentsOf: d)
            } else {
                out.append(c)
            }
        }
        // Canonical ordering.
        var i = 0
        while i < out.count {
            guard ccc(out[i]) != 0 else {
                i += 1
                continue
            }
            var j = i
            while j < out.count && ccc(out[j]) != 0 { j += 1 }
            if j - i > 1 {
                let sorted = out[i..<j].enumerated().sorted { a, b in
                    let (x, y) = (ccc(a.element), ccc(b.element))
                    return x < y || (x == y && a.offset < b.offset)
                }.map(\.element)
                out.replaceSubrange(i..<j, with: sorted)
            }
            i = j
        }
        return out
    }

    /// Canonical composition of decomposed, canonically ordered text.
    func compose(_ scalars: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(scalars.count)
        var starter = -1  // index in `out` of the last starter
        var lastClass: Int = -1  // class of the last character after the starter; -1: none
        for c in scalars {
            let cc = Int(ccc(c))
            if starter >= 0 {
                let blocked = lastClass != -1 && (lastClass == 0 || lastClass >= cc)
                if !blocked, let composite = composePair(out[starter], c) {
                    out[starter] = composite
                    continue
                }
            }
            if cc == 0 {
                starter = out.count
                lastClass = -1
            } else {
                lastClass = cc
            }
            out.append(c)
        }
        return out
    }

    private func composePair(_ a: UInt32, _ b: UInt32) -> UInt32? {
        // L + V -> LV
        if a >= Self.lBase && a < Self.lBase + Self.lCount && b >= Self.vBase && b < Self.vBase + Self.vCount {
            return Self.sBase + ((a - Self.lBase) * Self.vCount + (b - Self.vBase)) * Self.tCount
        }
        // LV + T -> LVT
        if a >= Self.sBase && a < Self.sBase + Self.sCount && (a - Self.sBase) % Self.tCount == 0
            && b > Self.tBase && b < Self.tBase + Self.tCount
        {
            return a + (b - Self.tBase)
        }
        return composition[UInt64(a) << 32 | UInt64(b)]
    }
}

/// The scalar value of valid UTF-8 starting at `i`, and its length in bytes.
@inline(__always)
func decodeScalar(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> (UInt32, Int) {
    let b0 = UInt32(bytes[i])
    if b0 < 0x80 { return (b0, 1) }
    if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F), 2) }
    if b0 < 0xF0 {
        return ((b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F), 3)
    }
    return (
        (b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6
            | UInt32(bytes[i + 3] & 0x3F), 4
    )
}
