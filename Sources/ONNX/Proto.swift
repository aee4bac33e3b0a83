/// The ONNX protobuf messages this runtime reads (onnx.proto3, IR version ≤ 11).
///
/// Field numbers are from onnx/onnx.proto. Unknown fields are skipped so that newer files still
/// load; fields we cannot honour (sparse initializers, training info) are kept out, and the
/// executor reports any op that would need them.

/// ONNX `TensorProto.DataType` codes.
public enum ElementType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case undefined = 0
    case float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7
    case string = 8, bool = 9, float16 = 10, double = 11, uint32 = 12, uint64 = 13
    case complex64 = 14, complex128 = 15, bfloat16 = 16
    case float8e4m3fn = 17, float8e4m3fnuz = 18, float8e5m2 = 19, float8e5m2fnuz = 20
    case uint4 = 21, int4 = 22, float4e2m1 = 23

    public var description: String {
        switch self {
        case .undefined: "undefined"
        case .float: "float32"
        case .uint8: "uint8"
        case .int8: "int8"
        case .uint16: "uint16"
        case .int16: "int16"
        case .int32: "int32"
        case .int64: "int64"
        case .string: "string"
        case .bool: "bool"
        case .float16: "float16"
        case .double: "float64"
        case .uint32: "uint32"
        case .uint64: "uint64"
        case .complex64: "complex64"
        case .complex128: "complex128"
        case .bfloat16: "bfloat16"
        case .float8e4m3fn: "float8e4m3fn"
        case .float8e4m3fnuz: "float8e4m3fnuz"
        case .float8e5m2: "float8e5m2"
        case .float8e5m2fnuz: "float8e5m2fnuz"
        case .uint4: "uint4"
        case .int4: "int4"
        case .float4e2m1: "float4e2m1"
        }
    }

    /// Bytes per element for fixed-size types; nil for strings and sub-byte types.
    public var byteSize: Int? {
        switch self {
        case .bool, .uint8, .int8, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz: 1
        case .uint16, .int16, .float16, .bfloat16: 2
        case .float, .int32, .uint32: 4
        case .int64, .uint64, .double, .complex64: 8
        case .complex128: 16
        case .undefined, .string, .uint4, .int4, .float4e2m1: nil
        }
    }
}

public struct OperatorSetID: Sendable, Equatable {
    /// "" (or "ai.onnx") for the default domain, "com.microsoft" for ORT contrib ops.
    public var domain: String
    public var version: Int64
}

public struct ModelProto: Sendable {
    public init() {}

    public var irVersion: Int64 = 0
    public var opsetImports: [OperatorSetID] = []
    public var producerName = ""
    public var producerVersion = ""
    public var domain = ""
    public var modelVersion: Int64 = 0
    public var docString = ""
    public var graph = GraphProto()
    public var metadata: [(key: String, value: String)] = []
    /// Number of model-local functions (FunctionProto); ops naming them are reported unsupported.
    public var functionCount = 0

    /// The opset version imported for `domain` ("" and "ai.onnx" are the same domain).
    public func opsetVersion(for domain: String) -> Int64? {
        let d = domain == "ai.onnx" ? "" : domain
        return opsetImports.first { ($0.domain == "ai.onnx" ? "" : $0.domain) == d }?.version
    }
}

public struct GraphProto: Sendable {
    public init() {}

    public var name = ""
    public var nodes: [NodeProto] = []
    public var initializers: [TensorProto] = []
    public var sparseInitializerCount = 0
    public var inputs: [ValueInfoProto] = []
    public var outputs: [ValueInfoProto] = []
    public var valueInfo: [ValueInfoProto] = []
    public var docString = ""
}

public struct NodeProto: Sendable {
    public init() {}

    public var inputs: [String] = []
    public var outputs: [String] = []
    public var name = ""
    public var opType = ""
    public var domain = ""
    public var attributes: [AttributeProto] = []
    public var docString = ""

    public func attribute(_ name: String) -> AttributeProto? { attributes.first { $0.name == name } }
}

public struct AttributeProto: Sendable {
    public init() {}

    public enum Kind: Int32, Sendable {
        case undefined = 0, float = 1, int = 2, string = 3, tensor = 4, graph = 5
        case floats = 6, ints = 7, strings = 8, tensors = 9, graphs = 10
        case sparseTensor = 11, sparseTensors = 12, typeProto = 13, typeProtos = 14
    }

    public var name = ""
    public var kind: Kind = .undefined
    public var refAttrName = ""
    public var docString = ""
    public var f: Float = 0
    public var i: Int64 = 0
    public var s: [UInt8] = []
    public var t: TensorProto?
    public var g: GraphProto?
    public var floats: [Float] = []
    public var ints: [Int64] = []
    public var strings: [[UInt8]] = []
    public var tensors: [TensorProto] = []
    public var graphs: [GraphProto] = []
    public var typeProto: TypeProto?
    public var typeProtos: [TypeProto] = []
}

/// Where a tensor's bytes are.
public enum TensorPayload: Sendable {
    /// No data (a tensor with zero elements, or an absent payload).
    case none
    /// `raw_data`: a byte range of the model file itself (not copied).
    case raw(Range<Int>)
    /// `data_location = EXTERNAL`: a byte range of another file next to the model.
    case external(ExternalDataReference)
    case floats([Float])
    /// `int32_data`, which also carries int8/int16/uint8/uint16/bool/float16/bfloat16 values.
    case int32s([Int32])
    case int64s([Int64])
    case doubles([Double])
    /// `uint64_data`, which also carries uint32 values.
    case uint64s([UInt64])
    case strings([[UInt8]])
}

/// The `external_data` key/value pairs of a tensor stored outside the model file.
public struct ExternalDataReference: Sendable, Equatable {
    public var location: String
    public var offset: Int
    /// nil when the key is absent: the tensor's full size is read.
    public var length: Int?
    public var checksum: String?
}

public struct TensorProto: Sendable {
    public init() {}

    public var name = ""
    public var dims: [Int64] = []
    public var dataType: Int32 = 0
    public var payload: TensorPayload = .none
    public var docString = ""

    public var elementType: ElementType? { ElementType(rawValue: dataType) }
}

public struct ValueInfoProto: Sendable {
    public init() {}

    public var name = ""
    public var type: TypeProto?
    public var docString = ""
}

/// A dimension of a declared shape.
public enum ShapeDimension: Sendable, Equatable, CustomStringConvertible {
    case value(Int64)
    case param(String)
    case unknown

    public var description: String {
        switch self {
        case .value(let v): "\(v)"
        case .param(let p): p
        case .unknown: "?"
        }
    }
}

public enum TypeProto: Sendable {
    /// A tensor of `elementType` with `shape` (nil when the rank is unknown).
    case tensor(elementType: Int32, shape: [ShapeDimension]?)
    /// Sequence, map, optional or sparse types: this runtime does not execute them.
    case other(String)
}
