import Foundation

/// Whether chat answers' think blocks are split off as `reasoning_content` (`Reasoning`):
/// `auto` where the model's chat template handles think blocks, `none` never (the text as
/// generated, tags included, is the content).
public enum ReasoningFormat: String, Sendable, CaseIterable {
    case auto, none
}

/// The reasoning of models that think before they answer (DeepSeek-R1's Qwen distillations,
/// QwQ): their chat templates handle `<think>…</think>` blocks, and the answer follows the
/// block. Split as DeepSeek's API, vLLM's `deepseek_r1` reasoning parser and llama-server's
/// `--reasoning-format deepseek` split it: the block's text is the message's
/// `reasoning_content` (streamed as `delta.reasoning_content`), what follows it the `content`.
/// The prompt may open the block itself (the R1 templates end the generation prompt with
/// `<think>\n`), or the answer may begin with `<think>`; a block that never closes (the tokens
/// ran out) is all reasoning. Whitespace around the reasoning and before the answer is dropped.
enum Reasoning {
    static let open = "<think>", close = "</think>"

    /// Whether a chat template handles think blocks (mentions the closing tag).
    static func templateThinks(_ source: String?) -> Bool { source?.contains(close) ?? false }

    /// Whether a rendered chat prompt ends inside a think block: its last tag is an open `<think>`.
    static func promptOpens(_ prompt: String) -> Bool {
        guard let open = prompt.range(of: open, options: .backwards) else { return false }
        return prompt[open.upperBound...].range(of: close) == nil
    }

    /// The reasoning (nil without a think block) and the answer of a whole generated text;
    /// `opened`: the prompt ended inside the block.
    static func split(_ text: String, opened: Bool) -> (reasoning: String?, content: String) {
        var rest = Substring(text)
        if !opened {
            let start = rest.drop(while: \.isWhitespace)
            guard start.hasPrefix(open) else { return (nil, text) }
            rest = start.dropFirst(open.count)
        }
        guard let end = rest.range(of: close) else { return (trimmed(rest), "") }
        return (trimmed(rest[..<end.lowerBound]), String(rest[end.upperBound...].drop(while: \.isWhitespace)))
    }

    private static func trimmed(_ s: Substring) -> String { String(trailingTrimmed(s.drop(while: \.isWhitespace))) }

    /// `s` without its trailing whitespace.
    fileprivate static func trailingTrimmed(_ s: Substring) -> Substring {
        s[..<(s.lastIndex { !$0.isWhitespace }.map(s.index(after:)) ?? s.startIndex)]
    }

    /// Streamed text split as ``split(_:opened:)`` splits the whole: what each piece releases,
    /// concatenated with what ``finish()`` releases, is the whole text's reasoning and content.
    /// Held back meanwhile: before the answer shows whether it begins a block, its leading
    /// whitespace and any beginning of `<think>`; in the reasoning, a trailing run of whitespace
    /// and any beginning of `</think>` (dropped if the block closes after them); after the block,
    /// whitespace until the answer begins.
    struct Stream: Sendable {
        private enum Phase: Sendable { case undecided, reasoning, content }
        private var phase: Phase
        private var held = ""
        /// Whether the phase's first non-whitespace text has come (before it, whitespace is
        /// dropped: at the start of the reasoning, and of an answer after a block).
        private var begun = false

        init(opened: Bool) { phase = opened ? .reasoning : .undecided }

        /// Adds generated text; returns the reasoning and the content that can be streamed now.
        mutating func append(_ text: String) -> (reasoning: String, content: String) {
            var reasoning = "", content = ""
            var input = Substring(held + text)
            held = ""
            while true {
                switch phase {
                case .undecided:
                    let start = input.drop(while: \.isWhitespace)
                    if start.hasPrefix(Reasoning.open) {
                        phase = .reasoning
                        input = start.dropFirst(Reasoning.open.count)
                        continue
                    }
                    if Reasoning.open.hasPrefix(start) {   // empty, or a beginning of the tag
                        held = String(input)
                        return (reasoning, content)
                    }
                    // No block: the text as it is, from the start.
                    phase = .content
                    begun = true
                    continue
                case .reasoning:
                    if !begun {
                        input = input.drop(while: \.isWhitespace)
                        if input.isEmpty { return (reasoning, content) }
                        begun = true
                    }
                    if let end = input.range(of: Reasoning.close) {
                        reasoning += Reasoning.trailingTrimmed(input[..<end.lowerBound])
                        input = input[end.upperBound...]
                        phase = .content
                        begun = false
                        continue
                    }
                    let keep = Stream.heldTail(input)
                    reasoning += input.dropLast(keep)
                    held = String(input.suffix(keep))
                    return (reasoning, content)
                case .content:
                    if !begun {
                        input = input.drop(while: \.isWhitespace)
                        if input.isEmpty { return (reasoning, content) }
                        begun = true
                    }
                    content += input
                    return (reasoning, content)
                }
            }
        }

        /// At the end: what is still held (an answer that began with whitespace or a piece of
        /// `<think>`, as content; the reasoning's tail without its trailing whitespace).
        mutating func finish() -> (reasoning: String, content: String) {
            defer { held = "" }
            switch phase {
            case .undecided: return ("", held)
            case .reasoning: return (String(Reasoning.trailingTrimmed(Substring(held))), "")
            case .content: return ("", "")
            }
        }

        /// The characters at the end of `text` that may not be reasoning: the longest suffix that
        /// is a proper beginning of `</think>`, and the whitespace before it.
        private static func heldTail(_ text: Substring) -> Int {
            let keep = text.beginningOfTagAtEnd(Reasoning.close)
            return keep + text.dropLast(keep).reversed().prefix(while: \.isWhitespace).count
        }
    }
}
