import ArgumentParser
import Foundation
import Qwen

/// `qwen-run decode-speed --model DIR --positions 128,1024,4096`: decode tokens/s at several
/// context lengths (synthetic KV cache, no prefill), for scripts/bench.
struct DecodeSpeedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode-speed",
        abstract: "Measure decode tokens/s with N tokens already in the KV cache.",
        discussion: """
        For each position N, the KV cache is filled with N zero positions (no prefill), one
        untimed step runs, then --steps single-token steps are timed. Values do not change the
        work, so this is the decode cost at that context length.
        """)

    @Option(help: "Model directory.")
    var model: String

    @Option(help: "ONNX file inside the model's onnx/ folder.")
    var onnx: String?

    @OptionGroup var int8Option: Int8Option

    @Option(help: "Context lengths, comma-separated.")
    var positions = "128,1024,4096"

    @Option(help: "Timed steps per position.")
    var steps = 16

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let list = try positions.split(separator: ",").map { part -> Int in
            guard let n = Int(part.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                throw ValidationError("--positions expects comma-separated non-negative integers, got '\(positions)'")
            }
            return n
        }
        guard steps > 0 else { throw ValidationError("--steps must be positive") }
        let qwen = try QwenModel(directory: URL(fileURLWithPath: model), onnxFile: onnx, int8Activations: int8Option.int8)
        var results: [(Int, Double)] = []
        for p in list {
            let rate = try qwen.decodeTokensPerSecond(atPosition: p, steps: steps)
            results.append((p, rate))
            if !json { print(String(format: "position %6d: %7.2f tok/s", p, rate)) }
        }
        if json {
            let body = results.map { "\"\($0.0)\": \(String(format: "%.3f", $0.1))" }.joined(separator: ", ")
            print("{\"decode_tokens_per_s\": {\(body)}, \"steps\": \(steps)}")
        }
        printProfileIfEnabled()
    }
}
