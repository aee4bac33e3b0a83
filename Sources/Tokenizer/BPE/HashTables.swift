/// An open-addressing map from UTF-8 token strings to ids, with all keys in one byte arena.
/// Built once at load time; lookups allocate nothing.
struct TokenStringIndex: Sendable {
    private var arena: [UInt8] = []
    private var keyStart: [Int32] = []  // per entry; entry i spans keyStart[i]..<keyStart[i+1]
    private var ids: [Int32] = []
    private var slots: [Int32] = []  // entry index or -1
    private var mask = 0

    /// Builds the index from entries in `arena` (`ranges[i]` holds the key of `ids[i]`).
    /// When a key repeats, the last entry wins.
    init(arena: [UInt8], ranges: [Range<Int>], ids: [Int32]) {
        var capacity = 16
        while capacity < ranges.count * 2 { capacity <<= 1 }
        mask = capacity - 1
        slots = [Int32](repeating: -1, count: capacity)
        self.arena.reserveCapacity(arena.count)
        keyStart.reserveCapacity(ranges.count + 1)
        self.ids = ids
        for r in ranges {
            keyStart.append(Int32(self.arena.count))
            self.arena.append(contentsOf: arena[r])
        }
        keyStart.append(Int32(self.arena.count))
        for entry in ranges.indices {
            let key = self.key(entry)
            var slot = Self.hash(key) & mask
            while slots[slot] >= 0 {
                if self.key(Int(slots[slot])) == key { break }
                slot = (slot + 1) & mask
            }
            slots[slot] = Int32(entry)
        }
    }

    private func key(_ entry: Int) -> ArraySlice<UInt8> {
        arena[Int(keyStart[entry])..<Int(keyStart[entry + 1])]
    }

    @inline(__always)
    private static func hash(_ bytes: some Sequence<UInt8>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// The id of the token spelled by `bytes`, if any.
    func id(of bytes: some Collection<UInt8>) -> Int32? {
        var slot = Self.hash(bytes) & mask
        while true {
            let entry = slots[slot]
            if entry < 0 { return nil }
            if key(Int(entry)).elementsEqual(bytes) { return ids[Int(entry)] }
            slot = (slot + 1) & mask
        }
    }

    var count: Int { ids.count }
}

/// An open-addressing map from a pair of token ids to the merge they form: its rank (priority,
/// lower first) and the id of the merged token, packed as `rank << 32 | newID` so that comparing
/// packed values compares ranks.
struct MergeTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private let mask: Int
    static let noMerge = UInt64.max
    private static let emptyKey = UInt64.max

    init(capacityFor count: Int) {
        var capacity = 16
        while capacity < count * 2 { capacity <<= 1 }
        mask = capacity - 1
        keys = [UInt64](repeating: Self.emptyKey, count: capacity)
        values = [UInt64](repeating: Self.noMerge, count: capacity)
    }

    @inline(__always)
    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    private func slot(for key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// Records that `left right` merges into `merged` at `rank`; a repeated pair takes the new values.
    mutating func insert(_ left: Int32, _ right: Int32, rank: Int32, merged: Int32) {
        let k = Self.key(left, right)
        var s = slot(for: k)
        while keys[s] != Self.emptyKey && keys[s] != k { s = (s + 1) & mask }
        keys[s] = k
        values[s] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged))
    }

    /// `rank << 32 | mergedID` for the pair, or `MergeTable.noMerge`.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> UInt64 {
        let k = Self.key(left, right)
        return keys.withUnsafeBufferPointer { keys in
            var s = slot(for: k)
            while true {
                let found = keys[s]
                if found == k { return values[s] }
                if found == Self.emptyKey { return Self.noMerge }
                s = (s + 1) & mask
            }
        }
    }
}
