// libFuzzer target: the pre-tokenizer's split patterns on arbitrary text, and lossless encoding
// with the real Qwen2.5 tokenizer (Models/tokenizer/qwen2.5, or $QWEN_FUZZ_TOKENIZER_DIR). The
// work is TokenizerFuzzEntry.preTokenize (Sources/Tokenizer/FuzzEntry.swift), which the corpus
// replay tests run too. Built and run by scripts/fuzz.
import Foundation
@testable import Tokenizer

let qwenTokenizer: Tokenizer = {
    let directory = ProcessInfo.processInfo.environment["QWEN_FUZZ_TOKENIZER_DIR"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Models/tokenizer/qwen2.5").standardized.path
    do {
        return try Tokenizer(directory: URL(fileURLWithPath: directory))
    } catch {
        fatalError("cannot load the Qwen2.5 tokenizer from \(directory): \(error)")
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    do {
        _ = try TokenizerFuzzEntry.preTokenize(UnsafeRawBufferPointer(start: data, count: size), tokenizer: qwenTokenizer)
    } catch where TokenizerFuzzEntry.isExpected(error) {
    } catch {
        fatalError("not a typed refusal: \(type(of: error)): \(error)")
    }
    return 0
}
