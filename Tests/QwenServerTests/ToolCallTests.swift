import Foundation
import Testing
@testable import Qwen
@testable import QwenServer

/// Tools in requests and tool calls in the output.
@Suite struct ToolCallTests {
    static let root = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("../..").standardized

    /// OpenAI-format conversations with tools and tool calls (arguments as JSON strings, `tool`
    /// messages), read by the request parser and rendered by Qwen2.5's chat template, give exactly
    /// what transformers 4.57.6 renders for the same conversation with the arguments as objects
    /// (Tests/TokenizerTests/Data/chat_cases.jsonl, written by scripts/tokenizer_reference.py).
    @Test func openAIConversationsRenderAsTransformersDoes() throws {
        let tokenizer = try Tokenizer(directory: Self.root.appendingPathComponent("Models/tokenizer/qwen2.5"))
        let text = try String(contentsOf: Self.root.appendingPathComponent("Tests/TokenizerTests/Data/chat_cases.jsonl"), encoding: .utf8)
        var checked = 0
        for line in text.split(separator: "\n") {
            let row = try JSONValue.parse(String(line))
            guard row["template"] == "qwen2.5", row["extra"]?.objectValue?.isEmpty ?? true, let expected = row["expected"]?.stringValue,
                  let messages = row["messages"]?.arrayValue,
                  row["tools"] != nil || messages.contains(where: { $0["tool_calls"] != nil }) else { continue }
            // The conversation as an OpenAI client sends it.
            let openAI: [JSONValue] = messages.map { message in
                guard var object = message.objectValue, let calls = object["tool_calls"]?.arrayValue else { return message }
                object["tool_calls"] = .array(calls.enumerated().map { i, call in
                    let function = call["function"] ?? call
                    return ["id": .string("call_\(i)"), "type": "function",
                            "function": ["name": function["name"]!, "arguments": .string(function["arguments"]!.jsonText)]]
                })
                return .object(object)
            }
            var body = JSONObject([("messages", .array(openAI))])
            if let tools = row["tools"] { body["tools"] = tools }
            let request = try CompletionRequest(json: Array(JSONValue.object(body).jsonText.utf8), chat: true)
            guard case .chat(let parsed, let tools) = request.prompt else { Issue.record("not a chat prompt"); continue }
            let rendered = try tokenizer.applyChatTemplate(messages: parsed, addGenerationPrompt: row["add_generation_prompt"]!.boolValue!,
                                                           tools: tools)
            #expect(rendered == expected, "chat case \(checked): \(rendered.debugDescription) vs \(expected.debugDescription)")
            checked += 1
        }
        #expect(checked >= 3)
    }

    @Test func callsAreParsedFromQwensTags() {
        let one = ToolCalls.parse("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n</tool_call>")
        #expect(one.calls == [ToolCalls.Call(name: "get_weather", arguments: #"{"city":"Paris","days":2}"#)])
        #expect(one.content == "")
        let two = ToolCalls.parse("Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\"}\n</tool_call>")
        #expect(two.calls.map(\.name) == ["a", "b"] && two.calls[1].arguments == "{}")
        #expect(two.content == "Let me check.")
        let unclosed = ToolCalls.parse("<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}")
        #expect(unclosed.calls == [ToolCalls.Call(name: "a", arguments: #"{"x":1}"#)])
        // Not a call: the text stays content, as generated.
        let broken = "<tool_call>\nnot json\n</tool_call>"
        #expect(ToolCalls.parse(broken).calls.isEmpty && ToolCalls.parse(broken).content == broken)
        #expect(ToolCalls.parse("plain text").content == "plain text")
    }

    @Test func streamedContentStopsAtTheFirstCall() {
        var stream = ToolCalls.Stream()
        var content = ""
        for piece in ["Sure", ". <tool", "_ca", "ll>\n{\"name\": \"f\", ", "\"arguments\": {\"q\": \"ü\"}}\n</tool_call>"] {
            content += stream.append(piece)
        }
        let end = stream.finish()
        #expect(content == "Sure. ")
        #expect(end.calls == [ToolCalls.Call(name: "f", arguments: #"{"q":"ü"}"#)] && end.content == "")
        // A "<tool" that never becomes the tag is released at the end.
        var plain = ToolCalls.Stream()
        let early = plain.append("a <tool")
        #expect(early == "a " && plain.finish() == ("<tool", []))
    }

    /// With tools offered, the request reaches the model through the template's tools section:
    /// the prompt is longer by exactly what the template adds.
    @Test func toolsReachThePrompt() async throws {
        let model = TinyModel.shared
        let tool: JSONValue = ["type": "function", "function": ["name": "get_weather", "parameters": ["type": "object"]]]
        let plain = try CompletionRequest(json: Array(#"{"messages": [{"role": "user", "content": "hi"}]}"#.utf8), chat: true)
        let with = try CompletionRequest(json: Array("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [\(tool.jsonText)]}".utf8), chat: true)
        let none = try CompletionRequest(json: Array("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [\(tool.jsonText)], \"tool_choice\": \"none\"}".utf8), chat: true)
        guard case .chat(let m, nil) = plain.prompt, case .chat(let m2, let tools?) = with.prompt, case .chat(_, nil) = none.prompt else {
            Issue.record("tools not parsed as expected"); return
        }
        let withTools = try model.tokenizer.applyChatTemplate(messages: m2, tools: tools)
        #expect(withTools.contains("<tools>\n\(tool.jsonText.replacingOccurrences(of: ",", with: ", ").replacingOccurrences(of: ":", with: ": "))\n</tools>"))
        #expect(try model.tokenizer.applyChatTemplate(messages: m) == model.tokenizer.applyChatTemplate(messages: [ChatMessage(role: "user", content: "hi")]))
        #expect(throws: OpenAIError.self) {
            _ = try CompletionRequest(json: Array(#"{"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}"#.utf8), chat: true)
        }
        #expect(throws: OpenAIError.self) {
            _ = try CompletionRequest(json: Array(#"{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "code"}]}"#.utf8), chat: true)
        }
    }
}
