import Foundation
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
        KernelPool(threads: 2).run {
            #expect(kernelThreadCount == 2)
            #expect(Self.ranges(896, minChunk: 292, granularity: 16, chunksPerThread: 4).count == 2)
            #expect(Self.ranges(4864, minChunk: 292, granularity: 16, chunksPerThread: 4).count == 8)
        }
    }
}

/// Kernel pools: loops run on the pool current on their thread; several pools run side by side.
struct KernelPoolTests {
    /// A loop of `chunks` chunks that lasts ~`milliseconds` per chunk, recording which threads ran it.
    static func busyLoop(chunks: Int, milliseconds: Double) -> Set<UInt> {
        let lock = NSLock()
        var threads = Set<UInt>()
        parallelFor(chunks, minChunk: 1) { r in
            let end = Date().addingTimeInterval(milliseconds / 1000 * Double(r.count))
            while Date() < end {}
            lock.lock(); threads.insert(UInt(bitPattern: Int(bitPattern: pthread_self()))); lock.unlock()
        }
        return threads
    }

    /// `run` makes a pool current for its body and restores the one before, nested or not;
    /// outside every `run` the shared pool is current.
    @Test func runSetsAndRestoresTheCurrentPool() {
        let a = KernelPool(threads: 3), b = KernelPool(threads: 1)
        #expect(KernelPool.current === KernelPool.shared)
        a.run {
            #expect(KernelPool.current === a && kernelThreadCount == 3)
            b.run { #expect(KernelPool.current === b && kernelThreadCount == 1) }
            #expect(KernelPool.current === a)
        }
        #expect(KernelPool.current === KernelPool.shared)
        let scope = a.enter()
        #expect(KernelPool.current === a)
        scope.end()
        #expect(KernelPool.current === KernelPool.shared)
    }

    /// Two pools driven from two threads at once both run every loop on their own workers: none
    /// is declined. One pool driven the same way declines the loops that find it busy (they run
    /// through Dispatch): the serialisation separate pools avoid.
    @Test func twoPoolsRunSideBySide() async {
        let loops = 40
        func drive(_ pools: [KernelPool]) async {
            await withTaskGroup(of: Void.self) { group in
                for pool in pools {
                    group.addTask {
                        await withCheckedContinuation { continuation in
                            Thread {
                                pool.run { for _ in 0..<loops { _ = Self.busyLoop(chunks: 2, milliseconds: 1) } }
                                continuation.resume()
                            }.start()
                        }
                    }
                }
            }
        }
        let pools = [KernelPool(threads: 2), KernelPool(threads: 2)]
        await drive(pools)
        for pool in pools { #expect(pool.loopCounts.run == loops && pool.loopCounts.declined == 0, "\(pool.loopCounts)") }
        let one = KernelPool(threads: 2)
        await drive([one, one])
        #expect(one.loopCounts.run + one.loopCounts.declined == 2 * loops && one.loopCounts.declined > 0, "\(one.loopCounts)")
    }

    /// A pool's workers end with it: making and dropping 30 pools that each started 2 workers
    /// leaves the process's thread count (Linux: /proc/self/task) about where it was; kept workers
    /// would add 60. (Other suites running meanwhile may start or end a few threads.)
    @Test func droppedPoolsStopTheirWorkers() throws {
        #if os(Linux)
        func threadCount() throws -> Int { try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count }
        let before = try threadCount()
        for _ in 0..<30 {
            let pool = KernelPool(threads: 3)
            pool.run { _ = Self.busyLoop(chunks: 3, milliseconds: 0.1) }
            #expect(pool.loopCounts.run == 1)
        }
        let after = try threadCount()
        #expect(after < before + 20, "threads: \(before) before, \(after) after")
        #endif
    }
}
