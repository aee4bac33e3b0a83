import Foundation

/// A minimal protobuf encoder for building ONNX test files by hand, field by field, following
/// the wire-format specification (independent of the reader under test).
struct ProtoWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func tag(_ field: Int, _ wire: Int) { varint(UInt64(field << 3 | wire)) }

    mutating func int(_ field: Int, _ v: Int64) { tag(field, 0); varint(UInt64(bitPattern: v)) }

    mutating func bytes(_ field: Int, _ b: [UInt8]) { tag(field, 2); varint(UInt64(b.count)); bytes += b }

    mutating func string(_ field: Int, _ s: String) { bytes(field, Array(s.utf8)) }

    mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        var sub = ProtoWriter()
        build(&sub)
        bytes(field, sub.bytes)
    }

    mutating func float(_ field: Int, _ f: Float) {
        tag(field, 5)
        withUnsafeBytes(of: f.bitPattern.littleEndian) { bytes += $0 }
    }

    mutating func packedInts(_ field: Int, _ values: [Int64]) {
        var sub = ProtoWriter()
        for v in values { sub.varint(UInt64(bitPattern: v)) }
        bytes(field, sub.bytes)
    }

    mutating func packedFloats(_ field: Int, _ values: [Float]) {
        var b: [UInt8] = []
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { b += $0 } }
        bytes(field, b)
    }
}

/// Builders for the ONNX messages, by onnx.proto field numbers.
enum ONNXBuilder {
    static func floatBytes(_ v: [Float]) -> [UInt8] {
        var b: [UInt8] = []
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { b += $0 } }
        return b
    }

    /// TensorProto with raw_data.
    static func tensor(_ w: inout ProtoWriter, name: String, dims: [Int64], type: Int64, raw: [UInt8]) {
        w.packedInts(1, dims)
        w.int(2, type)
        w.string(8, name)
        w.bytes(9, raw)
    }

    /// TensorProto stored in an external file.
    static func externalTensor(_ w: inout ProtoWriter, name: String, dims: [Int64], type: Int64, location: String, offset: Int, length: Int) {
        w.packedInts(1, dims)
        w.int(2, type)
        w.string(8, name)
        for (k, v) in [("location", location), ("offset", "\(offset)"), ("length", "\(length)")] {
            w.message(13) { e in e.string(1, k); e.string(2, v) }
        }
        w.int(14, 1)
    }

    static func valueInfo(_ w: inout ProtoWriter, name: String, type: Int64, dims: [Int64?]) {
        w.string(1, name)
        w.message(2) { t in
            t.message(1) { tt in
                tt.int(1, type)
                tt.message(2) { shape in
                    for d in dims {
                        shape.message(1) { dim in
                            if let d { dim.int(1, d) } else { dim.string(2, "batch") }
                        }
                    }
                }
            }
        }
    }

    /// A model computing `Y = X + W` where W is `weight` (an initializer built by `initializer`).
    static func addModel(opset: Int64 = 18, initializer: (inout ProtoWriter) -> Void) -> [UInt8] {
        var m = ProtoWriter()
        m.int(1, 9)
        m.string(2, "qwen-swift-tests")
        m.message(7) { g in
            g.message(1) { n in
                n.string(1, "X")
                n.string(1, "W")
                n.string(2, "Y")
                n.string(3, "add0")
                n.string(4, "Add")
            }
            g.string(2, "g")
            g.message(5, initializer)
            g.message(11) { valueInfo(&$0, name: "X", type: 1, dims: [2]) }
            g.message(12) { valueInfo(&$0, name: "Y", type: 1, dims: [2]) }
        }
        m.message(8) { o in o.string(1, ""); o.int(2, opset) }
        return m.bytes
    }
}

/// A fresh temporary directory, removed at deinit.
final class TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("qwen-swift-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = url.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}
