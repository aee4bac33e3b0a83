#if canImport(Accelerate)
import Accelerate

/// The integer type of the CBLAS interface (OpenBLAS's name).
typealias blasint = Int32
#else
import COpenBLAS
#endif

/// Row-major single-precision GEMM: `C[M, N] = alpha * op(A) · op(B) + beta * C`, where
/// `op(A)` is `[M, K]` (A stored `[K, M]` when `transA`) and `op(B)` is `[K, N]` (B stored
/// `[N, K]` when `transB`). Leading dimensions are in elements. Products of at least ~1M
/// multiply-adds run on the kernels' threads (`parallelFor`), each part a single-threaded BLAS call,
/// unless `threaded` is false (a caller already running on the threads).
@inline(__always)
public func sgemm(
    transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, threaded: Bool = true
) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        for i in 0..<m {
            for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
        }
        return
    }
    _ = blasRunsSingleThreaded
    let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
    func product(rows: Range<Int>, columns: Range<Int>) {
        // Row r of op(A) is row r of A, or column r when A is stored transposed; likewise for B's columns.
        let pa = a + (transA ? rows.lowerBound : rows.lowerBound * lda)
        let pb = b + (transB ? columns.lowerBound * ldb : columns.lowerBound)
        cblas_sgemm(CblasRowMajor, ta, tb, blasint(rows.count), blasint(columns.count), blasint(k), alpha, pa, blasint(lda),
                    pb, blasint(ldb), beta, c + rows.lowerBound * ldc + columns.lowerBound, blasint(ldc))
    }
    // Large products: the rows (or columns, whichever are more) of C split across the kernels' pool.
    let work = m.multipliedReportingOverflow(by: n).partialValue.multipliedReportingOverflow(by: k)
    if threaded && kernelThreadCount > 1 && (work.overflow || work.partialValue >= 1 << 20) {
        if m >= n {
            parallelFor(m, minChunk: 16, granularity: 8) { product(rows: $0, columns: 0..<n) }
        } else {
            parallelFor(n, minChunk: 64, granularity: 16) { product(rows: 0..<m, columns: $0) }
        }
    } else {
        product(rows: 0..<m, columns: 0..<n)
    }
}

/// OpenBLAS runs on the calling thread only: its own threads, after every call, spin in
/// `sched_yield` for a while, taking cycles from the kernels' pool (9% of a prefill's samples in
/// the scheduler before this). `sgemm` splits large products across the pool itself.
/// (Accelerate is left as it is: its threads sleep when idle.)
#if canImport(Accelerate)
private let blasRunsSingleThreaded: Void = ()
#else
private let blasRunsSingleThreaded: Void = openblas_set_num_threads(1)
#endif
