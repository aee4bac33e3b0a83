// libFuzzer target: the ONNX protobuf reader and the load-time checks of tensors and external
// data. The work is ONNXFuzzEntry.run (Sources/ONNX/FuzzEntry.swift), which the corpus replay
// tests run too. Built and run by scripts/fuzz.
@testable import ONNX

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    do {
        _ = try ONNXFuzzEntry.run(UnsafeRawBufferPointer(start: data, count: size))
    } catch where ONNXFuzzEntry.isExpected(error) {
    } catch {
        fatalError("not a typed refusal: \(type(of: error)): \(error)")
    }
    return 0
}
