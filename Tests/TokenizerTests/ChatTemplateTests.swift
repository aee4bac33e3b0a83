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
        /// The rendering, or the message of the exception the template raised.
        var expected: Result<String, ChatTemplateError>
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
                extra: extra,
                expected: row["expected"]?.stringValue.map { .success($0) }
                    ?? .failure(.raised(message: row["expected_error"]!.stringValue!)),
                index: i)
        }
    }()

    static let templates: [String: String] = {
        let url = TestData.directory.appendingPathComponent("chat_templates.json")
        guard let data = try? Data(contentsOf: url), let json = try? JSONValue.parse([UInt8](data)) else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in json.objectValue?.entries ?? [] { out[k] = v.stringValue }
        return out
    }()

    @Test(arguments: cases) func renderingMatchesTransformers(_ c: Case) throws {
        let tok = try TestData.qwen()
        // The real tokenizer's own template, or another one as transformers' chat_template=.
        let template = c.template == "qwen2.5" ? nil : try ChatTemplate(try #require(Self.templates[c.template]))
        let rendered = Result { () throws(ChatTemplateError) -> String in
            do {
                return try tok.applyChatTemplate(
                    messages: c.messages, addGenerationPrompt: c.addGenerationPrompt, tools: c.tools,
                    additionalContext: c.extra, chatTemplate: template)
            } catch let error as ChatTemplateError {
                throw error
            } catch {
                throw .runtime(message: "unexpected \(error)", line: 0)
            }
        }
        switch (rendered, c.expected) {
        case (.success(let got), .success(let expected)):
            #expect(got.unicodeScalars.elementsEqual(expected.unicodeScalars),
                "\n--- got ---\n\(visible(got))\n--- expected ---\n\(visible(expected))")
        case (.failure(let got), .failure(let expected)):
            #expect(got == expected)
        default:
            Issue.record("got \(rendered), expected \(c.expected)")
        }
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

    @Test func hostileTemplatesFailCleanly() {
        #expect(renderError("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")
            == .runtime(message: "maximum macro recursion depth exceeded in 'f'", line: 1))
        #expect(renderError("{{ range(1000000000) | length }}")
            == .runtime(message: "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).", line: 1))
        #expect(renderError("{{ 'ab' * 1000000000000 }}") == .runtime(message: "result of '*' is too large", line: 1))
        #expect(renderError("{{ " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " }}") != nil)
        #expect(renderError(String(repeating: "{% if true %}", count: 5000)) != nil)
    }

    /// Jinja has no bound on loops, sizes or output (a hostile template hangs or exhausts memory
    /// there); ours fails with a runtime error instead (`JinjaRenderLimits`; the standard limits
    /// sit far above real templates: the chat-template tests render within them). Checked here
    /// with small limits, so that the test stays fast.
    @Test func hostileTemplatesHitTheRenderBudgets() {
        let limits = JinjaRenderLimits(iterations: 1000, work: 100_000, valueSize: 10_000, outputBytes: 50_000)
        func error(_ source: String) -> ChatTemplateError? {
            do {
                _ = try ChatTemplate(source).render([:], limits: limits)
                return nil
            } catch {
                return error as? ChatTemplateError
            }
        }
        #expect(error("{% for a in range(100) %}{% for b in range(100) %}{% endfor %}{% endfor %}")
            == .runtime(message: "more than 1000 loop iterations and macro calls; giving up", line: 1))
        #expect(error("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(20) }}")
            == .runtime(message: "more than 1000 loop iterations and macro calls; giving up", line: 1))
        // ns.s reaches 10,000 bytes (allowed) after 10 rounds; the 11th concatenation fails.
        #expect(error("{% set ns = namespace(s='') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ('x' * 1000) %}{% endfor %}")
            == .runtime(message: "an expression produced a value of 11000 bytes or items; the limit is 10000", line: 1))
        #expect(error("{% for i in range(100) %}{{ 'x' * 1000 }}{% endfor %}")
            == .runtime(message: "the rendered text exceeds 50000 bytes; giving up", line: 1))
        #expect(error("{% for i in range(1000) %}{% set x = 'x' * 9600 %}{% endfor %}")
            == .runtime(message: "rendering takes more work than 100000 units (values produced); giving up", line: 1))
        // Within the limits the same constructs render.
        #expect(error("{% for a in range(30) %}{% for b in range(30) %}{% endfor %}{% endfor %}{{ 'x' * 10000 }}") == nil)
        // Widths: Python's " " * n gives "" for n < 0 (the snippet tests hold that to Jinja's
        // rendering); a huge one is refused rather than allocated, with the standard limits too.
        #expect(error("{{ 'a'|indent(20000) }}") == .runtime(message: "a width of 20000 is too large", line: 1))
        #expect(renderError("{{ 'a'|indent(1000000000000) }}") == .runtime(message: "a width of 1000000000000 is too large", line: 1))
        // center pads (width - 1) / 2 on the left first.
        #expect(renderError("{{ 'a'|center(1000000000000) }}") == .runtime(message: "a width of 499999999999 is too large", line: 1))
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
