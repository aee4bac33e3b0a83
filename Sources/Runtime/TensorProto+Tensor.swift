import ONNX

extension Tensor {
    /// A runtime tensor for an ONNX TensorProto: a zero-copy view into the mapped model or
    /// external-data file when the payload is `raw_data`/external and suitably aligned, otherwise
    /// a copy decoded from the typed repeated fields.
    public init(proto t: TensorProto, model: ONNXModel?) throws {
        if t.elementType == .int4 || t.elementType == .uint4 {
            self = try Tensor(fourBit: t, model: model)
            return
        }
        guard let dtype = t.elementType, let size = dtype.byteSize else {
            throw RuntimeError.invalidInitializer(name: t.name, reason: "element type \(t.dataType) (\(t.elementType?.description ?? "unknown")) is not supported")
        }
        let count = try ONNXModel.validateDims(t)
        let shape = t.dims.map { Int($0) }
        func mismatch(_ found: Int) -> RuntimeError {
            .invalidInitializer(name: t.name, reason: "\(found) values stored but shape \(shape) needs \(count)")
        }
        switch t.payload {
        case .raw, .external:
            guard let model, let (bytes, owner) = try model.bytes(of: t) else {
                throw RuntimeError.invalidInitializer(name: t.name, reason: "raw or external payload without a model file")
            }
            if count == 0 {
                self = Tensor(dtype: dtype, shape: shape)
            } else if let base = bytes.baseAddress, Int(bitPattern: base) % size == 0 {
                self = Tensor(dtype: dtype, shape: shape, storage: TensorStorage(borrowing: base, byteCount: bytes.count, owner: owner))
            } else {
                // Misaligned inside the protobuf: copy once so kernels may assume element alignment.
                self = Tensor(dtype: dtype, shape: shape)
                rawPointer.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            }
        case .none:
            guard count == 0 else {
                throw RuntimeError.invalidInitializer(name: t.name, reason: "no data for shape \(shape)")
            }
            self = Tensor(dtype: dtype, shape: shape)
        case .floats(let v):
            guard dtype == .float else { throw RuntimeError.invalidInitializer(name: t.name, reason: "float_data for a \(dtype) tensor") }
            guard v.count == count else { throw mismatch(v.count) }
            self = Tensor(v, shape: shape)
        case .int64s(let v):
            guard dtype == .int64 else { throw RuntimeError.invalidInitializer(name: t.name, reason: "int64_data for a \(dtype) tensor") }
            guard v.count == count else { throw mismatch(v.count) }
            self = Tensor(int64s: v, shape: shape)
        case .doubles(let v):
            guard dtype == .double else { throw RuntimeError.invalidInitializer(name: t.name, reason: "double_data for a \(dtype) tensor") }
            guard v.count == count else { throw mismatch(v.count) }
            self = Tensor(dtype: .double, shape: shape)
            for i in 0..<count { pointer(as: Double.self)[i] = v[i] }
        case .uint64s(let v):
            guard v.count == count else { throw mismatch(v.count) }
            self = Tensor(dtype: dtype, shape: shape)
            switch dtype {
            case .uint64: for i in 0..<count { pointer(as: UInt64.self)[i] = v[i] }
            case .uint32: for i in 0..<count { pointer(as: UInt32.self)[i] = UInt32(truncatingIfNeeded: v[i]) }
            default: throw RuntimeError.invalidInitializer(name: t.name, reason: "uint64_data for a \(dtype) tensor")
            }
        case .int32s(let v):
            guard v.count == count else { throw mismatch(v.count) }
            self = Tensor(dtype: dtype, shape: shape)
            switch dtype {
            case .int32: for i in 0..<count { pointer(as: Int32.self)[i] = v[i] }
            case .int16: for i in 0..<count { pointer(as: Int16.self)[i] = Int16(truncatingIfNeeded: v[i]) }
            case .uint16, .float16, .bfloat16:
                // float16/bfloat16 are stored as their bit patterns in the low 16 bits.
                for i in 0..<count { pointer(as: UInt16.self)[i] = UInt16(truncatingIfNeeded: v[i]) }
            case .int8: for i in 0..<count { pointer(as: Int8.self)[i] = Int8(truncatingIfNeeded: v[i]) }
            case .uint8, .bool: for i in 0..<count { pointer(as: UInt8.self)[i] = UInt8(truncatingIfNeeded: v[i]) }
            default: throw RuntimeError.invalidInitializer(name: t.name, reason: "int32_data for a \(dtype) tensor")
            }
        case .strings:
            throw RuntimeError.invalidInitializer(name: t.name, reason: "string tensors are not supported")
        }
    }
}

extension Tensor {
    /// An int4 or uint4 TensorProto, unpacked to one value per byte (int4 sign-extended): from
    /// raw or external data or int32_data (one byte per entry), two values a byte, the first in
    /// the low nibble.
    init(fourBit t: TensorProto, model: ONNXModel?) throws {
        let dtype = t.elementType!, signed = dtype == .int4
        let count = try ONNXModel.validateDims(t)
        let shape = t.dims.map { Int($0) }
        var out = Tensor(dtype: dtype, shape: shape)
        let dst = out.pointer(as: UInt8.self)
        func store(_ i: Int, _ nibble: UInt8) {
            dst[i] = signed && nibble >= 8 ? nibble | 0xF0 : nibble
        }
        switch t.payload {
        case .raw, .external:
            guard let model, let (bytes, _) = try model.bytes(of: t) else {
                throw RuntimeError.invalidInitializer(name: t.name, reason: "raw or external payload without a model file")
            }
            guard bytes.count == (count + 1) / 2 else {
                throw RuntimeError.invalidInitializer(name: t.name, reason: "\(bytes.count) bytes stored but \(count) \(dtype) values need \((count + 1) / 2)")
            }
            for i in 0..<count { store(i, i & 1 == 0 ? bytes[i / 2] & 0x0F : bytes[i / 2] >> 4) }
        case .int32s(let v):
            // Packed like raw data, one byte (two values) per int32 entry.
            guard v.count == (count + 1) / 2, v.allSatisfy({ (0...255).contains($0) }) else {
                throw RuntimeError.invalidInitializer(name: t.name, reason: "int32_data has \(v.count) entries; \(count) \(dtype) values need \((count + 1) / 2) bytes of two values")
            }
            for i in 0..<count {
                let byte = UInt8(v[i / 2])
                store(i, i & 1 == 0 ? byte & 0x0F : byte >> 4)
            }
        case .none:
            guard count == 0 else { throw RuntimeError.invalidInitializer(name: t.name, reason: "no data for shape \(shape)") }
        default:
            throw RuntimeError.invalidInitializer(name: t.name, reason: "\(dtype) values must be raw, external or int32_data")
        }
        out = out.reshaped(shape)
        self = out
    }
}
