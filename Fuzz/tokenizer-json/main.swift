// libFuzzer target: tokenizer.json loading, then encoding and decoding with what loaded. The work
// is TokenizerFuzzEntry.tokenizerJSON (Sources/Tokenizer/FuzzEntry.swift), which the corpus
// replay tests run too. Built and run by scripts/fuzz.
@testable import Tokenizer

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    do {
        _ = try TokenizerFuzzEntry.tokenizerJSON(UnsafeRawBufferPointer(start: data, count: size))
    } catch where TokenizerFuzzEntry.isExpected(error) {
    } catch {
        fatalError("not a typed refusal: \(type(of: error)): \(error)")
    }
    return 0
}
