import Foundation
import Kernels

// Reductions (ReduceMean/Sum/Max/Min/Prod/SumSquare/L2), Softmax/LogSoftmax and ArgMax/ArgMin.
// Floating-point reductions accumulate in float32 (float64 for float64) and round once, like
// ONNX Runtime's CPU provider for float16 inputs.

enum ReduceKind: Sendable {
    case mean, sum, max, min, prod, sumSquare, l2, logSumExp

    var identity: Double {
        switch self {
        case .mean, .sum, .sumSquare, .l2, .logSumExp: 0
        case .max: -.infinity
        case .min: .infinity
        case .prod: 1
        }
    }
}

struct ReduceOperator: Operator {
    let kind: ReduceKind
    let keepDims: Bool
    let noopWithEmptyAxes: Bool
    /// Axes from the attribute (older opsets); nil when they come from input 1.
    let axesAttribute: [Int]?
    let axesFromInput: Bool

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        var axes = axesAttribute ?? []
        if axesFromInput, let t = inputs.optional(1) { axes = try intValues(t) }
        if axes.isEmpty {
            if noopWithEmptyAxes { return [x] }
            axes = Array(0..<x.rank)
        }
        let reduced = try Set(axes.map { try normalizeAxis($0, rank: x.rank) })
        var outShape = [Int]()
        for (i, d) in x.shape.enumerated() {
            if reduced.contains(i) { if keepDims { outShape.append(1) } } else { outShape.append(d) }
        }
        // Split the input into [outer, reduced, inner] blocks when the reduced axes are adjacent
        // (the common case: the last axis); otherwise transpose them to the end first.
        let sortedAxes = reduced.sorted()
        var source = x
        var first = sortedAxes.first ?? 0
        let adjacent = sortedAxes.last.map { $0 - first + 1 == sortedAxes.count } ?? true
        if !adjacent {
            let kept = (0..<x.rank).filter { !reduced.contains($0) }
            source = try TransposeOperator(perm: kept + sortedAxes).run([x])[0]
            first = kept.count
        }
        let outer = Tensor.elementCount(Array(source.shape[..<first]))
        let n = sortedAxes.reduce(1) { $0 * x.shape[$1] }
        let inner = Tensor.elementCount(Array(source.shape[(first + sortedAxes.count)...]))

        let kind = self.kind
        @inline(__always) func finish(_ acc: Double) -> Double {
            switch kind {
            case .mean: n > 0 ? acc / Double(n) : .nan
            case .l2: acc.squareRoot()
            case .logSumExp: Foundation.log(acc)
            default: acc
            }
        }
        func reduce<T>(_: T.Type, load: (T) -> Float, store: (Float) -> T) -> Tensor {
            let out = Tensor(dtype: x.dtype, shape: outShape)
            let px = source.pointer(as: T.self), po = out.pointer(as: T.self)
            for o in 0..<outer {
                for i in 0..<inner {
                    var acc = Float(kind.identity)
                    var p = px + o * n * inner + i
                    for _ in 0..<n {
                        let v = load(p.pointee)
                        switch kind {
                        case .mean, .sum: acc += v
                        case .sumSquare, .l2: acc += v * v
                        case .max: acc = v.isNaN || acc.isNaN ? .nan : Swift.max(acc, v)
                        case .min: acc = v.isNaN || acc.isNaN ? .nan : Swift.min(acc, v)
                        case .prod: acc *= v
                        case .logSumExp: acc += Foundation.expf(v)
                        }
                        p += inner
                    }
                    po[o * inner + i] = store(Float(finish(Double(acc))))
                }
            }
            return out
        }
        switch x.dtype {
        case .float: return [reduce(Float.self, load: { $0 }, store: { $0 })]
        case .float16: return [reduce(Float16.self, load: { Float($0) }, store: { Float16($0) })]
        case .double:
            let r = try castTensor(try ReduceOperator(kind: kind, keepDims: keepDims, noopWithEmptyAxes: false,
                                                      axesAttribute: Array(reduced), axesFromInput: false).run([try castTensor(x, to: .float)])[0], to: .double)
            return [r]
        case .int64, .int32:
            guard kind != .l2 && kind != .logSumExp else { throw OpError("\(kind) of integers is not supported") }
            let out = Tensor(dtype: x.dtype, shape: outShape)
            let values = source.int64s()
            var result = [Int64](repeating: 0, count: outer * inner)
            for o in 0..<outer {
                for i in 0..<inner {
                    var acc: Int64 = kind == .prod ? 1 : (kind == .max ? .min : (kind == .min ? .max : 0))
                    for j in 0..<n {
                        let v = values[(o * n + j) * inner + i]
                        switch kind {
                        case .sum, .mean: acc &+= v
                        case .sumSquare: acc &+= v &* v
                        case .max: acc = Swift.max(acc, v)
                        case .min: acc = Swift.min(acc, v)
                        case .prod: acc &*= v
                        case .l2, .logSumExp: break
                        }
                    }
                    if kind == .mean && n > 0 { acc /= Int64(n) }
                    result[o * inner + i] = acc
                }
            }
            let r = try castTensor(Tensor(int64s: result, shape: outShape), to: x.dtype)
            out.rawPointer.copyMemory(from: r.rawPointer, byteCount: r.byteCount)
            return [out]
        default: break
        }
        throw OpError("reduction of \(x.dtype) is not supported")
    }
}

/// Softmax / LogSoftmax. Opset ≥ 13: over one axis. Before 13: over the flattened trailing
/// block starting at `axis` (the input is coerced to 2-D).
struct SoftmaxOperator: Operator {
    let axis: Int
    let legacyCoerce2D: Bool
    let log: Bool

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let a = try normalizeAxis(axis, rank: x.rank)
        var source = x
        var outer: Int, n: Int, inner: Int
        if legacyCoerce2D {
            outer = Tensor.elementCount(Array(x.shape[..<a]))
            n = Tensor.elementCount(Array(x.shape[a...]))
            inner = 1
        } else if a == x.rank - 1 {
            outer = x.count / Swift.max(x.shape[a], 1)
            n = x.shape[a]
            inner = 1
        } else {
            // Move the axis last, then back.
            var perm = Array(0..<x.rank)
            perm.remove(at: a)
            perm.append(a)
            source = try TransposeOperator(perm: perm).run([x])[0]
            let r = try SoftmaxOperator(axis: -1, legacyCoerce2D: false, log: log).run([source])[0]
            var back = [Int](repeating: 0, count: x.rank)
            for (i, p) in perm.enumerated() { back[p] = i }
            return try TransposeOperator(perm: back).run([r])
        }
        _ = inner
        if x.count == 0 { return [Tensor(dtype: x.dtype, shape: x.shape)] }
        switch x.dtype {
        case .float:
            let out = Tensor(dtype: .float, shape: x.shape)
            for o in 0..<outer {
                softmaxRow(source.pointer(as: Float.self) + o * n, out.pointer(as: Float.self) + o * n, n, log: log)
            }
            return [out]
        case .float16:
            let out = Tensor(dtype: .float16, shape: x.shape)
            var row = [Float](repeating: 0, count: n)
            row.withUnsafeMutableBufferPointer { buf in
                let r = buf.baseAddress!
                for o in 0..<outer {
                    convertHalfToFloat(source.pointer(as: Float16.self) + o * n, r, n)
                    softmaxRow(r, r, n, log: log)
                    convertFloatToHalf(r, out.pointer(as: Float16.self) + o * n, n)
                }
            }
            return [out]
        case .double:
            let r = try SoftmaxOperator(axis: axis, legacyCoerce2D: legacyCoerce2D, log: log).run([try castTensor(x, to: .float)])[0]
            return [try castTensor(r, to: .double)]
        default:
            throw OpError("Softmax of \(x.dtype) is not supported")
        }
    }
}

struct ArgExtremumOperator: Operator {
    let axis: Int
    let keepDims: Bool
    let selectLastIndex: Bool
    let isMax: Bool

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let a = try normalizeAxis(axis, rank: x.rank)
        let n = x.shape[a]
        guard n > 0 else { throw OpError("ArgMax/ArgMin over an empty axis") }
        let outer = Tensor.elementCount(Array(x.shape[..<a]))
        let inner = Tensor.elementCount(Array(x.shape[(a + 1)...]))
        var outShape = x.shape
        if keepDims { outShape[a] = 1 } else { outShape.remove(at: a) }
        let values = x.dtype == .int64 || x.dtype == .int32 ? x.int64s().map { Double($0) } : x.floats().map { Double($0) }
        var result = [Int64](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                var best = values[o * n * inner + i]
                var bestIndex = 0
                for j in 1..<n {
                    let v = values[(o * n + j) * inner + i]
                    let better = isMax ? (v > best || (selectLastIndex && v == best)) : (v < best || (selectLastIndex && v == best))
                    if better { best = v; bestIndex = j }
                }
                result[o * inner + i] = Int64(bestIndex)
            }
        }
        return [Tensor(int64s: result, shape: outShape)]
    }
}

func registerReductions(_ add: (String, String, ClosedRange<Int>, @escaping OperatorFactory) -> Void) {
    // (op, kind, first opset taking axes as an input)
    let reductions: [(String, ReduceKind, Int)] = [
        ("ReduceMean", .mean, 18), ("ReduceSum", .sum, 13), ("ReduceMax", .max, 18), ("ReduceMin", .min, 18),
        ("ReduceProd", .prod, 18), ("ReduceSumSquare", .sumSquare, 18), ("ReduceL2", .l2, 18),
        ("ReduceLogSumExp", .logSumExp, 18),
    ]
    for (name, kind, axesInputSince) in reductions {
        add(name, "", 1...Int.max) { ctx in
            let fromInput = ctx.opset >= axesInputSince
            return ReduceOperator(
                kind: kind,
                keepDims: ctx.node.intAttribute("keepdims", default: 1) != 0,
                noopWithEmptyAxes: ctx.node.intAttribute("noop_with_empty_axes", default: 0) != 0,
                axesAttribute: fromInput ? nil : ctx.node.intsAttribute("axes"),
                axesFromInput: fromInput)
        }
    }
    for (name, log) in [("Softmax", false), ("LogSoftmax", true)] {
        add(name, "", 1...Int.max) { ctx in
            SoftmaxOperator(axis: ctx.node.intAttribute("axis", default: ctx.opset >= 13 ? -1 : 1),
                            legacyCoerce2D: ctx.opset < 13, log: log)
        }
    }
    for (name, isMax) in [("ArgMax", true), ("ArgMin", false)] {
        add(name, "", 1...Int.max) { ctx in
            ArgExtremumOperator(axis: ctx.node.intAttribute("axis", default: 0),
                                keepDims: ctx.node.intAttribute("keepdims", default: 1) != 0,
                                selectLastIndex: ctx.node.intAttribute("select_last_index", default: 0) != 0,
                                isMax: isMax)
        }
    }
}
