// libFuzzer target: the Jinja chat-template parser and renderer. The work is
// TokenizerFuzzEntry.chatTemplate (Sources/Tokenizer/FuzzEntry.swift), which the corpus replay
// tests run too. Built and run by scripts/fuzz.
@testable import Tokenizer

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    do {
        _ = try TokenizerFuzzEntry.chatTemplate(UnsafeRawBufferPointer(start: data, count: size))
    } catch where TokenizerFuzzEntry.isExpected(error) {
    } catch {
        fatalError("not a typed refusal: \(type(of: error)): \(error)")
    }
    return 0
}
