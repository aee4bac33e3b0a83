import Foundation

/// `genai_config.json`, the description onnxruntime-genai's model builder writes beside its
/// `model.onnx`: which file is the decoder, the names of its inputs and outputs (the KV caches as
/// `%d` patterns over the layers), the model's sizes and special ids, and the search defaults.
/// Only the fields this runtime uses are read; unknown ones are ignored.
public struct GenAIConfig: Codable, Sendable, Equatable {
    public var model: Model
    public var search: Search?

    public struct Model: Codable, Sendable, Equatable {
        public var type: String?
        public var bosTokenId: Int?
        public var eosTokenId: TokenIDs?
        public var padTokenId: Int?
        public var contextLength: Int?
        public var vocabSize: Int?
        public var decoder: Decoder

        enum CodingKeys: String, CodingKey {
            case type, decoder
            case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", padTokenId = "pad_token_id"
            case contextLength = "context_length", vocabSize = "vocab_size"
        }
    }

    public struct Decoder: Codable, Sendable, Equatable {
        public var filename: String
        public var headSize: Int?
        public var hiddenSize: Int?
        public var numAttentionHeads: Int?
        public var numHiddenLayers: Int?
        public var numKeyValueHeads: Int?
        public var inputs: [String: String]?
        public var outputs: [String: String]?

        enum CodingKeys: String, CodingKey {
            case filename, inputs, outputs
            case headSize = "head_size", hiddenSize = "hidden_size", numAttentionHeads = "num_attention_heads"
            case numHiddenLayers = "num_hidden_layers", numKeyValueHeads = "num_key_value_heads"
        }
    }

    public struct Search: Codable, Sendable, Equatable {
        public var doSample: Bool?
        public var maxLength: Int?
        public var temperature: Float?
        public var topK: Int?
        public var topP: Float?
        public var repetitionPenalty: Float?
        public var pastPresentShareBuffer: Bool?

        enum CodingKeys: String, CodingKey {
            case doSample = "do_sample", maxLength = "max_length", temperature, topK = "top_k", topP = "top_p"
            case repetitionPenalty = "repetition_penalty", pastPresentShareBuffer = "past_present_share_buffer"
        }
    }

    public static let fileName = "genai_config.json"

    public static func load(_ url: URL) throws -> GenAIConfig {
        try decodeJSONFile(GenAIConfig.self, url)
    }

    /// The model facts config.json would give (used when the directory has no config.json, and
    /// to fill what it lacks).
    var modelConfig: ModelConfig {
        var c = ModelConfig()
        c.modelType = model.type
        c.hiddenSize = model.decoder.hiddenSize
        c.numHiddenLayers = model.decoder.numHiddenLayers
        c.numAttentionHeads = model.decoder.numAttentionHeads
        c.numKeyValueHeads = model.decoder.numKeyValueHeads
        c.headDim = model.decoder.headSize
        c.vocabSize = model.vocabSize
        c.maxPositionEmbeddings = model.contextLength
        c.bosTokenId = model.bosTokenId
        c.eosTokenId = model.eosTokenId
        return c
    }

    /// The search defaults as generation defaults (onnxruntime-genai's `top_k = 1` or
    /// `do_sample = false` both mean greedy).
    var generationConfig: GenerationConfig {
        var g = GenerationConfig()
        g.doSample = search?.doSample
        g.temperature = search?.temperature
        g.topK = search?.topK
        g.topP = search?.topP
        g.repetitionPenalty = search?.repetitionPenalty
        g.bosTokenId = model.bosTokenId
        g.eosTokenId = model.eosTokenId
        g.padTokenId = model.padTokenId
        return g
    }

    /// The decoder's graph names: inputs and outputs by role, KV caches per layer from the
    /// `%d` patterns (onnxruntime-genai's defaults where a name is not given).
    func decoderNames(layers: Int) -> DecoderNames {
        let inputs = model.decoder.inputs ?? [:], outputs = model.decoder.outputs ?? [:]
        func pattern(_ p: String, _ layer: Int) -> String { p.replacingOccurrences(of: "%d", with: String(layer)) }
        let pastKey = inputs["past_key_names"] ?? "past_key_values.%d.key", pastValue = inputs["past_value_names"] ?? "past_key_values.%d.value"
        let presentKey = outputs["present_key_names"] ?? "present.%d.key", presentValue = outputs["present_value_names"] ?? "present.%d.value"
        var cache: [(past: String, present: String)] = []
        for layer in 0..<layers {
            cache.append((pattern(pastKey, layer), pattern(presentKey, layer)))
            cache.append((pattern(pastValue, layer), pattern(presentValue, layer)))
        }
        return DecoderNames(inputIDs: inputs["input_ids"] ?? "input_ids", attentionMask: inputs["attention_mask"] ?? "attention_mask",
                            positionIDs: inputs["position_ids"] ?? "position_ids", logits: outputs["logits"] ?? "logits", cache: cache)
    }
}

/// The names a decoder graph's interface uses (the optimum exports' defaults, or those a
/// `genai_config.json` gives). Inputs the graph does not declare are simply not fed.
public struct DecoderNames: Sendable {
    public var inputIDs = "input_ids"
    public var attentionMask = "attention_mask"
    public var positionIDs = "position_ids"
    public var logits = "logits"
    /// (past input, present output) per cache tensor; nil: every `past_key_values.*` input with
    /// its `present.*` output.
    public var cache: [(past: String, present: String)]?
}
