// swift-tools-version: 6.0
//
// Tokenizer speed, side by side with Hugging Face tokenizers: run scripts/tokenizer_benchmark.py
// (it builds this package). A package of its own so that the main package's `swift test` stays
// light; Sources/Tokenizer is a symbolic link to the library's sources.
import PackageDescription

let package = Package(
    name: "TokenizerBenchmark",
    targets: [
        .target(name: "Tokenizer"),
        .executableTarget(name: "tokenizer-benchmark", dependencies: ["Tokenizer"]),
    ]
)
