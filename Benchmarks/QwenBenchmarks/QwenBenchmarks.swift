// Layer and kernel throughput of the runtime (package-benchmark). Every benchmark runs the
// runtime's public API: a one-node (or one-pattern) ONNX graph planned by a Session, or a whole
// decoder export, so the benchmarks follow the kernels as they are rewritten.
//
// Each iteration records, besides wall time and throughput (iterations/s), MB/s (bytes moved:
// packed int4 weights + scales + activations in and out, or for whole models the MatMulNBits
// weights and scales), MFLOP/s (2·M·N·K for matrix products) and µs/token. `scripts/kernel-bench`
// builds with the CPU named and prints them as one table.
import Benchmark

let benchmarks: @Sendable () -> Void = {
    registerMatMulNBitsBenchmarks()
    registerBatchedMatMulNBitsBenchmarks()
    registerDenseMatMulBenchmarks()
    registerSoftmaxBenchmarks()
    registerAttentionBenchmarks()
    registerRMSNormBenchmarks()
    registerRotaryBenchmarks()
    registerSessionOverheadBenchmark()
    registerAllModelBenchmarks()
}
