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
    // macOS 15 / iOS 18: the Synchronization module (Atomic, Mutex) and String(validating:as:).
    platforms: [.macOS(.v15), .iOS(.v18)],
    products: [
        .library(name: "Qwen", targets: ["Qwen"]),
        // The ONNX runtime under Qwen, for running any graph (`import Runtime`: Session, Tensor;
        // `import ONNX`: the model reader).
        .library(name: "QwenRuntime", targets: ["Runtime", "ONNX"]),
        .library(name: "QwenServer", targets: ["QwenServer"]),
        .executable(name: "qwen-run", targets: ["qwen-run"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // QwenServer: HTTP (Hummingbird 2 on SwiftNIO), graceful shutdown, Prometheus metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.3.0"),
    ],
    targets: [
        // cblas_sgemm off Apple platforms: libopenblas-dev (Debian). Apple platforms use Accelerate.
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Protobuf wire reader, ModelProto & co, external data (mmap, bounds, safe paths).
        .target(name: "ONNX"),
        // Hot int4 kernels in C with x86 (AVX2, AVX-512) and arm64 (NEON) intrinsics, chosen at run
        // time by CPU features.
        .target(name: "CKernels"),
        // Raw-pointer numeric kernels: int4 GEMV/GEMM, fp16 conversion, BLAS, softmax, norms.
        .target(
            name: "Kernels",
            dependencies: [
                .target(name: "COpenBLAS", condition: .when(platforms: [.linux, .android, .openbsd, .windows])),
                "CKernels",
            ],
            linkerSettings: [.linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS, .visionOS, .tvOS, .watchOS]))]
        ),
        // Tensor, Graph, Session, operators, passes.
        .target(name: "Runtime", dependencies: ["ONNX", "Kernels"]),
        // tokenizer.json byte-level BPE, pre-tokenizer, streaming decode, chat templates.
        .target(name: "Tokenizer"),
        // The library users import: model directory, generation, sampling.
        .target(name: "Qwen", dependencies: ["Runtime", "Tokenizer"]),
        // The OpenAI-compatible HTTP API over Qwen: routes, scheduler, metrics.
        .target(
            name: "QwenServer",
            dependencies: [
                "Qwen",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .executableTarget(
            name: "qwen-run",
            dependencies: [
                "Qwen",
                "QwenServer",
                "Runtime",
                "Kernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ONNXTests", dependencies: ["ONNX"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Kernels"], exclude: ["Data"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer"], exclude: ["Data"]),
        .testTarget(name: "QwenTests", dependencies: ["Qwen", "Runtime", "Kernels", "qwen-run"], exclude: ["Data"]),
        .testTarget(
            name: "QwenServerTests",
            dependencies: ["QwenServer", "Qwen", .product(name: "HummingbirdTesting", package: "hummingbird")]
        ),
    ]
)
