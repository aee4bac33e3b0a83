import Testing
@testable import Kernels

/// `parallelFor`'s split: every index exactly once, chunks of whole granules, and no odd chunk
/// count that leaves one thread a chunk more than the other.
struct ParallelForTests {
    /// The chunks `parallelFor` ran. Each chunk records itself at its first index and counts its
    /// indices (disjoint memory per chunk, so no lock: overlapping chunks would show as counts
    /// above 1, and as a data race under ThreadSanitizer).
    static func ranges(_ count: Int, minChunk: Int, granularity: Int, chunksPerThread: Int) -> [Range<Int>] {
        let ends = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
        defer { ends.deallocate(); hits.deallocate() }
        ends.initialize(repeating: -1)
        hits.initialize(repeating: 0)
        parallelFor(count, minChunk: minChunk, granularity: granularity, chunksPerThread: chunksPerThread) { r in
            if !r.isEmpty { ends[r.lowerBound] = r.upperBound }
            for i in r { hits[i] += 1 }
        }
        var ranges: [Range<Int>] = [], i = 0
        while i < count {
            guard ends[i] > i, hits[i..<ends[i]].allSatisfy({ $0 == 1 }) else { return ranges + [i..<i] }
            ranges.append(i..<ends[i])
            i = ends[i]
        }
        return ranges
    }

    @Test(arguments: [(0, 1, 1, 1), (1, 1, 1, 1), (7, 1, 1, 4), (100, 16, 16, 4), (896, 292, 16, 4), (4864, 292, 16, 4),
                      (151_936, 292, 16, 4), (1000, 1, 1, 16), (13, 64, 16, 1)])
    func everyIndexOnceInWholeGranules(_ c: (count: Int, minChunk: Int, granularity: Int, perThread: Int)) {
        let ranges = Self.ranges(c.count, minChunk: c.minChunk, granularity: c.granularity, chunksPerThread: c.perThread)
        var next = 0
        for r in ranges {
            #expect(r.lowerBound == next && !r.isEmpty, "\(c): \(ranges)")
            #expect(r.lowerBound % c.granularity == 0, "\(c): \(ranges)")
            next = r.upperBound
        }
        #expect(next == c.count, "\(c): \(ranges)")
        #expect(ranges.count <= max(1, kernelThreadCount * c.perThread), "\(c): \(ranges.count) chunks")
    }

    /// 896 rows in chunks of at least 292 allow three; on two threads that would be one thread's
    /// two chunks against the other's one, so it is two.
    @Test func noOddChunkCountOnTwoThreads() {
        guard kernelThreadCount == 2 else {
            print("SKIPPED ParallelForTests.noOddChunkCountOnTwoThreads: \(kernelThreadCount) kernel threads here, the case needs 2")
            return
        }
        #expect(Self.ranges(896, minChunk: 292, granularity: 16, chunksPerThread: 4).count == 2)
        #expect(Self.ranges(4864, minChunk: 292, granularity: 16, chunksPerThread: 4).count == 8)
    }
}
