import ArgumentParser
import Foundation
import Qwen

/// The `qwen-run` command line. Errors reach stderr as their description (each names the file,
/// tensor or node concerned) with exit code 1; usage errors exit with 64.
@main
struct QwenRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qwen-run",
        abstract: "Run quantized Qwen2 ONNX models natively.",
        subcommands: [GenerateCommand.self, GraphCommand.self, InspectCommand.self, TokenizeCommand.self, DetokenizeCommand.self, DecodeSpeedCommand.self],
        defaultSubcommand: GenerateCommand.self)
}

/// Bad input that is not a usage error: printed as one line, exit code 1.
struct InputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}


extension Int8Activations: ExpressibleByArgument {}

/// `--int8`, shared by the commands that run a model.
struct Int8Option: ParsableArguments {
    @Option(name: .customLong("int8"), help: "Where MatMulNBits multiplies int8-quantized activations (faster, less accurate): never, accuracyLevel4 (nodes with accuracy_level = 4; the default), always.")
    var int8: Int8Activations = .accuracyLevel4
}

/// With `QWEN_PROFILE` set, prints the profile (load phases, time per op) to stderr.
func printProfileIfEnabled() {
    if Profiler.isEnabled { FileHandle.standardError.write(Data((Profiler.shared.report() + "\n").utf8)) }
}
