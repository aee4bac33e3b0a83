// The library users import: model directories, generation, sampling, and the runtime and
// tokenizer it builds on (re-exported so `import Qwen` is enough).
@_exported import ONNX
@_exported import Runtime
@_exported import Tokenizer
