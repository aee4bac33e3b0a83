import Foundation

/// `generation_config.json`: the sampling defaults a model ships with.
public struct GenerationConfig: Codable, Sendable, Equatable {
    public var doSample: Bool?
    public var temperature: Float?
    public var topK: Int?
    public var topP: Float?
    public var minP: Float?
    public var repetitionPenalty: Float?
    public var maxNewTokens: Int?
    public var bosTokenId: Int?
    public var eosTokenId: TokenIDs?
    public var padTokenId: Int?

    enum CodingKeys: String, CodingKey {
        case doSample = "do_sample", temperature, topK = "top_k", topP = "top_p", minP = "min_p"
        case repetitionPenalty = "repetition_penalty", maxNewTokens = "max_new_tokens"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", padTokenId = "pad_token_id"
    }

    public init() {}

    /// Loads `generation_config.json`; a missing file means "no defaults".
    public static func load(_ url: URL) throws -> GenerationConfig {
        guard FileManager.default.fileExists(atPath: url.path) else { return GenerationConfig() }
        return try decodeJSONFile(GenerationConfig.self, url)
    }
}
