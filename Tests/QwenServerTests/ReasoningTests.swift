import Foundation
import Testing
@testable import Qwen
@testable import QwenServer

/// Think blocks split off chat answers (`Reasoning`), as DeepSeek's API returns R1's answers:
/// the block's text is `reasoning_content`, the rest `content`.
@Suite struct ReasoningTests {
    /// (generated text, the prompt opened the block, reasoning, content): the definition in
    /// `Reasoning`'s comment, case by case.
    static let cases: [(String, Bool, String?, String)] = [
        // R1's templates open the block in the prompt; the answer follows the closing tag.
        ("Okay, 2 + 2 is 4.\n</think>\n\nThe answer is **4**.", true, "Okay, 2 + 2 is 4.", "The answer is **4**."),
        // The tokens ran out inside the block: all reasoning.
        ("\nFirst, recall that", true, "First, recall that", ""),
        ("", true, "", ""),
        // The model opens the block itself (Qwen3, QwQ, R1's first templates).
        ("<think>\nHmm.\n</think>\n\nYes.", false, "Hmm.", "Yes."),
        ("  \n<think>a</think>b", false, "a", "b"),
        // No block: the text as generated, leading whitespace included.
        ("  Plain answer.", false, nil, "  Plain answer."),
        ("The tag <think> inside is text.", false, nil, "The tag <think> inside is text."),
        ("<thinking>is not the tag</thinking>", false, nil, "<thinking>is not the tag</thinking>"),
        ("<thi", false, nil, "<thi"),
        // The first closing tag ends the block; a second one is the answer's.
        ("a </think> b </think> c", true, "a", "b </think> c"),
        // A piece of the closing tag that never completes is reasoning.
        ("almost </thin", true, "almost </thin", ""),
        ("x\n\n</think>", true, "x", ""),
        ("é 漢字 </think> 🙂", true, "é 漢字", "🙂"),
    ]

    @Test func wholeTextsSplitAsDefined() {
        for (text, opened, reasoning, content) in Self.cases {
            let split = Reasoning.split(text, opened: opened)
            #expect(split.reasoning == reasoning && split.content == content,
                    "\(text.debugDescription) opened \(opened): \(String(describing: split.reasoning?.debugDescription)), \(split.content.debugDescription)")
        }
    }

    /// However the text arrives in pieces (every cut into two and into three), the streamed
    /// reasoning and content add up to the whole text's split.
    @Test func streamedPiecesAddUpToTheWholeSplit() {
        for (text, opened, _, _) in Self.cases {
            let whole = Reasoning.split(text, opened: opened)
            let characters = Array(text)
            for i in 0...characters.count {
                for j in i...characters.count {
                    var stream = Reasoning.Stream(opened: opened)
                    var reasoning = "", content = ""
                    for piece in [characters[..<i], characters[i..<j], characters[j...]] {
                        let out = stream.append(String(piece))
                        reasoning += out.reasoning
                        content += out.content
                    }
                    let end = stream.finish()
                    reasoning += end.reasoning
                    content += end.content
                    #expect(reasoning == (whole.reasoning ?? "") && content == whole.content,
                            "\(text.debugDescription) cut at \(i), \(j): \(reasoning.debugDescription), \(content.debugDescription)")
                }
            }
        }
    }

    /// The stream holds back only what may not belong where it seems to: text streams as it comes.
    @Test func streamReleasesTextAsItComes() {
        var stream = Reasoning.Stream(opened: true)
        #expect(stream.append("\nLet me think") == ("Let me think", ""))
        #expect(stream.append(" about it. ") == (" about it.", ""))   // the trailing space waits
        #expect(stream.append("So") == (" So", ""))
        #expect(stream.append(" 4.\n</thi") == (" 4.", ""))   // the newline and the tag's beginning wait
        #expect(stream.append("nk>\n\nFour") == ("", "Four"))
        #expect(stream.append(" it is.") == ("", " it is."))
        #expect(stream.finish() == ("", ""))

        var plain = Reasoning.Stream(opened: false)
        #expect(plain.append("<") == ("", ""))   // may begin <think>
        #expect(plain.append("b>bold</b>") == ("", "<b>bold</b>"))
        var thinking = Reasoning.Stream(opened: false)
        #expect(thinking.append("<think>") == ("", ""))
        #expect(thinking.append("idea") == ("idea", ""))
    }

    @Test func promptsThatOpenABlock() {
        #expect(Reasoning.promptOpens("<｜User｜>2+2?<｜Assistant｜><think>\n"))
        #expect(!Reasoning.promptOpens("<|im_start|>assistant\n<think>\n\n</think>\n\n"))   // Qwen3, thinking off
        #expect(!Reasoning.promptOpens("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"))
        #expect(Reasoning.templateThinks("{% set content = content.split('</think>')[-1] %}"))
        #expect(!Reasoning.templateThinks("{{ message.content }}") && !Reasoning.templateThinks(nil))
    }

    /// `reasoning_format` is "auto" or "none"; an assistant message's `reasoning_content` reaches
    /// the template (Qwen3's shows past reasoning).
    @Test func requestFields() throws {
        let body = #"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "4", "reasoning_content": "2+2"}, {"role": "user", "content": "and?"}], "reasoning_format": "none"}"#
        let request = try CompletionRequest(json: Array(body.utf8), chat: true)
        #expect(request.reasoningFormat == ReasoningFormat.none)
        guard case .chat(let messages, _) = request.prompt else { Issue.record("not a chat prompt"); return }
        #expect(messages[1]["reasoning_content"] == "2+2")
        for bad in [#""reasoning_format": "deepseek""#, #""reasoning_format": 1"#] {
            #expect(throws: OpenAIError.self) {
                _ = try CompletionRequest(json: Array(#"{"messages": [{"role": "user", "content": "hi"}], \#(bad)}"#.utf8), chat: true)
            }
        }
        #expect(throws: OpenAIError.self) {
            _ = try CompletionRequest(json: Array(#"{"messages": [{"role": "assistant", "content": "a", "reasoning_content": 3}]}"#.utf8), chat: true)
        }
    }
}
