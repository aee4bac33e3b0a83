import Foundation

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

/// Unicode Normalization Form C, done only where it can change something.
///
/// Text made of "NFC-safe" code points (canonical combining class 0 and quick-check Yes; the table
/// comes from the reference implementation) is already normalized. Around each run of unsafe code
/// points we normalize the span from the preceding safe character (a starter that a combining
/// mark may compose with) to the next safe character; spans are independent because a safe
/// character never composes with what precedes it and stops canonical reordering.
enum NFC {
    static func normalize(_ text: String) -> String {
        var text = text
        return text.withUTF8 { bytes in
            let table = CharacterClassTable.shared
            var output: [UInt8] = []
            var copied = 0  // bytes of `bytes` already in `output`
            var lastSafeStart = 0  // start of the last safe code point seen
            var i = 0
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
                if output.isEmpty { output.reserveCapacity(bytes.count) }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[copied..<spanStart]))
                let span = String(decoding: UnsafeBufferPointer(rebasing: bytes[spanStart..<j]), as: UTF8.self)
                output.append(contentsOf: span.precomposedStringWithCanonicalMapping.utf8)
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
