import ArgumentParser
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
