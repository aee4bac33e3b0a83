import ArgumentParser
import Foundation
import Qwen

/// `qwen-run tokenize --model DIR [TEXT]`: prints the token ids of a text as a JSON array.
///
/// The text is TEXT, the contents of `--file PATH`, or standard input when neither is given. With
/// `--jsonl FILE`, reads one JSON string per line and prints one JSON array per line, in order
/// (FILE `-` is standard input); a line that is not a JSON string prints `null` in its place and
/// one error line on stderr naming it, the other lines are still tokenized, and the exit code is
/// 1. With `--chat`, each text is first rendered by the chat template as a single user message
/// with the generation prompt.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a text as a JSON array.",
        discussion: """
        The ids are exactly those of Hugging Face tokenizers for the model's tokenizer.json (added \
        tokens such as <|im_start|> in the text become their single ids). The text comes from the \
        argument, --file, or standard input (for texts too long for a command line).
        """)

    @Option(help: "Model directory holding tokenizer.json and tokenizer_config.json.")
    var model: String

    @Argument(help: "The text to tokenize (default: --file, else standard input).")
    var text: String?

    @Option(help: "Read the text from this file.")
    var file: String?

    @Option(help: "Read one JSON string per line from this file ('-' for stdin); print one JSON array per line.")
    var jsonl: String?

    @Flag(help: "Apply the chat template to the text as a single user message, with the generation prompt.")
    var chat = false

    func validate() throws {
        if [text != nil, file != nil, jsonl != nil].filter({ $0 }).count > 1 {
            throw ValidationError("give one of TEXT, --file PATH and --jsonl FILE (or none: the text is read from stdin)")
        }
    }

    func run() throws {
        let tokenizer = try Tokenizer(directory: URL(fileURLWithPath: model))
        func ids(_ text: String) throws -> [Int] {
            guard chat else { return tokenizer.encode(text) }
            let prompt = try tokenizer.applyChatTemplate(messages: [ChatMessage(role: "user", content: text)], addGenerationPrompt: true)
            return tokenizer.encode(prompt)
        }
        if let jsonl {
            try tokenizeLines(jsonl, ids)
            return
        }
        let input: String
        if let text {
            input = text
        } else {
            let source = file ?? "standard input"
            let data: Data
            if let file {
                guard let d = FileManager.default.contents(atPath: file) else { throw TokenizerError.fileNotFound(path: file) }
                data = d
            } else {
                data = FileHandle.standardInput.readDataToEndOfFile()
            }
            guard let s = String(validating: [UInt8](data), as: UTF8.self) else {
                throw InputError("the text in \(source) is not valid UTF-8 (byte \(firstInvalidUTF8Offset(data) ?? 0) of \(data.count))")
            }
            input = s
        }
        print(jsonArray(try ids(input)))
    }

    /// One output line per non-blank input line: its ids, or `null` (and an error on stderr).
    private func tokenizeLines(_ path: String, _ ids: (String) throws -> [Int]) throws {
        let bytes: [UInt8]
        if path == "-" {
            bytes = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
        } else {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw TokenizerError.fileNotFound(path: path)
            }
            bytes = [UInt8](data)
        }
        var failed = 0
        for (number, line) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            var line = Array(line)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let source = "\(path):\(number + 1)"
            do {
                let value = try JSONValue.parse(line, source: source)
                guard case .string(let text) = value else {
                    throw TokenizerError.wrongType(file: source, path: "(line)", expected: "a JSON string", found: value.kindName)
                }
                writeOut(jsonArray(try ids(text)) + "\n")
            } catch {
                failed += 1
                writeOut("null\n")
                FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }

    private func jsonArray(_ ids: [Int]) -> String {
        "[" + ids.map(String.init).joined(separator: ", ") + "]"
    }
}

/// `qwen-run detokenize --model DIR ID…`: prints the text of token ids.
struct DetokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detokenize",
        abstract: "Print the text of token ids.")

    @Option(help: "Model directory holding tokenizer.json and tokenizer_config.json.")
    var model: String

    @Flag(help: "Leave out special tokens such as <|im_end|>.")
    var skipSpecialTokens = false

    @Argument(help: "Token ids (JSON-style brackets and commas are accepted: '[9707, 1879]').")
    var ids: [String] = []

    func run() throws {
        let tokenizer = try Tokenizer(directory: URL(fileURLWithPath: model))
        var values: [Int] = []
        for argument in ids {
            for part in argument.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "[" || $0 == "]" }) {
                guard let id = Int(part) else { throw ValidationError("'\(part)' is not a token id") }
                guard tokenizer.contains(id) else { throw TokenizerError.unknownTokenID(id) }
                values.append(id)
            }
        }
        print(tokenizer.decode(values, skipSpecialTokens: skipSpecialTokens))
    }
}
