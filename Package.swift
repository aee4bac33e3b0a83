// swift-tools-version: 6.0
//
// qwen-swift: a native Swift runtime for quantized Qwen2 ONNX models.
//
// Library targets carry no unsafeFlags (SwiftPM refuses such dependencies). Build with the CPU
// named for SIMD speed, e.g.
//   swift build -c release -Xswiftc -target-cpu -Xswiftc native
// (README: "Building for speed").
import PackageDescription

let package = Package(
    name: "qwen-swift",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Qwen", targets: ["Qwen"]),
        .executable(name: "qwen-run", targets: ["qwen-run"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // libopenblas-dev (Debian) / openblas (Homebrew): cblas_sgemm and friends.
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]
        ),
        // Protobuf wire reader, ModelProto & co, external data (mmap, bounds, safe paths).
        .target(name: "ONNX"),
        // Hot int4 kernels in C with x86 intrinsics, chosen at run time by CPU features.
        .target(name: "CKernels"),
        // Raw-pointer numeric kernels: int4 GEMV/GEMM, fp16 conversion, BLAS, softmax, norms.
        .target(name: "Kernels", dependencies: ["COpenBLAS", "CKernels"]),
        // Tensor, Graph, Session, operators, passes.
        .target(name: "Runtime", dependencies: ["ONNX", "Kernels", "CKernels"]),
        // tokenizer.json byte-level BPE, pre-tokenizer, streaming decode, chat templates.
        .target(name: "Tokenizer"),
        // The library users import: model directory, generation, sampling.
        .target(name: "Qwen", dependencies: ["Runtime", "Tokenizer"]),
        .executableTarget(
            name: "qwen-run",
            dependencies: [
                "Qwen",
                "Kernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ONNXTests", dependencies: ["ONNX"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Kernels"], exclude: ["Data"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer"], exclude: ["Data"]),
        .testTarget(name: "QwenTests", dependencies: ["Qwen", "qwen-run"], exclude: ["Data"]),
    ]
)
