import Foundation
import Testing

@testable import Tokenizer

/// Chat templates rendered against transformers 4.57.6's apply_chat_template(tokenize=False)
/// (Data/chat_cases.jsonl and Data/chat_templates.json, written by scripts/tokenizer_reference.py).
@Suite struct ChatTemplateTests {
    struct Case: CustomTestStringConvertible {
        var template: String
        var messages: [JSONValue]
        var tools: [JSONValue]?
        var addGenerationPrompt: Bool
        var extra: [String: JSONValue]
        var expected: String
        var index: Int
        var testDescription: String { "#\(index) \(template), \(messages.count) messages\(tools == nil ? "" : ", tools")" }
    }

    static let cases: [Case] = {
        guard let rows = try? TestData.orderedJSONLines("chat_cases.jsonl") else { return [] }
        return rows.enumerated().map { i, row in
            var extra: [String: JSONValue] = [:]
            for (k, v) in row["extra"]?.objectValue?.entries ?? [] { extra[k] = v }
            return Case(
                template: row["template"]!.stringValue!, messages: row["messages"]!.arrayValue!,
                tools: row["tools"]?.arrayValue, addGenerationPrompt: row["add_generation_prompt"]!.boolValue!,
                extra: extra, expected: row["expected"]!.stringValue!, index: i)
        }
    }()

    static let templates: [String: String] = {
        let url = TestData.directory.appendingPathComponent("chat_templates.json")
        guard let data = try? Data(contentsOf: url), let json = try? JSONValue.parse([UInt8](data)) else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in json.objectValue?.entries ?? [] { out[k] = v.stringValue }
        return out
    }()

    @Test func thereAreEnoughCases() {
        #expect(Self.cases.count >= 10)
        #expect(Self.cases.filter { $0.template == "qwen2.5" }.count >= 10)
    }

    @Test(arguments: cases) func renderingMatchesTransformers(_ c: Case) throws {
        let rendered: String
        if c.template == "qwen2.5" {
            // The real tokenizer's own template, through the public API.
            rendered = try TestData.qwen().applyChatTemplate(
                messages: c.messages, addGenerationPrompt: c.addGenerationPrompt, tools: c.tools, additionalContext: c.extra)
        } else {
            let source = try #require(Self.templates[c.template])
            let template = try ChatTemplate(source)
            var context: [String: JSONValue] = [
                "messages": .array(c.messages), "tools": c.tools.map { .array($0) } ?? .null, "documents": .null,
                "add_generation_prompt": .bool(c.addGenerationPrompt), "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
            ]
            for (k, v) in c.extra { context[k] = v }
            rendered = try template.render(context)
        }
        #expect(rendered.unicodeScalars.elementsEqual(c.expected.unicodeScalars),
            "\n--- got ---\n\(visible(rendered))\n--- expected ---\n\(visible(c.expected))")
    }

    @Test func defaultSystemPromptAndGenerationPrompt() throws {
        let text = try TestData.qwen().applyChatTemplate(messages: [ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true)
        #expect(text == "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    // MARK: Errors

    private func renderError(_ source: String, _ context: [String: JSONValue] = [:]) -> ChatTemplateError? {
        do {
            _ = try ChatTemplate(source).render(context)
            return nil
        } catch let error as ChatTemplateError {
            return error
        } catch {
            return nil
        }
    }

    @Test func unsupportedConstructsAreNamed() {
        #expect(renderError("{% include 'x.jinja' %}") == .unsupported(construct: "tag 'include'", line: 1))
        #expect(renderError("\n{{ 'a' | wordwrap(3) }}") == .unsupported(construct: "filter 'wordwrap'", line: 2))
        #expect(renderError("{{ 'a {}'.format(1) }}") == .unsupported(construct: "string method 'format'", line: 1))
        #expect(renderError("{% for x in y recursive %}{% endfor %}") == .unsupported(construct: "recursive for loop", line: 1))
        #expect(renderError("{{ 1 is escaped }}") == .unsupported(construct: "test 'escaped'", line: 1))
        #expect(renderError("{{ '%s' % 'x' }}") == .unsupported(construct: "printf-style string formatting ('%' on a string)", line: 1))
    }

    @Test func syntaxAndRuntimeErrors() {
        #expect(renderError("{% if x %}no end") != nil)
        #expect(renderError("{{ }}") != nil)
        #expect(renderError("{% frobnicate %}") == .syntax(message: "unknown tag 'frobnicate'", line: 1))
        #expect(renderError("{{ foo.bar }}") == .runtime(message: "'foo' is undefined", line: 1))
        #expect(renderError("{{ 'a' + 1 }}") == .runtime(message: "can only concatenate str (not \"int\") to str", line: 1))
        #expect(renderError("{{ raise_exception('Only user and assistant roles are supported!') }}")
            == .raised(message: "Only user and assistant roles are supported!"))
        #expect(renderError("{% break %}") == .syntax(message: "'break' outside of a loop", line: 1))
    }

    @Test func noTemplateIsAnError() throws {
        let json = try String(contentsOf: TestData.qwenDirectory.appendingPathComponent("tokenizer.json"), encoding: .utf8)
        let tok = try Tokenizer(tokenizerJSON: Array(json.utf8))
        #expect(tok.chatTemplate == nil)
        #expect(throws: ChatTemplateError.noTemplate) {
            try tok.applyChatTemplate(messages: [ChatMessage(role: "user", content: "x")])
        }
    }
}
