// The library users import: model directories, generation, sampling, and the runtime and
// tokenizer it builds on (re-exported so `import Qwen` is enough).
@_exported import ONNX
@_exported import Runtime
@_exported import Tokenizer

/// The package's version.
public enum QwenSwift {
    /// The release this source tree is: 0.SESSION.PATCH while the API settles.
    public static let version = "0.11.0"
}
