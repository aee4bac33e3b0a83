import Foundation
import Kernels

// Elementwise ops: arithmetic and comparisons with multidirectional broadcasting, logic, unary
// math, Where and Cast. float16 is computed in float32 and rounded once per op, as ONNX Runtime's
// CPU provider does (it casts fp16 nodes it has no fp16 kernel for to fp32 and back).

// MARK: - Binary arithmetic

protocol ArithmeticKind: Sendable {
    static func float(_ a: Float, _ b: Float) -> Float
    static func double(_ a: Double, _ b: Double) -> Double
    /// Integer version; nil result means "division by zero".
    static func int64(_ a: Int64, _ b: Int64) -> Int64
    static func int32(_ a: Int32, _ b: Int32) -> Int32
    static var dividesIntegers: Bool { get }
}

extension ArithmeticKind {
    static var dividesIntegers: Bool { false }
}

enum AddKind: ArithmeticKind {
    @inline(__always) static func float(_ a: Float, _ b: Float) -> Float { a + b }
    @inline(__always) static func double(_ a: Double, _ b: Double) -> Double { a + b }
    @inline(__always) static func int64(_ a: Int64, _ b: Int64) -> Int64 { a &+ b }
    @inline(__always) static func int32(_ a: Int32, _ b: Int32) -> Int32 { a &+ b }
}

enum SubKind: ArithmeticKind {
    @inline(__always) static func float(_ a: Float, _ b: Float) -> Float { a - b }
    @inline(__always) static func double(_ a: Double, _ b: Double) -> Double { a - b }
    @inline(__always) static func int64(_ a: Int64, _ b: Int64) -> Int64 { a &- b }
    @inline(__always) static func int32(_ a: Int32, _ b: Int32) -> Int32 { a &- b }
}

enum MulKind: ArithmeticKind {
    @inline(__always) static func float(_ a: Float, _ b: Float) -> Float { a * b }
    @inline(__always) static func double(_ a: Double, _ b: Double) -> Double { a * b }
    @inline(__always) static func int64(_ a: Int64, _ b: Int64) -> Int64 { a &* b }
    @inline(__always) static func int32(_ a: Int32, _ b: Int32) -> Int32 { a &* b }
}

enum DivKind: ArithmeticKind {
    @inline(__always) static func float(_ a: Float, _ b: Float) -> Float { a / b }
    @inline(__always) static func double(_ a: Double, _ b: Double) -> Double { a / b }
    // Truncating division, as C++ (ONNX Runtime) does; divisors are checked non-zero first.
    @inline(__always) static func int64(_ a: Int64, _ b: Int64) -> Int64 { a.dividedReportingOverflow(by: b).partialValue }
    @inline(__always) static func int32(_ a: Int32, _ b: Int32) -> Int32 { a.dividedReportingOverflow(by: b).partialValue }
    static var dividesIntegers: Bool { true }
}

enum MaxKind: ArithmeticKind {
    // NaN propagates, as in ONNX Runtime (std::max with NaN checks in Eigen's PropagateNaN).
    @inline(__always) static func float(_ a: Float, _ b: Float) -> Float { a.isNaN || b.isNaN ? .nan : Swift.max(a, b) }
    @inline(__always) static func double(_ a: Double, _ b: Double) -> Double { a.isNaN || b.isNaN ? .nan : Swift.max(a, b) }
    @inline(__always) static func int64(_ a: Int64, _ b: Int64) -> Int64 { Swift.max(a, b) }
    @inline(__always) static func int32(_ a: Int32, _ b: Int32) -> Int32 { Swift.max(a, b) }
}

enum MinKind: ArithmeticKind {
    @inline(__always) static func float(_ a: Float, _ b: Float) -> Float { a.isNaN || b.isNaN ? .nan : Swift.min(a, b) }
    @inline(__always) static func double(_ a: Double, _ b: Double) -> Double { a.isNaN || b.isNaN ? .nan : Swift.min(a, b) }
    @inline(__always) static func int64(_ a: Int64, _ b: Int64) -> Int64 { Swift.min(a, b) }
    @inline(__always) static func int32(_ a: Int32, _ b: Int32) -> Int32 { Swift.min(a, b) }
}

/// float32 Add/Sub/Mul/Div as concrete loops over one row (operand strides 0 or 1).
enum FloatBinary {
    case add, sub, mul, div

    init?<K: ArithmeticKind>(_: K.Type) {
        switch ObjectIdentifier(K.self) {
        case ObjectIdentifier(AddKind.self): self = .add
        case ObjectIdentifier(SubKind.self): self = .sub
        case ObjectIdentifier(MulKind.self): self = .mul
        case ObjectIdentifier(DivKind.self): self = .div
        default: return nil
        }
    }

    func apply(_ n: Int, _ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int, _ out: UnsafeMutablePointer<Float>) {
        switch self {
        case .add: mapRow2(n, a, sa, b, sb, out, +)
        case .sub: mapRow2(n, a, sa, b, sb, out, -)
        case .mul: mapRow2(n, a, sa, b, sb, out, *)
        case .div: mapRow2(n, a, sa, b, sb, out, /)
        }
    }

    /// `apply` split over the pool for large counts (`elementwiseInParallel`).
    func applyInParallel(_ n: Int, _ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                         _ out: UnsafeMutablePointer<Float>) {
        elementwiseInParallel(n) { r in apply(r.count, a + r.lowerBound * sa, sa, b + r.lowerBound * sb, sb, out + r.lowerBound) }
    }
}

/// `C = A op B` with broadcasting, for float32, float16, float64, int64 and int32.
func binaryArithmetic<K: ArithmeticKind>(_: K.Type, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    guard a.dtype == b.dtype else { throw OpError("operand types differ: \(a.dtype) and \(b.dtype)") }
    if a.dtype == .float, let op = FloatBinary(K.self) {
        // Add/Sub/Mul/Div on float32 through concrete loops: the generic `K.float` is called
        // through a witness table when the operator is not specialised (~10x slower).
        let pa = a.pointer(as: Float.self), pb = b.pointer(as: Float.self)
        // A one-element operand of no higher rank (a scalar scale): one loop, no broadcast walk.
        if b.count == 1 && b.rank <= a.rank {
            let out = Tensor(dtype: .float, shape: a.shape)
            op.applyInParallel(out.count, pa, 1, pb, 0, out.pointer(as: Float.self))
            return out
        }
        if a.count == 1 && a.rank <= b.rank {
            let out = Tensor(dtype: .float, shape: b.shape)
            op.applyInParallel(out.count, pa, 0, pb, 1, out.pointer(as: Float.self))
            return out
        }
        let outShape = a.shape == b.shape ? a.shape : try Broadcast.shape([a.shape, b.shape])
        let out = Tensor(dtype: .float, shape: outShape)
        let po = out.pointer(as: Float.self)
        if a.shape == b.shape {
            op.applyInParallel(out.count, pa, 1, pb, 1, po)
        } else {
            forEachBroadcastRow2(outShape: outShape, aShape: a.shape, bShape: b.shape) { o, ia, ib, n, sa, sb in
                op.apply(n, pa + ia, sa, pb + ib, sb, po + o)
            }
        }
        return out
    }
    let outShape = try Broadcast.shape([a.shape, b.shape])
    let out = Tensor(dtype: a.dtype, shape: outShape)
    switch a.dtype {
    case .float:
        broadcastMap2(outShape: outShape, a.pointer(as: Float.self), a.shape, b.pointer(as: Float.self), b.shape,
                      out.pointer(as: Float.self), K.float)
    case .float16:
        broadcastMap2(outShape: outShape, a.pointer(as: Float16.self), a.shape, b.pointer(as: Float16.self), b.shape,
                      out.pointer(as: Float16.self)) { Float16(K.float(Float($0), Float($1))) }
    case .double:
        broadcastMap2(outShape: outShape, a.pointer(as: Double.self), a.shape, b.pointer(as: Double.self), b.shape,
                      out.pointer(as: Double.self), K.double)
    case .int64:
        if K.dividesIntegers, UnsafeBufferPointer(start: b.pointer(as: Int64.self), count: b.count).contains(0) {
            throw OpError("integer division by zero")
        }
        broadcastMap2(outShape: outShape, a.pointer(as: Int64.self), a.shape, b.pointer(as: Int64.self), b.shape,
                      out.pointer(as: Int64.self), K.int64)
    case .int32:
        if K.dividesIntegers, UnsafeBufferPointer(start: b.pointer(as: Int32.self), count: b.count).contains(0) {
            throw OpError("integer division by zero")
        }
        broadcastMap2(outShape: outShape, a.pointer(as: Int32.self), a.shape, b.pointer(as: Int32.self), b.shape,
                      out.pointer(as: Int32.self), K.int32)
    default:
        throw OpError("element type \(a.dtype) is not supported")
    }
    return out
}

struct BinaryArithmeticOperator<K: ArithmeticKind>: Operator {
    /// Each output value is its two operands' sum, difference, product or quotient alone.
    var rowStacking: RowStacking { .broadcasting }
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try binaryArithmetic(K.self, try inputs.required(0), try inputs.required(1))]
    }
}

/// Max, Min, Sum: variadic, folded pairwise with broadcasting.
struct VariadicArithmeticOperator<K: ArithmeticKind>: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        var acc = try inputs.required(0)
        for i in 1..<inputs.count {
            acc = try binaryArithmetic(K.self, acc, try inputs.required(i))
        }
        return [acc]
    }
}

/// Pow(X, Y): X float32/float16/float64, Y any numeric type (opset 12+), broadcast.
/// Exponents 2 and 3 are computed as products, like ONNX Runtime, so `x^2` rounds like `x*x`.
struct PowOperator: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0), y = try inputs.required(1)
        let outShape = try Broadcast.shape([x.shape, y.shape])
        @inline(__always) func pow(_ a: Float, _ b: Float) -> Float {
            b == 2 ? a * a : (b == 3 ? a * a * a : (b == 0.5 ? a.squareRoot() : Foundation.powf(a, b)))
        }
        // Exponents as float32 (a float16 or integer exponent converts exactly for the values
        // exports use); float64 bases use a float64 exponent.
        let out = Tensor(dtype: x.dtype, shape: outShape)
        switch x.dtype {
        case .double:
            let yd = y.dtype == .double ? y : try castTensor(y, to: .double)
            broadcastMap2(outShape: outShape, x.pointer(as: Double.self), x.shape, yd.pointer(as: Double.self), yd.shape,
                          out.pointer(as: Double.self)) { $1 == 2 ? $0 * $0 : Foundation.pow($0, $1) }
        case .float, .float16:
            let yf = y.dtype == .float ? y : try castTensor(y, to: .float)
            if x.dtype == .float {
                broadcastMap2(outShape: outShape, x.pointer(as: Float.self), x.shape, yf.pointer(as: Float.self), yf.shape,
                              out.pointer(as: Float.self), pow)
            } else {
                broadcastMap2(outShape: outShape, x.pointer(as: Float16.self), x.shape, yf.pointer(as: Float.self), yf.shape,
                              out.pointer(as: Float16.self)) { Float16(pow(Float($0), $1)) }
            }
        case .int64, .int32:
            let xd = try castTensor(x, to: .double), yd = try castTensor(y, to: .double)
            let r = Tensor(dtype: .double, shape: outShape)
            broadcastMap2(outShape: outShape, xd.pointer(as: Double.self), xd.shape, yd.pointer(as: Double.self), yd.shape,
                          r.pointer(as: Double.self)) { Foundation.pow($0, $1) }
            return [try castTensor(r, to: x.dtype)]
        default:
            throw OpError("Pow of \(x.dtype) is not supported")
        }
        return [out]
    }
}

// MARK: - Comparisons and logic

protocol ComparisonKind: Sendable {
    static func compare<T: Comparable>(_ a: T, _ b: T) -> Bool
}

enum EqualKind: ComparisonKind { @inline(__always) static func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a == b } }
enum LessKind: ComparisonKind { @inline(__always) static func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a < b } }
enum LessOrEqualKind: ComparisonKind { @inline(__always) static func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a <= b } }
enum GreaterKind: ComparisonKind { @inline(__always) static func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a > b } }
enum GreaterOrEqualKind: ComparisonKind { @inline(__always) static func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a >= b } }

struct ComparisonOperator<K: ComparisonKind>: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        guard a.dtype == b.dtype else { throw OpError("operand types differ: \(a.dtype) and \(b.dtype)") }
        let outShape = try Broadcast.shape([a.shape, b.shape])
        let out = Tensor(dtype: .bool, shape: outShape)
        let o = out.pointer(as: Bool.self)
        func go<T: Comparable>(_: T.Type) {
            broadcastMap2(outShape: outShape, a.pointer(as: T.self), a.shape, b.pointer(as: T.self), b.shape, o) { K.compare($0, $1) }
        }
        switch a.dtype {
        case .float: go(Float.self)
        case .float16: go(Float16.self)
        case .double: go(Double.self)
        case .int64: go(Int64.self)
        case .int32: go(Int32.self)
        case .int8: go(Int8.self)
        case .uint8, .bool: go(UInt8.self)
        case .uint64: go(UInt64.self)
        case .uint32: go(UInt32.self)
        default: throw OpError("comparison of \(a.dtype) is not supported")
        }
        return [out]
    }
}

enum LogicKind { case and, or, xor }

struct LogicOperator: Operator {
    let kind: LogicKind
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        guard a.dtype == .bool, b.dtype == .bool else { throw OpError("logical ops take bool tensors, got \(a.dtype) and \(b.dtype)") }
        let outShape = try Broadcast.shape([a.shape, b.shape])
        let out = Tensor(dtype: .bool, shape: outShape)
        let pa = a.pointer(as: UInt8.self), pb = b.pointer(as: UInt8.self), po = out.pointer(as: UInt8.self)
        switch kind {
        case .and: broadcastMap2(outShape: outShape, pa, a.shape, pb, b.shape, po) { ($0 != 0 && $1 != 0) ? 1 : 0 }
        case .or: broadcastMap2(outShape: outShape, pa, a.shape, pb, b.shape, po) { ($0 != 0 || $1 != 0) ? 1 : 0 }
        case .xor: broadcastMap2(outShape: outShape, pa, a.shape, pb, b.shape, po) { (($0 != 0) != ($1 != 0)) ? 1 : 0 }
        }
        return [out]
    }
}

struct NotOperator: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dtype == .bool else { throw OpError("Not takes a bool tensor, got \(x.dtype)") }
        let out = Tensor(dtype: .bool, shape: x.shape)
        let px = x.pointer(as: UInt8.self), po = out.pointer(as: UInt8.self)
        for i in 0..<x.count { po[i] = px[i] == 0 ? 1 : 0 }
        return [out]
    }
}

// MARK: - Unary math

enum UnaryFunction: Sendable {
    case neg, abs, sqrt, reciprocal, sigmoid, exp, log, cos, sin, tanh, erf, relu, floor, ceil, round, softplus, sign

    @inline(__always)
    func apply(_ x: Float) -> Float {
        switch self {
        case .neg: -x
        case .abs: Swift.abs(x)
        case .sqrt: x.squareRoot()
        case .reciprocal: 1 / x
        case .sigmoid: x >= 0 ? 1 / (1 + Foundation.expf(-x)) : Foundation.expf(x) / (1 + Foundation.expf(x))
        case .exp: Foundation.expf(x)
        case .log: Foundation.logf(x)
        case .cos: Foundation.cosf(x)
        case .sin: Foundation.sinf(x)
        case .tanh: Foundation.tanhf(x)
        case .erf: Foundation.erff(x)
        case .relu: x > 0 ? x : 0
        case .floor: x.rounded(.down)
        case .ceil: x.rounded(.up)
        case .round: x.rounded(.toNearestOrEven)
        case .softplus: x > 20 ? x : Foundation.log1pf(Foundation.expf(x))
        case .sign: x > 0 ? 1 : (x < 0 ? -1 : 0)
        }
    }

    @inline(__always)
    func apply(_ x: Double) -> Double {
        switch self {
        case .neg: -x
        case .abs: Swift.abs(x)
        case .sqrt: x.squareRoot()
        case .reciprocal: 1 / x
        case .sigmoid: 1 / (1 + Foundation.exp(-x))
        case .exp: Foundation.exp(x)
        case .log: Foundation.log(x)
        case .cos: Foundation.cos(x)
        case .sin: Foundation.sin(x)
        case .tanh: Foundation.tanh(x)
        case .erf: Foundation.erf(x)
        case .relu: x > 0 ? x : 0
        case .floor: x.rounded(.down)
        case .ceil: x.rounded(.up)
        case .round: x.rounded(.toNearestOrEven)
        case .softplus: x > 30 ? x : Foundation.log1p(Foundation.exp(x))
        case .sign: x > 0 ? 1 : (x < 0 ? -1 : 0)
        }
    }

    /// Integer support (Neg, Abs, Sign, Relu): wrapping like C++.
    func apply(_ x: Int64) -> Int64? {
        switch self {
        case .neg: 0 &- x
        case .abs: x < 0 ? 0 &- x : x
        case .sign: x > 0 ? 1 : (x < 0 ? -1 : 0)
        case .relu: Swift.max(x, 0)
        default: nil
        }
    }
}

struct UnaryOperator: Operator {
    let function: UnaryFunction

    /// Applies `f` over float32 or float16 elements (float16 computed in float32, rounded once).
    @inline(__always)
    private func map(_ x: Tensor, _ out: Tensor, _ f: (Float) -> Float) {
        let n = x.count
        if x.dtype == .float {
            let px = x.pointer(as: Float.self), po = out.pointer(as: Float.self)
            for i in 0..<n { po[i] = f(px[i]) }
        } else {
            let px = x.pointer(as: Float16.self), po = out.pointer(as: Float16.self)
            for i in 0..<n { po[i] = Float16(f(Float(px[i]))) }
        }
    }

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let out = Tensor(dtype: x.dtype, shape: x.shape)
        let n = x.count
        let f = function
        switch x.dtype {
        case .float, .float16:
            // One loop per function, so each is a straight-line (vectorisable) loop.
            switch f {
            case .neg: map(x, out) { -$0 }
            case .sqrt: map(x, out) { $0.squareRoot() }
            case .reciprocal: map(x, out) { 1 / $0 }
            case .sigmoid where x.dtype == .float: Kernels.sigmoid(x.pointer(as: Float.self), into: out.pointer(as: Float.self), count: n)
            case .sigmoid: map(x, out) { UnaryFunction.sigmoid.apply($0) }
            case .exp: map(x, out) { Foundation.expf($0) }
            case .cos: map(x, out) { Foundation.cosf($0) }
            case .sin: map(x, out) { Foundation.sinf($0) }
            default: map(x, out) { f.apply($0) }
            }
        case .double:
            let px = x.pointer(as: Double.self), po = out.pointer(as: Double.self)
            for i in 0..<n { po[i] = f.apply(px[i]) }
        case .int64, .int32:
            guard f.apply(Int64(0)) != nil else { throw OpError("\(f) of \(x.dtype) is not supported") }
            if x.dtype == .int64 {
                let px = x.pointer(as: Int64.self), po = out.pointer(as: Int64.self)
                for i in 0..<n { po[i] = f.apply(px[i])! }
            } else {
                let px = x.pointer(as: Int32.self), po = out.pointer(as: Int32.self)
                for i in 0..<n { po[i] = Int32(truncatingIfNeeded: f.apply(Int64(px[i]))!) }
            }
        default:
            throw OpError("\(f) of \(x.dtype) is not supported")
        }
        return [out]
    }
}

/// IsNaN and IsInf (with detect_positive / detect_negative).
struct FloatClassOperator: Operator {
    let isNaN: Bool
    var detectPositive = true
    var detectNegative = true

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0)
        let out = Tensor(dtype: .bool, shape: x.shape)
        let po = out.pointer(as: Bool.self)
        @inline(__always) func test(_ v: Float) -> Bool {
            if isNaN { return v.isNaN }
            return v.isInfinite && ((v > 0 && detectPositive) || (v < 0 && detectNegative))
        }
        switch x.dtype {
        case .float: let p = x.pointer(as: Float.self); for i in 0..<x.count { po[i] = test(p[i]) }
        case .float16: let p = x.pointer(as: Float16.self); for i in 0..<x.count { po[i] = test(Float(p[i])) }
        case .double: let p = x.pointer(as: Double.self); for i in 0..<x.count { po[i] = test(Float(p[i])) || (isNaN && p[i].isNaN) }
        default: throw OpError("\(isNaN ? "IsNaN" : "IsInf") of \(x.dtype) is not supported")
        }
        return [out]
    }
}

// MARK: - Where

struct WhereOperator: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let c = try inputs.required(0), x = try inputs.required(1), y = try inputs.required(2)
        guard c.dtype == .bool else { throw OpError("condition must be bool, got \(c.dtype)") }
        guard x.dtype == y.dtype else { throw OpError("X and Y types differ: \(x.dtype) and \(y.dtype)") }
        let outShape = try Broadcast.shape([c.shape, x.shape, y.shape])
        let out = Tensor(dtype: x.dtype, shape: outShape)
        let pc = c.pointer(as: UInt8.self)
        func go<T>(_: T.Type) {
            let px = x.pointer(as: T.self), py = y.pointer(as: T.self), po = out.pointer(as: T.self)
            forEachBroadcast3(outShape: outShape, [c.shape, x.shape, y.shape]) { o, ic, ix, iy in
                po[o] = pc[ic] != 0 ? px[ix] : py[iy]
            }
        }
        switch x.dtype.storageSize {
        case 1: go(UInt8.self)
        case 2: go(UInt16.self)
        case 4: go(UInt32.self)
        case 8: go(UInt64.self)
        default: throw OpError("Where of \(x.dtype) is not supported")
        }
        return [out]
    }
}

// MARK: - Cast

/// Converts between all numeric types and bool, with ONNX semantics: float → integer truncates
/// toward zero (NaN and out-of-range values saturate instead of trapping), anything → bool is
/// "nonzero", float32 → float16/bfloat16 rounds to nearest even.
func castTensor(_ x: Tensor, to type: DataType) throws -> Tensor {
    if x.dtype == type { return x }
    let n = x.count
    let out = Tensor(dtype: type, shape: x.shape)

    // Read every source element as either Double (floats) or Int64 (integers), then store.
    let isFloatSource: Bool
    switch x.dtype {
    case .float, .float16, .bfloat16, .double: isFloatSource = true
    case .int64, .int32, .int16, .int8, .uint8, .uint16, .uint32, .uint64, .bool, .int4, .uint4: isFloatSource = false
    default: throw OpError("Cast from \(x.dtype) is not supported")
    }

    // Fast paths used on every forward pass.
    if x.dtype == .float && type == .float16 {
        let src = x.pointer(as: Float.self), dst = out.pointer(as: Float16.self)
        elementwiseInParallel(n) { r in convertFloatToHalf(src + r.lowerBound, dst + r.lowerBound, r.count) }
        return out
    }
    if x.dtype == .float16 && type == .float {
        let src = x.pointer(as: Float16.self), dst = out.pointer(as: Float.self)
        elementwiseInParallel(n) { r in convertHalfToFloat(src + r.lowerBound, dst + r.lowerBound, r.count) }
        return out
    }
    if x.dtype == .int32 && type == .float {
        // MatMulInteger's products on their way to the scales (the q8 exports): one rounding
        // each, as the general path's Int64 → Float gives for any int32.
        let src = x.pointer(as: Int32.self), dst = out.pointer(as: Float.self)
        elementwiseInParallel(n) { r in
            for i in r { dst[i] = Float(src[i]) }
        }
        return out
    }

    @inline(__always) func readDouble(_ i: Int) -> Double {
        switch x.dtype {
        case .float: Double(x.pointer(as: Float.self)[i])
        case .float16: Double(Float(x.pointer(as: Float16.self)[i]))
        case .bfloat16: Double(Float(bitPattern: UInt32(x.pointer(as: UInt16.self)[i]) << 16))
        default: x.pointer(as: Double.self)[i]
        }
    }
    @inline(__always) func readInt(_ i: Int) -> Int64 {
        switch x.dtype {
        case .int64: x.pointer(as: Int64.self)[i]
        case .int32: Int64(x.pointer(as: Int32.self)[i])
        case .int16: Int64(x.pointer(as: Int16.self)[i])
        case .int8, .int4: Int64(x.pointer(as: Int8.self)[i])
        case .uint8, .bool, .uint4: Int64(x.pointer(as: UInt8.self)[i])
        case .uint16: Int64(x.pointer(as: UInt16.self)[i])
        case .uint32: Int64(x.pointer(as: UInt32.self)[i])
        default: Int64(bitPattern: x.pointer(as: UInt64.self)[i])
        }
    }
    @inline(__always) func saturatingInt(_ d: Double) -> Int64 {
        if d.isNaN { return 0 }
        if d >= 9.2233720368547758e18 { return .max }
        if d <= -9.2233720368547758e18 { return .min }
        return Int64(d)
    }
    func store<T>(_: T.Type, fromDouble: (Double) -> T, fromInt: (Int64) -> T) {
        let p = out.pointer(as: T.self)
        if isFloatSource {
            for i in 0..<n { p[i] = fromDouble(readDouble(i)) }
        } else {
            for i in 0..<n { p[i] = fromInt(readInt(i)) }
        }
    }
    switch type {
    case .float:
        if x.dtype == .double {
            store(Float.self, fromDouble: { Float($0) }, fromInt: { Float($0) })
        } else {
            store(Float.self, fromDouble: { Float($0) }, fromInt: { Float($0) })
        }
    case .float16:
        // Via float32 for float32 sources (one rounding); float64 rounds directly.
        store(Float16.self, fromDouble: { Float16($0) }, fromInt: { Float16(Float($0)) })
    case .bfloat16:
        store(UInt16.self, fromDouble: { bfloat16Bits(Float($0)) }, fromInt: { bfloat16Bits(Float($0)) })
    case .double: store(Double.self, fromDouble: { $0 }, fromInt: { Double($0) })
    case .int64: store(Int64.self, fromDouble: saturatingInt, fromInt: { $0 })
    case .int32: store(Int32.self, fromDouble: { Int32(truncatingIfNeeded: saturatingInt($0)) }, fromInt: { Int32(truncatingIfNeeded: $0) })
    case .int16: store(Int16.self, fromDouble: { Int16(truncatingIfNeeded: saturatingInt($0)) }, fromInt: { Int16(truncatingIfNeeded: $0) })
    case .int8: store(Int8.self, fromDouble: { Int8(truncatingIfNeeded: saturatingInt($0)) }, fromInt: { Int8(truncatingIfNeeded: $0) })
    case .uint8: store(UInt8.self, fromDouble: { UInt8(truncatingIfNeeded: saturatingInt($0)) }, fromInt: { UInt8(truncatingIfNeeded: $0) })
    case .uint16: store(UInt16.self, fromDouble: { UInt16(truncatingIfNeeded: saturatingInt($0)) }, fromInt: { UInt16(truncatingIfNeeded: $0) })
    case .uint32: store(UInt32.self, fromDouble: { UInt32(truncatingIfNeeded: saturatingInt($0)) }, fromInt: { UInt32(truncatingIfNeeded: $0) })
    case .uint64: store(UInt64.self, fromDouble: { UInt64(bitPattern: saturatingInt($0)) }, fromInt: { UInt64(bitPattern: $0) })
    case .bool: store(UInt8.self, fromDouble: { $0 != 0 ? 1 : 0 }, fromInt: { $0 != 0 ? 1 : 0 })
    default: throw OpError("Cast to \(type) is not supported")
    }
    return out
}

/// float32 → bfloat16 bits, round to nearest even (NaN stays NaN).
@inline(__always)
func bfloat16Bits(_ f: Float) -> UInt16 {
    if f.isNaN { return 0x7FC0 }
    let bits = f.bitPattern
    let rounding = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
}

struct CastOperator: Operator {
    let to: DataType
    /// Each value converted on its own (IEEE rounding, the same in vector and scalar code).
    var rowStacking: RowStacking { .firstInput }
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try castTensor(try inputs.required(0), to: to)]
    }
}

/// CastLike(input, target_type): Cast to the second input's type.
struct CastLikeOperator: Operator {
    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try castTensor(try inputs.required(0), to: try inputs.required(1).dtype)]
    }
}

// MARK: - Registration

func registerElementwise(_ add: (String, String, ClosedRange<Int>, @escaping OperatorFactory) -> Void) {
    func simple(_ op: String, _ make: @escaping @Sendable () -> any Operator) {
        add(op, "", 1...Int.max) { _ in make() }
    }
    simple("Add") { BinaryArithmeticOperator<AddKind>() }
    simple("Sub") { BinaryArithmeticOperator<SubKind>() }
    simple("Mul") { BinaryArithmeticOperator<MulKind>() }
    simple("Div") { BinaryArithmeticOperator<DivKind>() }
    simple("Max") { VariadicArithmeticOperator<MaxKind>() }
    simple("Min") { VariadicArithmeticOperator<MinKind>() }
    simple("Sum") { VariadicArithmeticOperator<AddKind>() }
    simple("Pow") { PowOperator() }
    simple("Equal") { ComparisonOperator<EqualKind>() }
    simple("Less") { ComparisonOperator<LessKind>() }
    simple("LessOrEqual") { ComparisonOperator<LessOrEqualKind>() }
    simple("Greater") { ComparisonOperator<GreaterKind>() }
    simple("GreaterOrEqual") { ComparisonOperator<GreaterOrEqualKind>() }
    simple("And") { LogicOperator(kind: .and) }
    simple("Or") { LogicOperator(kind: .or) }
    simple("Xor") { LogicOperator(kind: .xor) }
    simple("Not") { NotOperator() }
    let unary: [(String, UnaryFunction)] = [
        ("Neg", .neg), ("Abs", .abs), ("Sqrt", .sqrt), ("Reciprocal", .reciprocal), ("Sigmoid", .sigmoid),
        ("Exp", .exp), ("Log", .log), ("Cos", .cos), ("Sin", .sin), ("Tanh", .tanh), ("Erf", .erf),
        ("Relu", .relu), ("Floor", .floor), ("Ceil", .ceil), ("Round", .round), ("Softplus", .softplus),
        ("Sign", .sign),
    ]
    for (name, f) in unary { simple(name) { UnaryOperator(function: f) } }
    simple("IsNaN") { FloatClassOperator(isNaN: true) }
    add("IsInf", "", 1...Int.max) { ctx in
        FloatClassOperator(
            isNaN: false,
            detectPositive: ctx.node.intAttribute("detect_positive", default: 1) != 0,
            detectNegative: ctx.node.intAttribute("detect_negative", default: 1) != 0)
    }
    simple("Where") { WhereOperator() }
    add("Cast", "", 1...Int.max) { ctx in
        guard let type = ctx.node.castTarget, type.storageSize != nil else {
            throw ctx.node.invalid("attribute 'to' is missing or names an unsupported type")
        }
        return CastOperator(to: type)
    }
    simple("CastLike") { CastLikeOperator() }
}
