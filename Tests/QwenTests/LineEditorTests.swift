import Testing
@testable import qwen_run

/// The interactive chat's line editing (`LineState`, the part of `LineEditor` without a
/// terminal): keys as a terminal sends them, against the line and cursor a reader expects.
@Suite struct LineEditorTests {
    typealias Key = LineState.Key

    /// Applies `keys` to a new line with `history`; returns the state and the last outcome.
    func type(_ keys: [Key], history: [String] = []) -> (LineState, LineState.Outcome?) {
        var state = LineState(history: history)
        var last: LineState.Outcome?
        for k in keys { last = state.apply(k) }
        return (state, last)
    }

    func chars(_ s: String) -> [Key] { s.map { .character($0) } }
    static let left = Key.sequence("", UInt8(ascii: "D")), right = Key.sequence("", UInt8(ascii: "C"))
    static let up = Key.sequence("", UInt8(ascii: "A")), down = Key.sequence("", UInt8(ascii: "B"))

    @Test func insertsAtTheCursorAndMovesWithArrowsHomeAndEnd() {
        // "helo", ←, "l" → "hello"; Home, ">" ; End, "!"
        let (s, _) = type(chars("helo") + [Self.left] + chars("l") + [.control(0x01)] + chars(">")
                          + [.sequence("4", UInt8(ascii: "~"))] + chars("!"))
        #expect(String(s.line) == ">hello!" && s.cursor == 7)
        let (t, _) = type(chars("ab") + [Self.left, Self.left, Self.left, Self.right])
        #expect(t.cursor == 1, "← stops at the start")
    }

    @Test func deletesBackwardForwardAndByWordAndToTheEnds() {
        #expect(String(type(chars("abc") + [.control(0x7F)]).0.line) == "ab")
        #expect(String(type(chars("abc") + [Self.left, .sequence("3", UInt8(ascii: "~"))]).0.line) == "ab")
        #expect(String(type(chars("one two  ") + [.control(0x17)]).0.line) == "one ")
        #expect(String(type(chars("abcdef") + [Self.left, Self.left, .control(0x0B)]).0.line) == "abcd")
        let (u, _) = type(chars("abcdef") + [Self.left, Self.left, .control(0x15)])
        #expect(String(u.line) == "ef" && u.cursor == 0)
        #expect(type([.control(0x7F)]).1 == .ignored, "Backspace at the start does nothing")
        #expect(String(type(chars("ünï") + [.control(0x7F)]).0.line) == "ün", "one character, not one byte")
    }

    @Test func enterCtrlCAndCtrlDEndTheLineTheirWay() {
        #expect(type(chars("hi") + [.control(0x0D)]).1 == .accepted)
        #expect(type(chars("hi") + [.control(0x03)]).1 == .cancelled)
        #expect(type([.control(0x04)]).1 == .endOfInput, "Ctrl-D on an empty line ends the input")
        let (s, last) = type(chars("ab") + [Self.left, .control(0x04)])
        #expect(last == .edited && String(s.line) == "a", "Ctrl-D in a line deletes at the cursor")
    }

    @Test func arrowsBrowseTheHistoryAndKeepTheDraft() {
        let history = ["first", "second"]
        #expect(String(type([Self.up], history: history).0.line) == "second")
        #expect(String(type([Self.up, Self.up], history: history).0.line) == "first")
        #expect(type([Self.up, Self.up, Self.up], history: history).1 == .ignored, "no entry before the first")
        let (s, _) = type(chars("dra") + [Self.up, Self.down], history: history)
        #expect(String(s.line) == "dra" && s.cursor == 3, "↓ past the newest entry gives back the draft")
        let (e, _) = type([Self.up] + chars("!"), history: history)
        #expect(String(e.line) == "second!", "an entry is edited in place")
    }
}
