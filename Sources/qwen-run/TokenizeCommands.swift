import ArgumentParser
import Foundation
import Qwen

/// `qwen-run tokenize --model DIR TEXT`: prints the token ids of TEXT as a JSON array.
///
/// With `--jsonl FILE`, reads one JSON string per line and prints one JSON array per line, in
/// order (FILE `-` is standard input). With `--chat`, each text is first rendered by the chat
/// template as a single user message with the generation prompt.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a text as a JSON array.",
        discussion: """
        The ids are exactly those of Hugging Face tokenizers for the model's tokenizer.json (added \
        tokens such as <|im_start|> in the text become their single ids).
        """)

    @Option(help: "Model directory holding tokenizer.json and tokenizer_config.json.")
    var model: String

    @Argument(help: "The text to tokenize.")
    var text: String?

    @Option(help: "Read one JSON string per line from this file ('-' for stdin); print one JSON array per line.")
    var jsonl: String?

    @Flag(help: "Apply the chat template to the text as a single user message, with the generation prompt.")
    var chat = false

    func validate() throws {
        if (text == nil) == (jsonl == nil) { throw ValidationError("give either TEXT or --jsonl FILE") }
    }

    func run() throws {
        let tokenizer = try Tokenizer(directory: URL(fileURLWithPath: model))
        func ids(_ text: String) throws -> [Int] {
            guard chat else { return tokenizer.encode(text) }
            let prompt = try tokenizer.applyChatTemplate(messages: [ChatMessage(role: "user", content: text)], addGenerationPrompt: true)
            return tokenizer.encode(prompt)
        }
        if let text {
            print(jsonArray(try ids(text)))
            return
        }
        guard let jsonl else { return }
        let bytes: [UInt8]
        if jsonl == "-" {
            bytes = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
        } else {
            guard let data = FileManager.default.contents(atPath: jsonl) else {
                throw TokenizerError.fileNotFound(path: jsonl)
            }
            bytes = [UInt8](data)
        }
        var output = ""
        for (number, line) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            var line = Array(line)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let source = "\(jsonl):\(number + 1)"
            let value = try JSONValue.parse(line, source: source)
            guard case .string(let text) = value else {
                throw TokenizerError.wrongType(file: source, path: "(line)", expected: "a JSON string", found: value.kindName)
            }
            output += jsonArray(try ids(text))
            output += "\n"
        }
        FileHandle.standardOutput.write(Data(output.utf8))
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
