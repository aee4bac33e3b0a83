// The library users import: model directories, generation, sampling, the tokenizer and chat
// types, and the few runtime types its API names (the activation modes of `LoadOptions`, the
// errors a load can throw). The runtime itself (Session, Tensor, Graph: running any ONNX graph) is
// the Runtime module, imported by name.
@_exported import Tokenizer
@_exported import enum Runtime.Int8Activations
@_exported import enum Runtime.DecodeActivations
@_exported import enum Runtime.RuntimeError
@_exported import enum ONNX.ONNXError
@_exported import struct Kernels.SeededRandom

/// The package's version.
public enum QwenSwift {
    /// The release this source tree is: 0.SESSION.PATCH while the API settles.
    public static let version = "0.12.0"
}
