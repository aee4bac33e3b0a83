import Foundation

/// Reads `tokenizer.json`: the BPE vocabulary and merges are streamed straight into the lookup
/// tables; the small sections (normalizer, pre-tokenizer, decoder, added tokens) become
/// `JSONValue`s first and are then checked against what this implementation supports.
struct TokenizerFileContents {
    let normalizer: Normalizer
    let preTokenizer: PreTokenizer
    let addedTokens: [AddedToken]
    let vocabulary: Vocabulary
    let encoder: BytePairEncoder

    init(bytes: [UInt8], file: String) throws {
        var sections: [String: JSONValue] = [:]
        var model: ModelSection?
        try bytes.withUnsafeBufferPointer { buffer in
            var reader = JSONReader(buffer, source: file)
            if reader.peek() == nil { throw reader.error("empty document") }
            guard reader.peek() == UInt8(ascii: "{") else {
                throw TokenizerError.wrongType(file: file, path: "(top level)", expected: "an object", found: reader.peekKind())
            }
            try reader.readObject { reader, key in
                if key == "model" {
                    model = try ModelSection(reader: &reader, file: file)
                } else {
                    sections[key] = try reader.parseValue()
                }
            }
            try reader.expectEnd()
        }
        guard let model else { throw TokenizerError.missingField(file: file, path: "model") }

        if let version = sections["version"], version != .string("1.0") {
            throw TokenizerError.unsupported(file: file, path: "version", feature: "tokenizer.json version '\(version.stringValue ?? version.kindName)' (expected '1.0')")
        }
        for key in ["truncation", "padding"] {
            if let value = sections[key], value != .null {
                throw TokenizerError.unsupported(file: file, path: key, feature: "\(key) settings (expected null)")
            }
        }
        normalizer = try Normalizer(json: sections["normalizer"] ?? .null, file: file)
        preTokenizer = try PreTokenizer(json: sections["pre_tokenizer"] ?? .null, file: file)
        try Self.checkDecoder(sections["decoder"] ?? .null, file: file)
        try Self.checkPostProcessor(sections["post_processor"] ?? .null, path: "post_processor", file: file)
        let declared = try Self.parseAddedTokens(sections["added_tokens"] ?? .array([]), file: file)
        // Tables are indexed by id: refuse ids far beyond the vocabulary instead of allocating for them.
        let idLimit = max(model.vocabIDs.count * 4, 1 << 20)
        if let tooLarge = model.vocabIDs.first(where: { Int($0) >= idLimit }) {
            throw TokenizerError.invalidValue(
                file: file, path: "model.vocab",
                message: "token id \(tooLarge) is out of range for a vocabulary of \(model.vocabIDs.count) tokens")
        }

        let modelIndex = TokenStringIndex(arena: model.arena, ranges: model.vocabRanges, ids: model.vocabIDs)
        encoder = try model.makeEncoder(index: modelIndex, file: file)
        addedTokens = Self.assignIDs(declared, modelIndex: modelIndex, modelVocabularyCount: model.vocabIDs.count)
        vocabulary = Vocabulary(
            modelArena: model.arena, modelRanges: model.vocabRanges, modelIDs: model.vocabIDs, added: addedTokens,
            modelIndex: modelIndex)
    }

    /// Gives added tokens their ids the way Hugging Face does when it loads a file: the `id`
    /// written in the file is not used; a token whose content is already known (an earlier added
    /// token or a model token) takes that id, any other the next free id after the model
    /// vocabulary. For files written by Hugging Face the result equals the written ids.
    static func assignIDs(_ declared: [AddedToken], modelIndex: TokenStringIndex, modelVocabularyCount: Int) -> [AddedToken] {
        var byContent: [String: Int] = [:]
        var result: [AddedToken] = []
        var positionOfID: [Int: Int] = [:]
        var specialContents = Set<String>()
        for var token in declared {
            if token.special { specialContents.insert(token.content) }
            if let known = byContent[token.content] ?? modelIndex.id(of: Array(token.content.utf8)).map({ Int($0) }) {
                token.id = known
            } else if let maxID = byContent.values.max() {
                token.id = (maxID >= modelVocabularyCount || modelVocabularyCount == 0) ? maxID + 1 : modelVocabularyCount
            } else {
                token.id = modelVocabularyCount
            }
            byContent[token.content] = token.id
            if let position = positionOfID[token.id] {
                result[position] = token
            } else {
                positionOfID[token.id] = result.count
                result.append(token)
            }
        }
        // "Special" is a property of the content once any declaration says so.
        for i in result.indices where specialContents.contains(result[i].content) { result[i].special = true }
        return result
    }

    // MARK: Small sections

    private static func checkDecoder(_ json: JSONValue, file: String) throws {
        guard case .object(let object) = json else {
            throw TokenizerError.unsupported(file: file, path: "decoder", feature: "decoder \(json.kindName) (expected ByteLevel)")
        }
        let type = object["type"]?.stringValue ?? "(none)"
        guard type == "ByteLevel" else {
            throw TokenizerError.unsupported(file: file, path: "decoder", feature: "decoder type '\(type)'")
        }
    }

    /// Post-processors that add no tokens to a single sequence are accepted (their offset trimming
    /// does not change ids); anything that would add tokens is not supported.
    private static func checkPostProcessor(_ json: JSONValue, path: String, file: String) throws {
        switch json {
        case .null:
            return
        case .object(let object):
            let type = object["type"]?.stringValue ?? "(none)"
            switch type {
            case "ByteLevel":
                return
            case "Sequence":
                for (i, step) in (object["processors"]?.arrayValue ?? []).enumerated() {
                    try checkPostProcessor(step, path: "\(path).processors[\(i)]", file: file)
                }
            default:
                throw TokenizerError.unsupported(file: file, path: path, feature: "post-processor type '\(type)'")
            }
        default:
            throw TokenizerError.wrongType(file: file, path: path, expected: "an object or null", found: json.kindName)
        }
    }

    private static func parseAddedTokens(_ json: JSONValue, file: String) throws -> [AddedToken] {
        guard case .array(let items) = json else {
            throw TokenizerError.wrongType(file: file, path: "added_tokens", expected: "an array", found: json.kindName)
        }
        return try items.enumerated().map { i, item in
            let path = "added_tokens[\(i)]"
            guard case .object(let object) = item else {
                throw TokenizerError.wrongType(file: file, path: path, expected: "an object", found: item.kindName)
            }
            guard let id = object["id"]?.intValue, id >= 0, id < Int(Int32.max) else {
                throw TokenizerError.missingField(file: file, path: path + ".id")
            }
            guard let content = object["content"]?.stringValue, !content.isEmpty else {
                throw TokenizerError.missingField(file: file, path: path + ".content")
            }
            func flag(_ name: String, _ value: Bool) throws -> Bool {
                switch object[name] {
                case nil: return value
                case .bool(let b)?: return b
                case let other?:
                    throw TokenizerError.wrongType(file: file, path: "\(path).\(name)", expected: "a boolean", found: other.kindName)
                }
            }
            let special = try flag("special", false)
            return AddedToken(
                id: id, content: content, singleWord: try flag("single_word", false), lstrip: try flag("lstrip", false),
                rstrip: try flag("rstrip", false), normalized: try flag("normalized", !special), special: special)
        }
    }
}

/// The `model` section, read in one streaming pass.
private struct ModelSection {
    /// Vocabulary strings and merge halves, back to back.
    var arena: [UInt8] = []
    var vocabRanges: [Range<Int>] = []
    var vocabIDs: [Int32] = []
    /// Each merge as the two ranges of its halves in `arena`.
    var mergeRanges: [(Range<Int>, Range<Int>)] = []
    var ignoreMerges = false
    var type: String?

    init(reader: inout JSONReader, file: String) throws {
        guard reader.peek() == UInt8(ascii: "{") else {
            throw TokenizerError.wrongType(file: file, path: "model", expected: "an object", found: reader.peekKind())
        }
        arena.reserveCapacity(4 << 20)
        try reader.readObject { reader, key in
            switch key {
            case "type":
                guard reader.peek() == UInt8(ascii: "\"") else {
                    throw TokenizerError.wrongType(file: file, path: "model.type", expected: "a string", found: reader.peekKind())
                }
                type = try reader.readString()
            case "vocab":
                try readVocab(&reader, file: file)
            case "merges":
                try readMerges(&reader, file: file)
            case "ignore_merges":
                let value = try reader.parseValue()
                guard let b = value.boolValue else {
                    throw TokenizerError.wrongType(file: file, path: "model.ignore_merges", expected: "a boolean", found: value.kindName)
                }
                ignoreMerges = b
            case "byte_fallback":
                if try reader.parseValue() == .bool(true) {
                    throw TokenizerError.unsupported(file: file, path: "model.byte_fallback", feature: "byte_fallback true")
                }
            case "unk_token", "dropout":
                let value = try reader.parseValue()
                if value != .null {
                    throw TokenizerError.unsupported(file: file, path: "model.\(key)", feature: "BPE \(key) (expected null)")
                }
            case "continuing_subword_prefix", "end_of_word_suffix":
                let value = try reader.parseValue()
                if value != .null && value != .string("") {
                    throw TokenizerError.unsupported(
                        file: file, path: "model.\(key)", feature: "BPE \(key) (expected null or empty)")
                }
            default:
                try reader.skipValue()  // fuse_unk and other flags that do not change a byte-level BPE
            }
        }
        if let type, type != "BPE" {
            throw TokenizerError.unsupported(file: file, path: "model.type", feature: "model type '\(type)'")
        }
    }

    private mutating func readVocab(_ reader: inout JSONReader, file: String) throws {
        guard reader.peek() == UInt8(ascii: "{") else {
            throw TokenizerError.wrongType(file: file, path: "model.vocab", expected: "an object", found: reader.peekKind())
        }
        vocabRanges.reserveCapacity(160_000)
        vocabIDs.reserveCapacity(160_000)
        try reader.readObject(keysInto: &arena) { reader, keyRange in
            let offset = reader.position
            let value = try reader.readNumber()
            guard case .int(let id) = value, id >= 0, id < Int(Int32.max) else {
                throw TokenizerError.invalidValue(
                    file: file, path: "model.vocab", message: "token id at byte \(offset) is not a non-negative integer")
            }
            vocabRanges.append(keyRange)
            vocabIDs.append(Int32(id))
        }
    }

    private mutating func readMerges(_ reader: inout JSONReader, file: String) throws {
        guard reader.peek() == UInt8(ascii: "[") else {
            throw TokenizerError.wrongType(file: file, path: "model.merges", expected: "an array", found: reader.peekKind())
        }
        mergeRanges.reserveCapacity(160_000)
        try reader.readArray { reader in
            let index = mergeRanges.count
            switch reader.peek() {
            case UInt8(ascii: "\""):
                // "left right": split at the first space.
                let start = arena.count
                try reader.readStringBytes(into: &arena)
                guard let space = arena[start...].firstIndex(of: 0x20) else {
                    throw TokenizerError.invalidValue(
                        file: file, path: "model.merges[\(index)]", message: "expected two tokens separated by a space")
                }
                mergeRanges.append((start..<space, (space + 1)..<arena.count))
            case UInt8(ascii: "["):
                var halves: [Range<Int>] = []
                try reader.readArray { reader in
                    guard reader.peek() == UInt8(ascii: "\"") else {
                        throw TokenizerError.wrongType(
                            file: file, path: "model.merges[\(index)]", expected: "strings", found: reader.peekKind())
                    }
                    let start = arena.count
                    try reader.readStringBytes(into: &arena)
                    halves.append(start..<arena.count)
                }
                guard halves.count == 2 else {
                    throw TokenizerError.invalidValue(
                        file: file, path: "model.merges[\(index)]", message: "expected a pair of tokens, found \(halves.count)")
                }
                mergeRanges.append((halves[0], halves[1]))
            default:
                throw TokenizerError.wrongType(
                    file: file, path: "model.merges[\(index)]", expected: "a string or a pair of strings", found: reader.peekKind())
            }
        }
    }

    /// Resolves merges to ids: both halves and their concatenation must be vocabulary tokens.
    func makeEncoder(index: TokenStringIndex, file: String) throws -> BytePairEncoder {
        let table = MergeTable(capacityFor: mergeRanges.count)
        // Byte-level vocabularies usually list merge results in merge order after the 256 byte
        // tokens (token 256+i is merge i, as in GPT-2 and Qwen2). Checking that candidate's
        // spelling first spares most hash lookups; any other layout falls back to the index.
        var rangeOfID = [Range<Int>?](repeating: nil, count: (vocabIDs.max().map { Int($0) } ?? -1) + 1)
        for (i, id) in vocabIDs.enumerated() { rangeOfID[Int(id)] = vocabRanges[i] }
        var joined: [UInt8] = []
        for (rank, (left, right)) in mergeRanges.enumerated() {
            guard let a = index.id(ofArenaRange: left), let b = index.id(ofArenaRange: right) else {
                let missing = index.id(ofArenaRange: left) == nil ? left : right
                throw TokenizerError.invalidValue(
                    file: file, path: "model.merges[\(rank)]",
                    message: "token '\(String(decoding: arena[missing], as: UTF8.self))' is not in the vocabulary")
            }
            joined.removeAll(keepingCapacity: true)
            joined.append(contentsOf: arena[left])
            joined.append(contentsOf: arena[right])
            var merged: Int32?
            let candidate = 256 + rank
            if candidate < rangeOfID.count, let r = rangeOfID[candidate], arena[r].elementsEqual(joined) {
                merged = Int32(candidate)
            } else {
                merged = index.id(of: joined)
            }
            guard let merged else {
                throw TokenizerError.invalidValue(
                    file: file, path: "model.merges[\(rank)]",
                    message: "merged token '\(String(decoding: joined, as: UTF8.self))' is not in the vocabulary")
            }
            table.insert(a, b, rank: Int32(rank), merged: merged)
        }
        // Each byte starts as the token spelling it in the byte-level alphabet.
        var byteTokens = [Int32](repeating: -1, count: 256)
        var spelled: [UInt8] = []
        for b in 0..<256 {
            spelled.removeAll(keepingCapacity: true)
            appendUTF8(ByteLevel.byteToScalar[b], to: &spelled)
            byteTokens[b] = index.id(of: spelled) ?? -1
        }
        return BytePairEncoder(byteTokens: byteTokens, merges: table, ignoreMerges: ignoreMerges, vocabulary: index)
    }
}
