import Foundation
import Runtime
import Testing
@_spi(Benchmarks) @testable import Qwen

/// `qwen-run` on bad input, run as a subprocess (the binary next to the test binary, which
/// `swift test` builds with it): a non-zero exit and exactly one line on stderr, the library's
/// typed error as the library describes it. The full list of bad inputs and their messages is
/// scripts/bad_inputs.py (docs/robustness.md); these are the ones cheap enough to run each time.
/// Linux only: elsewhere `swift test` runs the tests from an `xctest` bundle, not next to the CLI.
#if os(Linux)
@Suite struct CLITests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderrLines: [String]
    }

    static var executable: URL? {
        guard let me = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let url = URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("qwen-run")
        return FileManager.default.isExecutableFile(atPath: url.path) ? url : nil
    }

    func run(_ arguments: [String], stdin: Data = Data()) throws -> Run {
        guard let executable = Self.executable else { throw FixtureError.missing("qwen-run next to the test binary") }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let input = Pipe(), output = Pipe(), error = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        try process.run()
        input.fileHandleForWriting.write(stdin)
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                   stderrLines: String(decoding: err, as: UTF8.self).split(separator: "\n").map(String.init))
    }

    /// The message the library gives for `body`'s error.
    func libraryMessage(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return "Error: \(error)"
        }
    }

    func expectOneLineError(_ run: Run, _ expected: String?, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == 1, "exit status", sourceLocation: sourceLocation)
        #expect(run.stderrLines.count == 1, "\(run.stderrLines)", sourceLocation: sourceLocation)
        #expect(run.stderrLines.first == expected, sourceLocation: sourceLocation)
    }

    @Test func goodInputRunsAndBadInputsGiveOneLineTypedErrors() throws {
        let copy = try LoadAndFaultTests.FixtureCopy()
        let dir = copy.url.path
        // The good case first: the same command succeeds.
        let good = try run(["--model", dir, "--prompt", "Hi", "--max-tokens", "3", "--greedy", "--json"])
        #expect(good.status == 0 && good.stderrLines.isEmpty, "\(good.stderrLines)")
        #expect(good.stdout.contains("\"generated_ids\""))

        let missing = copy.url.appendingPathComponent("nope")
        expectOneLineError(try run(["--model", missing.path, "--prompt", "Hi"]),
                           libraryMessage { _ = try QwenModel(directory: missing) })

        let long = String(repeating: "word ", count: 300)
        let model = try QwenModel(directory: copy.url)
        expectOneLineError(try run(["--model", dir, "--raw", "--prompt", long]),
                           libraryMessage {
                               var cache = model.makeCache()
                               _ = try model.generate(promptIds: try model.encode(prompt: long, raw: true), cache: &cache)
                           })

        // Invalid UTF-8 on stdin: a data error (exit 1), not a usage error.
        let stdin = try run(["--model", dir, "--max-tokens", "2"], stdin: Data([0x48, 0x69, 0x20, 0xFF, 0xFE]))
        expectOneLineError(stdin, "Error: the prompt on stdin is not valid UTF-8 (byte 3 of 5)")

        // Broken files: config.json with invalid UTF-8, then a truncated graph.
        let config = copy.url.appendingPathComponent("config.json")
        let original = try Data(contentsOf: config)
        try (original.prefix(10) + Data([0xC3, 0x28]) + original.dropFirst(10)).write(to: config)
        let configMessage = libraryMessage { _ = try QwenModel(directory: copy.url) }
        #expect(configMessage?.contains("not valid UTF-8 (byte 10)") == true, "\(configMessage ?? "no error")")
        expectOneLineError(try run(["--model", dir, "--prompt", "Hi"]), configMessage)
        try original.write(to: config)

        let graph = copy.url.appendingPathComponent("onnx/model_q4f16.onnx")
        try Data(try Data(contentsOf: graph).prefix(1000)).write(to: graph, options: .atomic)
        let graphMessage = libraryMessage { _ = try QwenModel(directory: copy.url) }
        #expect(graphMessage?.contains("malformed ONNX protobuf") == true, "\(graphMessage ?? "no error")")
        expectOneLineError(try run(["--model", dir, "--prompt", "Hi"]), graphMessage)
    }

    /// `--json-schema FILE`: the answer is the schema's object, read by the library's own
    /// pattern (the same one `OutputPattern(jsonSchema:)` compiles: here multiples and a tuple
    /// the random fixture could never write by chance), and the ids are those of the library
    /// generating with that pattern.
    @Test func jsonSchemaFileConstrainsTheAnswer() throws {
        let dir = Paths.repository.appendingPathComponent("Models/fixtures/tiny-qwen2").path
        let schemaText = #"{"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 5, "minimum": 0}, "p": {"type": "array", "prefixItems": [{"type": "boolean"}, {"type": "null"}], "minItems": 2, "maxItems": 2}}, "required": ["n", "p"]}"#
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("qwen-cli-schema-\(getpid()).json")
        try Data(schemaText.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try run(["--model", dir, "--prompt", "Hi", "--max-tokens", "64", "--seed", "3", "--temperature", "1", "--json-schema", file.path, "--json"])
        #expect(r.status == 0 && r.stderrLines.isEmpty, "\(r.stderrLines)")
        let report = try JSONValue.parse(r.stdout)
        let text = try #require(report["text"]?.stringValue)
        var parameters = GenerateParameters(maxTokens: 64, temperature: 1, seed: 3)
        parameters.outputPattern = try OutputPattern(jsonSchema: try JSONValue.parse(schemaText))
        let model = try QwenModel(directory: URL(fileURLWithPath: dir))
        var cache = model.makeCache()
        let expected = try model.generate(promptIds: try model.encode(prompt: "Hi"), parameters: parameters, cache: &cache)
        #expect(text == expected.text)
        #expect(expected.stopReason == .formatComplete)
        let program = PatternProgram(parameters.outputPattern!)
        withExtendedLifetime(program) {
            var state = PatternState(program)
            #expect(state.accept(Array(text.utf8)) && state.isComplete, "\(text)")
        }
    }

    /// Numeric options take negative values and refuse the out-of-range ones with a message
    /// naming the option (usage errors, exit 64), instead of "missing value" or silently greedy;
    /// `--model` on a file: an .onnx file stands for its directory with that file chosen (the
    /// same ids as `--onnx`), any other file is refused as a file.
    /// `tokenize` takes its text from the argument, a file or stdin alike (texts too long for a
    /// command line); with `--jsonl`, a bad line gives `null` and one error naming it while the
    /// other lines are still tokenized, and the exit code says something failed.
    @Test func tokenizeReadsFilesAndStdinAndReportsBadJSONLinesOneByOne() throws {
        let dir = Fixture.untied.directory.path
        let text = "Hello, world! def f(x): return x * 2 — ünïcödé"
        let byArgument = try run(["tokenize", "--model", dir, text])
        #expect(byArgument.status == 0 && byArgument.stderrLines.isEmpty, "\(byArgument.stderrLines)")
        let ids = byArgument.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(ids.hasPrefix("[") && ids.count > 2)
        let byStdin = try run(["tokenize", "--model", dir], stdin: Data(text.utf8))
        #expect(byStdin.status == 0 && byStdin.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == ids)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("qwen-tokenize-\(getpid()).txt")
        try Data(text.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let byFile = try run(["tokenize", "--model", dir, "--file", file.path])
        #expect(byFile.status == 0 && byFile.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == ids)
        let twice = try run(["tokenize", "--model", dir, "--file", file.path, text])
        #expect(twice.status == 64, "TEXT and --file together are a usage error")

        let lines = "\"\(text)\"\n42\n\"\(text)\"\n"
        let jsonl = try run(["tokenize", "--model", dir, "--jsonl", "-"], stdin: Data(lines.utf8))
        #expect(jsonl.status == 1)
        #expect(jsonl.stdout.split(separator: "\n").map(String.init) == [ids, "null", ids])
        #expect(jsonl.stderrLines.count == 1 && jsonl.stderrLines.first?.contains("-:2") == true, "\(jsonl.stderrLines)")
    }

    /// `--version` answers without a model: the version, the build, the kernel level in use.
    @Test func versionNeedsNoModel() throws {
        let r = try run(["--version"])
        #expect(r.status == 0, "\(r.stderrLines)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "qwen-run \(QwenSwift.version)")
        #expect(lines.contains { $0.hasPrefix("build: optimised") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("kernels: ") }, "\(lines)")
    }

    @Test func negativeNumbersAndFilePathsAreUnderstood() throws {
        let dir = Fixture.untied.directory.path
        for (arguments, fragment) in [(["--temperature", "-1"], "--temperature must be ≥ 0"), (["--temperature=-1"], "--temperature must be ≥ 0"),
                                      (["--max-tokens", "-3"], "--max-tokens must be ≥ 0, got -3"), (["--top-p", "0"], "--top-p must be in (0, 1]"),
                                      (["--repetition-penalty", "-1"], "--repetition-penalty must be > 0")] {
            let r = try run(["--model", dir, "--prompt", "Hi"] + arguments)
            #expect(r.status == 64 && r.stderrLines.contains { $0.contains(fragment) }, "\(arguments): \(r.status) \(r.stderrLines)")
        }
        let viaDirectory = try run(["--model", dir, "--onnx", "model_bnb4.onnx", "--prompt", "Hi", "--max-tokens", "4", "--greedy", "--json"])
        let viaFile = try run(["--model", dir + "/onnx/model_bnb4.onnx", "--prompt", "Hi", "--max-tokens", "4", "--greedy", "--json"])
        #expect(viaDirectory.status == 0 && viaFile.status == 0, "\(viaDirectory.stderrLines) \(viaFile.stderrLines)")
        func ids(_ r: Run) -> String? { r.stdout.range(of: "\"generated_ids\":[").map { String(r.stdout[$0.upperBound...].prefix { $0 != "]" }) } }
        #expect(ids(viaFile) != nil && ids(viaFile) == ids(viaDirectory))
        let config = dir + "/config.json"
        let notModel = try run(["--model", config, "--prompt", "Hi"])
        expectOneLineError(notModel, libraryMessage { _ = try QwenModel(directory: URL(fileURLWithPath: config)) })
        #expect(notModel.stderrLines.first?.contains("is a file, not a model directory") == true, "\(notModel.stderrLines)")
    }

    /// `qwen-run stepwise-logits`: one row per id, the library's decode-path logits exactly, and
    /// each row what one prefill over the ids so far gives at its last position (float32 GEMM vs
    /// the decode GEMV: within the q4f16 fixtures' tolerance against ONNX Runtime).
    @Test func stepwiseLogitsAreTheDecodePathsLogitsAfterEachId() throws {
        let copy = try LoadAndFaultTests.FixtureCopy()
        let output = copy.url.appendingPathComponent("stepwise.npy")
        let ids = [5, 17, 42, 9]
        let result = try run(["stepwise-logits", "--model", copy.url.path, "--ids", ids.map(String.init).joined(separator: ","),
                              "--output", output.path])
        #expect(result.status == 0 && result.stderrLines.isEmpty, "\(result.stderrLines)")
        let written = try NumPy.read(output.path)
        let model = try QwenModel(directory: copy.url)
        let expected = try model.stepwiseLogits(ids)
        #expect(written.shape == [ids.count, expected[0].count])
        #expect(written.floats() == expected.flatMap { $0 })
        for i in ids.indices {
            var cache = model.makeCache()
            let prefill = try model.decoder.forward(Array(ids[0...i]), cache: &cache)
            let d = zip(prefill, expected[i]).map { abs($0 - $1) }.max()!
            #expect(d <= 0.03, "row \(i): max |Δ| \(d) between prefill and decode steps")
        }
        let bad = try run(["stepwise-logits", "--model", copy.url.path, "--ids", "5,x", "--output", output.path])
        #expect(bad.status != 0 && bad.stderrLines.contains { $0.contains("--ids") }, "\(bad.stderrLines)")
    }
}
#endif
