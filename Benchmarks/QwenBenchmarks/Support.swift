// Shared pieces of the benchmarks: fixed-seed random data, one-node graphs run through a Session
// (the stable public API: the kernels behind an operator may change, the ONNX op does not), and
// the per-iteration throughput metrics.
import Benchmark
import Foundation
import ONNX
import Qwen
import Runtime

// MARK: - Metrics

/// Custom metrics recorded once per iteration from the iteration's own wall time. Units are kept
/// as plain counts so that exported samples are the values themselves (scripts/kernel-bench reads
/// them back).
enum QwenMetric {
    /// Bytes moved per second, in MB/s (10^6): packed weights + scales + activations in and out.
    static let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)
    /// Floating-point operations per second, in MFLOP/s (10^6); 2·M·N·K for a matrix product.
    static let megaflopsPerSecond = BenchmarkMetric.custom("MFLOP/s", polarity: .prefersLarger, useScalingFactor: false)
    /// Microseconds per token (model benchmarks); an integer count keeps its precision where
    /// tokens/s (a few per second when decoding on two cores) would not.
    static let microsecondsPerToken = BenchmarkMetric.custom("us/token", polarity: .prefersSmaller, useScalingFactor: false)
}

/// What one iteration of a benchmark moves and computes; zero means "not reported".
struct Work: Sendable {
    var bytes: Double
    var flops: Double
    var tokens: Int = 0
}

@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// How long a benchmark may run: kernels of microseconds to milliseconds get 1 s, the GEMMs
/// against the LM head (~1 s an iteration) 2 s, whole models 8 s (a 128-token prefill of the real
/// 0.5B takes seconds). Each also has one warm-up iteration.
enum Budget {
    case short, long, model

    var maxDuration: Duration {
        switch self {
        case .short: .seconds(1)
        case .long: .seconds(2)
        case .model: .seconds(8)
        }
    }

    var maxIterations: Int {
        switch self {
        case .short: 2_000
        case .long: 20
        case .model: 100
        }
    }

    func configuration(reportsTokens: Bool) -> Benchmark.Configuration {
        var metrics: [BenchmarkMetric] = [.wallClock, .throughput, QwenMetric.megabytesPerSecond, QwenMetric.megaflopsPerSecond]
        var units: [BenchmarkMetric: BenchmarkUnits] = [
            QwenMetric.megabytesPerSecond: .count, QwenMetric.megaflopsPerSecond: .count,
        ]
        if reportsTokens {
            metrics.append(QwenMetric.microsecondsPerToken)
            units[QwenMetric.microsecondsPerToken] = .count
        }
        return Benchmark.Configuration(
            metrics: metrics,
            units: units,
            warmupIterations: 1,
            scalingFactor: .one,
            maxDuration: maxDuration,
            maxIterations: maxIterations
        )
    }
}

/// Holds a benchmark's state between its setup and teardown, so that the large weight buffers of
/// one benchmark are freed before the next one allocates its own.
final class StateBox<State>: @unchecked Sendable {
    var value: State?
}

/// Registers a benchmark whose state is built in `setup` (not measured) and whose iteration is
/// `body`, timed around `body` alone to derive the custom throughput metrics.
func register<State>(
    _ name: String, budget: Budget = .short, reportsTokens: Bool = false, work: @escaping @Sendable (State) -> Work,
    setup: @escaping @Sendable () throws -> State, body: @escaping @Sendable (State) throws -> Void
) {
    let box = StateBox<State>()
    Benchmark(name, configuration: budget.configuration(reportsTokens: reportsTokens), closure: { benchmark in
        guard let state = box.value else {
            benchmark.error("\(name): setup produced no state")
            return
        }
        let w = work(state)
        let start = monotonicNanoseconds()
        do {
            try body(state)
        } catch {
            benchmark.error("\(name): \(error)")
            return
        }
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        guard seconds > 0 else { return }
        if w.bytes > 0 { benchmark.measurement(QwenMetric.megabytesPerSecond, Int((w.bytes / seconds / 1e6).rounded())) }
        if w.flops > 0 { benchmark.measurement(QwenMetric.megaflopsPerSecond, Int((w.flops / seconds / 1e6).rounded())) }
        if w.tokens > 0 { benchmark.measurement(QwenMetric.microsecondsPerToken, Int((seconds * 1e6 / Double(w.tokens)).rounded())) }
    }, setup: {
        box.value = try setup()
    }, teardown: {
        box.value = nil
    })
}

// MARK: - Fixed-seed data

/// The library's seeded generator with a fixed seed, so every run benchmarks the same data.
extension SeededRandom {
    /// Uniform in [-1, 1).
    mutating func nextSigned() -> Float {
        Float(next() >> 40) / Float(1 << 23) - 1
    }
}

/// A uint8 tensor of uniformly random bytes (packed int4 weights: every nibble 0...15).
func randomBytes(_ shape: [Int], seed: UInt64) -> Tensor {
    let t = Tensor(dtype: .uint8, shape: shape)
    var rng = SeededRandom(seed: seed)
    let count = t.count
    let words = count / 8
    let p = t.rawPointer
    for i in 0..<words { p.storeBytes(of: rng.next(), toByteOffset: i * 8, as: UInt64.self) }
    for i in (words * 8)..<count { p.storeBytes(of: UInt8(truncatingIfNeeded: rng.next()), toByteOffset: i, as: UInt8.self) }
    return t
}

/// A float32 or float16 tensor of values uniform in `[offset - scale, offset + scale)`.
func randomFloats(_ dtype: DataType, _ shape: [Int], seed: UInt64, scale: Float = 1, offset: Float = 0) -> Tensor {
    let t = Tensor(dtype: dtype, shape: shape)
    var rng = SeededRandom(seed: seed)
    switch dtype {
    case .float:
        let p = t.pointer(as: Float.self)
        for i in 0..<t.count { p[i] = offset + scale * rng.nextSigned() }
    case .float16:
        let p = t.pointer(as: Float16.self)
        for i in 0..<t.count { p[i] = Float16(offset + scale * rng.nextSigned()) }
    default:
        preconditionFailure("randomFloats: \(dtype)")
    }
    return t
}

// MARK: - One-node graphs

func intAttribute(_ name: String, _ value: Int) -> AttributeProto {
    var a = AttributeProto()
    a.name = name
    a.kind = .int
    a.i = Int64(value)
    return a
}

/// A planned single-operator (or small) graph and the feeds to run it with.
struct PlannedGraph: @unchecked Sendable {
    let session: Session
    let feeds: [String: Tensor]

    /// Runs the graph once; the outputs are dropped after a touch so the work cannot be skipped.
    func run() throws {
        let out = try session.run(feeds)
        Benchmark.blackHole(out.count)
    }
}

/// A planned graph run for several sequences at once (`Session.runBatch`).
struct PlannedBatch: @unchecked Sendable {
    let session: Session
    let feedSets: [[String: Tensor]]

    func run() throws {
        let out = try session.runBatch(feedSets)
        Benchmark.blackHole(out.count)
    }
}

/// Opsets the benchmarks' graphs import: those of the Qwen2 exports.
let exportOpsets = ["": 18, "com.microsoft": 1]

/// Plans `nodes` as a graph: `inputs` are fed at run time, `constants` are initializers (as a
/// model's weights are), `outputs` are the graph outputs.
func planGraph(
    nodes: [Node], inputs: [String: Tensor], constants: [String: Tensor], outputs: [String],
    numerics: Float16Numerics = .onnxRuntime, decodeActivations: DecodeActivations = .automatic
) throws -> PlannedGraph {
    let specs = inputs.keys.sorted().map { ValueSpec(name: $0, elementType: inputs[$0]!.dtype, shape: nil) }
    let graph = try Graph(
        nodes: nodes, constants: constants, inputs: specs,
        outputs: outputs.map { ValueSpec(name: $0, elementType: nil, shape: nil) }, opsets: exportOpsets)
    var options = SessionOptions()
    options.float16Numerics = numerics
    options.decodeActivations = decodeActivations
    return PlannedGraph(session: try Session(graph: graph, options: options), feeds: inputs)
}

/// The paths the benchmarks read: the committed fixtures and the (git-ignored) real model.
enum BenchmarkPaths {
    /// The `Benchmarks/` folder (this file is `Benchmarks/QwenBenchmarks/Support.swift`).
    static let benchmarksDirectory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let repository = benchmarksDirectory.deletingLastPathComponent()
    static let tinyFixture = repository.appendingPathComponent("Models/fixtures/tiny-qwen2")

    /// `QWEN_BENCH_MODEL` (absolute, or relative to `Benchmarks/`), default
    /// `../Models/qwen2.5-coder-0.5b-instruct`.
    static var realModel: URL {
        let raw = ProcessInfo.processInfo.environment["QWEN_BENCH_MODEL"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "../Models/qwen2.5-coder-0.5b-instruct"
        let url = raw.hasPrefix("/") ? URL(fileURLWithPath: raw) : benchmarksDirectory.appendingPathComponent(raw)
        return url.standardized
    }
}

func printNote(_ message: String) {
    FileHandle.standardError.write(Data("QwenBenchmarks: \(message)\n".utf8))
}
