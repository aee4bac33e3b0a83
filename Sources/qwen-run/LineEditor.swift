import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Line input for `qwen-run --interactive`: on a terminal, the terminal in raw mode with cursor
/// movement, editing keys and a history of the session's lines; elsewhere (a pipe, a file) plain
/// `readLine()`.
///
/// Keys: ←/→ (Ctrl-B/Ctrl-F), Home/End (Ctrl-A/Ctrl-E), Backspace, Delete, ↑/↓ through the
/// history, Ctrl-K / Ctrl-U (delete to the end / the start), Ctrl-W (the word before the
/// cursor), Ctrl-C (drop the line, start a new one), Ctrl-D (end of input on an empty line,
/// else delete at the cursor), Enter. Each character is taken as one column wide.
struct LineEditor {
    private(set) var history: [String] = []

    /// One line without its newline, or nil at the end of input; the prompt goes on a new line
    /// (to stderr when stdin or stdout is not a terminal, so piped output holds only answers).
    mutating func readLine(prompt: String) -> String? {
        guard isatty(0) != 0, isatty(1) != 0 else {
            writeError("\n" + prompt)
            return Swift.readLine()
        }
        var saved = termios()
        guard tcgetattr(0, &saved) == 0 else {
            writeError("\n" + prompt)
            return Swift.readLine()
        }
        write("\n")
        var raw = saved
        // Bytes as they are typed, no echo, Ctrl-C/Ctrl-Z as bytes; output processing kept.
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(ICRNL | IXON)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        tcsetattr(0, TCSANOW, &raw)
        defer { tcsetattr(0, TCSANOW, &saved) }
        return edit(prompt: prompt)
    }

    /// The editing loop over raw bytes from stdin.
    private mutating func edit(prompt: String) -> String? {
        var state = LineState(history: history)
        write(prompt)
        while true {
            guard let key = readKey() else {
                // End of input in the middle of a line: take what was typed.
                write("\n")
                return state.line.isEmpty ? nil : finish(state)
            }
            switch state.apply(key) {
            case .edited: redraw(prompt, state)
            case .accepted:
                write("\n")
                return finish(state)
            case .cancelled:
                write("^C\n" + prompt)
                state = LineState(history: history)
            case .endOfInput:
                write("\n")
                return nil
            case .ignored: break
            }
        }
    }

    private mutating func finish(_ state: LineState) -> String {
        let line = String(state.line)
        if !line.isEmpty && history.last != line { history.append(line) }
        return line
    }

    /// Prompt, line, erase what was after it, cursor back to its column.
    private func redraw(_ prompt: String, _ state: LineState) {
        var s = "\r" + prompt + String(state.line) + "\u{1B}[K"
        let back = state.line.count - state.cursor
        if back > 0 { s += "\u{1B}[\(back)D" }
        write(s)
    }

    /// The next key: a control byte, an escape sequence, or one UTF-8 character; nil at EOF.
    private func readKey() -> LineState.Key? {
        guard let b = readByte() else { return nil }
        switch b {
        case 0x1B:
            guard let b1 = readByte() else { return .escape }
            guard b1 == UInt8(ascii: "[") || b1 == UInt8(ascii: "O") else { return .escape }
            var parameter: [UInt8] = []
            while let c = readByte() {
                if (0x30...0x3F).contains(c) { parameter.append(c); continue }
                return .sequence(String(decoding: parameter, as: UTF8.self), c)
            }
            return nil
        case 0x00..<0x20, 0x7F:
            return .control(b)
        default:
            // A UTF-8 character: its lead byte says how many bytes follow.
            let length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            var bytes = [b]
            while bytes.count < length, let c = readByte() { bytes.append(c) }
            guard let s = String(validating: bytes, as: UTF8.self), let ch = s.first else { return .control(0) }
            return .character(ch)
        }
    }

    private func readByte() -> UInt8? {
        var b: UInt8 = 0
        while true {
            let n = read(0, &b, 1)
            if n == 1 { return b }
            if n < 0 && errno == EINTR { continue }
            return nil
        }
    }

    private func write(_ s: String) {
        FileHandle.standardOutput.write(Data(s.utf8))
    }

    private func writeError(_ s: String) {
        FileHandle.standardError.write(Data(s.utf8))
    }
}

/// The line being edited and what each key does to it (no terminal involved).
struct LineState {
    enum Key: Equatable {
        case character(Character)
        case control(UInt8)
        /// ESC [ PARAMETER FINAL (or ESC O FINAL).
        case sequence(String, UInt8)
        case escape
    }

    enum Outcome { case edited, accepted, cancelled, endOfInput, ignored }

    var line: [Character] = []
    var cursor = 0
    let history: [String]
    /// Which history entry is shown: history.count is the line being typed.
    var historyIndex: Int
    /// The line being typed, kept while browsing the history.
    var draft: [Character] = []

    init(history: [String]) {
        self.history = history
        historyIndex = history.count
    }

    mutating func apply(_ key: Key) -> Outcome {
        switch key {
        case .character(let c):
            line.insert(c, at: cursor)
            cursor += 1
        case .control(0x0D), .control(0x0A): return .accepted
        case .control(0x03): return .cancelled
        case .control(0x04):
            if line.isEmpty { return .endOfInput }
            guard cursor < line.count else { return .ignored }
            line.remove(at: cursor)
        case .control(0x7F), .control(0x08):
            guard cursor > 0 else { return .ignored }
            cursor -= 1
            line.remove(at: cursor)
        case .control(0x01): cursor = 0
        case .control(0x05): cursor = line.count
        case .control(0x02): cursor = max(0, cursor - 1)
        case .control(0x06): cursor = min(line.count, cursor + 1)
        case .control(0x0B): line.removeSubrange(cursor...)
        case .control(0x15):
            line.removeSubrange(..<cursor)
            cursor = 0
        case .control(0x17):
            var start = cursor
            while start > 0 && line[start - 1] == " " { start -= 1 }
            while start > 0 && line[start - 1] != " " { start -= 1 }
            line.removeSubrange(start..<cursor)
            cursor = start
        case .sequence(_, UInt8(ascii: "D")): cursor = max(0, cursor - 1)
        case .sequence(_, UInt8(ascii: "C")): cursor = min(line.count, cursor + 1)
        case .sequence(_, UInt8(ascii: "H")), .sequence("1", UInt8(ascii: "~")), .sequence("7", UInt8(ascii: "~")):
            cursor = 0
        case .sequence(_, UInt8(ascii: "F")), .sequence("4", UInt8(ascii: "~")), .sequence("8", UInt8(ascii: "~")):
            cursor = line.count
        case .sequence("3", UInt8(ascii: "~")):
            guard cursor < line.count else { return .ignored }
            line.remove(at: cursor)
        case .sequence(_, UInt8(ascii: "A")): return showHistory(historyIndex - 1)
        case .sequence(_, UInt8(ascii: "B")): return showHistory(historyIndex + 1)
        default: return .ignored
        }
        return .edited
    }

    private mutating func showHistory(_ index: Int) -> Outcome {
        guard index >= 0 && index <= history.count && index != historyIndex else { return .ignored }
        if historyIndex == history.count { draft = line }
        historyIndex = index
        line = index == history.count ? draft : Array(history[index])
        cursor = line.count
        return .edited
    }
}

/// Ctrl-C while an answer is generated: set by the SIGINT handler, read (and cleared) by the
/// chat loop, which stops the answer and returns to the prompt instead of ending the program.
let interruptRequested = Atomic<Bool>(false)

/// Installs the SIGINT handler that sets `interruptRequested` (the interactive chat only).
func catchInterrupts() {
    signal(SIGINT) { _ in interruptRequested.store(true, ordering: .relaxed) }
}
