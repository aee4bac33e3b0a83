import Foundation
import Kernels

/// com.microsoft.GroupQueryAttention, the attention of onnxruntime-genai's model builder, with
/// ONNX Runtime's CPU semantics:
///
/// - inputs: `query [B, S, N·H]` (or packed `[B, S, (N + 2·KVN)·H]` with key and value omitted),
///   `key`/`value [B, S, KVN·H]`, `past_key`/`past_value [B, KVN, P, H]` (optional),
///   `seqlens_k [B]` int32 (each sequence's total length − 1), `total_sequence_length` int32,
///   `cos_cache`/`sin_cache [positions, R/2]` (with `do_rotary`);
/// - a first prompt is `S == total_sequence_length` (no past is read); otherwise sequence b's
///   past length is `seqlens_k[b] + 1 − S`, its new keys and values go after it, and token s
///   sits at position `past + s`, which rotary uses and which bounds what it sees (keys up to its
///   own position; with `local_window_size` w, only the last w + 1 of them);
/// - outputs: `[B, S, N·H]`, and the caches `present_key`/`present_value [B, KVN, max(T, P), H]`:
///   past rows, the new rows after them, zeros beyond (a past buffer longer than the total — the
///   shared-buffer form — keeps its length).
///
/// Scores are `scale · q·k` (default 1/√H), optionally soft-capped (`softcap · tanh(x / softcap)`),
/// softmax in float32 (`smooth_softmax`: one more logit of 0 in the denominator). float16 graphs
/// round the rotated queries and keys and the caches to float16, as ONNX Runtime stores them.
///
/// Decoding a batch of one with a past it produced, the caches grow in place (`Tensor.cacheCapacity`,
/// as `AppendKVOperator`): a step copies its own keys and values, not the history. The attention
/// itself is `FusedAttentionOperator` with a causal mask; soft-capping and smooth softmax take a
/// plain row-by-row path.
struct GroupQueryAttentionOperator: Operator {
    let heads: Int, kvHeads: Int
    let scale: Float
    let softcap: Float
    let localWindow: Int
    let doRotary: Bool, interleaved: Bool
    let smoothSoftmax: Bool
    var readsCacheViews: Bool { true }

    static func make(_ ctx: OperatorContext) throws -> GroupQueryAttentionOperator {
        let node = ctx.node
        guard let heads = node.intAttribute("num_heads"), let kvHeads = node.intAttribute("kv_num_heads"),
              heads > 0, kvHeads > 0, heads % kvHeads == 0 else {
            throw node.invalid("num_heads and kv_num_heads must be positive, num_heads a multiple of kv_num_heads")
        }
        for (i, what) in [(9, "position_ids"), (10, "attention_bias"), (11, "head_sink")]
        where i < node.inputs.count && !node.inputs[i].isEmpty {
            throw node.invalid("input \(i) (\(what)) is not supported")
        }
        if let q = node.stringAttribute("k_quant_type") ?? node.stringAttribute("v_quant_type"), q != "NONE" {
            throw node.invalid("quantized KV caches (\(q)) are not supported")
        }
        let softcap = node.floatAttribute("softcap", default: 0)
        guard softcap >= 0 else { throw node.invalid("softcap must be ≥ 0, got \(softcap)") }
        return GroupQueryAttentionOperator(heads: heads, kvHeads: kvHeads, scale: node.floatAttribute("scale", default: 0),
                                           softcap: softcap, localWindow: node.intAttribute("local_window_size", default: -1),
                                           doRotary: node.intAttribute("do_rotary", default: 0) != 0,
                                           interleaved: node.intAttribute("rotary_interleaved", default: 0) != 0,
                                           smoothSoftmax: node.intAttribute("smooth_softmax", default: 0) != 0)
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let step = try prepare(inputs)
        let out = softcap == 0 && !smoothSoftmax
            ? try FusedAttentionOperator(nanToZero: false).run(attentionInputs(step))[0]
            : try referenceAttention(step.q, step.presentKey.contiguous(), step.presentValue.contiguous(), past: step.past,
                                     keys: step.keys, s: step.s, h: step.h)
        return finish(step, attention: out)
    }

    /// A batched run's sequences (`Session.runBatch`). Decode steps (one token each): every
    /// sequence's whole call — `prepare`, its attention units, `finish` — is one task, the tasks
    /// spread over the threads, so that one sequence's preparation (serial, ~9 µs at the 0.5B)
    /// runs beside another's attention instead of before everyone's (Zen 3, 8 sequences at 128
    /// positions: the operator's ~70 µs of preparation had the other thread waiting). Otherwise
    /// each prepared as `run` does, then the attention of all of them as one
    /// `FusedAttentionOperator.runEach` (one parallel loop over every sequence's units). Both ways
    /// the units compute what each sequence's own call would: every result is `run`'s.
    func runEach(_ inputSets: [[Tensor?]]) throws -> [[Tensor]] {
        guard inputSets.count > 1, softcap == 0, !smoothSoftmax else { return try inputSets.map(run) }
        let attention = FusedAttentionOperator(nanToZero: false)
        if inputSets.allSatisfy({ ($0.first ?? nil).map { $0.rank == 3 && $0.shape[1] == 1 } ?? false }) {
            // Longest history first, the tasks claimed as threads come free (guided chunks
            // ending in single sequences): a server's sequences differ in length, and equal
            // halves of them left one thread waiting for the other.
            let order = inputSets.indices.sorted { Self.pastLength(inputSets[$0]) > Self.pastLength(inputSets[$1]) }
            var results = [Result<[Tensor], any Error>](repeating: .success([]), count: inputSets.count)
            results.withUnsafeMutableBufferPointer { results in
                parallelForGuided(inputSets.count, minChunk: 1) { range in
                    for i in range.map({ order[$0] }) {
                        results[i] = Result {
                            let step = try prepare(inputSets[i])
                            return finish(step, attention: try attention.runOnThisThread(attentionInputs(step)))
                        }
                    }
                }
            }
            return try results.map { try $0.get() }
        }
        let steps = try inputSets.map(prepare)
        let outs = try attention.runEach(steps.map(attentionInputs))
        return zip(steps, outs).map { finish($0, attention: $1[0]) }
    }

    /// The positions in a call's past key cache (0 without one): what its attention reads.
    private static func pastLength(_ inputs: [Tensor?]) -> Int {
        guard let past = inputs.optional(3), past.rank == 4 else { return 0 }
        return past.shape[2]
    }

    /// One call's queries (float32 BNSH, rotated), its present caches, and where each sequence's
    /// tokens sit.
    private struct Step {
        let q: Tensor, presentKey: Tensor, presentValue: Tensor
        let past: [Int], keys: [Int]
        let b: Int, s: Int, h: Int
        let dtype: DataType
    }

    /// Everything before the attention: the inputs checked, Q, K and V split out and rotated,
    /// the new keys and values appended to the caches.
    private func prepare(_ inputs: [Tensor?]) throws -> Step {
        let query = try inputs.required(0).contiguous()
        let key = inputs.optional(1)?.contiguous(), value = inputs.optional(2)?.contiguous()
        let pastKey = inputs.optional(3), pastValue = inputs.optional(4)
        let seqlensIn = try inputs.required(5), totalIn = try inputs.required(6)
        let dtype = query.dtype
        guard dtype == .float || dtype == .float16 else { throw OpError("query must be float32 or float16, got \(dtype)") }
        guard query.rank == 3 else { throw OpError("query must be [batch, sequence, hidden], got \(query.shape)") }
        let (b, s) = (query.shape[0], query.shape[1])
        let packed = key == nil
        guard packed == (value == nil) else { throw OpError("key and value must both be given, or both omitted (packed QKV)") }
        let h = query.shape[2] / (packed ? heads + 2 * kvHeads : heads)
        guard h > 0, query.shape[2] == h * (packed ? heads + 2 * kvHeads : heads) else {
            throw OpError("query's hidden size \(query.shape[2]) does not split into \(packed ? "\(heads) + 2·\(kvHeads)" : "\(heads)") heads")
        }
        if let key, let value {
            for (name, t) in [("key", key), ("value", value)] where t.dtype != dtype || t.shape != [b, s, kvHeads * h] {
                throw OpError("\(name) has \(t.dtype)\(t.shape), expected \(dtype)[\(b), \(s), \(kvHeads * h)]")
            }
        }
        guard (pastKey == nil) == (pastValue == nil) else { throw OpError("past_key and past_value must both be given or both omitted") }
        var pastLength = 0
        if let pastKey, let pastValue {
            for (name, t) in [("past_key", pastKey), ("past_value", pastValue)]
            where t.dtype != dtype || t.rank != 4 || t.shape[0] != b || t.shape[1] != kvHeads || t.shape[3] != h {
                throw OpError("\(name) has \(t.dtype)\(t.shape), expected \(dtype)[\(b), \(kvHeads), length, \(h)]")
            }
            guard pastKey.shape[2] == pastValue.shape[2] else { throw OpError("past_key \(pastKey.shape) and past_value \(pastValue.shape) differ in length") }
            pastLength = pastKey.shape[2]
        }
        guard seqlensIn.dtype == .int32, seqlensIn.count == b else { throw OpError("seqlens_k must be int32 [\(b)], got \(seqlensIn.dtype)\(seqlensIn.shape)") }
        guard totalIn.dtype == .int32, totalIn.count == 1 else { throw OpError("total_sequence_length must be one int32, got \(totalIn.dtype)\(totalIn.shape)") }
        let seqlens = try intValues(seqlensIn), total = Int(totalIn.contiguous().pointer(as: Int32.self)[0])
        let firstPrompt = s == total
        if !firstPrompt && s > 1 && b != 1 {
            throw OpError("a prompt after a past (sequence length \(s), total \(total)) needs batch size 1")
        }
        let presentLength = max(total, pastLength)
        // Each sequence's past length; its tokens then sit at positions past + s.
        var past = [Int](repeating: 0, count: b)
        for bi in 0..<b where !firstPrompt {
            past[bi] = seqlens[bi] + 1 - s
            guard past[bi] >= 0, past[bi] <= pastLength, past[bi] + s <= presentLength else {
                throw OpError("seqlens_k[\(bi)] = \(seqlens[bi]) does not fit \(s) new tokens after a past of \(pastLength) (total \(total))")
            }
        }
        guard s <= presentLength else { throw OpError("\(s) new tokens do not fit total_sequence_length \(total)") }
        // Keys each sequence has once this step's are appended.
        let keys = (0..<b).map { bi in seqlens[bi] + 1 }
        for bi in 0..<b where keys[bi] < 1 || keys[bi] > presentLength {
            throw OpError("seqlens_k[\(bi)] = \(seqlens[bi]) is outside [0, \(presentLength))")
        }

        // Q, K, V as float32 [B, heads, S, H] (BNSH), rotated; float16 graphs round K and Q back.
        let qkv = try floatOperand(query)
        let kIn = try key.map(floatOperand), vIn = try value.map(floatOperand)
        let q = Tensor(dtype: .float, shape: [b, heads, s, h])
        let kNew = Tensor(dtype: .float, shape: [b, kvHeads, s, h]), vNew = Tensor(dtype: .float, shape: [b, kvHeads, s, h])
        let rowStride = packed ? (heads + 2 * kvHeads) * h : heads * h
        let pq = qkv.pointer(as: Float.self)
        for bi in 0..<b {
            for si in 0..<s {
                let row = pq + (bi * s + si) * rowStride
                for n in 0..<heads { (q.pointer(as: Float.self) + ((bi * heads + n) * s + si) * h).update(from: row + n * h, count: h) }
                for n in 0..<kvHeads {
                    let dk = kNew.pointer(as: Float.self) + ((bi * kvHeads + n) * s + si) * h
                    let dv = vNew.pointer(as: Float.self) + ((bi * kvHeads + n) * s + si) * h
                    if packed {
                        dk.update(from: row + (heads + n) * h, count: h)
                        dv.update(from: row + (heads + kvHeads + n) * h, count: h)
                    } else {
                        dk.update(from: kIn!.pointer(as: Float.self) + (bi * s + si) * kvHeads * h + n * h, count: h)
                        dv.update(from: vIn!.pointer(as: Float.self) + (bi * s + si) * kvHeads * h + n * h, count: h)
                    }
                }
            }
        }
        if doRotary {
            guard let cosIn = inputs.optional(7), let sinIn = inputs.optional(8) else {
                throw OpError("do_rotary needs cos_cache and sin_cache")
            }
            let (cos, sin, rotaryDim) = try rotaryCaches(cosIn, sinIn, headSize: h)
            // ONNX Runtime's position ids: a first prompt counts from 0 in every sequence, later
            // tokens from the sequence's past length.
            let positions = (0..<(b * s)).map { i -> Int in
                let (bi, si) = (i / s, i % s)
                return firstPrompt ? si : past[bi] + si
            }
            for (t, n) in [(q, heads), (kNew, kvHeads)] {
                try rotateRows(t.pointer(as: Float.self), count: b * n * s, headSize: h, rotaryDim: rotaryDim, cos: cos, sin: sin,
                               interleaved: interleaved) { r in positions[(r / (n * s)) * s + r % s] }
            }
            if dtype == .float16 { roundToHalf(q) }
        }
        if dtype == .float16 { roundToHalf(kNew); roundToHalf(vNew) }

        let presentKey = try append(kNew, to: pastKey, past: past, s: s, presentLength: presentLength, dtype: dtype)
        let presentValue = try append(vNew, to: pastValue, past: past, s: s, presentLength: presentLength, dtype: dtype)

        return Step(q: q, presentKey: presentKey, presentValue: presentValue, past: past, keys: keys, b: b, s: s, h: h, dtype: dtype)
    }

    /// The outputs from the attention `out` ([B, N, S, H] float32) and the present caches.
    private func finish(_ step: Step, attention out: Tensor) -> [Tensor] {
        let (b, s, h) = (step.b, step.s, step.h)
        // [B, N, S, H] → [B, S, N·H]
        let y = Tensor(dtype: .float, shape: [b, s, heads * h])
        let po = out.pointer(as: Float.self), py = y.pointer(as: Float.self)
        for bi in 0..<b {
            for n in 0..<heads {
                for si in 0..<s {
                    (py + ((bi * s + si) * heads + n) * h).update(from: po + ((bi * heads + n) * s + si) * h, count: h)
                }
            }
        }
        return [narrowResult(y, to: step.dtype), step.presentKey, step.presentValue]
    }

    /// The score scale: the attribute, or 1/√H when it is 0 (absent).
    func effectiveScale(_ h: Int) -> Float { scale == 0 ? 1 / Float(h).squareRoot() : scale }

    /// The keys token `si` of a sequence with past `p` and `keys` keys in all sees: up to its own
    /// position (and no further than the sequence's keys: a first prompt's padding rows see them
    /// all); with `local_window_size` w, only the last w of them, its own included.
    @inline(__always)
    func window(past p: Int, keys: Int, token si: Int) -> (first: Int, end: Int) {
        let end = min(p + si + 1, keys)
        let first = localWindow > 0 ? max(0, p + si + 1 - localWindow) : 0
        return (min(first, end), end)
    }

    /// `FusedAttentionOperator`'s inputs for a step: Q and the present caches, the scale, and a
    /// causal (and windowed) mask where some query does not see every key.
    private func attentionInputs(_ step: Step) -> [Tensor?] {
        let (q, k, v, past, keys, s, h) = (step.q, step.presentKey, step.presentValue, step.past, step.keys, step.s, step.h)
        let b = q.shape[0], t = k.shape[2]
        // A mask only where some query does not see every key.
        var needsMask = false
        for bi in 0..<b {
            for si in 0..<s {
                let (first, end) = window(past: past[bi], keys: keys[bi], token: si)
                if first > 0 || end < t { needsMask = true }
            }
        }
        var inputs: [Tensor?] = [q, k, v, Tensor([effectiveScale(h)], shape: [])]
        if needsMask {
            let mask = Tensor(dtype: .float, shape: [b, 1, s, t])
            let pm = mask.pointer(as: Float.self)
            for bi in 0..<b {
                for si in 0..<s {
                    let (first, end) = window(past: past[bi], keys: keys[bi], token: si)
                    let row = pm + (bi * s + si) * t
                    for j in 0..<t { row[j] = j >= first && j < end ? 0 : -Float.greatestFiniteMagnitude }
                }
            }
            inputs.append(mask)
        }
        return inputs
    }

    /// Row by row: scores, soft cap, (smooth) softmax over the visible keys, weighted values.
    private func referenceAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, past: [Int], keys: [Int], s: Int, h: Int) throws -> Tensor {
        let b = q.shape[0], t = k.shape[2], group = heads / kvHeads
        let kf = try floatOperand(k), vf = try floatOperand(v)
        let out = Tensor.zeros(.float, shape: [b, heads, s, h])
        let pq = q.pointer(as: Float.self), pk = kf.pointer(as: Float.self), pv = vf.pointer(as: Float.self)
        let po = out.pointer(as: Float.self)
        let alpha = effectiveScale(h)
        // The visible keys' scores, then (smooth softmax) one more logit of 0: the softmax over
        // both is the smooth softmax of the scores.
        var scores = [Float](repeating: 0, count: t + 1)
        for bi in 0..<b {
            for n in 0..<heads {
                let kv = bi * kvHeads + n / group
                for si in 0..<s {
                    let (first, end) = window(past: past[bi], keys: keys[bi], token: si)
                    let qrow = pq + ((bi * heads + n) * s + si) * h
                    for j in first..<end {
                        var dot: Float = 0
                        for d in 0..<h { dot += qrow[d] * pk[(kv * t + j) * h + d] }
                        var x = dot * alpha
                        if softcap > 0 { x = softcap * tanhf(x / softcap) }
                        scores[j - first] = x
                    }
                    let count = end - first
                    scores[count] = 0
                    scores.withUnsafeMutableBufferPointer {
                        maskedSoftmaxRow($0.baseAddress!, mask: nil, count: count + (smoothSoftmax ? 1 : 0), nanToZero: false)
                    }
                    let orow = po + ((bi * heads + n) * s + si) * h
                    for j in first..<end {
                        let p = scores[j - first]
                        for d in 0..<h { orow[d] += p * pv[(kv * t + j) * h + d] }
                    }
                }
            }
        }
        return out
    }

    /// `present`: the past rows of each sequence, then its S new rows (float32 BNSH `new`, in the
    /// cache's type), zeros after, `presentLength` rows in all. A batch of one whose past is a
    /// cache this operator wrote, with nothing appended after it yet, grows in place.
    private func append(_ new: Tensor, to pastIn: Tensor?, past: [Int], s: Int, presentLength: Int, dtype: DataType) throws -> Tensor {
        let (b, n, h) = (new.shape[0], new.shape[1], new.shape[3])
        let elementSize = dtype == .float16 ? 2 : 4
        let pastLength = pastIn?.shape[2] ?? 0
        func write(_ bi: Int, _ head: Int, into dst: UnsafeMutableRawPointer) {
            let src = new.pointer(as: Float.self) + ((bi * n + head) * s) * h
            if dtype == .float16 {
                convertFloatToHalf(src, dst.assumingMemoryBound(to: Float16.self), s * h)
            } else {
                dst.assumingMemoryBound(to: Float.self).update(from: src, count: s * h)
            }
        }
        // In place: batch 1, the past is the whole history, and the room after it is ours.
        if b == 1, let pastIn, past[0] == pastLength, presentLength == pastLength + s, let capacity = pastIn.cacheCapacity,
           presentLength <= capacity,
           pastIn.storage.cacheLength.compareExchange(expected: pastLength, desired: presentLength, ordering: .acquiringAndReleasing).exchanged {
            for head in 0..<n { write(0, head, into: pastIn.rawPointer + (head * capacity + pastLength) * h * elementSize) }
            return Tensor(dtype: dtype, cacheShape: [1, n, presentLength, h], capacity: capacity, storage: pastIn.storage)
        }
        let growing = b == 1 && past[0] == pastLength && presentLength == pastLength + s
        let capacity = growing ? AppendKVOperator.capacity(for: presentLength) : presentLength
        let storage = TensorStorage(byteCount: b * n * capacity * h * elementSize, cacheLength: growing ? presentLength : nil)
        let out = growing ? Tensor(dtype: dtype, cacheShape: [b, n, presentLength, h], capacity: capacity, storage: storage)
                          : Tensor(dtype: dtype, shape: [b, n, presentLength, h], storage: storage)
        let headBytes = capacity * h * elementSize, rowBytes = h * elementSize
        let pastHead = (pastIn?.cacheCapacity ?? pastLength) * rowBytes
        for bi in 0..<b {
            for head in 0..<n {
                let dst = storage.data + (bi * n + head) * headBytes
                if let pastIn, past[bi] > 0 {
                    dst.copyMemory(from: pastIn.rawPointer + (bi * n + head) * pastHead, byteCount: past[bi] * rowBytes)
                }
                write(bi, head, into: dst + past[bi] * rowBytes)
                let used = (past[bi] + s) * rowBytes
                if !growing { (dst + used).initializeMemory(as: UInt8.self, repeating: 0, count: presentLength * rowBytes - used) }
            }
        }
        return out
    }

    private func roundToHalf(_ t: Tensor) {
        let p = t.pointer(as: Float.self)
        Kernels.roundToHalf(p, into: p, count: t.count)
    }
}

func registerGroupQueryAttention(_ add: (String, String, ClosedRange<Int>, @escaping OperatorFactory) -> Void) {
    add("GroupQueryAttention", "com.microsoft", 1...Int.max) { ctx in try GroupQueryAttentionOperator.make(ctx) }
}
