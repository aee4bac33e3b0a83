import ArgumentParser
import Foundation
import Runtime
@_spi(Benchmarks) import Qwen

/// `qwen-run decode-speed --model DIR --positions 128,1024,4096`: decode tokens/s at several
/// context lengths (synthetic KV cache, no prefill), for scripts/bench.
struct DecodeSpeedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode-speed",
        abstract: "Measure decode tokens/s with N tokens already in the KV cache.",
        discussion: """
        For each position N, the KV cache is filled with N zero positions (no prefill), one \
        untimed step runs, then --steps single-token steps are timed. Values do not change the \
        work, so this is the decode cost at that context length. With --batch B, B sequences \
        (each with N positions cached) step together in one batched forward pass, as the \
        server's continuous batching runs them, and the rate counts all B tokens of a step.
        """)

    @Option(help: "Model directory.")
    var model: String

    @Option(help: "ONNX file inside the model's onnx/ folder.")
    var onnx: String?

    @OptionGroup var activations: ActivationOptions

    @Option(help: "Context lengths, comma-separated.")
    var positions = "128,1024,4096"

    @Option(help: "Timed steps per position.")
    var steps = 16

    @Option(help: "Sequences decoded together in each step.")
    var batch = 1

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
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        let qwen = try QwenModel(directory: URL(fileURLWithPath: model),
                                 options: activations.loadOptions(onnxFile: onnx))
        var results: [(Int, Double)] = []
        for p in list {
            let rate = try qwen.decodeTokensPerSecond(atPosition: p, steps: steps, batch: batch)
            results.append((p, rate))
            if !json { print(String(format: "position %6d: %7.2f tok/s", p, rate)) }
        }
        if json {
            let body = results.map { "\"\($0.0)\": \(String(format: "%.3f", $0.1))" }.joined(separator: ", ")
            print("{\"decode_tokens_per_s\": {\(body)}, \"steps\": \(steps), \"batch\": \(batch)}")
        }
        printProfileIfEnabled()
    }
}

/// `qwen-run stepwise-logits --model DIR --ids 1,2,3 --output FILE.npy`: teacher-forced logits
/// through the decode path, one token per step, for accuracy measurements.
struct StepwiseLogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stepwise-logits",
        abstract: "Write the logits after each given token, run one token per decode step, as a .npy file.",
        discussion: """
        Row i of the [N, vocabulary] float32 output holds the next-token logits after the first \
        i + 1 ids, each step running one token against the KV cache (the decode kernels). Compare \
        it with a reference's logits for the same ids (scripts/int8_accuracy.py does).
        """)

    @Option(help: "Model directory.")
    var model: String

    @Option(help: "ONNX file inside the model's onnx/ folder.")
    var onnx: String?

    @OptionGroup var activations: ActivationOptions

    @Option(help: "Token ids, comma-separated.")
    var ids: String

    @Option(help: "Where to write the logits (.npy).")
    var output: String

    func run() throws {
        let list = try ids.split(separator: ",").map { part -> Int in
            guard let n = Int(part.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--ids expects comma-separated integers, got '\(part)'")
            }
            return n
        }
        guard !list.isEmpty else { throw ValidationError("--ids is empty") }
        let qwen = try QwenModel(directory: URL(fileURLWithPath: model),
                                 options: activations.loadOptions(onnxFile: onnx))
        let rows = try qwen.stepwiseLogits(list)
        let vocabulary = rows[0].count
        try NumPy.write(Tensor(rows.flatMap { $0 }, shape: [rows.count, vocabulary]), to: output)
        print("\(output): float32[\(rows.count), \(vocabulary)]")
    }
}
