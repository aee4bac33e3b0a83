import Foundation
import Qwen

/// Tool calls in generated text, as Qwen2.5's chat template asks for them:
/// `<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>`, one
/// block per call (the tags are ordinary added tokens, so they are in the text).
enum ToolCalls {
    static let open = "<tool_call>", close = "</tool_call>"

    struct Call: Sendable, Equatable {
        var name: String
        /// The arguments as JSON text (OpenAI's `function.arguments` is a string).
        var arguments: String
    }

    /// The calls in `text` and the text around them (trimmed). When a block is not a well-formed
    /// call, there are no calls and the content is the whole text, as generated.
    static func parse(_ text: String) -> (content: String, calls: [Call]) {
        var calls: [Call] = []
        var content = ""
        var rest = Substring(text)
        while let start = rest.range(of: open) {
            content += rest[..<start.lowerBound]
            let body: Substring
            if let end = rest[start.upperBound...].range(of: close) {
                body = rest[start.upperBound..<end.lowerBound]
                rest = rest[end.upperBound...]
            } else {
                // Generation ended (a stop token, max_tokens) before the closing tag.
                body = rest[start.upperBound...]
                rest = ""
            }
            guard let json = try? JSONValue.parse(String(body)), let name = json["name"]?.stringValue else { return (text, []) }
            let arguments: String
            switch json["arguments"] {
            case .string(let s)?: arguments = s
            case nil, .null?: arguments = "{}"
            case let value?: arguments = value.jsonText
            }
            calls.append(Call(name: name, arguments: arguments))
        }
        content += rest
        return (calls.isEmpty ? text : content.trimmingCharacters(in: .whitespacesAndNewlines), calls)
    }

    /// Streamed text split into content, released as it comes, and the tool calls from the first
    /// `<tool_call>` on, held until the end (a tail that may begin the tag is held back meanwhile).
    struct Stream: Sendable {
        private var held = ""
        private var calls: String?

        /// Adds generated text; returns the content that can be streamed now.
        mutating func append(_ text: String) -> String {
            if calls != nil { calls! += text; return "" }
            held += text
            if let start = held.range(of: ToolCalls.open) {
                let content = String(held[..<start.lowerBound])
                calls = String(held[start.lowerBound...])
                held = ""
                return content
            }
            // Keep the longest tail that is a proper prefix of the tag.
            let keep = held.beginningOfTagAtEnd(ToolCalls.open)
            let content = String(held.dropLast(keep))
            held = String(held.suffix(keep))
            return content
        }

        /// At the end: the content still to stream and the calls (none, with their text streamed
        /// as content, when the blocks are not well-formed calls).
        mutating func finish() -> (content: String, calls: [Call]) {
            defer { held = ""; calls = nil }
            guard let text = calls else { return (held, []) }
            let parsed = ToolCalls.parse(text)
            return parsed.calls.isEmpty ? (text, []) : (parsed.content.isEmpty ? "" : parsed.content, parsed.calls)
        }
    }

    /// OpenAI's `tool_calls` array; `indexed` adds each call's `index` (stream deltas).
    static func json(_ calls: [Call], indexed: Bool) -> JSONValue {
        .array(calls.enumerated().map { i, call in
            var object = JSONObject()
            if indexed { object["index"] = .int(i) }
            object["id"] = .string("call_" + Reply.randomID())
            object["type"] = "function"
            object["function"] = ["name": .string(call.name), "arguments": .string(call.arguments)]
            return .object(object)
        })
    }
}

extension StringProtocol {
    /// The length of the longest suffix of this text that is a proper beginning of `tag` (0 if
    /// none): what a stream holds back until the next piece shows whether the tag begins there.
    func beginningOfTagAtEnd(_ tag: String) -> Int {
        var length = Swift.min(tag.count - 1, count)
        while length > 0 && !tag.hasPrefix(suffix(length)) { length -= 1 }
        return length
    }
}
