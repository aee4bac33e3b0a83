import Kernels
import ONNX
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Element types of tensors: the ONNX `TensorProto.DataType` codes.
public typealias DataType = ElementType

extension ElementType {
    /// Bytes per element in a runtime tensor: `byteSize`, and one byte for int4 and uint4, which
    /// are unpacked at load (one value per byte, int4 sign-extended) so that operators index them
    /// like int8 and uint8.
    public var storageSize: Int? {
        switch self {
        case .int4, .uint4: 1
        default: byteSize
        }
    }
}

/// The memory behind one or more tensors.
///
/// Either owned (64-byte aligned heap memory, freed with the last reference) or a read-only view
/// into a memory-mapped model file, kept alive by `owner`. Operators never write into their
/// inputs, so views into read-only mappings are safe to share.
public final class TensorStorage: @unchecked Sendable {
    public let data: UnsafeMutableRawPointer
    public let byteCount: Int
    /// The mapping (or other object) that owns borrowed memory; nil when this storage owns it.
    public let owner: AnyObject?
    /// For the storage of an in-place KV cache (`Tensor.cacheCapacity`): how many positions of
    /// it have been written. Positions below it never change; the one `AppendKV` that moves it
    /// from a view's length writes the positions after that view in place (see `AppendKVOperator`).
    /// -1 for all other storage.
    let cacheLength: Atomic<Int>

    /// Fresh, uninitialised, 64-byte aligned memory.
    public convenience init(byteCount: Int) {
        self.init(byteCount: byteCount, cacheLength: nil)
    }

    /// Fresh memory for an in-place KV cache holding `cacheLength` written positions, or, with
    /// `streamed`, for weights repacked at load that every run reads through (from 2 MB on in
    /// huge pages, like the cache).
    init(byteCount: Int, cacheLength: Int?, streamed: Bool = false) {
        self.byteCount = byteCount
        if !streamed, let recycled = LargeBuffers.shared.take(byteCount) {
            data = recycled
        } else if cacheLength != nil || streamed {
            // A KV cache (or repacked weights) is read whole at every decode step: from 2 MB on,
            // in huge pages.
            let p = HugePages.allocate(LargeBuffers.allocationSize(byteCount))
            precondition(p != nil, "out of memory allocating \(byteCount) bytes")
            data = p!
        } else {
            var p: UnsafeMutableRawPointer?
            // posix_memalign with size 0 may return nil; always ask for at least one cache line.
            let rc = posix_memalign(&p, 64, LargeBuffers.allocationSize(byteCount))
            precondition(rc == 0 && p != nil, "out of memory allocating \(byteCount) bytes")
            data = p!
        }
        owner = nil
        self.cacheLength = Atomic(cacheLength ?? -1)
    }

    /// A read-only view of memory owned by `owner`.
    public init(borrowing pointer: UnsafeRawPointer, byteCount: Int, owner: AnyObject) {
        data = UnsafeMutableRawPointer(mutating: pointer)
        self.byteCount = byteCount
        self.owner = owner
        cacheLength = Atomic(-1)
    }

    deinit {
        if owner == nil && !LargeBuffers.shared.give(data, byteCount: byteCount) { free(data) }
    }
}

/// Tensor buffers of 256 KB and more, kept for reuse when freed (up to 64 MB in all). glibc maps
/// allocations that large afresh and unmaps them on free, so each new one paid a page fault per
/// 4 KB on first touch: ~4% of a prefill's time (`perf`: page clearing and fault handling), where
/// every layer allocates the same few sizes again. Buffers this large do not fit in L2 anyway,
/// so a recycled one is no colder than a fresh one (unlike small ones: a pool of those measured
/// slower). Sizes are rounded up to whole 4 KB pages; a buffer is reused only for its size.
final class LargeBuffers: @unchecked Sendable {
    static let shared = LargeBuffers()
    static let minimumBytes = 256 << 10
    static let maximumHeldBytes = 64 << 20

    /// The bytes to allocate for `byteCount` (at least a cache line; whole pages when recyclable).
    static func allocationSize(_ byteCount: Int) -> Int {
        byteCount >= minimumBytes ? (byteCount + 4095) & ~4095 : max(byteCount, 64)
    }

    /// Free buffers' addresses by size, and their total size.
    private let state = Mutex<(free: [Int: [Int]], held: Int)>(([:], 0))

    /// A free buffer of `byteCount`'s size class, or nil.
    func take(_ byteCount: Int) -> UnsafeMutableRawPointer? {
        guard byteCount >= LargeBuffers.minimumBytes else { return nil }
        let size = LargeBuffers.allocationSize(byteCount)
        let address = state.withLock { s -> Int? in
            guard let p = s.free[size]?.popLast() else { return nil }
            s.held -= size
            return p
        }
        return address.flatMap(UnsafeMutableRawPointer.init(bitPattern:))
    }

    /// Keeps `p` (allocated for `byteCount`) for reuse; false when it is too small or the cache is full.
    func give(_ p: UnsafeMutableRawPointer, byteCount: Int) -> Bool {
        guard byteCount >= LargeBuffers.minimumBytes else { return false }
        let size = LargeBuffers.allocationSize(byteCount)
        return state.withLock { s -> Bool in
            guard s.held + size <= LargeBuffers.maximumHeldBytes else { return false }
            s.free[size, default: []].append(Int(bitPattern: p))
            s.held += size
            return true
        }
    }

    /// Bytes held for reuse.
    var heldBytes: Int { state.withLock { $0.held } }
}

/// An n-dimensional array: an element type, a shape, and row-major storage, contiguous except in
/// one case: a KV-cache view (`cacheCapacity`).
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let dtype: DataType
    public let shape: [Int]
    public let storage: TensorStorage
    /// Non-nil for a view into an in-place KV cache (`AppendKVOperator`): a rank-4
    /// `[B, H, T, D]` tensor whose storage is laid out `[B, H, cacheCapacity, D]`, so that
    /// positions can be appended without moving the others. Only the operators that say so
    /// (`Operator.readsCacheViews`) see such tensors; `Session` hands every other reader, and
    /// its caller unless asked, a contiguous copy (`contiguous()`).
    public let cacheCapacity: Int?
    /// For a float32 KV-cache view: its storage holds the values as float16, 2 bytes each (the
    /// float16 exports' cache, whose every value was rounded to float16 when it was appended, so
    /// nothing is lost: `AppendKVOperator`). Half the memory and half the bytes each decode
    /// step's attention reads. The operators that read cache views read either form;
    /// `contiguous()` widens to float32. False for every other tensor.
    public let storesHalf: Bool

    /// Allocates an uninitialised tensor.
    public init(dtype: DataType, shape: [Int]) {
        precondition(dtype.storageSize != nil, "tensors of \(dtype) are not supported")
        self.dtype = dtype
        self.shape = shape
        storage = TensorStorage(byteCount: Tensor.elementCount(shape) * dtype.storageSize!)
        cacheCapacity = nil
        storesHalf = false
    }

    /// A tensor over existing storage (e.g. a reshaped view).
    public init(dtype: DataType, shape: [Int], storage: TensorStorage) {
        precondition(Tensor.elementCount(shape) * (dtype.storageSize ?? 0) <= storage.byteCount)
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
        cacheCapacity = nil
        storesHalf = false
    }

    /// A KV-cache view: `shape` `[B, H, T, D]` over storage laid out `[B, H, capacity, D]`, of
    /// float16 elements for a float32 view that `storesHalf`.
    init(dtype: DataType, cacheShape shape: [Int], capacity: Int, storage: TensorStorage, storesHalf: Bool = false) {
        precondition(!storesHalf || dtype == .float)
        let elementSize = storesHalf ? 2 : (dtype.storageSize ?? 0)
        precondition(shape.count == 4 && shape[2] <= capacity
                     && shape[0] * shape[1] * capacity * shape[3] * elementSize <= storage.byteCount)
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
        cacheCapacity = capacity
        self.storesHalf = storesHalf
    }

    /// Whether the elements are laid out contiguously in `shape` (all but KV-cache views).
    @inline(__always) public var isContiguous: Bool { cacheCapacity == nil }

    /// Whether the storage holds float16 elements: a float16 tensor, or a float32 KV-cache view
    /// that `storesHalf`.
    public var elementsAreFloat16: Bool { dtype == .float16 || storesHalf }

    /// This tensor with contiguous storage: itself, or for a KV-cache view a copy (float16
    /// storage widened to float32).
    public func contiguous() -> Tensor {
        guard let capacity = cacheCapacity else { return self }
        let out = Tensor(dtype: dtype, shape: shape)
        let rows = shape[0] * shape[1], row = shape[2] * shape[3], stride = capacity * shape[3]
        if storesHalf {
            let src = pointer(as: Float16.self), dst = out.pointer(as: Float.self)
            for r in 0..<rows { convertHalfToFloat(src + r * stride, dst + r * row, row) }
            return out
        }
        let size = dtype.storageSize!
        for r in 0..<rows {
            (out.rawPointer + r * row * size).copyMemory(from: rawPointer + r * stride * size, byteCount: row * size)
        }
        return out
    }

    @inline(__always) public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape { n &*= d }
        return n
    }

    public var count: Int { Tensor.elementCount(shape) }
    public var rank: Int { shape.count }
    public var byteCount: Int { count * dtype.storageSize! }
    /// The storage's first byte. For a KV-cache view (`isContiguous` false) the elements are not
    /// laid out in `shape`: read it through `contiguous()`.
    public var rawPointer: UnsafeMutableRawPointer { storage.data }

    /// When this tensor is a view into a memory-mapped model file, drops its whole pages from the
    /// process's resident memory (it has been copied elsewhere); reads fault them back in.
    public func releaseResidentFilePages() {
        guard let file = storage.owner as? MappedFile else { return }
        file.releaseResidentPages(UnsafeRawBufferPointer(start: storage.data, count: storage.byteCount))
    }

    /// Typed pointer to the elements. `T` must match `dtype`'s layout.
    @inline(__always)
    public func pointer<T>(as _: T.Type) -> UnsafeMutablePointer<T> {
        storage.data.assumingMemoryBound(to: T.self)
    }

    /// The same elements with another shape (no copy for contiguous tensors).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(dtype: dtype, shape: newShape, storage: contiguous().storage)
    }

    public var description: String { "Tensor<\(dtype)>\(shape)" }
}

// MARK: - Building tensors from Swift values

extension Tensor {
    /// A tensor of `dtype` holding a copy of `values` (whose element layout must be `dtype`'s).
    private init<T>(copying values: [T], dtype: DataType, shape: [Int]) {
        precondition(MemoryLayout<T>.stride == dtype.storageSize, "\(T.self) values for a \(dtype) tensor")
        self.init(dtype: dtype, shape: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { pointer(as: T.self).update(from: $0.baseAddress!, count: $0.count) }
    }

    public init(_ values: [Float], shape: [Int]) { self.init(copying: values, dtype: .float, shape: shape) }

    public init(float16s values: [Float16], shape: [Int]) { self.init(copying: values, dtype: .float16, shape: shape) }

    public init(int64s values: [Int64], shape: [Int]) { self.init(copying: values, dtype: .int64, shape: shape) }

    public init(int32s values: [Int32], shape: [Int]) { self.init(copying: values, dtype: .int32, shape: shape) }

    public init(bytes values: [UInt8], dtype: DataType = .uint8, shape: [Int]) { self.init(copying: values, dtype: dtype, shape: shape) }

    public init(bools values: [Bool], shape: [Int]) {
        self.init(bytes: values.map { $0 ? UInt8(1) : 0 }, dtype: .bool, shape: shape)
    }

    /// A rank-0 tensor.
    public static func scalar(_ v: Float) -> Tensor { Tensor([v], shape: []) }
    public static func scalar(_ v: Int64) -> Tensor { Tensor(int64s: [v], shape: []) }

    /// A fresh, uninitialised tensor for weights repacked at load and streamed by every run (the
    /// transposed float16 matrices, MatMulInteger's packed panels): from 2 MB on in 2 MB pages
    /// (`HugePages`), whose streams do not stop at every 4 KB page boundary.
    public static func streamedWeights(_ dtype: DataType, shape: [Int]) -> Tensor {
        precondition(dtype.storageSize != nil, "tensors of \(dtype) are not supported")
        let storage = TensorStorage(byteCount: Tensor.elementCount(shape) * dtype.storageSize!, cacheLength: nil, streamed: true)
        return Tensor(dtype: dtype, shape: shape, storage: storage)
    }

    /// An all-zero tensor.
    public static func zeros(_ dtype: DataType, shape: [Int]) -> Tensor {
        let t = Tensor(dtype: dtype, shape: shape)
        t.rawPointer.initializeMemory(as: UInt8.self, repeating: 0, count: t.byteCount)
        return t
    }
}

// MARK: - Reading tensors into Swift values

extension Tensor {
    /// The elements as Float (float32, float16, bfloat16, float64 and the integer types).
    public func floats() -> [Float] {
        if !isContiguous { return contiguous().floats() }
        let n = count
        switch dtype {
        case .float: return Array(UnsafeBufferPointer(start: pointer(as: Float.self), count: n))
        case .float16: return (0..<n).map { Float(pointer(as: Float16.self)[$0]) }
        case .bfloat16: return (0..<n).map { Float(bitPattern: UInt32(pointer(as: UInt16.self)[$0]) << 16) }
        case .double: return (0..<n).map { Float(pointer(as: Double.self)[$0]) }
        default: return int64s().map { Float($0) }
        }
    }

    /// The elements as Int64 (integer and bool types; floats are truncated).
    public func int64s() -> [Int64] {
        if !isContiguous { return contiguous().int64s() }
        let n = count
        switch dtype {
        case .int64: return Array(UnsafeBufferPointer(start: pointer(as: Int64.self), count: n))
        case .int32: return (0..<n).map { Int64(pointer(as: Int32.self)[$0]) }
        case .int16: return (0..<n).map { Int64(pointer(as: Int16.self)[$0]) }
        case .int8: return (0..<n).map { Int64(pointer(as: Int8.self)[$0]) }
        case .uint8, .bool: return (0..<n).map { Int64(pointer(as: UInt8.self)[$0]) }
        case .uint16: return (0..<n).map { Int64(pointer(as: UInt16.self)[$0]) }
        case .uint32: return (0..<n).map { Int64(pointer(as: UInt32.self)[$0]) }
        case .uint64: return (0..<n).map { Int64(bitPattern: pointer(as: UInt64.self)[$0]) }
        case .float, .float16, .bfloat16, .double:
            // Truncated toward zero; NaN becomes 0 and out-of-range values saturate.
            return floats().map { $0.isNaN ? 0 : Int64(exactly: $0.rounded(.towardZero)) ?? ($0 < 0 ? .min : .max) }
        default: return []
        }
    }

    /// The elements as Bool (nonzero is true).
    public func bools() -> [Bool] { int64s().map { $0 != 0 } }
}

// MARK: - Slicing

extension Tensor {
    /// A copy of the elements with index in `range` along `axis` (other axes whole) — except for a
    /// KV-cache view cut to its first positions, which stays a (read-only) view of the same cache.
    public func sliced(axis: Int, _ range: Range<Int>) -> Tensor {
        precondition(axis >= 0 && axis < rank && range.lowerBound >= 0 && range.upperBound <= shape[axis])
        if let capacity = cacheCapacity {
            // A KV cache's first positions stay a view of the same cache (no copy).
            if axis == 2 && range.lowerBound == 0 {
                var s = shape
                s[2] = range.count
                return Tensor(dtype: dtype, cacheShape: s, capacity: capacity, storage: storage, storesHalf: storesHalf)
            }
            return contiguous().sliced(axis: axis, range)
        }
        var outShape = shape
        outShape[axis] = range.count
        let out = Tensor(dtype: dtype, shape: outShape)
        let strides = contiguousStrides(shape)
        let size = dtype.storageSize!
        stridedCopy(elementSize: size, shape: outShape, src: rawPointer + range.lowerBound * strides[axis] * size,
                    srcStrides: strides, dst: out.rawPointer)
        return out
    }

    /// The values of the last row (the last axis) as float32: the last position's logits.
    public var lastRow: [Float] { lastFloats(shape.last ?? count) }

    /// The last `n` elements of the flattened tensor as Float (float32 or float16 tensors).
    public func lastFloats(_ n: Int) -> [Float] {
        if !isContiguous { return contiguous().lastFloats(n) }
        precondition(n <= count)
        let start = count - n
        switch dtype {
        case .float:
            return Array(UnsafeBufferPointer(start: pointer(as: Float.self) + start, count: n))
        case .float16:
            return (0..<n).map { Float(pointer(as: Float16.self)[start + $0]) }
        default:
            return Array(floats().suffix(n))
        }
    }
}
