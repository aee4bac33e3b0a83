import Foundation
import Testing

@testable import Tokenizer

/// The JSON reader against hand-written documents with known values.
@Suite struct JSONReaderTests {
    @Test func parsesAllKindsOfValues() throws {
        let v = try JSONValue.parse(#" {"b": [1, -2, 3.5, 1e3, -0.25E-2, true, false, null], "a": {"x": "y"}, "b2": "\u00e9\n\t\"\\\/", "e": [], "o": {}} "#)
        #expect(v["b"] == .array([.int(1), .int(-2), .double(3.5), .double(1000), .double(-0.0025), .bool(true), .bool(false), .null]))
        #expect(v["a"] == .object(JSONObject([("x", .string("y"))])))
        #expect(v["b2"] == .string("é\n\t\"\\/"))
        #expect(v["e"] == .array([]))
        #expect(v["o"] == .object(JSONObject()))
        #expect(v.objectValue?.keys == ["b", "a", "b2", "e", "o"])  // document order is kept
    }

    @Test func surrogatePairsAndRawUTF8() throws {
        #expect(try JSONValue.parse(#""\ud83d\ude00 😀 \uFEFFx""#) == .string("😀 😀 \u{FEFF}x"))
        #expect(try JSONValue.parse("\"\u{FEFF}日本\"") == .string("\u{FEFF}日本"))
    }

    @Test func duplicateKeysKeepTheLastValueAndFirstPosition() throws {
        let v = try JSONValue.parse(#"{"a": 1, "b": 2, "a": 3}"#)
        #expect(v.objectValue?.keys == ["a", "b"])
        #expect(v["a"] == .int(3))
    }

    @Test func bigIntegersBecomeDoubles() throws {
        #expect(try JSONValue.parse("123456789012345678901234567890") == .double(123456789012345678901234567890.0))
        #expect(try JSONValue.parse("-9223372036854775808") == .int(Int.min))
    }

    @Test func rejectsInvalidDocuments() {
        let bad = ["", "   ", "{", "[1,]", "{\"a\" 1}", "{\"a\": 1,}", "01", "1.", ".5", "1e", "-", "tru", "nul", "\"abc",
                   "\"\\x\"", "\"\\u12\"", "\"\\udc00\"", "\"\\ud800x\"", "\"a\u{01}b\"", "[1] 2", "{\"a\": [}", "\u{FEFF}{}"]
        for text in bad {
            #expect(throws: TokenizerError.self, "accepted \(text.debugDescription)") { try JSONValue.parse(text) }
        }
    }

    @Test func nestingIsBounded() {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: TokenizerError.self) { try JSONValue.parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? JSONValue.parse(fine)) != nil)
    }

    @Test func invalidUTF8OffsetsAreExact() {
        for (bytes, offset) in [([0x22, 0x61, 0xFF, 0x22], 2), ([0x22, 0xE2, 0x82, 0x22], 1), ([0x22, 0x61, 0x62, 0xED, 0xA0, 0x80, 0x22], 3)] {
            #expect(throws: TokenizerError.invalidJSON(file: "<json>", offset: offset, message: "invalid UTF-8 in string")) {
                try JSONValue.parse(bytes.map { UInt8($0) })
            }
        }
    }
}
