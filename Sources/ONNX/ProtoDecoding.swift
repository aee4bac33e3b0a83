/// Decoding of the messages in Proto.swift from the wire format.
///
/// Each `decode` walks one message's fields; nested messages get a narrowed reader one level
/// deeper, so the depth limit covers graphs nested in attributes nested in nodes.

extension ModelProto {
    static func decode(_ r: inout WireReader) throws -> ModelProto {
        var m = ModelProto()
        var sawGraph = false
        while let (field, wire) = try r.readTag() {
            switch field {
            case 1: try r.expect(.varint, wire, field: "ir_version"); m.irVersion = try r.readInt64()
            case 2: try r.expect(.lengthDelimited, wire, field: "producer_name"); m.producerName = try r.readString(field: "producer_name")
            case 3: try r.expect(.lengthDelimited, wire, field: "producer_version"); m.producerVersion = try r.readString(field: "producer_version")
            case 4: try r.expect(.lengthDelimited, wire, field: "domain"); m.domain = try r.readString(field: "domain")
            case 5: try r.expect(.varint, wire, field: "model_version"); m.modelVersion = try r.readInt64()
            case 6: try r.expect(.lengthDelimited, wire, field: "doc_string"); m.docString = try r.readString(field: "doc_string")
            case 7:
                try r.expect(.lengthDelimited, wire, field: "graph")
                var sub = try r.nested(try r.readLengthDelimited(), context: "ModelProto.graph")
                m.graph = try GraphProto.decode(&sub)
                sawGraph = true
            case 8:
                try r.expect(.lengthDelimited, wire, field: "opset_import")
                var sub = try r.nested(try r.readLengthDelimited(), context: "ModelProto.opset_import")
                m.opsetImports.append(try OperatorSetID.decode(&sub))
            case 14:
                try r.expect(.lengthDelimited, wire, field: "metadata_props")
                var sub = try r.nested(try r.readLengthDelimited(), context: "ModelProto.metadata_props")
                m.metadata.append(try decodeStringPair(&sub))
            case 25:
                try r.expect(.lengthDelimited, wire, field: "functions")
                _ = try r.readLengthDelimited()
                m.functionCount += 1
            default: try r.skip(wire)
            }
        }
        guard sawGraph else { throw r.error("ModelProto has no graph (is this an ONNX model file?)") }
        guard m.irVersion > 0 else { throw r.error("ModelProto has no ir_version (is this an ONNX model file?)") }
        return m
    }
}

extension OperatorSetID {
    static func decode(_ r: inout WireReader) throws -> OperatorSetID {
        var o = OperatorSetID(domain: "", version: 0)
        while let (field, wire) = try r.readTag() {
            switch field {
            case 1: try r.expect(.lengthDelimited, wire, field: "domain"); o.domain = try r.readString(field: "domain")
            case 2: try r.expect(.varint, wire, field: "version"); o.version = try r.readInt64()
            default: try r.skip(wire)
            }
        }
        return o
    }
}

func decodeStringPair(_ r: inout WireReader) throws -> (key: String, value: String) {
    var key = "", value = ""
    while let (field, wire) = try r.readTag() {
        switch field {
        case 1: try r.expect(.lengthDelimited, wire, field: "key"); key = try r.readString(field: "key")
        case 2: try r.expect(.lengthDelimited, wire, field: "value"); value = try r.readString(field: "value")
        default: try r.skip(wire)
        }
    }
    return (key, value)
}

extension GraphProto {
    static func decode(_ r: inout WireReader) throws -> GraphProto {
        var g = GraphProto()
        while let (field, wire) = try r.readTag() {
            switch field {
            case 1:
                try r.expect(.lengthDelimited, wire, field: "node")
                var sub = try r.nested(try r.readLengthDelimited(), context: "GraphProto.node[\(g.nodes.count)]")
                g.nodes.append(try NodeProto.decode(&sub))
            case 2: try r.expect(.lengthDelimited, wire, field: "name"); g.name = try r.readString(field: "name")
            case 5:
                try r.expect(.lengthDelimited, wire, field: "initializer")
                var sub = try r.nested(try r.readLengthDelimited(), context: "GraphProto.initializer[\(g.initializers.count)]")
                g.initializers.append(try TensorProto.decode(&sub))
            case 10: try r.expect(.lengthDelimited, wire, field: "doc_string"); g.docString = try r.readString(field: "doc_string")
            case 11, 12, 13:
                try r.expect(.lengthDelimited, wire, field: "value info")
                var sub = try r.nested(try r.readLengthDelimited(), context: "GraphProto.value_info")
                let v = try ValueInfoProto.decode(&sub)
                if field == 11 { g.inputs.append(v) } else if field == 12 { g.outputs.append(v) } else { g.valueInfo.append(v) }
            case 15:
                try r.expect(.lengthDelimited, wire, field: "sparse_initializer")
                _ = try r.readLengthDelimited()
                g.sparseInitializerCount += 1
            default: try r.skip(wire)
            }
        }
        return g
    }
}

extension NodeProto {
    static func decode(_ r: inout WireReader) throws -> NodeProto {
        var n = NodeProto()
        while let (field, wire) = try r.readTag() {
            switch field {
            case 1: try r.expect(.lengthDelimited, wire, field: "input"); n.inputs.append(try r.readString(field: "input"))
            case 2: try r.expect(.lengthDelimited, wire, field: "output"); n.outputs.append(try r.readString(field: "output"))
            case 3: try r.expect(.lengthDelimited, wire, field: "name"); n.name = try r.readString(field: "name")
            case 4: try r.expect(.lengthDelimited, wire, field: "op_type"); n.opType = try r.readString(field: "op_type")
            case 5:
                try r.expect(.lengthDelimited, wire, field: "attribute")
                var sub = try r.nested(try r.readLengthDelimited(), context: "NodeProto(\(n.name)).attribute")
                n.attributes.append(try AttributeProto.decode(&sub))
            case 6: try r.expect(.lengthDelimited, wire, field: "doc_string"); n.docString = try r.readString(field: "doc_string")
            case 7: try r.expect(.lengthDelimited, wire, field: "domain"); n.domain = try r.readString(field: "domain")
            default: try r.skip(wire)
            }
        }
        return n
    }
}

extension AttributeProto {
    static func decode(_ r: inout WireReader) throws -> AttributeProto {
        var a = AttributeProto()
        while let (field, wire) = try r.readTag() {
            switch field {
            case 1: try r.expect(.lengthDelimited, wire, field: "name"); a.name = try r.readString(field: "name")
            case 2: try r.expect(.fixed32, wire, field: "f"); a.f = try r.readFloat()
            case 3: try r.expect(.varint, wire, field: "i"); a.i = try r.readInt64()
            case 4: try r.expect(.lengthDelimited, wire, field: "s"); a.s = try r.readBytes()
            case 5:
                try r.expect(.lengthDelimited, wire, field: "t")
                var sub = try r.nested(try r.readLengthDelimited(), context: "attribute \(a.name).t")
                a.t = try TensorProto.decode(&sub)
            case 6:
                try r.expect(.lengthDelimited, wire, field: "g")
                var sub = try r.nested(try r.readLengthDelimited(), context: "attribute \(a.name).g")
                a.g = try GraphProto.decode(&sub)
            case 7: try r.appendFixed(wire, UInt32.self, to: &a.floats) { Float(bitPattern: $0) }
            case 8: try r.appendVarints(wire, to: &a.ints) { Int64(bitPattern: $0) }
            case 9: try r.expect(.lengthDelimited, wire, field: "strings"); a.strings.append(try r.readBytes())
            case 10:
                try r.expect(.lengthDelimited, wire, field: "tensors")
                var sub = try r.nested(try r.readLengthDelimited(), context: "attribute \(a.name).tensors")
                a.tensors.append(try TensorProto.decode(&sub))
            case 11:
                try r.expect(.lengthDelimited, wire, field: "graphs")
                var sub = try r.nested(try r.readLengthDelimited(), context: "attribute \(a.name).graphs")
                a.graphs.append(try GraphProto.decode(&sub))
            case 13: try r.expect(.lengthDelimited, wire, field: "doc_string"); a.docString = try r.readString(field: "doc_string")
            case 14:
                try r.expect(.lengthDelimited, wire, field: "tp")
                var sub = try r.nested(try r.readLengthDelimited(), context: "attribute \(a.name).tp")
                a.typeProto = try TypeProto.decode(&sub)
            case 15:
                try r.expect(.lengthDelimited, wire, field: "type_protos")
                var sub = try r.nested(try r.readLengthDelimited(), context: "attribute \(a.name).type_protos")
                a.typeProtos.append(try TypeProto.decode(&sub))
            case 20:
                try r.expect(.varint, wire, field: "type")
                let raw = try r.readInt32()
                guard let k = Kind(rawValue: raw) else { throw r.error("attribute '\(a.name)' has unknown type \(raw)") }
                a.kind = k
            case 21: try r.expect(.lengthDelimited, wire, field: "ref_attr_name"); a.refAttrName = try r.readString(field: "ref_attr_name")
            default: try r.skip(wire)
            }
        }
        return a
    }
}

extension TensorProto {
    static func decode(_ r: inout WireReader) throws -> TensorProto {
        var t = TensorProto()
        var raw: Range<Int>?
        var floats: [Float] = [], int32s: [Int32] = [], int64s: [Int64] = []
        var doubles: [Double] = [], uint64s: [UInt64] = [], strings: [[UInt8]] = []
        var external: [(key: String, value: String)] = []
        var location: Int32 = 0
        while let (field, wire) = try r.readTag() {
            switch field {
            case 1: try r.appendVarints(wire, to: &t.dims) { Int64(bitPattern: $0) }
            case 2: try r.expect(.varint, wire, field: "data_type"); t.dataType = try r.readInt32()
            case 3: try r.skip(wire) // segment: only for chunked streaming; not used by exports
            case 4: try r.appendFixed(wire, UInt32.self, to: &floats) { Float(bitPattern: $0) }
            case 5: try r.appendVarints(wire, to: &int32s) { Int32(truncatingIfNeeded: Int64(bitPattern: $0)) }
            case 6: try r.expect(.lengthDelimited, wire, field: "string_data"); strings.append(try r.readBytes())
            case 7: try r.appendVarints(wire, to: &int64s) { Int64(bitPattern: $0) }
            case 8: try r.expect(.lengthDelimited, wire, field: "name"); t.name = try r.readString(field: "name")
            case 9: try r.expect(.lengthDelimited, wire, field: "raw_data"); raw = try r.readLengthDelimited()
            case 10: try r.appendFixed(wire, UInt64.self, to: &doubles) { Double(bitPattern: $0) }
            case 11: try r.appendVarints(wire, to: &uint64s) { $0 }
            case 12: try r.expect(.lengthDelimited, wire, field: "doc_string"); t.docString = try r.readString(field: "doc_string")
            case 13:
                try r.expect(.lengthDelimited, wire, field: "external_data")
                var sub = try r.nested(try r.readLengthDelimited(), context: "tensor \(t.name).external_data")
                external.append(try decodeStringPair(&sub))
            case 14: try r.expect(.varint, wire, field: "data_location"); location = try r.readInt32()
            default: try r.skip(wire)
            }
        }
        if location == 1 {
            t.payload = .external(try ExternalDataReference(pairs: external, tensor: t.name))
        } else if location != 0 {
            throw ONNXError.invalidTensor(name: t.name, reason: "unknown data_location \(location)")
        } else if let raw {
            t.payload = .raw(raw)
        } else if !floats.isEmpty {
            t.payload = .floats(floats)
        } else if !int32s.isEmpty {
            t.payload = .int32s(int32s)
        } else if !int64s.isEmpty {
            t.payload = .int64s(int64s)
        } else if !doubles.isEmpty {
            t.payload = .doubles(doubles)
        } else if !uint64s.isEmpty {
            t.payload = .uint64s(uint64s)
        } else if !strings.isEmpty {
            t.payload = .strings(strings)
        }
        return t
    }
}

extension ExternalDataReference {
    init(pairs: [(key: String, value: String)], tensor: String) throws {
        var location: String?
        var offset = 0
        var length: Int?
        var checksum: String?
        for (key, value) in pairs {
            switch key {
            case "location": location = value
            case "offset":
                guard let v = Int(value), v >= 0 else {
                    throw ONNXError.invalidExternalData(tensor: tensor, location: location ?? "?", reason: "offset '\(value)' is not a non-negative integer")
                }
                offset = v
            case "length":
                guard let v = Int(value), v >= 0 else {
                    throw ONNXError.invalidExternalData(tensor: tensor, location: location ?? "?", reason: "length '\(value)' is not a non-negative integer")
                }
                length = v
            case "checksum": checksum = value
            default: break
            }
        }
        guard let location, !location.isEmpty else {
            throw ONNXError.invalidExternalData(tensor: tensor, location: "", reason: "no 'location' key")
        }
        self.init(location: location, offset: offset, length: length, checksum: checksum)
    }
}

extension ValueInfoProto {
    static func decode(_ r: inout WireReader) throws -> ValueInfoProto {
        var v = ValueInfoProto()
        while let (field, wire) = try r.readTag() {
            switch field {
            case 1: try r.expect(.lengthDelimited, wire, field: "name"); v.name = try r.readString(field: "name")
            case 2:
                try r.expect(.lengthDelimited, wire, field: "type")
                var sub = try r.nested(try r.readLengthDelimited(), context: "value \(v.name).type")
                v.type = try TypeProto.decode(&sub)
            case 3: try r.expect(.lengthDelimited, wire, field: "doc_string"); v.docString = try r.readString(field: "doc_string")
            default: try r.skip(wire)
            }
        }
        return v
    }
}

extension TypeProto {
    static func decode(_ r: inout WireReader) throws -> TypeProto {
        var result = TypeProto.other("unset")
        while let (field, wire) = try r.readTag() {
            switch field {
            case 1:
                try r.expect(.lengthDelimited, wire, field: "tensor_type")
                var sub = try r.nested(try r.readLengthDelimited(), context: "TypeProto.tensor_type")
                result = try decodeTensorType(&sub)
            case 4: result = .other("sequence"); try r.skip(wire)
            case 5: result = .other("map"); try r.skip(wire)
            case 8: result = .other("sparse_tensor"); try r.skip(wire)
            case 9: result = .other("optional"); try r.skip(wire)
            default: try r.skip(wire)
            }
        }
        return result
    }

    private static func decodeTensorType(_ r: inout WireReader) throws -> TypeProto {
        var elem: Int32 = 0
        var shape: [ShapeDimension]?
        while let (field, wire) = try r.readTag() {
            switch field {
            case 1: try r.expect(.varint, wire, field: "elem_type"); elem = try r.readInt32()
            case 2:
                try r.expect(.lengthDelimited, wire, field: "shape")
                var sub = try r.nested(try r.readLengthDelimited(), context: "TensorShapeProto")
                var dims: [ShapeDimension] = []
                while let (f, w) = try sub.readTag() {
                    if f == 1 {
                        try sub.expect(.lengthDelimited, w, field: "dim")
                        var d = try sub.nested(try sub.readLengthDelimited(), context: "TensorShapeProto.dim")
                        dims.append(try decodeDimension(&d))
                    } else {
                        try sub.skip(w)
                    }
                }
                shape = dims
            default: try r.skip(wire)
            }
        }
        return .tensor(elementType: elem, shape: shape)
    }

    private static func decodeDimension(_ r: inout WireReader) throws -> ShapeDimension {
        var d = ShapeDimension.unknown
        while let (field, wire) = try r.readTag() {
            switch field {
            case 1: try r.expect(.varint, wire, field: "dim_value"); d = .value(try r.readInt64())
            case 2: try r.expect(.lengthDelimited, wire, field: "dim_param"); d = .param(try r.readString(field: "dim_param"))
            default: try r.skip(wire)
            }
        }
        return d
    }
}
