import Foundation

/// The fields of a Hugging Face Qwen2 `config.json` this runtime uses (snake_case keys).
public struct ModelConfig: Codable, Sendable, Equatable {
    public var modelType: String?
    public var architectures: [String]?
    public var hiddenSize: Int?
    public var intermediateSize: Int?
    public var numHiddenLayers: Int?
    public var numAttentionHeads: Int?
    public var numKeyValueHeads: Int?
    public var headDim: Int?
    public var vocabSize: Int?
    public var maxPositionEmbeddings: Int?
    public var ropeTheta: Double?
    public var rmsNormEps: Double?
    public var tieWordEmbeddings: Bool?
    /// `torch_dtype` (transformers < 4.56 writes this key; newer versions write `dtype`).
    public var torchDtype: String?
    public var dtype: String?
    public var bosTokenId: Int?
    public var eosTokenId: TokenIDs?
    /// transformers.js's own section, when present (dtype choices, KV cache dtype...).
    public var transformersJSConfig: ConfigValue?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", architectures
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim"
        case vocabSize = "vocab_size", maxPositionEmbeddings = "max_position_embeddings"
        case ropeTheta = "rope_theta", rmsNormEps = "rms_norm_eps"
        case tieWordEmbeddings = "tie_word_embeddings", torchDtype = "torch_dtype", dtype
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id"
        case transformersJSConfig = "transformers.js_config"
    }

    /// Loads and decodes `config.json`, naming the file in errors.
    public static func load(_ url: URL) throws -> ModelConfig {
        try decodeJSONFile(ModelConfig.self, url)
    }
}

/// One token id or a list of them (`eos_token_id` is either in HF configs).
public struct TokenIDs: Codable, Sendable, Equatable {
    public var ids: [Int]

    public init(_ ids: [Int]) { self.ids = ids }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let one = try? c.decode(Int.self) {
            ids = [one]
        } else if c.decodeNil() {
            ids = []
        } else {
            ids = try c.decode([Int].self)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if ids.count == 1 { try c.encode(ids[0]) } else { try c.encode(ids) }
    }
}

/// Any JSON value, for sections we only report.
public enum ConfigValue: Codable, Sendable, Equatable, CustomStringConvertible {
    case null, bool(Bool), number(Double), string(String), array([ConfigValue]), object([String: ConfigValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([ConfigValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: ConfigValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    public var description: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "?"
    }
}

/// Errors about the files of a model directory.
public enum ModelDirectoryError: Error, CustomStringConvertible, Sendable {
    case missing(path: String, what: String)
    case invalidJSON(path: String, reason: String)
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case let .missing(path, what): "missing \(what): '\(path)'"
        case let .invalidJSON(path, reason): "'\(path)' is not valid: \(reason)"
        case let .invalid(path, reason): "'\(path)': \(reason)"
        }
    }
}

func decodeJSONFile<T: Decodable>(_ type: T.Type, _ url: URL) throws -> T {
    let data: Data
    do {
        data = try Data(contentsOf: url)
    } catch {
        throw ModelDirectoryError.missing(path: url.path, what: url.lastPathComponent)
    }
    if let offset = firstInvalidUTF8Offset(data) {
        throw ModelDirectoryError.invalidJSON(path: url.path, reason: "not valid UTF-8 (byte \(offset))")
    }
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let DecodingError.dataCorrupted(ctx) {
        if ctx.codingPath.isEmpty {
            // JSONDecoder only says "not valid JSON"; JSONSerialization says where.
            do {
                _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            } catch {
                if let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String {
                    throw ModelDirectoryError.invalidJSON(path: url.path, reason: "not valid JSON: \(detail)")
                }
            }
        }
        let path = ctx.codingPath.map(\.stringValue).joined(separator: ".")
        let reason = ctx.underlyingError.map { "\($0.localizedDescription)" } ?? ctx.debugDescription
        throw ModelDirectoryError.invalidJSON(path: url.path, reason: path.isEmpty ? reason : "at '\(path)': \(reason)")
    } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx) {
        let path = ctx.codingPath.map(\.stringValue).joined(separator: ".")
        throw ModelDirectoryError.invalidJSON(path: url.path, reason: "at '\(path)': \(ctx.debugDescription)")
    } catch {
        throw ModelDirectoryError.invalidJSON(path: url.path, reason: "\(error)")
    }
}

/// The offset of the first byte of `data` that is not part of valid UTF-8, or nil (for error
/// messages about input files and streams).
public func firstInvalidUTF8Offset(_ data: Data) -> Int? {
    let bytes = [UInt8](data)
    if String(validating: bytes, as: UTF8.self) != nil { return nil }
    var offset = 0
    while offset < bytes.count {
        var decoder = UTF8()
        var iterator = bytes[offset...].makeIterator()
        guard case .scalarValue(let scalar) = decoder.decode(&iterator) else { return offset }
        offset += UTF8.width(scalar)
    }
    return nil
}
