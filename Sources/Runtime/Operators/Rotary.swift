import Kernels

/// `qwen.swift` Rotary (see `RotaryFusion`): `x·cos + rotate_half(x)·sin`, where
/// `rotate_half(x) = Concat(−x[..., h:], x[..., :h], axis)`. Inputs: x, cos, sin, then the
/// starts, ends, axes and steps of the Slice giving the kept half (`x[..., :h]`) and of the one
/// giving the negated half (`x[..., h:]`) ("" where omitted); attribute `axis` (the Concat's).
///
/// When x, cos and sin are float32, cos and sin broadcast to x's shape, and the Slices and the
/// Concat cut the last axis into its two halves, each element is `x[i]·cos[i] + (−x[i+h])·sin[i]`
/// (first half) or `x[i]·cos[i] + x[i−h]·sin[i]` (second half): the op-by-op form's two float32
/// products and sum, so the results are bit-identical. Otherwise the op-by-op form is computed.
struct RotaryOperator: Operator {
    let axis: Int
    /// The Slices' bounds when all of them are constants (as they are once `ShapeFolding` has
    /// computed them): read once here instead of at every run.
    let constantBounds: (kept: SliceBounds, negated: SliceBounds)?

    /// One Slice's single-axis bounds (starts, ends, axes, steps), nil where not of that form.
    struct SliceBounds {
        let start: Int, end: Int, axis: Int, step: Int

        init?(_ bounds: [Tensor?]) throws {
            guard let s = bounds[0], let e = bounds[1], s.count == 1, e.count == 1 else { return nil }
            let axes = try bounds[2].map(intValues) ?? [0]
            let steps = try bounds[3].map(intValues) ?? [1]
            guard axes.count == 1, steps.count == 1 else { return nil }
            start = try intValues(s)[0]
            end = try intValues(e)[0]
            axis = axes[0]
            step = steps[0]
        }

        /// Whether these bounds select [start, end) of the last axis of size `dim` (start < end).
        func selects(start wanted: Int, end wantedEnd: Int, dim: Int, rank: Int) -> Bool {
            guard step == 1, (try? normalizeAxis(axis, rank: rank)) == rank - 1 else { return false }
            let (first, count) = sliceAxis(start: start, end: end, step: 1, dim: dim)
            return first == wanted && count == wantedEnd - wanted
        }
    }

    /// Rows of several sequences (`Session.runBatch`): x, cos and sin stacked one row per
    /// sequence (each its own position's cos and sin), every row rotated by `rotateHalfRow`
    /// against its own cos and sin row as it is alone (the broadcast path pairs them by index).
    var rowStacking: RowStacking { .elementwise }

    /// `inputNames`: the node's inputs ("" where omitted); bounds are read here when every given
    /// one is a constant.
    init(axis: Int, inputNames: [String] = [], constantInputs: [Int: Tensor] = [:]) {
        self.axis = axis
        let inputs = (3...10).map { constantInputs[$0] }
        let given = (3...10).filter { $0 < inputNames.count && !inputNames[$0].isEmpty }
        if inputNames.count == 11, given.allSatisfy({ constantInputs[$0] != nil }),
           let kept = try? SliceBounds(Array(inputs[0...3])), let negated = try? SliceBounds(Array(inputs[4...7])) {
            constantBounds = (kept, negated)
        } else {
            constantBounds = nil
        }
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        guard inputs.count == 11 else { throw OpError("expected 11 inputs (x, cos, sin, two Slices' bounds), got \(inputs.count)") }
        let x = try inputs.required(0), cos = try inputs.required(1), sin = try inputs.required(2)
        let bounds = try constantBounds
            ?? SliceBounds(Array(inputs[3...6])).flatMap { kept in try SliceBounds(Array(inputs[7...10])).map { (kept, $0) } }
        if let bounds, let out = try halves(x, cos, sin, kept: bounds.kept, negated: bounds.negated) {
            return [out]
        }
        return [try opByOp(inputs)]
    }

    /// The fused computation, or nil when the inputs are not the rotate-half layout it serves.
    private func halves(_ x: Tensor, _ cos: Tensor, _ sin: Tensor, kept: SliceBounds, negated: SliceBounds) throws -> Tensor? {
        guard x.dtype == .float, cos.dtype == .float, sin.dtype == .float, x.rank >= 1,
              cos.shape == sin.shape, cos.rank <= x.rank, cos.shape.last == x.shape.last,
              try normalizeAxis(axis, rank: x.rank) == x.rank - 1 else { return nil }
        let d = x.shape[x.rank - 1], h = d / 2
        guard d > 0, d % 2 == 0, kept.selects(start: 0, end: h, dim: d, rank: x.rank),
              negated.selects(start: h, end: d, dim: d, rank: x.rank) else { return nil }
        // cos and sin broadcast to x (x itself is not broadcast).
        let offset = x.rank - cos.rank
        for (i, c) in cos.shape.enumerated() where c != 1 && c != x.shape[offset + i] { return nil }

        let rows = x.count / d
        let out = Tensor(dtype: .float, shape: x.shape)
        let px = x.pointer(as: Float.self), pc = cos.pointer(as: Float.self), ps = sin.pointer(as: Float.self)
        let po = out.pointer(as: Float.self)
        if cos.count == d && rows * d <= 16384 {
            // One cos/sin row for every row of x (a decode step's position).
            for row in 0..<rows { rotateHalfRow(px + row * d, cos: pc, sin: ps, count: d, into: po + row * d) }
            return out
        }
        // Element strides of cos/sin over x's dimensions before the last (0 where broadcast).
        let outer = Array(x.shape.dropLast())
        let strides = Broadcast.strides(cos.shape, to: x.shape).dropLast().map { $0 }
        parallelFor(rows, minChunk: Swift.max(1, 16384 / d)) { range in
            var index = [Int](repeating: 0, count: outer.count)
            var rest = range.lowerBound
            for a in stride(from: outer.count - 1, through: 0, by: -1) {
                index[a] = rest % outer[a]
                rest /= outer[a]
            }
            for row in range {
                var c = 0
                for a in 0..<outer.count { c += index[a] * strides[a] }
                rotateHalfRow(px + row * d, cos: pc + c, sin: ps + c, count: d, into: po + row * d)
                _ = advance(&index, within: outer)
            }
        }
        return out
    }

    /// Slice, Slice, Neg, Concat, Mul, Mul, Add as the graph spelled them.
    private func opByOp(_ inputs: [Tensor?]) throws -> Tensor {
        let x = try inputs.required(0), cos = try inputs.required(1), sin = try inputs.required(2)
        let slice = SliceOperator(attributeStarts: nil, attributeEnds: nil, attributeAxes: nil)
        let kept = try slice.run([x] + Array(inputs[3...6]))[0]
        let negated = try UnaryOperator(function: .neg).run(try slice.run([x] + Array(inputs[7...10])))[0]
        let rotated = try ConcatOperator(axis: axis).run([negated, kept])[0]
        return try binaryArithmetic(AddKind.self, try binaryArithmetic(MulKind.self, x, cos),
                                    try binaryArithmetic(MulKind.self, rotated, sin))
    }
}
