import Foundation
import Qwen

/// Compiled `response_format` schemas, kept by their JSON text: a client sends the same schema
/// with every request, and compiling one can take tens of milliseconds (an email format's
/// automaton 32 ms, a URL with HttpUrl's `maxLength` ~25 ms on Zen 3). Up to `capacity` patterns,
/// the least recently used dropped first; refused schemas are not kept (they fail fast, within
/// the compile bounds of `TextPattern`).
final class SchemaPatterns: @unchecked Sendable {
    static let shared = SchemaPatterns(capacity: 16)

    let capacity: Int
    private let lock = NSLock()
    private var patterns: [String: (pattern: OutputPattern, lastUse: UInt64)] = [:]
    private var clock: UInt64 = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// `OutputPattern(jsonSchema: schema)`, from the cache when this schema was compiled before.
    func pattern(for schema: JSONValue) throws(OutputPattern.SchemaError) -> OutputPattern {
        let key = schema.jsonText
        if let hit = touch(key) { return hit }
        let pattern = try OutputPattern(jsonSchema: schema)
        lock.lock()
        defer { lock.unlock() }
        clock += 1
        patterns[key] = (pattern, clock)
        if patterns.count > capacity, let oldest = patterns.min(by: { $0.value.lastUse < $1.value.lastUse })?.key {
            patterns[oldest] = nil
        }
        return pattern
    }

    var count: Int { lock.lock(); defer { lock.unlock() }; return patterns.count }

    /// Whether `schema`'s pattern is kept (without counting as a use).
    func holds(_ schema: JSONValue) -> Bool { lock.lock(); defer { lock.unlock() }; return patterns[schema.jsonText] != nil }

    private func touch(_ key: String) -> OutputPattern? {
        lock.lock()
        defer { lock.unlock() }
        guard let entry = patterns[key] else { return nil }
        clock += 1
        patterns[key]!.lastUse = clock
        return entry.pattern
    }
}
