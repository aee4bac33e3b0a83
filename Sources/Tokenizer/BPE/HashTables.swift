import Foundation

/// An open-addressing map from UTF-8 token strings to ids. The keys stay in the byte arena they
/// were read into; lookups hash a word at a time and compare with `memcmp`, allocating nothing.
/// Immutable once built (raw memory owned by this object), hence safe to share between threads.
final class TokenStringIndex: @unchecked Sendable {
    /// One slot: everything a lookup needs except the key bytes, so a probe touches one cache
    /// line of the table and, on a fingerprint match, one of the arena.
    private struct Slot {
        var fingerprint: UInt32  // high bits of the hash; 0 marks an empty slot
        var id: Int32
        var start: UInt32  // key bytes in the arena
        var length: UInt32
    }

    private let arena: UnsafeMutableBufferPointer<UInt8>
    private let slots: UnsafeMutablePointer<Slot>
    private let mask: Int
    let count: Int

    /// Indexes the entries of `arena`: `ranges[i]` holds the key of `ids[i]`. When a key repeats,
    /// the last entry wins.
    init(arena: [UInt8], ranges: [Range<Int>], ids: [Int32]) {
        count = ranges.count
        self.arena = .allocate(capacity: max(arena.count, 1))
        _ = self.arena.initialize(from: arena)
        var capacity = 16
        while capacity * 5 < count * 8 { capacity <<= 1 }  // load factor at most 5/8
        mask = capacity - 1
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: Slot(fingerprint: 0, id: 0, start: 0, length: 0), count: capacity)
        for (i, r) in ranges.enumerated() {
            let key = UnsafeBufferPointer(rebasing: UnsafeBufferPointer(self.arena)[r])
            let h = Self.hash(key)
            let fingerprint = Self.fingerprint(h)
            var slot = h & mask
            while slots[slot].fingerprint != 0 {
                if slots[slot].fingerprint == fingerprint && Self.equal(self.key(slots[slot]), key) { break }
                slot = (slot + 1) & mask
            }
            slots[slot] = Slot(fingerprint: fingerprint, id: ids[i], start: UInt32(r.lowerBound), length: UInt32(r.count))
        }
    }

    @inline(__always)
    private static func fingerprint(_ hash: Int) -> UInt32 {
        let f = UInt32(truncatingIfNeeded: UInt64(bitPattern: Int64(hash)) >> 32)
        return f == 0 ? 1 : f
    }

    deinit {
        arena.deallocate()
        slots.deallocate()
    }

    @inline(__always)
    private func key(_ slot: Slot) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: arena.baseAddress! + Int(slot.start), count: Int(slot.length))
    }

    @inline(__always)
    private static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
    }

    /// A word-at-a-time multiplicative hash.
    @inline(__always)
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(bytes.count)
        var i = 0
        let n = bytes.count
        guard let base = bytes.baseAddress else { return Int(truncatingIfNeeded: h) }
        while i + 8 <= n {
            let w = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
            h = (h ^ w) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 32
            i += 8
        }
        if i < n {
            var w: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                w |= UInt64(base[i]) << shift
                shift += 8
                i += 1
            }
            h = (h ^ w) &* 0x9E37_79B9_7F4A_7C15
        }
        h ^= h >> 29
        return Int(truncatingIfNeeded: h)
    }

    /// The id of the token spelled by `bytes`, if any.
    func id(of bytes: UnsafeBufferPointer<UInt8>) -> Int32? {
        let h = Self.hash(bytes)
        let fingerprint = Self.fingerprint(h)
        var slot = h & mask
        while true {
            let candidate = slots[slot]
            if candidate.fingerprint == 0 { return nil }
            if candidate.fingerprint == fingerprint && Self.equal(key(candidate), bytes) { return candidate.id }
            slot = (slot + 1) & mask
        }
    }

    /// The id of the token spelled by `bytes`, if any.
    func id(of bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBufferPointer { id(of: $0) }
    }

    /// The id of the token whose spelling is at `range` of this index's own arena (used while
    /// loading, when merges refer to strings read into the same arena).
    func id(ofArenaRange range: Range<Int>) -> Int32? {
        id(of: UnsafeBufferPointer(rebasing: UnsafeBufferPointer(arena)[range]))
    }
}

/// An open-addressing map from a pair of token ids to the merge they form: its rank (priority,
/// lower first) and the id of the merged token, packed as `rank << 32 | newID` so that comparing
/// packed values compares ranks.
///
/// The tables are raw memory owned by this object, so the BPE inner loop reads them without
/// reference counting. Immutable once built, hence safe to share between threads.
final class MergeTable: @unchecked Sendable {
    /// Key and value side by side, so a probe touches one cache line.
    private struct Entry {
        var key: UInt64
        var value: UInt64
    }

    private let entries: UnsafeMutablePointer<Entry>
    private let mask: Int
    static let noMerge = UInt64.max
    private static let emptyKey = UInt64.max

    init(capacityFor count: Int) {
        var capacity = 16
        while capacity < count * 2 { capacity <<= 1 }
        mask = capacity - 1
        entries = .allocate(capacity: capacity)
        entries.initialize(repeating: Entry(key: Self.emptyKey, value: Self.noMerge), count: capacity)
    }

    deinit { entries.deallocate() }

    @inline(__always)
    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    private func slot(for key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// Records that `left right` merges into `merged` at `rank`; a repeated pair takes the new
    /// values. Only called while building.
    func insert(_ left: Int32, _ right: Int32, rank: Int32, merged: Int32) {
        let k = Self.key(left, right)
        var s = slot(for: k)
        while entries[s].key != Self.emptyKey && entries[s].key != k { s = (s + 1) & mask }
        entries[s] = Entry(key: k, value: UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged)))
    }

    /// `rank << 32 | mergedID` for the pair, or `MergeTable.noMerge`.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> UInt64 {
        let k = Self.key(left, right)
        var s = slot(for: k)
        while true {
            let e = entries[s]
            if e.key == k { return e.value }
            if e.key == Self.emptyKey { return Self.noMerge }
            s = (s + 1) & mask
        }
    }
}
