// Layer-level kernels, each run as a one-node (or one-pattern) ONNX graph through a Session, the
// way the runtime runs them inside a model: MatMulNBits, MatMul, Softmax, RMSNorm, rotary.
import Benchmark
import Foundation
import ONNX
import Qwen
import Runtime

/// Real (K, N) shapes of the MatMulNBits nodes of Qwen2.5-0.5B and -1.5B: q/o projections,
/// k/v projections, MLP up/gate, MLP down, LM head.
let qwenMatMulShapes: [(model: String, k: Int, n: Int)] = [
    ("0.5B", 896, 896), ("0.5B", 896, 128), ("0.5B", 896, 4864), ("0.5B", 4864, 896), ("0.5B", 896, 151_936),
    ("1.5B", 1536, 1536), ("1.5B", 1536, 256), ("1.5B", 1536, 8960), ("1.5B", 8960, 1536), ("1.5B", 1536, 151_936),
]

// MARK: - MatMulNBits

/// How the quantized weights and activations are typed: the q4f16 export (float16 A, float16
/// scales) or the q4 export (float32 A, float32 scales). Both: 4 bits, block 32, no zero points.
/// `q4f16` GEMVs run with int16-quantized activations (the default for float16 nodes);
/// `q4f16-f32`: the same node with float32 decode activations (`--decode-activations float32`);
/// `q4f16-int8`: the q4f16 node with `accuracy_level = 4`, so int8-quantized activations.
enum QuantizedVariant: String, CaseIterable {
    case q4f16, q4
    case q4f16Float32 = "q4f16-f32"
    case q4f16Int8 = "q4f16-int8"

    var activationType: DataType { self == .q4 ? .float : .float16 }
    var elementBytes: Int { self == .q4 ? 4 : 2 }
    var label: String {
        switch self {
        case .q4f16: "q4f16 (fp16 scales, fp16 A; GEMV: int16 A)"
        case .q4: "q4 (fp32 scales, fp32 A)"
        case .q4f16Float32: "q4f16, float32 decode activations"
        case .q4f16Int8: "q4f16, accuracy_level 4 (int8 A)"
        }
    }

    var decodeActivations: DecodeActivations { self == .q4f16Float32 ? .float32 : .automatic }
}

/// A `com.microsoft.MatMulNBits` node (bits 4, block 32, symmetric) with random weights as
/// initializers, fed `[m, k]` activations.
func matMulNBitsGraph(m: Int, k: Int, n: Int, variant: QuantizedVariant, seed: UInt64) throws -> PlannedGraph {
    let blockSize = 32
    let blocks = (k + blockSize - 1) / blockSize
    let weights = randomBytes([n, blocks, blockSize / 2], seed: seed)
    // Scales of the magnitude real exports have (|w| ≲ 0.1 → scale ≈ 0.01).
    let scales = randomFloats(variant.activationType, [n * blocks], seed: seed &+ 1, scale: 0.004, offset: 0.01)
    let a = randomFloats(variant.activationType, [m, k], seed: seed &+ 2)
    let node = Node(
        name: "MatMulNBits", opType: "MatMulNBits", domain: "com.microsoft", inputs: ["A", "B", "scales"], outputs: ["Y"],
        attributes: [
            "K": intAttribute("K", k), "N": intAttribute("N", n),
            "bits": intAttribute("bits", 4), "block_size": intAttribute("block_size", blockSize),
            "accuracy_level": intAttribute("accuracy_level", variant == .q4f16Int8 ? 4 : 0),
        ])
    return try planGraph(nodes: [node], inputs: ["A": a], constants: ["B": weights, "scales": scales], outputs: ["Y"],
                         decodeActivations: variant.decodeActivations)
}

func matMulNBitsWork(m: Int, k: Int, n: Int, variant: QuantizedVariant) -> Work {
    let blocks = (k + 31) / 32
    let weightBytes = n * blocks * 16 + n * blocks * variant.elementBytes
    let activationBytes = (m * k + m * n) * variant.elementBytes
    return Work(bytes: Double(weightBytes + activationBytes), flops: 2 * Double(m) * Double(n) * Double(k))
}

func registerMatMulNBitsBenchmarks() {
    for variant in QuantizedVariant.allCases {
        // The GEMMs (M = 128) do not depend on the decode activations.
        for m in variant == .q4f16Float32 ? [1] : [1, 128] {
            for (model, k, n) in qwenMatMulShapes {
                let kind = m == 1 ? "GEMV" : "GEMM"
                let seed = UInt64(k &* 1_000_003 &+ n)
                // The GEMMs against the LM head take ~1 s an iteration on two cores.
                let budget: Budget = m > 1 && n > 100_000 ? .long : .short
                register(
                    "MatMulNBits \(variant.rawValue) \(kind) [M=\(m) K=\(k) N=\(n)] (\(model))", budget: budget,
                    work: { _ in matMulNBitsWork(m: m, k: k, n: n, variant: variant) },
                    setup: { try matMulNBitsGraph(m: m, k: k, n: n, variant: variant, seed: seed) },
                    body: { try $0.run() })
            }
        }
    }
}

/// The product of a batched decode step (`Session.runBatch`, as `qwen-run serve` steps 8
/// streams): `batch` sequences' single q4f16 rows stacked through one node, the weights read
/// once for all (each row's floats those of its own GEMV). Against the same shape's M=1 GEMV it
/// shows what the batch costs per token.
func registerBatchedMatMulNBitsBenchmarks() {
    let batch = 8
    for (model, k, n) in qwenMatMulShapes where model == "0.5B" {
        let seed = UInt64(k &* 1_000_003 &+ n)
        register(
            "MatMulNBits q4f16 batched GEMV [B=\(batch) K=\(k) N=\(n)] (\(model))",
            work: { _ in matMulNBitsWork(m: batch, k: k, n: n, variant: .q4f16) },
            setup: {
                let single = try matMulNBitsGraph(m: 1, k: k, n: n, variant: .q4f16, seed: seed)
                let rows = (0..<batch).map { i in
                    ["A": randomFloats(.float16, [1, k], seed: seed &+ 100 &+ UInt64(i))]
                }
                return PlannedBatch(session: single.session, feedSets: rows)
            },
            body: { try $0.run() })
    }
}

// MARK: - Dense MatMul

/// `Y = A · B` with B `[k, n]` an initializer of `dtype`, A `[1, k]`.
func registerDenseMatMulBenchmarks() {
    let k = 896, n = 4864
    let cases: [(name: String, dtype: DataType, numerics: Float16Numerics)] = [
        ("MatMul fp32 GEMV", .float, .onnxRuntime),
        // The default numerics run a float16 MatMul in float32 between inserted Casts, as ONNX
        // Runtime does. The Cast of B is an initializer's, so constant folding would widen it once
        // at load, but its float32 result (17.4 MB here) is over ConstantFolding.maxFoldedBytes
        // (16 MiB at the time of writing): the Cast then runs on every call.
        ("MatMul fp16 GEMV, default numerics (inserted Casts)", .float16, .onnxRuntime),
        // Taking the float16 types literally, the MatMul operator widens its float16 B itself.
        ("MatMul fp16 GEMV, roundEveryOp", .float16, .roundEveryOp),
    ]
    for c in cases {
        let elementBytes = c.dtype == .float ? 4 : 2
        register(
            "\(c.name) [M=1 K=\(k) N=\(n)]",
            work: { _ in Work(bytes: Double((k * n + k + n) * elementBytes), flops: 2 * Double(k) * Double(n)) },
            setup: {
                let node = Node(name: "MatMul", opType: "MatMul", inputs: ["A", "B"], outputs: ["Y"])
                return try planGraph(
                    nodes: [node], inputs: ["A": randomFloats(c.dtype, [1, k], seed: 11)],
                    constants: ["B": randomFloats(c.dtype, [k, n], seed: 12, scale: 0.05)], outputs: ["Y"],
                    numerics: c.numerics)
            },
            body: { try $0.run() })
    }
}

// MARK: - Softmax, RMSNorm, rotary

func registerSoftmaxBenchmarks() {
    // A row of logits, and the attention scores of one decode step (14 heads × 128 positions).
    for shape in [[1, 151_936], [14, 128]] {
        let count = shape.reduce(1, *)
        register(
            "Softmax fp32 [\(shape.map(String.init).joined(separator: "x"))]",
            work: { _ in Work(bytes: Double(2 * 4 * count), flops: 0) },
            setup: {
                var axis = AttributeProto()
                axis.name = "axis"
                axis.kind = .int
                axis.i = -1
                let node = Node(name: "Softmax", opType: "Softmax", inputs: ["X"], outputs: ["Y"], attributes: ["axis": axis])
                return try planGraph(nodes: [node], inputs: ["X": randomFloats(.float, shape, seed: 21, scale: 8)],
                                     constants: [:], outputs: ["Y"])
            },
            body: { try $0.run() })
    }
}

// MARK: - Decode attention

/// One decode step's attention in a layer of Qwen2.5-0.5B (14 query heads over 2 key/value
/// heads, head size 64, the exports' key scale 1/√√64) against T cached positions, as the fused
/// `FusedAttention` node reads them: keys and values float16 (what the float16 exports' cache
/// stores) or float32 (the float32 exports'). The same tensors each iteration, so from cache where
/// they fit (2 MB of float16 keys and values at 4,096 positions). GB/s counts the keys and values,
/// GFLOP/s the scores and weighted sums (2 · 2 · 14 · T · 64).
func registerAttentionBenchmarks() {
    for t in [128, 1024, 4096] {
        for dtype in [DataType.float16, .float] {
            let elementBytes = dtype == .float16 ? 2 : 4
            register(
                "FusedAttention decode [H=14 KVH=2 D=64 T=\(t)] (\(dtype == .float16 ? "fp16" : "fp32") keys and values)",
                work: { _ in Work(bytes: Double(2 * 2 * t * 64 * elementBytes), flops: Double(2 * 2 * 14 * t * 64)) },
                setup: {
                    let node = Node(name: "attention", opType: "FusedAttention", domain: PrivateOps.domain,
                                    inputs: ["Q", "K", "V", "scale"], outputs: ["Y"])
                    return try planGraph(
                        nodes: [node],
                        inputs: ["Q": randomFloats(.float, [1, 14, 1, 64], seed: 31),
                                 "K": randomFloats(dtype, [1, 2, t, 64], seed: 32),
                                 "V": randomFloats(dtype, [1, 2, t, 64], seed: 33)],
                        constants: ["scale": Tensor([0.35355339], shape: [])], outputs: ["Y"])
                },
                body: { try $0.run() })
        }
    }
}

/// RMSNorm as the fused `SimplifiedLayerNormalization` op, and as the decomposed pattern the
/// optimum exports contain (Pow, ReduceMean, Add ε, Sqrt, Div, Mul, Mul by the weight), which is
/// what the runtime executes for the real models (no fusion pass).
func registerRMSNormBenchmarks() {
    for (rows, width) in [(1, 896), (1, 1536), (128, 896)] {
        let shape = "[\(rows)x\(width)]"
        let bytes = Double((2 * rows * width + width) * 4)
        register(
            "RMSNorm fp32 SimplifiedLayerNormalization \(shape)",
            work: { _ in Work(bytes: bytes, flops: 0) },
            setup: {
                var epsilon = AttributeProto()
                epsilon.name = "epsilon"
                epsilon.kind = .float
                epsilon.f = 1e-6
                let node = Node(name: "RMSNorm", opType: "SimplifiedLayerNormalization", inputs: ["X", "weight"],
                                outputs: ["Y"], attributes: ["axis": intAttribute("axis", -1), "epsilon": epsilon])
                return try planGraph(
                    nodes: [node], inputs: ["X": randomFloats(.float, [1, rows, width], seed: 31)],
                    constants: ["weight": randomFloats(.float, [width], seed: 32, offset: 1)], outputs: ["Y"])
            },
            body: { try $0.run() })
        register(
            "RMSNorm fp32 decomposed export pattern \(shape)",
            work: { _ in Work(bytes: bytes, flops: 0) },
            setup: {
                let nodes = [
                    Node(name: "Pow", opType: "Pow", inputs: ["X", "two"], outputs: ["squared"]),
                    Node(name: "ReduceMean", opType: "ReduceMean", inputs: ["squared", "axes"], outputs: ["meanSquare"],
                         attributes: ["keepdims": intAttribute("keepdims", 1)]),
                    Node(name: "Add", opType: "Add", inputs: ["meanSquare", "epsilon"], outputs: ["shifted"]),
                    Node(name: "Sqrt", opType: "Sqrt", inputs: ["shifted"], outputs: ["rms"]),
                    Node(name: "Div", opType: "Div", inputs: ["one", "rms"], outputs: ["inverse"]),
                    Node(name: "Mul", opType: "Mul", inputs: ["X", "inverse"], outputs: ["normalized"]),
                    Node(name: "Mul_1", opType: "Mul", inputs: ["weight", "normalized"], outputs: ["Y"]),
                ]
                return try planGraph(
                    nodes: nodes, inputs: ["X": randomFloats(.float, [1, rows, width], seed: 31)],
                    constants: [
                        "two": Tensor.scalar(Float(2)), "axes": Tensor(int64s: [-1], shape: [1]),
                        "epsilon": Tensor.scalar(Float(1e-6)), "one": Tensor.scalar(Float(1)),
                        "weight": randomFloats(.float, [width], seed: 32, offset: 1),
                    ],
                    outputs: ["Y"])
            },
            body: { try $0.run() })
    }
}

/// Rotary embedding as the Qwen2 exports write it (no rotary op): `q·cos + rotate_half(q)·sin`,
/// rotate_half = Concat(-q[..., d/2:], q[..., :d/2]) via two Slices, a Neg and a Concat; cos and
/// sin `[1, 1, T, d]` are inputs (the graph computes them once per step for all layers).
func registerRotaryBenchmarks() {
    // (model, heads, head size, positions): the query of one layer, decode and 128-token prefill.
    let cases = [("0.5B", 14, 64, 1), ("0.5B", 14, 64, 128), ("1.5B", 12, 128, 1), ("1.5B", 12, 128, 128)]
    for (model, heads, dim, positions) in cases {
        let count = heads * positions * dim
        register(
            "Rotary fp32 export pattern [1x\(heads)x\(positions)x\(dim)] (\(model) q)",
            work: { _ in Work(bytes: Double((2 * count + 2 * positions * dim) * 4), flops: 0) },
            setup: {
                let half = Int64(dim / 2)
                let nodes = [
                    Node(name: "Slice", opType: "Slice", inputs: ["q", "zero", "half", "lastAxis"], outputs: ["x1"]),
                    Node(name: "Slice_1", opType: "Slice", inputs: ["q", "half", "end", "lastAxis"], outputs: ["x2"]),
                    Node(name: "Neg", opType: "Neg", inputs: ["x2"], outputs: ["negX2"]),
                    Node(name: "Concat", opType: "Concat", inputs: ["negX2", "x1"], outputs: ["rotated"],
                         attributes: ["axis": intAttribute("axis", -1)]),
                    Node(name: "Mul", opType: "Mul", inputs: ["q", "cos"], outputs: ["qCos"]),
                    Node(name: "Mul_1", opType: "Mul", inputs: ["rotated", "sin"], outputs: ["rotatedSin"]),
                    Node(name: "Add", opType: "Add", inputs: ["qCos", "rotatedSin"], outputs: ["Y"]),
                ]
                return try planGraph(
                    nodes: nodes,
                    inputs: [
                        "q": randomFloats(.float, [1, heads, positions, dim], seed: 41),
                        "cos": randomFloats(.float, [1, 1, positions, dim], seed: 42),
                        "sin": randomFloats(.float, [1, 1, positions, dim], seed: 43),
                    ],
                    constants: [
                        "zero": Tensor(int64s: [0], shape: [1]), "half": Tensor(int64s: [half], shape: [1]),
                        "end": Tensor(int64s: [Int64(dim)], shape: [1]), "lastAxis": Tensor(int64s: [3], shape: [1]),
                    ],
                    outputs: ["Y"])
            },
            body: { try $0.run() })
    }
}

// MARK: - Session overhead

/// One Identity node: what `Session.run` itself costs (feeds checked, slots, output dictionary).
/// It is part of every one-node benchmark above, and dominates those of a few microseconds.
func registerSessionOverheadBenchmark() {
    register(
        "Session.run overhead, one Identity node [1x896]",
        work: { _ in Work(bytes: 0, flops: 0) },
        setup: {
            let node = Node(name: "Identity", opType: "Identity", inputs: ["X"], outputs: ["Y"])
            return try planGraph(nodes: [node], inputs: ["X": randomFloats(.float, [1, 896], seed: 51)],
                                 constants: [:], outputs: ["Y"])
        },
        body: { try $0.run() })
}
