/// Finds stop strings in streamed text (OpenAI's `stop`): text is released as it arrives, except a
/// tail that could still become a stop string, which is held back until the next piece decides.
/// When a stop string appears, the text before its first occurrence is released and the rest
/// (the stop string and anything after it) is dropped.
///
/// Matching is on Unicode scalars, literally (no normalisation, no case folding), like OpenAI's and
/// llama-server's byte-level matching of the decoded text.
struct StopStringMatcher: Sendable {
    private let stops: [[Unicode.Scalar]]
    /// Text not released yet: a possible beginning of a stop string.
    private var held: [Unicode.Scalar] = []

    init(_ stops: [String]) {
        self.stops = stops.map { Array($0.unicodeScalars) }.filter { !$0.isEmpty }
    }

    var isEmpty: Bool { stops.isEmpty }

    /// Adds `text`; returns the text that can be released and whether a stop string was found.
    mutating func append(_ text: String) -> (released: String, stopped: Bool) {
        guard !stops.isEmpty else { return (text, false) }
        held.append(contentsOf: text.unicodeScalars)
        if let cut = firstMatch() {
            let released = Self.string(held[..<cut])
            held.removeAll()
            return (released, true)
        }
        // Hold back the longest tail that is a proper prefix of some stop string.
        var keep = 0
        for stop in stops {
            var k = min(stop.count - 1, held.count)
            while k > keep {
                if held[(held.count - k)...].elementsEqual(stop[..<k]) { keep = k; break }
                k -= 1
            }
        }
        let released = Self.string(held[..<(held.count - keep)])
        held.removeFirst(held.count - keep)
        return (released, false)
    }

    /// Releases what is held back (the generation ended without completing a stop string).
    mutating func finish() -> String {
        defer { held.removeAll() }
        return Self.string(held[...])
    }

    /// The start of the earliest stop string in `held`.
    private func firstMatch() -> Int? {
        var best: Int?
        for stop in stops where stop.count <= held.count {
            var start = 0
            while start + stop.count <= held.count, start < (best ?? .max) {
                if held[start..<(start + stop.count)].elementsEqual(stop) { best = start; break }
                start += 1
            }
        }
        return best
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars)
        return String(s)
    }
}
