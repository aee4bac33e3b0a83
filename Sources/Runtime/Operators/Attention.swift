import Kernels
import Synchronization

/// `qwen.swift` FusedAttention: the scaled dot-product attention that the optimum exports spell
/// out in a dozen ops (see `AttentionFusion`), computed without materialising the repeated keys
/// and values of grouped-query attention.
///
/// Inputs: `Q [B, H, S, D]`, `K [B, KVH, T, D]`, `V [B, KVH, T, D]` (float32 or float16; H a
/// multiple of KVH, query head h reads key/value head h / (H / KVH)), optional `scale` (a
/// scalar multiplying K, as the exports scale K by 1/sqrt(sqrt(D))), optional additive `mask`
/// broadcastable to `[B, H, S, T]`. Attribute `nan_to_zero`: the softmax's NaNs (a fully masked
/// row) become 0, as the exports' `Where(IsNaN(p), 0, p)` does. Output `[B, H, S, D]` in Q's
/// type. Computed in float32, like ONNX Runtime's CPU kernels for the unfused ops.
struct FusedAttentionOperator: Operator {
    let nanToZero: Bool
    /// K and V may be in-place KV-cache views (rows of a head `cacheCapacity · D` apart).
    var readsCacheViews: Bool { true }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] { try runEach([inputs])[0] }

    /// `run` for each input set; a batched run (`Session.runBatch`) passes every sequence's
    /// decode step at once. The units of all calls (a key/value head's group of query heads at
    /// one position) run as one parallel loop, each computed by the same kernel whatever else
    /// runs: so each sequence gets its own `run`'s floats, and a prompt position gets the same
    /// floats whether the prompt runs in one pass or in chunks of any size (`Call.runUnit`).
    func runEach(_ inputSets: [[Tensor?]]) throws -> [[Tensor]] {
        let calls = try inputSets.map(Call.init)
        var firstUnit = [0]
        for call in calls { firstUnit.append(firstUnit.last! + call.units) }
        let scoresCapacity = max(1, calls.map { $0.group * $0.t }.max() ?? 1)
        // A prompt's units differ in size (position i reads i + 1 keys of a causal mask): one
        // unit at a time, largest first (`Call.runUnit`'s order), claimed as threads come free.
        // Decode units are alike: equal contiguous shares.
        let prompt = calls.contains { $0.s > 1 }
        parallelFor(firstUnit.last!, chunksPerThread: prompt ? firstUnit.last! : 1) { range in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: scoresCapacity)
            defer { scores.deallocate() }
            var c = 0
            for unit in range {
                while unit >= firstUnit[c + 1] { c += 1 }
                calls[c].runUnit(unit - firstUnit[c], nanToZero: nanToZero, scores: scores)
            }
        }
        return calls.map { [narrowResult($0.out, to: $0.resultType)] }
    }

    /// `run` on the calling thread alone, its units in turn (for a caller that already spreads
    /// its own work over the threads: `GroupQueryAttentionOperator.runEach`). The same units, so
    /// the same floats.
    func runOnThisThread(_ inputs: [Tensor?]) throws -> Tensor {
        let call = try Call(inputs)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(1, call.group * call.t))
        defer { scores.deallocate() }
        for unit in 0..<call.units { call.runUnit(unit, nanToZero: nanToZero, scores: scores) }
        return narrowResult(call.out, to: call.resultType)
    }

    /// One call's operands, checked: Q, K, V and the mask as the kernels read them, the output
    /// (float32) the units write.
    private struct Call {
        let q: Tensor, k: Tensor, v: Tensor, mask: Tensor?, out: Tensor
        let resultType: DataType
        let b: Int, h: Int, s: Int, d: Int, kvh: Int, t: Int
        let scale: Float
        /// The mask's strides over [B, H, S, T] (0 where it broadcasts).
        let maskStrides: [Int]
        /// Elements between consecutive heads of K and V (more than T · D in a KV-cache view).
        let kHead: Int, vHead: Int

        init(_ inputs: [Tensor?]) throws {
            // K and V may be cache views (read with their head strides); Q, scale and mask are read as contiguous.
            let qIn = try inputs.required(0).contiguous(), k = try inputs.required(1), v = try inputs.required(2)
            for (name, t) in [("Q", qIn), ("K", k), ("V", v)] {
                guard t.dtype == .float || t.dtype == .float16 else { throw OpError("\(name) must be float32 or float16, got \(t.dtype)") }
                guard t.rank == 4 else { throw OpError("\(name) must have rank 4 [batch, heads, sequence, head size], got \(t.shape)") }
            }
            let (b, h, s, d) = (qIn.shape[0], qIn.shape[1], qIn.shape[2], qIn.shape[3])
            let (kvh, t) = (k.shape[1], k.shape[2])
            guard k.shape[0] == b, k.shape[3] == d, v.shape == k.shape else {
                throw OpError("K \(k.shape) and V \(v.shape) do not fit Q \(qIn.shape)")
            }
            guard kvh > 0, h % kvh == 0 else { throw OpError("\(h) query heads are not a multiple of \(kvh) key/value heads") }

            var scale: Float = 1
            if let c = inputs.optional(3)?.contiguous() {
                guard c.count == 1 else { throw OpError("scale must be a scalar, got \(c.shape)") }
                scale = try floatOperand(c).pointer(as: Float.self)[0]
            }
            // The mask, widened to float32, with broadcast strides over [B, H, S, T].
            var mask: Tensor?
            var maskStrides = [0, 0, 0, 0]
            if let m = inputs.optional(4)?.contiguous() {
                guard m.rank <= 4 else { throw OpError("mask has rank \(m.rank), expected at most 4") }
                let dims = Array(repeating: 1, count: 4 - m.rank) + m.shape
                let full = [b, h, s, t]
                var stride = 1
                for axis in (0..<4).reversed() {
                    guard dims[axis] == full[axis] || dims[axis] == 1 else {
                        throw OpError("mask \(m.shape) does not broadcast to [\(b), \(h), \(s), \(t)]")
                    }
                    maskStrides[axis] = dims[axis] == 1 ? 0 : stride
                    stride *= dims[axis]
                }
                guard maskStrides[3] == 1 || t == 1 else { throw OpError("mask \(m.shape) must span the key axis") }
                mask = try floatOperand(m)
            }
            (self.q, self.k, self.v, self.mask) = (try floatOperand(qIn), k, v, mask)
            out = Tensor(dtype: .float, shape: [b, h, s, d])
            resultType = qIn.dtype
            (self.b, self.h, self.s, self.d, self.kvh, self.t) = (b, h, s, d, kvh, t)
            (self.scale, self.maskStrides) = (scale, maskStrides)
            (kHead, vHead) = ((k.cacheCapacity ?? t) * d, (v.cacheCapacity ?? t) * d)
        }

        var group: Int { h / kvh }
        /// The units: a key/value head's group of query heads at one position (none without
        /// rows or with heads of size 0: the output is empty).
        var units: Int { d == 0 || group == 0 ? 0 : b * kvh * s }

        /// Unit `unit`, last positions first: the `group` query heads of a key/value head at one
        /// position read its keys and values together (one pass over the cache per group, not
        /// one per head), up to the last key their mask rows do not rule out (`keysNeeded`: a
        /// causal prompt's position i reads its first i + 1 keys). What it computes depends on
        /// that position's query rows, keys, values and mask row only, not on how many
        /// positions the call has: a prompt run in chunks gets the floats of one pass.
        /// `scores` holds `group · t` floats.
        func runUnit(_ unit: Int, nanToZero: Bool, scores: UnsafeMutablePointer<Float>) {
            let si = s - 1 - unit / (b * kvh), g = unit % kvh, bi = (unit / kvh) % b
            let row = (bi * h + g * group) * s + si
            let kBytes = k.elementsAreFloat16 ? 2 : 4, vBytes = v.elementsAreFloat16 ? 2 : 4
            let m = mask.map { UnsafePointer($0.pointer(as: Float.self)) + bi * maskStrides[0] + g * group * maskStrides[1] + si * maskStrides[2] }
            var count = m == nil ? t : 0
            if let m {
                // The group's rows share their mask row unless the mask differs by head.
                for r in 0..<(maskStrides[1] == 0 ? 1 : group) {
                    count = max(count, FusedAttentionOperator.keysNeeded(mask: m + r * maskStrides[1], keys: t))
                }
            }
            attentionGroup(query: q.pointer(as: Float.self) + row * d, queryStride: s * d, rows: group,
                           keys: UnsafeRawPointer(k.rawPointer) + (bi * kvh + g) * kHead * kBytes, kHalf: k.elementsAreFloat16,
                           values: UnsafeRawPointer(v.rawPointer) + (bi * kvh + g) * vHead * vBytes, vHalf: v.elementsAreFloat16,
                           count: count, depth: d, scale: scale, mask: m, maskStride: maskStrides[1], nanToZero: nanToZero,
                           scores: scores, into: out.pointer(as: Float.self) + row * d, outStride: s * d)
        }
    }

    /// A mask value at or below this is "dead": where the row also holds a live value (at or
    /// above `liveMask`), its key's softmax weight is exactly 0 (the exports' masks are 0 and
    /// float32's lowest, or -inf), so the key need not be read at all.
    static let deadMask: Float = -1e37
    static let liveMask: Float = -1e36

    /// How many leading keys a query row with additive mask row `m` (t values) reads: up to its
    /// last key that is not dead, when every key after it is dead and the row has a live key;
    /// all t otherwise. For a causal mask, position i of the prompt reads past + i + 1 keys.
    ///
    /// Skipping dead keys changes nothing for finite scores below 1e36 in magnitude: each skipped
    /// weight is exp(s_j + m_j − max) with s_j + m_j − max ≤ s_j − s_u − 9e36 (u the live key),
    /// which is 0 in float32, and the row's max and sum are those of the kept keys. A fully
    /// masked row keeps every key, so it gives the same NaN (or, behind the guard, 0) or uniform
    /// weights as before; a NaN in the mask stops the skipping at its key.
    static func keysNeeded(mask m: UnsafePointer<Float>, keys t: Int) -> Int {
        var last = t - 1
        while last >= 0 && m[last] <= deadMask { last -= 1 }
        if last < 0 || last == t - 1 { return t }
        for j in 0...last where m[j] >= liveMask { return last + 1 }
        return t
    }
}

func registerAttention(_ add: (String, String, ClosedRange<Int>, @escaping OperatorFactory) -> Void) {
    add("FusedAttention", PrivateOps.domain, 1...Int.max) { ctx in
        FusedAttentionOperator(nanToZero: ctx.node.intAttribute("nan_to_zero", default: 0) != 0)
    }
    add("AppendKV", PrivateOps.domain, 1...Int.max) { ctx in
        AppendKVOperator(roundsToHalf: ctx.node.intAttribute("float16", default: 1) != 0)
    }
    add(ShapeFolding.opType, PrivateOps.domain, 1...Int.max) { ctx in try ShapeProgramOperator(node: ctx.node) }
    add("RMSNorm", PrivateOps.domain, 1...Int.max) { _ in RMSNormOperator() }
    add("SiLUMul", PrivateOps.domain, 1...Int.max) { _ in SiLUMulOperator() }
    add(RotaryFusion.opType, PrivateOps.domain, 1...Int.max) { ctx in
        guard let axis = ctx.node.intAttribute("axis") else { throw ctx.node.invalid("attribute 'axis' is required") }
        return RotaryOperator(axis: axis, inputNames: ctx.node.inputs, constantInputs: ctx.constantInputs)
    }
}

/// `qwen.swift` SiLUMul(X, U) = `Mul(Mul(X, Sigmoid(X)), U)` in float32 (see `SiLUMulFusion`):
/// the same sigmoid and the same two products per element, in one threaded pass instead of three
/// single-threaded ones with two intermediate tensors. Operands of different shapes broadcast
/// through the op-by-op form.
struct SiLUMulOperator: Operator {
    /// Rows of several sequences: one pass over them all when every row is whole vectors of 8
    /// (each value then takes the vector path it takes alone), else row by row.
    var rowStacking: RowStacking { .elementwise }
    func runStacked(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0), u = try inputs.required(1)
        let rows = x.shape.first ?? 1
        guard x.shape == u.shape, rows > 1, (x.count / rows) % 8 != 0 else { return try run(inputs) }
        let out = Tensor(dtype: .float, shape: x.shape)
        let n = x.count / rows
        for r in 0..<rows {
            siluMul(x.pointer(as: Float.self) + r * n, u.pointer(as: Float.self) + r * n, into: out.pointer(as: Float.self) + r * n, count: n)
        }
        return [out]
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0), u = try inputs.required(1)
        guard x.dtype == .float, u.dtype == .float else { throw OpError("SiLUMul takes float32 X and U, got \(x.dtype), \(u.dtype)") }
        guard x.shape == u.shape else {
            let s = Tensor(dtype: .float, shape: x.shape)
            sigmoid(x.pointer(as: Float.self), into: s.pointer(as: Float.self), count: x.count)
            return [try binaryArithmetic(MulKind.self, try binaryArithmetic(MulKind.self, x, s), u)]
        }
        let out = Tensor(dtype: .float, shape: x.shape)
        let px = x.pointer(as: Float.self), pu = u.pointer(as: Float.self), po = out.pointer(as: Float.self)
        // From 8,192 values on (a batched decode step's rows) on the pool's threads.
        parallelFor(x.count, minChunk: 1 << 13, granularity: 256) { r in
            siluMul(px + r.lowerBound, pu + r.lowerBound, into: po + r.lowerBound, count: r.count)
        }
        return [out]
    }
}

/// `qwen.swift` AppendKV(past, new) → present: `Concat([past, new], axis 2)` in float32 with
/// every value rounded to float16 (as the exports' `Cast(past, float16)` → float16 Concat →
/// `Cast(float32)` computes it; see `CacheAppend`), or with attribute `float16 = 0` (the float32
/// exports' plain Concat) every value as it is. `past [B, H, P, D]` float32, `new [B, H, S, D]`
/// float16 or float32 (float32 only without rounding).
///
/// `present` is an in-place KV cache (`Tensor.cacheCapacity`): storage laid out
/// `[B, H, capacity, D]` with room after the P + S positions. When `past` is such a view and
/// nothing has been appended after it yet (its storage's `cacheLength` is P, claimed atomically),
/// the S new positions are written into that room and `present` is a longer view of the same
/// storage: one step of decoding copies one position, not the whole history. Otherwise (a past
/// from elsewhere, a full cache, a past that was already extended — say a run repeated from an
/// earlier cache) the history is copied once into fresh storage with room for about a quarter
/// more. A rounding cache stores its values as float16 (`Tensor.storesHalf`: they are float16
/// values, so this loses nothing, and attention reads half the bytes); rows already in a cache
/// were rounded when they were appended, so every way gives the same values.
struct AppendKVOperator: Operator {
    var readsCacheViews: Bool { true }
    /// Whether values are rounded to float16 (the float16 exports' cache); false: copied as they are.
    var roundsToHalf = true

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        // Only `past` may be a cache view; `new` is read as contiguous.
        let past = try inputs.required(0), new = try inputs.required(1).contiguous()
        guard past.dtype == .float else { throw OpError("past must be float32, got \(past.dtype)") }
        guard new.dtype == .float || (new.dtype == .float16 && roundsToHalf) else {
            throw OpError("new must be float32\(roundsToHalf ? " or float16" : "") like past, got \(new.dtype)")
        }
        guard past.rank == 4, new.rank == 4, past.shape[0] == new.shape[0], past.shape[1] == new.shape[1], past.shape[3] == new.shape[3] else {
            throw OpError("past \(past.shape) and new \(new.shape) must be [batch, heads, length, head size] alike")
        }
        let (b, h, p, s, d) = (past.shape[0], past.shape[1], past.shape[2], new.shape[2], past.shape[3])
        let (total, overflow) = p.addingReportingOverflow(s)
        guard !overflow, total <= Int32.max else { throw OpError("cache length \(p) + \(s) is too long") }
        let shape = [b, h, total, d], rows = b * h
        let half = roundsToHalf, elementSize = half ? 2 : 4
        let newHalf = new.elementsAreFloat16, pastHalf = past.elementsAreFloat16
        let newSize = newHalf ? 2 : 4, pastSize = pastHalf ? 2 : 4

        // In place: the room after `past` is free and ours once the length moves from P.
        if let capacity = past.cacheCapacity, total <= capacity, pastHalf == half,
           past.storage.cacheLength.compareExchange(expected: p, desired: total, ordering: .acquiringAndReleasing).exchanged {
            let base = past.rawPointer
            parallelFor(rows, minChunk: max(1, 65536 / max(s * d, 1))) { range in
                for r in range {
                    copyValues(new.rawPointer + r * s * d * newSize, float16: newHalf, count: s * d,
                               to: base + (r * capacity + p) * d * elementSize)
                }
            }
            return [Tensor(dtype: .float, cacheShape: shape, capacity: capacity, storage: past.storage, storesHalf: half)]
        }

        let capacity = AppendKVOperator.capacity(for: total)
        let storage = TensorStorage(byteCount: rows * capacity * d * elementSize, cacheLength: total)
        let out = Tensor(dtype: .float, cacheShape: shape, capacity: capacity, storage: storage, storesHalf: half)
        let pastStride = (past.cacheCapacity ?? p) * d
        parallelFor(rows, minChunk: max(1, 65536 / max(total * d, 1))) { range in
            for r in range {
                let dst = out.rawPointer + r * capacity * d * elementSize
                copyValues(past.rawPointer + r * pastStride * pastSize, float16: pastHalf, count: p * d, to: dst)
                copyValues(new.rawPointer + r * s * d * newSize, float16: newHalf, count: s * d, to: dst + p * d * elementSize)
            }
        }
        return [out]
    }

    /// Positions a fresh cache of `length` positions has room for: a quarter more, at least 256
    /// (so appends copy the history O(log n) times in all), in whole cache lines of positions.
    static func capacity(for length: Int) -> Int {
        (length + Swift.max(256, length / 4) + 15) / 16 * 16
    }

    /// `n` values from `src` (float16 when `from`, else float32) to `dst` in this cache's form
    /// (float16 when it rounds, rounding float32 values; else float32).
    private func copyValues(_ src: UnsafeRawPointer, float16 from: Bool, count n: Int, to dst: UnsafeMutableRawPointer) {
        switch (from, roundsToHalf) {
        case (true, true):
            dst.copyMemory(from: src, byteCount: n * 2)
        case (true, false):
            convertHalfToFloat(src.assumingMemoryBound(to: Float16.self), dst.assumingMemoryBound(to: Float.self), n)
        case (false, true):
            convertFloatToHalf(src.assumingMemoryBound(to: Float.self), dst.assumingMemoryBound(to: Float16.self), n)
        case (false, false):
            dst.copyMemory(from: src, byteCount: n * 4)
        }
    }
}

/// `qwen.swift` RMSNorm(X, W, ε): `W · (X · 1/√(mean(X², last axis) + ε))` in float32, with the
/// float operations of the exports' op-by-op form in their order (see `RMSNormFusion`).
struct RMSNormOperator: Operator {
    /// Rows of several sequences: every row normalised by the same loop as alone.
    var rowStacking: RowStacking { .firstInput }
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0), w = try inputs.required(1), e = try inputs.required(2)
        guard x.dtype == .float, w.dtype == .float, e.dtype == .float, e.count == 1 else {
            throw OpError("RMSNorm takes float32 X, W and a scalar ε, got \(x.dtype), \(w.dtype), \(e.dtype)\(e.shape)")
        }
        guard let n = x.shape.last, n > 0, w.count == n else { throw OpError("W has \(w.count) values for X \(x.shape)") }
        let eps = e.pointer(as: Float.self)[0]
        let out = Tensor(dtype: .float, shape: x.shape)
        let px = x.pointer(as: Float.self), pw = w.pointer(as: Float.self), po = out.pointer(as: Float.self)
        let rows = x.count / n
        parallelFor(rows, minChunk: max(1, 16384 / n)) { range in
            rmsNormRows(px + range.lowerBound * n, weight: pw, rows: range.count, count: n, epsilon: eps,
                        into: po + range.lowerBound * n)
        }
        return [out]
    }
}
