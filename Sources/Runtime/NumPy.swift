import Foundation

/// Reading and writing NumPy `.npy` files (format versions 1.0–3.0, C order, little-endian),
/// the exchange format of `qwen-run graph` and of the ONNX Runtime reference outputs.
public enum NumPy {
    public struct FormatError: Error, CustomStringConvertible {
        public let file: String
        public let reason: String
        public var description: String { "'\(file)' is not a usable .npy file: \(reason)" }
    }

    static let typeCodes: [(String, DataType)] = [
        ("<f4", .float), ("<f2", .float16), ("<f8", .double), ("<i8", .int64), ("<i4", .int32),
        ("<i2", .int16), ("|i1", .int8), ("|u1", .uint8), ("|b1", .bool), ("<u2", .uint16),
        ("<u4", .uint32), ("<u8", .uint64),
    ]

    /// Reads a tensor from `path`.
    public static func read(_ path: String) throws -> Tensor {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw FormatError(file: path, reason: "cannot read: \(error.localizedDescription)")
        }
        return try decode(data, file: path)
    }

    /// Decodes `.npy` bytes.
    public static func decode(_ data: Data, file: String = "<data>") throws -> Tensor {
        func fail(_ r: String) -> FormatError { FormatError(file: file, reason: r) }
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw fail("missing the \\x93NUMPY magic")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail("format version \(major) is not supported")
        }
        guard data.count >= headerStart + headerLength else { throw fail("truncated header") }
        let header = String(decoding: data[(data.startIndex + headerStart)..<(data.startIndex + headerStart + headerLength)], as: UTF8.self)

        func value(of key: String) throws -> String {
            guard let r = header.range(of: "'\(key)':") else { throw fail("header has no '\(key)'") }
            return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        let descrRaw = try value(of: "descr")
        guard descrRaw.first == "'", let end = descrRaw.dropFirst().firstIndex(of: "'") else { throw fail("unreadable descr") }
        var descr = String(descrRaw[descrRaw.index(after: descrRaw.startIndex)..<end])
        if descr == "<b1" { descr = "|b1" }
        if descr == "<u1" { descr = "|u1" }
        if descr == "<i1" { descr = "|i1" }
        guard let dtype = typeCodes.first(where: { $0.0 == descr })?.1 else {
            throw fail("dtype '\(descr)' is not supported (little-endian float16/32/64, int8–64, uint8–64, bool)")
        }
        guard try value(of: "fortran_order").hasPrefix("False") else { throw fail("Fortran-ordered arrays are not supported") }
        let shapeRaw = try value(of: "shape")
        guard shapeRaw.first == "(", let close = shapeRaw.firstIndex(of: ")") else { throw fail("unreadable shape") }
        var shape: [Int] = []
        for part in shapeRaw[shapeRaw.index(after: shapeRaw.startIndex)..<close].split(separator: ",") {
            let s = part.trimmingCharacters(in: .whitespaces)
            if s.isEmpty { continue }
            guard let d = Int(s), d >= 0 else { throw fail("bad dimension '\(s)'") }
            shape.append(d)
        }
        let count = try checkedShape(shape).reduce(1, *)
        let byteCount = count * dtype.byteSize!
        let payloadStart = headerStart + headerLength
        guard data.count - payloadStart == byteCount else {
            throw fail("payload has \(data.count - payloadStart) bytes, shape \(shape) of \(dtype) needs \(byteCount)")
        }
        let t = Tensor(dtype: dtype, shape: shape)
        data.withUnsafeBytes { raw in
            t.rawPointer.copyMemory(from: raw.baseAddress! + payloadStart, byteCount: byteCount)
        }
        return t
    }

    /// Encodes a tensor as `.npy` (version 1.0).
    public static func encode(_ t: Tensor) throws -> Data {
        guard let code = typeCodes.first(where: { $0.1 == t.dtype })?.0 else {
            throw FormatError(file: "<tensor>", reason: "\(t.dtype) cannot be written")
        }
        let shape = t.shape.isEmpty ? "()" : (t.shape.count == 1 ? "(\(t.shape[0]),)" : "(" + t.shape.map(String.init).joined(separator: ", ") + ")")
        var header = "{'descr': '\(code)', 'fortran_order': False, 'shape': \(shape), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = header.utf8.count
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        let t = t.contiguous()   // a KV-cache view's rows are not adjacent in its storage
        data.append(Data(bytes: t.rawPointer, count: t.byteCount))
        return data
    }

    public static func write(_ t: Tensor, to path: String) throws {
        let data = try encode(t)
        // POSIX calls, so that a failure names the file and the system's reason (Foundation's
        // error is a dump of its error domain).
        func failure() -> WriteError { WriteError(file: path, reason: String(cString: strerror(errno))) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure() }
        defer { close(fd) }
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                #if canImport(Glibc)
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                #else
                let n = Darwin.write(fd, raw.baseAddress! + offset, raw.count - offset)
                #endif
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure()
                }
                offset += n
            }
        }
    }

    /// A `.npy` file that could not be written.
    public struct WriteError: Error, CustomStringConvertible {
        public let file: String
        public let reason: String
        public var description: String { "cannot write '\(file)': \(reason)" }
    }
}
