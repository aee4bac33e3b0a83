/// Byte-level BPE over raw bytes.
///
/// Each byte starts as the token that spells it; then, like Hugging Face `tokenizers`, the
/// adjacent pair with the lowest merge rank is merged (the leftmost one among equal ranks) until no
/// pair can merge. Short pieces use a linear scan over a compact array; long pieces (a sentence of
/// Chinese text is a single pre-token) use a binary heap over a linked list, which does the same
/// merges in O(n log n).
final class BytePairEncoder: @unchecked Sendable {
    /// The token id spelling each byte, or -1 when the vocabulary lacks it (the byte is then
    /// dropped, as Hugging Face does for a BPE model without an unknown token). 256 entries of
    /// raw memory owned by this (immutable) object, read in the inner loop without reference
    /// counting.
    let byteTokens: UnsafeMutablePointer<Int32>
    let merges: MergeTable
    /// With `ignore_merges`, a piece that is itself a vocabulary token is emitted whole.
    let ignoreMerges: Bool
    /// Looks up whole pieces (byte-level spelled) when `ignoreMerges` is set.
    let vocabulary: TokenStringIndex

    init(byteTokens: [Int32], merges: MergeTable, ignoreMerges: Bool, vocabulary: TokenStringIndex) {
        precondition(byteTokens.count == 256)
        self.byteTokens = .allocate(capacity: 256)
        self.byteTokens.initialize(from: byteTokens, count: 256)
        self.merges = merges
        self.ignoreMerges = ignoreMerges
        self.vocabulary = vocabulary
    }

    deinit { byteTokens.deallocate() }

    /// Pieces longer than this use the heap.
    static let heapThreshold = 48

    /// Reusable buffers for long pieces, so encoding a long text allocates only its output.
    struct Scratch {
        var symbols: [Int32] = []
        var next: [Int32] = []
        var prev: [Int32] = []
        var heap: [UInt64] = []
        var spelled: [UInt8] = []
    }

    /// Appends the ids of `piece` to `out`.
    func encode(_ piece: UnsafeBufferPointer<UInt8>, into out: inout [Int], scratch: inout Scratch) {
        let n = piece.count
        if n == 1 {
            let id = byteTokens[Int(piece[0])]
            if id >= 0 { out.append(Int(id)) }
            return
        }
        if ignoreMerges {
            scratch.spelled.removeAll(keepingCapacity: true)
            ByteLevel.encode(piece, into: &scratch.spelled)
            if let id = vocabulary.id(of: scratch.spelled) {
                out.append(Int(id))
                return
            }
        }
        if n <= Self.heapThreshold {
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: n) { symbols in
                withUnsafeTemporaryAllocation(of: UInt64.self, capacity: n) { pairs in
                    let symbols = symbols.baseAddress!
                    var count = 0
                    for b in piece {
                        let id = byteTokens[Int(b)]
                        if id >= 0 {
                            symbols[count] = id
                            count += 1
                        }
                    }
                    count = mergeLinear(symbols, pairs.baseAddress!, count: count)
                    for i in 0..<count { out.append(Int(symbols[i])) }
                }
            }
            return
        }
        scratch.symbols.removeAll(keepingCapacity: true)
        for b in piece {
            let id = byteTokens[Int(b)]
            if id >= 0 { scratch.symbols.append(id) }
        }
        if scratch.symbols.count > 1 { mergeWithHeap(&scratch) }
        for id in scratch.symbols { out.append(Int(id)) }
    }

    /// O(n²) merging for short pieces: repeatedly merges the pair with the lowest packed
    /// (rank, id), leftmost first. `pairs` is scratch space for `count` values. Returns the new
    /// number of symbols.
    func mergeLinear(_ symbols: UnsafeMutablePointer<Int32>, _ pairs: UnsafeMutablePointer<UInt64>, count n: Int) -> Int {
        var count = n
        guard count > 1 else { return count }
        for i in 0..<(count - 1) { pairs[i] = merges.lookup(symbols[i], symbols[i + 1]) }
        while count > 1 {
            var best = 0
            var bestValue = pairs[0]
            var i = 1
            while i < count - 1 {
                if pairs[i] < bestValue {
                    best = i
                    bestValue = pairs[i]
                }
                i += 1
            }
            if bestValue == MergeTable.noMerge { break }
            symbols[best] = Int32(truncatingIfNeeded: bestValue & 0xFFFF_FFFF)
            // Remove symbol best+1 and pair best.
            (symbols + best + 1).update(from: symbols + best + 2, count: count - best - 2)
            (pairs + best).update(from: pairs + best + 1, count: count - best - 2)
            count -= 1
            if best > 0 { pairs[best - 1] = merges.lookup(symbols[best - 1], symbols[best]) }
            if best < count - 1 { pairs[best] = merges.lookup(symbols[best], symbols[best + 1]) }
        }
        return count
    }

    /// O(n log n) merging for long pieces. Heap entries are `rank << 32 | position`, so the minimum
    /// is the lowest rank, then the leftmost position; entries made stale by earlier merges are
    /// recognised because the pair at their position no longer has their rank.
    func mergeWithHeap(_ scratch: inout Scratch) {
        let n = scratch.symbols.count
        scratch.next = Array(1...n).map { Int32($0) }
        scratch.next[n - 1] = -1
        scratch.prev = (0..<n).map { Int32($0) - 1 }
        scratch.heap.removeAll(keepingCapacity: true)
        for i in 0..<(n - 1) {
            let m = merges.lookup(scratch.symbols[i], scratch.symbols[i + 1])
            if m != MergeTable.noMerge { scratch.heap.append(m & 0xFFFF_FFFF_0000_0000 | UInt64(i)) }
        }
        var heap = MinHeap(storage: scratch.heap)
        heap.heapify()
        while let top = heap.pop() {
            let pos = Int(top & 0xFFFF_FFFF)
            let rank = top >> 32
            let symbol = scratch.symbols[pos]
            let nextPos = Int(scratch.next[pos])
            if symbol < 0 || nextPos < 0 { continue }
            let m = merges.lookup(symbol, scratch.symbols[nextPos])
            if m == MergeTable.noMerge || m >> 32 != rank { continue }
            // Merge nextPos into pos.
            scratch.symbols[pos] = Int32(truncatingIfNeeded: m & 0xFFFF_FFFF)
            scratch.symbols[nextPos] = -1
            let after = scratch.next[nextPos]
            scratch.next[pos] = after
            if after >= 0 { scratch.prev[Int(after)] = Int32(pos) }
            let before = scratch.prev[pos]
            if before >= 0 {
                let left = merges.lookup(scratch.symbols[Int(before)], scratch.symbols[pos])
                if left != MergeTable.noMerge { heap.push(left & 0xFFFF_FFFF_0000_0000 | UInt64(before)) }
            }
            if after >= 0 {
                let right = merges.lookup(scratch.symbols[pos], scratch.symbols[Int(after)])
                if right != MergeTable.noMerge { heap.push(right & 0xFFFF_FFFF_0000_0000 | UInt64(pos)) }
            }
        }
        scratch.heap = heap.storage
        // Compact the survivors in order.
        var write = 0
        for read in 0..<n where scratch.symbols[read] >= 0 {
            scratch.symbols[write] = scratch.symbols[read]
            write += 1
        }
        scratch.symbols.removeLast(n - write)
    }
}

/// A binary min-heap of `UInt64`.
struct MinHeap {
    var storage: [UInt64]

    mutating func heapify() {
        guard storage.count > 1 else { return }
        for i in stride(from: storage.count / 2 - 1, through: 0, by: -1) { siftDown(i) }
    }

    mutating func push(_ value: UInt64) {
        storage.append(value)
        var i = storage.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if storage[parent] <= storage[i] { break }
            storage.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let last = storage.popLast() else { return nil }
        guard !storage.isEmpty else { return last }
        let top = storage[0]
        storage[0] = last
        siftDown(0)
        return top
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let n = storage.count
        while true {
            let l = 2 * i + 1
            if l >= n { return }
            var smallest = l
            if l + 1 < n && storage[l + 1] < storage[l] { smallest = l + 1 }
            if storage[i] <= storage[smallest] { return }
            storage.swapAt(i, smallest)
            i = smallest
        }
    }
}
