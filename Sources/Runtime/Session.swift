import ONNX
import Kernels

/// When MatMulNBits multiplies int8-quantized activations (per block of 32, one scale each) by
/// its 4-bit weights with integer products, instead of float32 activations.
public enum Int8Activations: String, Sendable, CaseIterable {
    /// Never: float32 activations everywhere (numerically like ONNX Runtime's default).
    case never
    /// Where the node asks for it with `accuracy_level = 4`, as ONNX Runtime does (the default).
    case accuracyLevel4
    /// In every MatMulNBits the int8 kernels serve: faster, less accurate (see docs/performance.md).
    case always
}

/// How MatMulNBits takes its float activations in single-row products (decode steps), where int8
/// activations do not apply.
public enum DecodeActivations: String, Sendable, CaseIterable {
    /// int16 in float16 MatMulNBits (the q4f16 exports, whose graphs round every MatMulNBits
    /// result to float16), float32 in float32 ones (q4 exports: their results stay float32).
    case automatic
    /// float32, as ONNX Runtime's default MatMulNBits computes: one AND, convert and FMA per 8
    /// weights, compute-bound on AVX2.
    case float32
    /// int16 per block of 32 (scale max|a| / 32767, round to nearest even) in every MatMulNBits
    /// with repacked weights: integer products, about half the instructions per weight. Each
    /// activation is at most 2^-16 of its block's largest off, far below a float16 rounding
    /// (2^-11); accuracy on the real model in docs/performance.md.
    case int16
}

/// Options for planning a session.
public struct SessionOptions: Sendable {
    /// The graph rewrites planning runs (`GraphPass`: fusions, constant and shape folding, common
    /// subexpressions), all by default; none runs the graph op by op as the file spells it.
    public var passes = GraphPass.all
    /// How float16 ops are computed (default: as ONNX Runtime's CPU provider does).
    public var float16Numerics = Float16Numerics.onnxRuntime
    /// Compute this output (a decoder's `logits`) for the last sequence position only, by slicing
    /// the LM head's input (see `LastPositionLogits`). For generation; nil keeps the graph's shape.
    public var lastPositionOnlyOutput: String?
    /// Repack constant 4-bit weights at load into the layout the decode GEMV streams through
    /// (`PackedQ4Matrix`: one sequential read, no shuffles). Results unchanged; costs a copy of
    /// the weights at load, and the file's pages are released in exchange.
    public var prepackWeights = true
    /// A directory where repacked weights are kept between loads (`PackedWeightCache`), so that
    /// later loads of the same model files map them instead of packing again; created when
    /// needed. Nil (the default): pack at every load, write nothing.
    public var packedWeightCacheDirectory: String?
    /// The cache file is written only when at least this many bytes were packed afresh (small
    /// models pack faster than they would load from a file).
    public var packedWeightCacheMinimumBytes = 16 << 20
    /// Where MatMulNBits uses int8 activations: the repacked kernels', or where they do not serve
    /// a matrix (no `prepackWeights`, no SIMD level), the file layout's integer products.
    public var int8Activations = Int8Activations.accuracyLevel4
    /// How the other single-row MatMulNBits products take their activations (only with repacked
    /// weights).
    public var decodeActivations = DecodeActivations.automatic
    /// The threads the session's parallel loops run on (planning and every run); nil: the
    /// process's `KernelPool.shared`.
    public var kernelPool: KernelPool?

    public init() {}
}

/// A planned graph: operators built once, values held in numbered slots, each intermediate
/// released right after its last use. `run` may be called concurrently from several threads:
/// the plan is immutable and each run has its own slots.
public final class Session: @unchecked Sendable {
    public let graph: Graph

    /// One node as `run` executes it. Its slot lists are ranges of `slotLists`, so that the loop
    /// over ~2,000 steps per decode token reads them in place instead of retaining arrays.
    struct Step {
        let op: any Operator
        /// Slot per node input (-1 for an omitted optional input, `Session.constantSlot(_:)` for a
        /// constant), in `slotLists`.
        let inputs: Range<Int>
        /// Slot per node output (-1 for an omitted optional output), in `slotLists`.
        let outputs: Range<Int>
        /// Slots whose last reader is this step (released after it runs), in `slotLists`.
        let releases: Range<Int>
        /// `op.readsCacheViews`: KV-cache views reach it as they are, not as contiguous copies.
        let readsCacheViews: Bool
    }

    let steps: [Step]
    let slotLists: [Int]
    /// Slots of the values a run computes or is fed: 0 ..< slotCount. Constants have slots of
    /// their own (`constantSlot(_:)`, negative), so that each run's array of values, allocated
    /// and released every decode step (and per sequence in a batch), is not ~4 times longer for
    /// the graph's thousands of constants.
    let slotCount: Int
    /// The value each slot holds (for the plan dump).
    let slotNames: [String]
    /// The name of each constant, by `constantIndex(_:)`.
    let constantNames: [String]
    /// What each pass that ran rewrote (replacements or nodes removed), in pipeline order.
    public let passRewrites: [(pass: GraphPass, rewrites: Int)]
    /// The constants by `constantIndex(_:)`, read in place by every run: a run's own values
    /// (`initialValues`) hold only the feeds and what the nodes compute, so that a decode step
    /// does not retain and release each of the graph's hundreds of constants.
    let constants: [Tensor?]

    /// The slot of constant `index`: -2, -3, … (-1 is an omitted input).
    @inline(__always) static func constantSlot(_ index: Int) -> Int { -2 - index }
    /// The index into `constants` of a constant's slot (≤ -2).
    @inline(__always) static func constantIndex(_ slot: Int) -> Int { -2 - slot }
    let inputSlots: [String: Int]
    let outputSlots: [(name: String, slot: Int)]
    /// Named dimensions (`dim_param`) that several inputs declare, with where each does: feeds
    /// must agree on them (`ShapeFolding` computes with one size per name).
    let sharedDimensions: [(parameter: String, uses: [(slot: Int, input: String, axis: Int)])]
    /// The packed-weight cache whose file the operators' weights may live in.
    let weightCache: PackedWeightCache?
    /// The threads its parallel loops run on (`SessionOptions.kernelPool`).
    public let kernelPool: KernelPool

    /// Loads and plans the model at `path`.
    public convenience init(path: String, options: SessionOptions = SessionOptions()) throws {
        let start = monotonicSeconds()
        let graph = try Graph(model: ONNXModel(path: path))
        if Profiler.isEnabled { Profiler.shared.recordPhase("read the model and graph", monotonicSeconds() - start) }
        try self.init(graph: graph, options: options)
    }

    public init(graph original: Graph, options: SessionOptions = SessionOptions()) throws {
        BuildTarget.warnOnce()
        let pool = options.kernelPool ?? .shared
        kernelPool = pool
        let poolScope = pool.enter()
        defer { poolScope.end() }
        var phaseStart = monotonicSeconds()
        func phase(_ name: String) {
            guard Profiler.isEnabled else { return }
            let now = monotonicSeconds()
            Profiler.shared.recordPhase(name, now - phaseStart)
            phaseStart = now
        }
        if let error = GraphPass.validate(options.passes) { throw RuntimeError.invalidGraph("SessionOptions.passes: \(error)") }
        var graph = original
        if let output = options.lastPositionOnlyOutput {
            LastPositionLogits.run(&graph, output: output)
        }
        // The passes in pipeline order, float16 numerics after the cache passes (it rounds what
        // they leave, and the MLP fusions match the float32 ops it leaves).
        var rewrites: [(pass: GraphPass, rewrites: Int)] = []
        for pass in GraphPass.allCases {
            if pass == .siluMul && options.float16Numerics == .onnxRuntime {
                Float16Precision.run(&graph)
                phase("graph pass: float16 numerics")
            }
            guard options.passes.contains(pass) else { continue }
            rewrites.append((pass, try pass.run(&graph)))
            phase("graph pass: \(pass)")
        }
        passRewrites = rewrites
        self.graph = graph

        // Inputs first: a declared input that also has an initializer is fed (every input must
        // be), so its name is a value's.
        var slotOf: [String: Int] = [:]
        var next = 0
        func slot(_ name: String) -> Int {
            if let s = slotOf[name] { return s }
            slotOf[name] = next
            next += 1
            return next - 1
        }
        var inputSlots: [String: Int] = [:]
        for spec in graph.inputs { inputSlots[spec.name] = slot(spec.name) }
        var constantNames: [String] = [], constantTensors: [Tensor?] = []
        for (name, t) in graph.constants where slotOf[name] == nil {
            slotOf[name] = Session.constantSlot(constantNames.count)
            constantNames.append(name)
            constantTensors.append(t)
        }
        var parameterUses: [String: [(slot: Int, input: String, axis: Int)]] = [:]
        var parameterOrder: [String] = []
        for spec in graph.inputs {
            for (axis, d) in (spec.shape ?? []).enumerated() {
                guard case .param(let p) = d, !p.isEmpty else { continue }
                if parameterUses[p] == nil { parameterOrder.append(p) }
                parameterUses[p, default: []].append((inputSlots[spec.name]!, spec.name, axis))
            }
        }
        sharedDimensions = parameterOrder.filter { parameterUses[$0]!.count > 1 }.map { ($0, parameterUses[$0]!) }

        var cache: PackedWeightCache?
        if options.prepackWeights, let directory = options.packedWeightCacheDirectory, let model = graph.model {
            cache = PackedWeightCache(directory: directory, model: model, minimumBytes: options.packedWeightCacheMinimumBytes)
        }
        var ops: [any Operator] = []
        ops.reserveCapacity(graph.nodes.count)
        for node in graph.nodes {
            ops.append(try OperatorRegistry.make(node, opsets: graph.opsets, constants: graph.constants, model: graph.model,
                                                 prepackWeights: options.prepackWeights, weightCache: cache,
                                                 int8Activations: options.int8Activations,
                                                 decodeActivations: options.decodeActivations))
        }
        phase("operators (weights repacked or mapped from the cache)")
        if let cache, cache.persist() { phase("packed-weight cache written") }
        weightCache = cache
        // Last reader of each slot, so intermediates can be released early.
        var lastUse: [Int: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for name in node.inputs where !name.isEmpty { lastUse[slot(name)] = i }
            for name in node.outputs where !name.isEmpty { _ = slot(name) }
        }
        let outputs = graph.outputs.map { (name: $0.name, slot: slot($0.name)) }
        let pinned = Set(outputs.map(\.slot))
        var releases = [[Int]](repeating: [], count: graph.nodes.count)
        for (s, i) in lastUse where s >= 0 && !pinned.contains(s) { releases[i].append(s) }
        for i in releases.indices { releases[i].sort() }   // one order every time (the plan dump)

        var slotLists: [Int] = []
        func list(_ slots: [Int]) -> Range<Int> {
            slotLists += slots
            return (slotLists.count - slots.count)..<slotLists.count
        }
        steps = graph.nodes.enumerated().map { i, node in
            Step(op: ops[i],
                 inputs: list(node.inputs.map { $0.isEmpty ? -1 : slot($0) }),
                 outputs: list(node.outputs.map { $0.isEmpty ? -1 : slot($0) }),
                 releases: list(releases[i]), readsCacheViews: ops[i].readsCacheViews)
        }
        self.slotLists = slotLists
        slotCount = next
        var names = [String](repeating: "", count: next)
        for (name, s) in slotOf where s >= 0 { names[s] = name }
        slotNames = names
        self.constantNames = constantNames
        constants = constantTensors
        self.inputSlots = inputSlots
        outputSlots = outputs
    }

    /// Throws ``ONNXError/fileChanged(path:reason:)`` when a file the weights are read from (the
    /// model, its external data, the packed-weight cache) was truncated or rewritten in place
    /// since loading. One `fstat` per file; call before a run.
    public func checkFilesUnchanged() throws {
        try graph.model?.checkFilesUnchanged()
        try weightCache?.checkUnchanged()
    }

    /// The planned graph as text (`qwen-run graph --dump-plan`): the passes and what they
    /// rewrote, then per node in run order its op (private ops as `qwen.swift.Op`), name, inputs
    /// and outputs, how it runs when its operator says (the kernels of the products), and the
    /// values released after it (the last reader of an intermediate frees it).
    public func planDescription() -> String {
        var lines = ["\(steps.count) nodes, \(graph.constants.count) constants, \(slotCount) values"]
        lines.append("passes: " + (passRewrites.isEmpty ? "none"
            : passRewrites.map { "\($0.pass) (\($0.rewrites))" }.joined(separator: ", ")))
        slotLists.withUnsafeBufferPointer { slots in
            for (i, step) in steps.enumerated() {
                let node = graph.nodes[i]
                let op = node.domain.isEmpty ? node.opType : "\(node.domain).\(node.opType)"
                func names(_ range: Range<Int>) -> String {
                    slots[range].map { $0 >= 0 ? slotNames[$0] : $0 == -1 ? "-" : constantNames[Session.constantIndex($0)] }
                        .joined(separator: ", ")
                }
                var line = "\(i) \(op) \"\(node.name)\" (\(names(step.inputs))) -> (\(names(step.outputs)))"
                if let plan = step.op.plan { line += " [\(plan)]" }
                if !step.releases.isEmpty { line += " frees \(names(step.releases))" }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Declared graph inputs (initializers excluded).
    public var inputs: [ValueSpec] { graph.inputs }
    public var outputs: [ValueSpec] { graph.outputs }

    /// Runs the graph on `feeds` (one tensor per declared input) and returns every graph output.
    ///
    /// With `keepingCacheViews`, outputs that are in-place KV caches (`Tensor.cacheCapacity`,
    /// written by `AppendKV`) are returned as such, to be fed back as the next run's past: the
    /// next step then appends in place instead of copying the history. Without, every output is
    /// contiguous.
    ///
    /// `progress`, when given, is called after each node with the number of nodes run and the
    /// total (on the calling thread; keep it cheap): how far a long run has got.
    public func run(_ feeds: [String: Tensor], keepingCacheViews: Bool = false,
                    progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> [String: Tensor] {
        let poolScope = kernelPool.enter()
        defer { poolScope.end() }
        var values = try initialValues(feeds)
        var args = [Tensor?]()
        try steps.withUnsafeBufferPointer { steps in
            try slotLists.withUnsafeBufferPointer { slots in
                try constants.withUnsafeBufferPointer { constants in
                    for index in steps.indices {
                        try runStep(index, steps, slots, constants, &values, &args)
                        progress?(index + 1, steps.count)
                    }
                }
            }
        }
        return outputs(values, keepingCacheViews: keepingCacheViews)
    }

    /// Runs the graph for several sequences at once, one feed set each (e.g. one decode step of
    /// every sequence a server is generating), and returns each one's outputs: exactly what `run`
    /// returns for that feed set alone.
    ///
    /// A node whose operator stacks rows (`Operator.rowStacking`: the weight-bound products, norms,
    /// elementwise arithmetic), and whose inputs that differ between sequences are single rows of
    /// one shape (first axis 1),
    /// runs once on the rows stacked along the first axis, and its outputs are split back; every
    /// other node (attention against each sequence's own KV cache, shape arithmetic) runs per
    /// sequence. The stacked operators compute each row as they compute it alone, so each
    /// sequence's results are bit for bit those of its own run.
    public func runBatch(_ feedSets: [[String: Tensor]], keepingCacheViews: Bool = false) throws -> [[String: Tensor]] {
        guard feedSets.count > 1 else { return try feedSets.map { try run($0, keepingCacheViews: keepingCacheViews) } }
        let poolScope = kernelPool.enter()
        defer { poolScope.end() }
        var batch = BatchValues(perSequence: try feedSets.map(initialValues), slotCount: slotCount)
        var argSets = [[Tensor?]](repeating: [], count: feedSets.count)
        try steps.withUnsafeBufferPointer { steps in
            try slotLists.withUnsafeBufferPointer { slots in
                try constants.withUnsafeBufferPointer { constants in
                    for index in steps.indices {
                        if steps[index].op.rowStacking != .none, try runStacked(index, steps, slots, constants, &batch) { continue }
                        for s in slots[steps[index].inputs] where s >= 0 { batch.split(s) }
                        try runStepEach(index, steps, slots, constants, &batch, &argSets)
                        for s in slots[steps[index].releases] { batch.stacked[s] = nil }
                    }
                }
            }
        }
        for (_, slot) in outputSlots where slot >= 0 { batch.split(slot) }
        return batch.perSequence.map { outputs($0, keepingCacheViews: keepingCacheViews) }
    }

    /// The values of a batched run: each sequence's slots, and slots held stacked (one row per
    /// sequence along the first axis) between stacked nodes, split only when a per-sequence node
    /// or the outputs need them.
    struct BatchValues {
        var perSequence: [[Tensor?]]
        var stacked: [Tensor?]

        init(perSequence: [[Tensor?]], slotCount: Int) {
            self.perSequence = perSequence
            stacked = [Tensor?](repeating: nil, count: slotCount)
        }

        /// Gives each sequence its row of a stacked slot, once: a view of that row, no copy
        /// (operators never write into their inputs; the logits alone are 600 KB a row), which
        /// keeps the stacked tensor's storage alive.
        mutating func split(_ slot: Int) {
            guard let t = stacked[slot], perSequence[0][slot] == nil, let size = t.dtype.storageSize else { return }
            let whole = t.contiguous(), n = perSequence.count
            let shape = [1] + whole.shape.dropFirst(), rowBytes = whole.count / n * size
            for i in 0..<n {
                let row = TensorStorage(borrowing: whole.rawPointer + i * rowBytes, byteCount: rowBytes, owner: whole.storage)
                perSequence[i][slot] = Tensor(dtype: whole.dtype, shape: shape, storage: row)
            }
        }
    }

    /// The value slots for a run: the checked feeds (a slot without a value of the run's own
    /// reads `constants`).
    private func initialValues(_ feeds: [String: Tensor]) throws -> [Tensor?] {
        var values = [Tensor?](repeating: nil, count: slotCount)
        for (name, t) in feeds {
            guard let slot = inputSlots[name] else {
                throw RuntimeError.invalidFeed(name: name, reason: "the graph has no such input (inputs: \(graph.inputs.map(\.name).joined(separator: ", ")))")
            }
            values[slot] = t
        }
        for spec in graph.inputs {
            guard let t = feeds[spec.name] else {
                throw RuntimeError.invalidFeed(name: spec.name, reason: "missing (declared \(spec))")
            }
            try Session.check(t, against: spec)
        }
        for (parameter, uses) in sharedDimensions {
            let first = uses[0], size = values[first.slot]!.shape[first.axis]
            for use in uses.dropFirst() where values[use.slot]!.shape[use.axis] != size {
                throw RuntimeError.invalidFeed(name: use.input, reason: "dimension \(use.axis) ('\(parameter)') is \(values[use.slot]!.shape[use.axis]), but '\(first.input)' has \(size) there: inputs declaring the same dimension name must agree")
            }
        }
        return values
    }

    private func outputs(_ values: [Tensor?], keepingCacheViews: Bool) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (name, slot) in outputSlots {
            let value = slot >= 0 ? values[slot] : constants[Session.constantIndex(slot)]
            result[name] = keepingCacheViews ? value : value?.contiguous()
        }
        return result
    }

    /// Each tensor's ``Tensor/lastRow``, copied out on this session's threads (a batched
    /// step's logits: 600 KB a sequence at the 0.5B's vocabulary).
    public func lastRows(of tensors: [Tensor]) -> [[Float]] {
        let poolScope = kernelPool.enter()
        defer { poolScope.end() }
        var rows = [[Float]](repeating: [], count: tensors.count)
        rows.withUnsafeMutableBufferPointer { rows in
            parallelFor(tensors.count) { range in
                for i in range { rows[i] = tensors[i].lastRow }
            }
        }
        return rows
    }

    /// Whether `tensors` are all present, int64, of one shape, at most 16 values, and equal.
    static func equalSmallIntegers(_ tensors: [Tensor?]) -> Bool {
        guard let first = tensors.first ?? nil, first.dtype == .int64, first.count <= 16, first.isContiguous else { return false }
        let bytes = first.count * 8
        return tensors.allSatisfy { t in
            guard let t, t.dtype == .int64, t.shape == first.shape, t.isContiguous else { return false }
            return UnsafeRawBufferPointer(start: t.rawPointer, count: bytes).elementsEqual(UnsafeRawBufferPointer(start: first.rawPointer, count: bytes))
        }
    }

    /// Step `index` once for all sequences on their stacked rows (see `runBatch`); false, with
    /// nothing run, when an input that differs between sequences is not a single row of the
    /// shape and type every sequence has there (or, as the operator's `RowStacking` allows, one
    /// value per sequence, or a lower rank that broadcasting pairs with its own row).
    private func runStacked(_ index: Int, _ steps: UnsafeBufferPointer<Step>, _ slots: UnsafeBufferPointer<Int>,
                            _ constants: UnsafeBufferPointer<Tensor?>, _ batch: inout BatchValues) throws -> Bool {
        let n = batch.perSequence.count, stacking = steps[index].op.rowStacking
        let inputs = slots[steps[index].inputs]
        let valuePositions: [Int]
        if case .firstInputAndValues(let positions) = stacking { valuePositions = positions } else { valuePositions = [] }
        let anyPosition = stacking == .elementwise || stacking == .broadcasting
        // With `.broadcasting`, the rank the rows stack at: the highest of the inputs that differ.
        var broadcastRank = 0
        if stacking == .broadcasting {
            for s in inputs where s >= 0 {
                if let t = batch.stacked[s] { broadcastRank = max(broadcastRank, t.rank) }
                else if let t = batch.perSequence[0][s] { broadcastRank = max(broadcastRank, t.rank) }
            }
        }
        var args = [Tensor?]()
        var stackedRank: Int?, sharedShapes: [[Int]] = []
        for (position, s) in inputs.enumerated() {
            guard s >= 0 else {
                // An omitted input, or a constant (a weight): passed once.
                guard s != -1, let constant = constants[Session.constantIndex(s)] else { args.append(nil); continue }
                args.append(constant.isContiguous ? constant : constant.contiguous())
                sharedShapes.append(constant.shape)
                continue
            }
            let mayStack = position == 0 || anyPosition
            // Already stacked by an earlier node.
            if let t = batch.stacked[s] {
                guard mayStack, stackedRank == nil || stackedRank == t.rank else { return false }
                stackedRank = t.rank
                args.append(t.isContiguous ? t : t.contiguous())
                continue
            }
            let values = batch.perSequence
            guard let first = values[0][s] else { args.append(nil); continue }
            // The same tensor in every sequence (a shared input), or a few equal integers each
            // sequence computed for itself (a shape for Reshape, from its own ShapeProgram):
            // passed once.
            if values.allSatisfy({ $0[s]?.storage === first.storage && $0[s]?.shape == first.shape })
                || (first.dtype == .int64 && Session.equalSmallIntegers(values.map { $0[s] })) {
                args.append(first.isContiguous ? first : first.contiguous())
                sharedShapes.append(first.shape)
                continue
            }
            guard let size = first.dtype.storageSize,
                  values.allSatisfy({ $0[s]?.shape == first.shape && $0[s]?.dtype == first.dtype }) else { return false }
            // One value per sequence, where the operator takes them: a 1-D tensor of n values.
            if valuePositions.contains(position) {
                guard first.count == 1 else { return false }
                let stacked = Tensor(dtype: first.dtype, shape: [n])
                for i in 0..<n { (stacked.rawPointer + i * size).copyMemory(from: values[i][s]!.rawPointer, byteCount: size) }
                args.append(stacked)
                continue
            }
            // A lower rank than the stacked rows', broadcast: leading axes of 1 first.
            var shape = first.shape
            if stacking == .broadcasting, shape.count < broadcastRank {
                shape = [Int](repeating: 1, count: broadcastRank - shape.count) + shape
            }
            guard mayStack, stackedRank == nil || stackedRank == shape.count, shape.count >= 1, shape[0] == 1 else { return false }
            stackedRank = shape.count
            let rowBytes = first.count * size
            let stacked = Tensor(dtype: first.dtype, shape: [n] + shape.dropFirst())
            for i in 0..<n {
                let row = values[i][s]!.contiguous()
                (stacked.rawPointer + i * rowBytes).copyMemory(from: row.rawPointer, byteCount: rowBytes)
            }
            args.append(stacked)
        }
        // Nothing differs between the sequences: each runs the node as usual.
        guard let rank = stackedRank, steps[index].op.stacks(args) else { return false }
        // Broadcasting must pair each stacked row with itself only.
        if anyPosition, sharedShapes.contains(where: { $0.count > rank || ($0.count == rank && $0[0] != 1) }) { return false }
        let results: [Tensor]
        let started = Profiler.isEnabled ? monotonicSeconds() : 0
        do {
            results = try steps[index].op.runStacked(args)
            if Profiler.isEnabled {
                let elapsed = monotonicSeconds() - started
                let opType = graph.nodes[index].opType
                Profiler.shared.record(Profiler.byShape
                    ? "\(opType) (stacked) \(args.map { $0.map { "\($0.dtype)\($0.shape)" } ?? "-" }.joined(separator: ","))"
                    : "\(opType) (stacked)", elapsed)
            }
        } catch {
            let node = graph.nodes[index]
            throw RuntimeError.nodeFailed(node: node.name, opType: node.opType, reason: "\(error) (\(n) sequences stacked)")
        }
        for (k, s) in slots[steps[index].outputs].enumerated() where s >= 0 {
            guard k < results.count, results[k].rank >= 1, results[k].shape[0] == n else {
                let node = graph.nodes[index]
                throw RuntimeError.nodeFailed(node: node.name, opType: node.opType, reason: "stacked output \(k) is not \(n) rows")
            }
            batch.stacked[s] = results[k]
            for i in 0..<n { batch.perSequence[i][s] = nil }
        }
        for s in slots[steps[index].releases] {
            batch.stacked[s] = nil
            for i in 0..<n { batch.perSequence[i][s] = nil }
        }
        return true
    }

    /// Runs step `index` on `values`, then releases the slots it read last.
    @inline(__always)
    private func runStep(_ index: Int, _ steps: UnsafeBufferPointer<Step>, _ slots: UnsafeBufferPointer<Int>,
                         _ constants: UnsafeBufferPointer<Tensor?>, _ values: inout [Tensor?], _ args: inout [Tensor?]) throws {
        gatherArguments(index, steps, slots, constants, values, into: &args)
        let results = try execute(index, args) { try steps[index].op.run(args) }
        try store(results, index, steps, slots, &values)
    }

    /// Runs step `index` once for every sequence of a batched run (`Operator.runEach`), on the
    /// values each holds, then releases the slots it read last.
    private func runStepEach(_ index: Int, _ steps: UnsafeBufferPointer<Step>, _ slots: UnsafeBufferPointer<Int>,
                             _ constants: UnsafeBufferPointer<Tensor?>, _ batch: inout BatchValues,
                             _ argSets: inout [[Tensor?]]) throws {
        for i in argSets.indices { gatherArguments(index, steps, slots, constants, batch.perSequence[i], into: &argSets[i]) }
        let sets = argSets
        let results = try execute(index, sets[0]) { try steps[index].op.runEach(sets) }
        guard results.count == argSets.count else {
            let node = graph.nodes[index]
            throw RuntimeError.nodeFailed(node: node.name, opType: node.opType, reason: "gave results for \(results.count) of \(argSets.count) sequences")
        }
        for i in results.indices { try store(results[i], index, steps, slots, &batch.perSequence[i]) }
    }

    /// Step `index`'s inputs from `values` and the constants: contiguous unless its operator
    /// reads KV-cache views as they are.
    @inline(__always)
    private func gatherArguments(_ index: Int, _ steps: UnsafeBufferPointer<Step>, _ slots: UnsafeBufferPointer<Int>,
                                 _ constants: UnsafeBufferPointer<Tensor?>, _ values: [Tensor?], into args: inout [Tensor?]) {
        let readsViews = steps[index].readsCacheViews
        args.removeAll(keepingCapacity: true)
        for s in slots[steps[index].inputs] {
            guard let t = s >= 0 ? values[s] : s == -1 ? nil : constants[Session.constantIndex(s)] else {
                args.append(nil)
                continue
            }
            args.append(t.isContiguous || readsViews ? t : t.contiguous())
        }
    }

    /// `body` (step `index`'s operator on `args`), timed when profiling, its errors naming the node.
    @inline(__always)
    private func execute<Results>(_ index: Int, _ args: [Tensor?], _ body: () throws -> Results) throws -> Results {
        let started = Profiler.isEnabled ? monotonicSeconds() : 0
        do {
            let results = try body()
            if Profiler.isEnabled {
                // The time first: building a per-shape key takes microseconds of its own.
                let elapsed = monotonicSeconds() - started
                let node = graph.nodes[index]
                let key = Profiler.byShape
                    ? "\(node.opType) \(args.map { $0.map { "\($0.dtype)\($0.shape)" } ?? "-" }.joined(separator: ","))"
                    : node.opType
                Profiler.shared.record(key, elapsed)
            }
            return results
        } catch let e as RuntimeError {
            throw e
        } catch {
            let node = graph.nodes[index]
            throw RuntimeError.nodeFailed(node: node.name, opType: node.opType, reason: "\(error)")
        }
    }

    /// Puts step `index`'s results in their slots of `values`, then releases the slots it read last.
    @inline(__always)
    private func store(_ results: [Tensor], _ index: Int, _ steps: UnsafeBufferPointer<Step>, _ slots: UnsafeBufferPointer<Int>,
                       _ values: inout [Tensor?]) throws {
        for (k, s) in slots[steps[index].outputs].enumerated() where s >= 0 {
            guard k < results.count else {
                let node = graph.nodes[index]
                throw RuntimeError.nodeFailed(node: node.name, opType: node.opType, reason: "produced \(results.count) outputs, output \(k) is used")
            }
            values[s] = results[k]
        }
        for s in slots[steps[index].releases] { values[s] = nil }
    }

    /// Checks a feed's element type and shape against the declared input.
    static func check(_ t: Tensor, against spec: ValueSpec) throws {
        if let type = spec.elementType, type != t.dtype {
            throw RuntimeError.invalidFeed(name: spec.name, reason: "expected \(type), got \(t.dtype)")
        }
        guard let dims = spec.shape else { return }
        guard dims.count == t.rank else {
            throw RuntimeError.invalidFeed(name: spec.name, reason: "expected rank \(dims.count) \(spec), got shape \(t.shape)")
        }
        for (i, d) in dims.enumerated() {
            if case .value(let v) = d, v >= 0, Int(v) != t.shape[i] {
                throw RuntimeError.invalidFeed(name: spec.name, reason: "dimension \(i) must be \(v) (\(spec)), got shape \(t.shape)")
            }
        }
    }
}
