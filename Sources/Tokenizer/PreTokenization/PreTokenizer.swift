/// The `pre_tokenizer` section of `tokenizer.json`, reduced to the steps that cut text into
/// pieces. Qwen2 ships `Sequence[Split(Regex, Isolated), ByteLevel(use_regex: false)]`; GPT-2 ships
/// `ByteLevel(use_regex: true)`. The byte-to-character mapping of `ByteLevel` needs no work here:
/// the BPE runs on raw bytes.
struct PreTokenizer: Sendable, Equatable {
    enum Stage: Sendable, Equatable {
        /// `Split` with `behavior: Isolated`: every match becomes a piece.
        case split(SplitPattern)
        /// `ByteLevel`: optionally prefixes a space to each piece that lacks one, then optionally
        /// splits it with the GPT-2 pattern.
        case byteLevel(addPrefixSpace: Bool, split: SplitPattern?)
    }

    var stages: [Stage]

    /// Reads a pre-tokenizer description. A byte-level BPE needs a `ByteLevel` step somewhere.
    init(json: JSONValue, file: String) throws {
        var stages: [Stage] = []
        try Self.parse(json, path: "pre_tokenizer", file: file, into: &stages)
        guard stages.contains(where: { if case .byteLevel = $0 { true } else { false } }) else {
            throw TokenizerError.unsupported(
                file: file, path: "pre_tokenizer", feature: "BPE without a ByteLevel pre-tokenizer")
        }
        self.stages = stages
    }

    private static func parse(_ json: JSONValue, path: String, file: String, into stages: inout [Stage]) throws {
        guard case .object(let object) = json else {
            throw TokenizerError.wrongType(file: file, path: path, expected: "an object", found: json.kindName)
        }
        guard let type = object["type"]?.stringValue else {
            throw TokenizerError.missingField(file: file, path: path + ".type")
        }
        func flag(_ name: String, default value: Bool) throws -> Bool {
            switch object[name] {
            case nil, .null?: return value
            case .bool(let b)?: return b
            case let other?:
                throw TokenizerError.wrongType(
                    file: file, path: "\(path).\(name)", expected: "a boolean", found: other.kindName)
            }
        }
        switch type {
        case "Sequence":
            guard let steps = object["pretokenizers"]?.arrayValue else {
                throw TokenizerError.missingField(file: file, path: path + ".pretokenizers")
            }
            for (i, step) in steps.enumerated() {
                try parse(step, path: "\(path).pretokenizers[\(i)]", file: file, into: &stages)
            }
        case "ByteLevel":
            let useRegex = try flag("use_regex", default: true)
            stages.append(.byteLevel(addPrefixSpace: try flag("add_prefix_space", default: true), split: useRegex ? .gpt2 : nil))
        case "Split":
            guard case .object(let pattern)? = object["pattern"] else {
                throw TokenizerError.missingField(file: file, path: path + ".pattern")
            }
            guard let regex = pattern["Regex"]?.stringValue else {
                throw TokenizerError.unsupported(
                    file: file, path: path + ".pattern", feature: "Split pattern other than a Regex")
            }
            guard let scanner = SplitPattern(regex: regex) else {
                throw TokenizerError.unsupported(file: file, path: path + ".pattern", feature: "split regex \(regex)")
            }
            let behavior = object["behavior"]?.stringValue ?? "Isolated"
            guard behavior == "Isolated" else {
                throw TokenizerError.unsupported(file: file, path: path + ".behavior", feature: "Split behavior '\(behavior)'")
            }
            if try flag("invert", default: false) {
                throw TokenizerError.unsupported(file: file, path: path + ".invert", feature: "inverted Split")
            }
            stages.append(.split(scanner))
        default:
            throw TokenizerError.unsupported(file: file, path: path, feature: "pre-tokenizer type '\(type)'")
        }
    }

    /// Cuts `text` into pieces and hands each piece's bytes to `emit`, in order.
    func run(_ text: inout String, _ emit: (UnsafeBufferPointer<UInt8>) -> Void) {
        text.withUTF8 { bytes in run(stage: 0, bytes, emit) }
    }

    private func run(stage k: Int, _ bytes: UnsafeBufferPointer<UInt8>, _ emit: (UnsafeBufferPointer<UInt8>) -> Void) {
        guard k < stages.count else {
            if !bytes.isEmpty { emit(bytes) }
            return
        }
        switch stages[k] {
        case .split(let pattern):
            var scanner = SplitScanner(bytes, pattern: pattern)
            while let piece = scanner.next() { run(stage: k + 1, UnsafeBufferPointer(rebasing: bytes[piece]), emit) }
        case .byteLevel(let addPrefixSpace, let split):
            // Hugging Face drops empty pieces before pre-tokenizers see them.
            guard !bytes.isEmpty else { return }
            if addPrefixSpace && bytes[0] != 0x20 {
                var spaced = [UInt8](repeating: 0x20, count: bytes.count + 1)
                spaced.withUnsafeMutableBufferPointer { out in
                    _ = UnsafeMutableBufferPointer(rebasing: out[1...]).initialize(from: bytes)
                }
                spaced.withUnsafeBufferPointer { splitByteLevel($0, split, stage: k, emit) }
            } else {
                splitByteLevel(bytes, split, stage: k, emit)
            }
        }
    }

    private func splitByteLevel(
        _ bytes: UnsafeBufferPointer<UInt8>, _ split: SplitPattern?, stage k: Int,
        _ emit: (UnsafeBufferPointer<UInt8>) -> Void
    ) {
        guard let split else { return run(stage: k + 1, bytes, emit) }
        var scanner = SplitScanner(bytes, pattern: split)
        while let piece = scanner.next() { run(stage: k + 1, UnsafeBufferPointer(rebasing: bytes[piece]), emit) }
    }
}
