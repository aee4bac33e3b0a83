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

/// Runs `body(range)` over `0..<count` split into at most `kernelThreadCount` contiguous chunks
/// of at least `minChunk` items (rounded to multiples of `granularity`). Runs inline when one
/// chunk suffices.
public func parallelFor(_ count: Int, minChunk: Int = 1, granularity: Int = 1, chunksPerThread: Int = 1,
                        _ body: (Range<Int>) -> Void) {
    if count <= 0 { return }
    let threads = kernelThreadCount
    let maxChunks = max(1, min(threads == 1 ? 1 : threads * chunksPerThread, count / max(minChunk, 1)))
    if maxChunks == 1 {
        body(0..<count)
        return
    }
    let perThread = (count + maxChunks - 1) / maxChunks
    let chunk = (perThread + granularity - 1) / granularity * granularity
    let chunks = (count + chunk - 1) / chunk
    withoutActuallyEscaping(body) { body in
        // concurrentPerform returns only after every iteration has finished, so the non-escaping
        // body outlives all its uses.
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let start = c * chunk
            body(start..<min(start + chunk, count))
        }
    }
}
