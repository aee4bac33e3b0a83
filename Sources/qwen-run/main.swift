import ArgumentParser
import Qwen

@main
struct QwenRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qwen-run",
        abstract: "Run quantized Qwen2 ONNX models natively.",
        subcommands: [])
}
