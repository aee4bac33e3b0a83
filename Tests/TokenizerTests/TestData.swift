import Foundation
import Testing

@testable import Tokenizer

/// Locations of the reference data (written by scripts/tokenizer_reference.py) and of the real
/// Qwen2.5 tokenizer (Models/tokenizer/qwen2.5), found relative to this file.
enum TestData {
    static let testsDirectory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
    static let directory = testsDirectory.appendingPathComponent("Data")
    static let repositoryRoot = testsDirectory.deletingLastPathComponent().deletingLastPathComponent()
    static let qwenDirectory = repositoryRoot.appendingPathComponent("Models/tokenizer/qwen2.5")

    private static let qwenResult = Result { try Tokenizer(directory: qwenDirectory) }

    /// The real Qwen2.5 tokenizer, loaded once for all tests.
    static func qwen() throws -> Tokenizer { try qwenResult.get() }

    /// Rows of a JSON Lines file, parsed with Foundation (independently of our JSON reader).
    static func jsonLines(_ name: String) throws -> [[String: Any]] {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        return try text.split(separator: "\n", omittingEmptySubsequences: true).map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])
            guard let row = object as? [String: Any] else { throw TestDataError("\(name): a line is not an object") }
            return row
        }
    }

    static func ints(_ value: Any?) -> [Int] { (value as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } ?? [] }

    /// Lines of a JSON Lines file as `JSONValue`s, for data where object key order matters (chat
    /// messages and tool schemas: `tojson` prints keys in order). Uses our own JSON reader, which
    /// has its own tests; a reader bug would show up as a mismatch with the reference rendering.
    static func orderedJSONLines(_ name: String) throws -> [JSONValue] {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        return try text.split(separator: "\n", omittingEmptySubsequences: true).map { try JSONValue.parse(String($0)) }
    }
}

struct TestDataError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Shows strings with escapes so that whitespace differences are visible in failures.
func visible(_ s: String) -> String {
    s.unicodeScalars.map { c in
        switch c {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        default: return c.value < 0x20 || (0x7F...0xA0).contains(c.value) ? "\\u{\(String(c.value, radix: 16))}" : String(c)
        }
    }.joined()
}
