@_exported import Runtime
@_exported import Tokenizer
