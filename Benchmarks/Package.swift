// swift-tools-version: 6.1
//
// Layer and kernel throughput benchmarks (ordo-one's package-benchmark). A package of its own, so
// that the main package's `swift test` never builds it. Run it with the CPU named, as the runtime
// is meant to be built (-Xswiftc given to `swift package` reaches every target the plugin builds,
// the main package's included; no unsafeFlags needed):
//
//   scripts/kernel-bench                      # builds release with -target-cpu native, runs, prints a table
//   swift package --package-path Benchmarks -Xswiftc -target-cpu -Xswiftc native benchmark
//
// See README.md, "Kernel benchmarks".
import PackageDescription

let package = Package(
    name: "QwenBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // No traits: with "MallocInterposer" package-benchmark imports the Swift toolchain's
        // `Runtime` module (allocation stacks), whose name the main package's `Runtime` target
        // takes in this build ("missing required modules: 'CKernels', 'COpenBLAS'"). The
        // benchmarks record no malloc metrics, so nothing is lost. (Its default traits would also
        // ask for swift-runtime-interposer, which is not available here.)
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: []),
        .package(name: "qwen-swift", path: ".."),
    ],
    targets: [
        // The plugin runs executable targets whose folder sits in a folder named `Benchmarks`:
        // this package's root is one.
        .executableTarget(
            name: "QwenBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Qwen", package: "qwen-swift"),
                .product(name: "QwenRuntime", package: "qwen-swift"),
            ],
            path: "QwenBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)
