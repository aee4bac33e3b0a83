import Foundation
import Testing

@testable import Tokenizer

/// The real Qwen2.5 tokenizer against ids from Hugging Face tokenizers 0.22.2
/// (Tests/TokenizerTests/Data/qwen2.5_*.jsonl, written by scripts/tokenizer_reference.py).
@Suite struct QwenCorpusTests {
    struct Row {
        var text: String
        var ids: [Int]
        var nfc: String
    }

    static let corpus: [Row] = {
        let rows = (try? TestData.jsonLines("qwen2.5_corpus.jsonl")) ?? []
        return rows.map { Row(text: $0["text"] as! String, ids: TestData.ints($0["ids"]), nfc: $0["nfc"] as! String) }
    }()

    /// The corpus, or a failed test when its file is missing or empty (scripts/tokenizer_reference.py
    /// checks what it covers when it writes it).
    static func rows() throws -> [Row] {
        try #require(!corpus.isEmpty, "Data/qwen2.5_corpus.jsonl is missing or empty")
        return corpus
    }

    @Test func goldenIDs() throws {
        let tok = try TestData.qwen()
        #expect(tok.encode("Hello world") == [9707, 1879])
        #expect(tok.encode(" Hello world") == [21927, 1879])
    }

    @Test func layoutMatchesTheOfficialTokenizer() throws {
        let tok = try TestData.qwen()
                #expect(tok.vocabularySize == 151_665)
        #expect(tok.addedTokens.count == 22)
        #expect(tok.tokenID("<|endoftext|>") == 151_643)
        #expect(tok.tokenID("<|im_start|>") == 151_644)
        #expect(tok.tokenID("<|im_end|>") == 151_645)
        #expect(tok.tokenID("<|file_sep|>") == 151_664)
        #expect(tok.eosTokenID == 151_645)
        #expect(tok.padTokenID == 151_643)
        #expect(tok.bosTokenID == nil)
        #expect(tok.token(9707) == "Hello")
        #expect(tok.token(21927) == "ĠHello")
        #expect(tok.isSpecial(151_644))
        #expect(!tok.isSpecial(9707))
    }

    /// 100% identical ids on every corpus string.
    @Test func encodeMatchesHuggingFace() throws {
        let tok = try TestData.qwen()
        var failures: [String] = []
        for row in try Self.rows() {
            let ids = tok.encode(row.text)
            if ids != row.ids {
                failures.append("\"\(visible(row.text))\"\n  got      \(ids)\n  expected \(row.ids)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(Self.corpus.count) strings differ; first:\n\(failures.prefix(5).joined(separator: "\n"))")
    }

    /// decode(encode(x)) == NFC(x), compared code point by code point (not by String ==, which
    /// is canonical equivalence and would hide normalization bugs).
    @Test func decodeOfEncodeIsNFC() throws {
        let tok = try TestData.qwen()
        var failures: [String] = []
        for row in try Self.rows() {
            let decoded = tok.decode(tok.encode(row.text))
            if !decoded.unicodeScalars.elementsEqual(row.nfc.unicodeScalars) {
                failures.append("\"\(visible(row.text))\" -> \"\(visible(decoded))\"")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) round trips differ:\n\(failures.prefix(5).joined(separator: "\n"))")
    }

    /// Our NFC (Foundation behind a quick check) equals the reference normalizer's.
    @Test func nfcMatchesTheReferenceNormalizer() throws {
        for row in try Self.rows() {
            let ours = NFC.normalize(row.text)
            #expect(ours.unicodeScalars.elementsEqual(row.nfc.unicodeScalars), "NFC of \"\(visible(row.text))\"")
        }
    }

    /// decode() of arbitrary id sequences (split characters, special tokens, unknown ids).
    @Test func decodeMatchesHuggingFace() throws {
        let tok = try TestData.qwen()
        let cases = try TestData.jsonLines("qwen2.5_decode.jsonl")
        #expect(cases.count >= 400)
        for c in cases {
            let ids = TestData.ints(c["ids"])
            let text = tok.decode(ids)
            let skipped = tok.decode(ids, skipSpecialTokens: true)
            #expect(text.unicodeScalars.elementsEqual((c["text"] as! String).unicodeScalars), "decode \(ids)")
            #expect(skipped.unicodeScalars.elementsEqual((c["text_skip_special"] as! String).unicodeScalars), "decode skipping specials \(ids)")
        }
    }

    /// The streaming detokenizer's pieces concatenate to decode() of all ids, and it never emits
    /// U+FFFD for a character split over tokens.
    @Test func streamingDetokenizerMatchesDecode() throws {
        let tok = try TestData.qwen()
        let cases = try TestData.jsonLines("qwen2.5_decode.jsonl")
        for c in cases {
            let ids = TestData.ints(c["ids"])
            var stream = tok.makeStreamingDetokenizer()
            var pieces = ids.map { stream.append($0) }
            pieces.append(stream.finish())
            #expect(pieces.joined().unicodeScalars.elementsEqual((c["text"] as! String).unicodeScalars), "stream \(ids)")
        }
        for row in try Self.rows() where !row.ids.isEmpty {
            var stream = tok.makeStreamingDetokenizer()
            var text = ""
            for id in row.ids {
                let piece = stream.append(id)
                #expect(!piece.unicodeScalars.contains("\u{FFFD}") || row.nfc.unicodeScalars.contains("\u{FFFD}"),
                    "U+FFFD while streaming \"\(visible(row.text))\"")
                text += piece
            }
            #expect(!stream.hasPendingBytes)
            text += stream.finish()
            #expect(text.unicodeScalars.elementsEqual(row.nfc.unicodeScalars))
        }
    }

    @Test func streamingHoldsBackASplitCharacter() throws {
        let tok = try TestData.qwen()
        // "😀" is four bytes; byte-level tokens for them one at a time.
                let byteIDs = Array("😀".utf8).map { b in tok.tokenID(String(ByteLevel.byteToScalar[Int(b)]))! }
        var stream = tok.makeStreamingDetokenizer()
        #expect(stream.append(byteIDs[0]) == "")
        #expect(stream.append(byteIDs[1]) == "")
        #expect(stream.append(byteIDs[2]) == "")
        #expect(stream.append(byteIDs[3]) == "😀")
        #expect(stream.finish() == "")
        // An incomplete character at the end becomes U+FFFD only when finishing.
        #expect(stream.append(byteIDs[0]) == "")
        #expect(stream.finish() == "\u{FFFD}")
        // Special tokens can be skipped.
        var skipping = tok.makeStreamingDetokenizer(skipSpecialTokens: true)
        #expect(skipping.append(151_645) == "")
        #expect(skipping.append(9707) == "Hello")
    }

    /// One tokenizer used from many tasks at once gives the same ids as used alone.
    @Test func concurrentEncodingIsSafe() async throws {
        let tok = try TestData.qwen()
        let rows = Array(try Self.rows().prefix(400))
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for part in 0..<4 {
                group.addTask {
                    rows.enumerated().filter { $0.offset % 4 == part }.allSatisfy { tok.encode($0.element.text) == $0.element.ids }
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }

    /// Both merge strategies (linear scan for short pieces, heap for long ones) give the same
    /// tokens on every piece of the corpus; each is also covered by the corpus ids above.
    @Test func linearAndHeapMergingAgree() throws {
        let tok = try TestData.qwen()
                let encoder = tok.encoderForTesting
        var scratch = BytePairEncoder.Scratch()
        var pairs = [UInt64](repeating: 0, count: 4096)
        for row in try Self.rows() {
            var text = row.nfc
            tok.preTokenizerForTesting.run(&text) { piece in
                var linear = piece.map { encoder.byteTokens[Int($0)] }
                scratch.symbols = linear
                guard linear.count > 1, linear.count <= pairs.count else { return }
                let count = encoder.mergeLinear(&linear, &pairs, count: linear.count)
                linear.removeLast(linear.count - count)
                encoder.mergeWithHeap(&scratch)
                #expect(linear == scratch.symbols)
            }
        }
    }
}
