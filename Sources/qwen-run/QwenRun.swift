import ArgumentParser
import Foundation
import Runtime
import Kernels
import Qwen

/// The `qwen-run` command line. Errors reach stderr as their description (each names the file,
/// tensor or node concerned) with exit code 1; usage errors exit with 64.
@main
struct QwenRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qwen-run",
        abstract: "Run quantized Qwen2 ONNX models natively.",
        // No custom `usage:` here: ArgumentParser would print it under every subcommand's errors.
        discussion: """
        Without a subcommand, qwen-run generates: qwen-run --model DIR [--prompt TEXT] \
        (else standard input), --interactive for a chat, --greedy or sampling flags, --stats. \
        'qwen-run help generate' lists every generate option.
        """,
        version: versionText,
        subcommands: [GenerateCommand.self, GraphCommand.self, InspectCommand.self, TokenizeCommand.self, DetokenizeCommand.self, DecodeSpeedCommand.self, StepwiseLogitsCommand.self, ServeCommand.self],
        defaultSubcommand: GenerateCommand.self)

    /// `qwen-run --version`: the version, then how this binary was built and which kernels run here.
    static var versionText: String {
        let levels = KernelISA.allCases.filter { $0 <= KernelISA.detected && $0.runsHere }.map(\.name).joined(separator: ", ")
        let isa = ProcessInfo.processInfo.environment["QWEN_ISA"].map { " (QWEN_ISA=\($0))" } ?? ""
        return """
        qwen-run \(QwenSwift.version)
        build: \(BuildTarget.kernelsOptimized && BuildTarget.swiftOptimized ? "optimised" : "NOT optimised (debug)"), \
        Swift code for \(BuildTarget.compiledForAVX2 ? "AVX2+FMA (-target-cpu)" : "generic x86-64 / this architecture's baseline")
        kernels: \(KernelISA.active.name)\(isa); this CPU supports \(levels)
        """
    }
}

/// Bad input that is not a usage error: printed as one line, exit code 1.
struct InputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}


extension Int8Activations: ExpressibleByArgument {}
extension DecodeActivations: ExpressibleByArgument {}

/// `--int8` and `--decode-activations`, shared by the commands that run a model.
struct ActivationOptions: ParsableArguments {
    @Option(name: .customLong("int8"), help: "Where MatMulNBits multiplies int8-quantized activations (faster, less accurate): never, accuracyLevel4 (nodes with accuracy_level = 4; the default), always.")
    var int8: Int8Activations = .accuracyLevel4

    @Option(name: .customLong("decode-activations"), help: "How the other decode-step MatMulNBits products take their activations: automatic (int16 per block of 32 in float16 nodes, whose results the graph rounds to float16; float32 in float32 nodes; the default), float32 (as ONNX Runtime computes; slower), int16 (everywhere).")
    var decode: DecodeActivations = .automatic

    /// How a command loads its model: these activation modes, `onnxFile` and `threads`, and the
    /// weight cache of a command-line tool (`LoadOptions.defaultWeightCacheDirectory`).
    func loadOptions(onnxFile: String?, threads: Int? = nil) -> LoadOptions {
        LoadOptions(onnxFile: onnxFile, threads: threads, weightCacheDirectory: LoadOptions.defaultWeightCacheDirectory,
                    int8Activations: int8, decodeActivations: decode)
    }
}

/// `--model`, `--onnx` or `--dtype`, and the activation options: the model a generating command
/// loads (`generate`, `serve`).
struct ModelOptions: ParsableArguments {
    @Option(help: "Model directory (config.json, tokenizer.json, onnx/model_q4f16.onnx ...).")
    var model: String

    @Option(help: "ONNX file inside the model's onnx/ folder (default: model_q4f16.onnx, else the first present).")
    var onnx: String?

    @Option(help: "transformers.js dtype, choosing the onnx/ file: q4f16, q4, fp16, fp32, q8, int8, uint8, bnb4.")
    var dtype: String?

    @OptionGroup var activations: ActivationOptions

    @Option(help: "Kernel threads (default: QWEN_THREADS, else the online processors).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if onnx != nil && dtype != nil { throw ValidationError("--onnx and --dtype both choose the file: give one") }
        if let dtype { _ = try ModelDirectory.onnxFile(forDType: dtype) }
    }

    /// The onnx/ file chosen by --onnx or --dtype (nil: the directory's default).
    func onnxFile() throws -> String? { try onnx ?? dtype.map(ModelDirectory.onnxFile(forDType:)) }

    /// How the model loads: the chosen file, threads and activation modes.
    func loadOptions() throws -> LoadOptions {
        activations.loadOptions(onnxFile: try onnxFile(), threads: threads)
    }

    /// Loads the model on this thread.
    func load() throws -> QwenModel {
        try QwenModel(directory: URL(fileURLWithPath: model), options: try loadOptions())
    }

    /// Loads the model on a background thread.
    func load() async throws -> QwenModel {
        try await QwenModel.load(directory: URL(fileURLWithPath: model), options: try loadOptions())
    }
}

/// With `QWEN_PROFILE` set, prints the profile (load phases, time per op) to stderr.
func printProfileIfEnabled() {
    if Profiler.isEnabled { FileHandle.standardError.write(Data((Profiler.shared.report() + "\n").utf8)) }
}
