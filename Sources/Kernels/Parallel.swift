import CKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How many threads kernels split work across: `QWEN_THREADS` if set, else the number of
/// online processors.
public let kernelThreadCount: Int = {
    if let s = getenv("QWEN_THREADS"), let n = Int(String(cString: s)), n > 0 { return n }
    return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}()

/// Whether parallel loops use the kernels' own spinning thread pool (`qk_pool_run`, the default)
/// or Dispatch (`QWEN_THREAD_POOL=dispatch`).
let usesSpinningPool: Bool = {
    if let s = getenv("QWEN_THREAD_POOL"), String(cString: s) == "dispatch" { return false }
    return true
}()

/// One parallel loop as the pool's C tasks see it.
private struct PoolJob {
    let chunk: Int
    let count: Int
    let body: (Range<Int>) -> Void
}

/// Runs `body(range)` over `0..<count` split into at most `kernelThreadCount` contiguous chunks
/// of at least `minChunk` items (rounded to multiples of `granularity`), or `chunksPerThread`
/// times as many (for balance when a thread may start late or run slower), aiming at a whole
/// number per thread when there are more chunks than threads (rounding chunks up to the
/// granularity may still leave an odd count). Runs inline when one chunk suffices. The
/// chunks run on the calling thread and the kernels' thread pool (workers that spin between
/// jobs, so the hundreds of short loops of a decode step do not each pay a thread wake-up); a
/// loop started from inside another, or while another thread's loop holds the pool, runs
/// through Dispatch instead.
public func parallelFor(_ count: Int, minChunk: Int = 1, granularity: Int = 1, chunksPerThread: Int = 1,
                        _ body: (Range<Int>) -> Void) {
    if count <= 0 { return }
    let threads = kernelThreadCount
    var maxChunks = max(1, min(threads == 1 ? 1 : threads * chunksPerThread, count / max(minChunk, 1)))
    // A whole number of chunks per thread: 3 chunks on 2 threads take as long as 4.
    if maxChunks > threads { maxChunks -= maxChunks % threads }
    if maxChunks == 1 {
        body(0..<count)
        return
    }
    let perThread = (count + maxChunks - 1) / maxChunks
    let chunk = (perThread + granularity - 1) / granularity * granularity
    let chunks = (count + chunk - 1) / chunk
    withoutActuallyEscaping(body) { body in
        // Both ways return only after every chunk has finished, so the non-escaping body
        // outlives all its uses.
        if usesSpinningPool {
            var job = PoolJob(chunk: chunk, count: count, body: body)
            let ran = withUnsafeMutablePointer(to: &job) { p in
                qk_pool_run(chunks, Int32(threads), { context, index in
                    let job = context!.assumingMemoryBound(to: PoolJob.self).pointee
                    let start = index * job.chunk
                    job.body(start..<min(start + job.chunk, job.count))
                }, p)
            }
            if ran != 0 { return }
        }
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let start = c * chunk
            body(start..<min(start + chunk, count))
        }
    }
}
