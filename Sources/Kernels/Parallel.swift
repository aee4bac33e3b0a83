import CKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pool of kernel threads that parallel loops (`parallelFor`, and the BLAS split) run on: the
/// calling thread plus `threads - 1` workers (started on the first loop) that spin ~2 ms after a
/// loop, so that the hundreds of short loops of a decode step do not each pay a wake-up, and then
/// sleep until the next: an idle pool uses no CPU. One loop at a time per pool; each loaded model
/// has its own, so two models run side by side without waiting for each other's.
///
/// Loops run on the pool current on their thread (``run(_:)`` sets it; a session sets its own for
/// each run), else on ``shared``.
public final class KernelPool: @unchecked Sendable {
    /// The threads its loops are split across (1: loops run inline).
    public let threads: Int
    let handle: OpaquePointer?

    /// A pool for `threads` threads (at least 1). No thread starts before the first loop.
    public init(threads: Int) {
        self.threads = max(1, threads)
        handle = self.threads > 1 ? qk_pool_create(Int32(min(self.threads, 64))) : nil
    }

    deinit { qk_pool_destroy(handle) }

    /// `QWEN_THREADS` if set to a positive number, else the number of online processors.
    public static let defaultThreadCount: Int = {
        if let s = getenv("QWEN_THREADS"), let n = Int(String(cString: s)), n > 0 { return n }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }()

    /// The pool of code that names none (``defaultThreadCount`` threads).
    public static let shared = KernelPool(threads: defaultThreadCount)

    /// The pool loops on this thread run on: the innermost ``run(_:)``'s, else ``shared``.
    public static var current: KernelPool {
        guard let owner = qk_pool_current_owner() else { return shared }
        return Unmanaged<KernelPool>.fromOpaque(owner).takeUnretainedValue()
    }

    /// Runs `body` with this pool as the current one on this thread (restored after).
    public func run<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        let previous = qk_pool_set_current_owner(Unmanaged.passUnretained(self).toOpaque())
        defer { qk_pool_set_current_owner(previous) }
        return try body()   // self lives through the call: its caller holds it
    }

    /// ``run(_:)`` for code that cannot be a closure (an initializer): makes this pool current on
    /// this thread until the returned scope's `end()`.
    public func enter() -> Scope {
        Scope(previous: qk_pool_set_current_owner(Unmanaged.passUnretained(self).toOpaque()), pool: self)
    }

    /// A pool made current by ``enter()``.
    public struct Scope {
        let previous: UnsafeMutableRawPointer?
        let pool: KernelPool
        /// Makes the pool that was current before ``KernelPool/enter()`` current again.
        public func end() { qk_pool_set_current_owner(previous) }
    }

    /// Loops run on the pool's threads, and loops declined because another thread's loop held it
    /// (those ran through Dispatch).
    public var loopCounts: (run: Int, declined: Int) {
        guard let handle else { return (0, 0) }
        var run: UInt = 0, declined: UInt = 0
        qk_pool_counts(handle, &run, &declined)
        return (Int(run), Int(declined))
    }
}

/// How many threads kernels split work across on this thread: ``KernelPool/current``'s.
public var kernelThreadCount: Int { KernelPool.current.threads }

/// Whether parallel loops use the kernels' own spinning thread pool (`qk_pool_run`, the default)
/// or Dispatch (`QWEN_THREAD_POOL=dispatch`).
let usesSpinningPool: Bool = {
    if let s = getenv("QWEN_THREAD_POOL"), String(cString: s) == "dispatch" { return false }
    return true
}()

/// One parallel loop as the pool's C tasks see it: task `index` runs `body(index)`.
private struct PoolJob {
    let body: (Int) -> Void
}

/// Runs `task(0..<count)`, each index once, on the calling thread and the current
/// ``KernelPool``'s (or, for a loop started inside another or while another thread's loop holds
/// the pool, through Dispatch); returns when all have finished.
private func runTasks(_ count: Int, _ task: (Int) -> Void) {
    let pool = KernelPool.current
    withoutActuallyEscaping(task) { task in
        // Both ways return only after every task has finished, so the non-escaping body
        // outlives all its uses.
        if usesSpinningPool {
            var job = PoolJob(body: task)
            let ran = withUnsafeMutablePointer(to: &job) { p in
                qk_pool_run(pool.handle, count, { context, index in
                    context!.assumingMemoryBound(to: PoolJob.self).pointee.body(index)
                }, p)
            }
            if ran != 0 { return }
        }
        nonisolated(unsafe) let task = task
        DispatchQueue.concurrentPerform(iterations: count) { task($0) }
    }
}

/// Runs `body(range)` over `0..<count` split into at most `kernelThreadCount` contiguous chunks
/// of at least `minChunk` items (rounded to multiples of `granularity`), or `chunksPerThread`
/// times as many (for balance when a thread may start late or run slower), aiming at a whole
/// number per thread when there are more chunks than threads (rounding chunks up to the
/// granularity may still leave an odd count). Runs inline when one chunk suffices. The
/// chunks run on the calling thread and the current ``KernelPool``; a loop started from inside
/// another, or while another thread's loop holds the pool, runs through Dispatch instead.
public func parallelFor(_ count: Int, minChunk: Int = 1, granularity: Int = 1, chunksPerThread: Int = 1,
                        _ body: (Range<Int>) -> Void) {
    if count <= 0 { return }
    let threads = KernelPool.current.threads
    var maxChunks = max(1, min(threads == 1 ? 1 : threads * chunksPerThread, count / max(minChunk, 1)))
    // A whole number of chunks per thread: 3 chunks on 2 threads take as long as 4.
    if maxChunks > threads { maxChunks -= maxChunks % threads }
    if maxChunks == 1 {
        body(0..<count)
        return
    }
    let perThread = (count + maxChunks - 1) / maxChunks
    let chunk = (perThread + granularity - 1) / granularity * granularity
    runTasks((count + chunk - 1) / chunk) { c in body(c * chunk ..< min((c + 1) * chunk, count)) }
}

/// Runs `body(range)` over `0..<count` in chunks that shrink as the loop goes (guided
/// scheduling): each a quarter of what is left per thread, rounded up to `granularity` and at
/// least `minChunk` items, claimed in order by the threads as they come free. The chunks are
/// few (about 2 · threads · ln(count / minChunk)) and the last ones small, so that a thread
/// starting late or running slower leaves the others at most a small chunk to wait for, where
/// ``parallelFor(_:minChunk:granularity:chunksPerThread:_:)``'s equal chunks leave up to one of
/// theirs. Runs inline when one chunk suffices.
public func parallelForGuided(_ count: Int, minChunk: Int, granularity: Int = 1, _ body: (Range<Int>) -> Void) {
    if count <= 0 { return }
    let threads = KernelPool.current.threads
    let smallest = (max(minChunk, granularity, 1) + granularity - 1) / granularity * granularity
    if threads == 1 || count <= smallest {
        body(0..<count)
        return
    }
    var bounds = [0]
    while bounds.last! < count {
        let left = count - bounds.last!
        let size = max(smallest, (left / (2 * threads) + granularity - 1) / granularity * granularity)
        bounds.append(bounds.last! + min(size, left))
    }
    bounds.withUnsafeBufferPointer { bounds in
        runTasks(bounds.count - 1) { c in body(bounds[c]..<bounds[c + 1]) }
    }
}
