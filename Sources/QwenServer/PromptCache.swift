import Qwen

/// The KV caches of earlier prompts, so that a request whose prompt begins like an earlier one
/// (the same system prompt and tools, the earlier turns of a conversation) runs only the rest:
/// llama.cpp's server keeps its slots' caches for the same reason.
///
/// Only what a prompt's prefill computed is kept (a generated token's keys and values come from a
/// decode step, whose products round differently from the prefill's), and a request runs at least
/// `Generation.minimumChunk` tokens of its own; where prompt chunks are exact
/// (`QwenModel.chunkedPrefillIsExact`) its logits are then bit for bit those of its prompt run
/// whole, so every request still gets exactly the ids it gets alone. Entries are kept up to
/// `capacityBytes` of cache storage, least recently used dropped first. Keeping an entry costs no
/// copy: a cache is views of its storage, whose written positions never change (the next prompt
/// appends in place only past the last one written, else into a copy).
///
/// Used from the scheduler's thread only.
final class PromptCache {
    struct Entry {
        var tokens: [Int]
        var cache: KVCache
        var bytes: Int
        var lastUse: UInt64
    }

    let capacityBytes: Int
    /// Fewest positions worth reusing (shorter prefixes run again).
    let minimumReuse: Int
    private(set) var entries: [Entry] = []
    private var clock: UInt64 = 0

    init(capacityBytes: Int, minimumReuse: Int = 16) {
        self.capacityBytes = max(0, capacityBytes)
        self.minimumReuse = max(1, minimumReuse)
    }

    var isEnabled: Bool { capacityBytes > 0 }
    var bytes: Int { entries.reduce(0) { $0 + $1.bytes } }

    /// Starts `generation` (before its prompt has run) from the entry sharing the longest prefix
    /// with its prompt, leaving at least `Generation.minimumChunk` prompt tokens to run; returns
    /// the positions reused (0: none).
    func reuse(for generation: inout Generation) -> Int {
        guard isEnabled, generation.needsPrefill, generation.cache.count == 0 else { return 0 }
        let prompt = generation.promptIds
        let limit = prompt.count - Generation.minimumChunk
        guard limit >= minimumReuse else { return 0 }
        var best: (index: Int, length: Int)?
        for (i, entry) in entries.enumerated() {
            let length = PromptCache.commonPrefix(entry.tokens, prompt, limit: limit)
            if length >= minimumReuse, length > best?.length ?? 0 { best = (i, length) }
        }
        guard let best else { return 0 }
        clock += 1
        entries[best.index].lastUse = clock
        return generation.reusePrefix(of: entries[best.index].cache, upTo: best.length)
    }

    /// Keeps `cache`, which holds exactly `prompt`'s positions as its prefill computed them. An
    /// entry whose tokens begin the prompt is replaced (the new one serves every request the
    /// old one would); then the least recently used go until the rest fits.
    func store(prompt: [Int], cache: KVCache) {
        guard isEnabled, cache.tokens == prompt, prompt.count > minimumReuse else { return }
        let bytes = cache.byteCount
        guard bytes <= capacityBytes else { return }
        entries.removeAll { $0.tokens.count <= prompt.count && PromptCache.commonPrefix($0.tokens, prompt, limit: $0.tokens.count) == $0.tokens.count }
        // A longer entry that already begins with the whole prompt serves it as well.
        if entries.contains(where: { PromptCache.commonPrefix($0.tokens, prompt, limit: prompt.count) == prompt.count }) { return }
        clock += 1
        entries.append(Entry(tokens: prompt, cache: cache, bytes: bytes, lastUse: clock))
        var total = self.bytes
        while total > capacityBytes, let oldest = entries.indices.min(by: { entries[$0].lastUse < entries[$1].lastUse }) {
            total -= entries[oldest].bytes
            entries.remove(at: oldest)
        }
    }

    static func commonPrefix(_ a: [Int], _ b: [Int], limit: Int) -> Int {
        let bound = min(a.count, b.count, limit)
        var n = 0
        while n < bound, a[n] == b[n] { n += 1 }
        return n
    }
}
