/// A bounds-checked reader of the protobuf wire format over a memory-mapped buffer.
///
/// Positions are absolute offsets into the file's bytes, so nested messages are read by
/// narrowing `end`, never by copying, and errors can name the byte where things went wrong.
struct WireReader {
    enum WireType: UInt8 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
    }

    let buffer: UnsafeRawBufferPointer
    let file: String
    let context: String
    private(set) var position: Int
    let end: Int
    /// Depth of message nesting, checked against ``maxDepth`` to refuse recursion bombs.
    let depth: Int

    static let maxDepth = 64

    init(buffer: UnsafeRawBufferPointer, file: String, range: Range<Int>, context: String, depth: Int) throws {
        guard depth <= WireReader.maxDepth else {
            throw ONNXError.nestingTooDeep(file: file, context: context, limit: WireReader.maxDepth)
        }
        self.buffer = buffer
        self.file = file
        self.position = range.lowerBound
        self.end = range.upperBound
        self.context = context
        self.depth = depth
    }

    var isAtEnd: Bool { position >= end }

    func error(_ reason: String, at offset: Int? = nil) -> ONNXError {
        .malformed(file: file, offset: offset ?? position, context: context, reason: reason)
    }

    /// A reader for the nested message occupying `range`.
    func nested(_ range: Range<Int>, context: String) throws -> WireReader {
        try WireReader(buffer: buffer, file: file, range: range, context: context, depth: depth + 1)
    }

    mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = position
        while true {
            guard position < end else { throw error("varint runs past the end of the message", at: start) }
            let byte = buffer[position]
            position += 1
            if shift == 63 && byte > 1 { throw error("varint longer than 64 bits", at: start) }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw error("varint longer than 10 bytes", at: start) }
        }
    }

    /// The next field's number and wire type, or nil at the end of the message.
    mutating func readTag() throws -> (field: Int, wireType: WireType)? {
        if position >= end { return nil }
        let start = position
        let key = try readVarint()
        let field = Int(truncatingIfNeeded: key >> 3)
        guard field > 0, field <= 536_870_911 else { throw error("invalid field number \(key >> 3)", at: start) }
        guard let wire = WireType(rawValue: UInt8(key & 7)) else {
            throw error("invalid wire type \(key & 7) for field \(field)", at: start)
        }
        return (field, wire)
    }

    mutating func readFixed32() throws -> UInt32 {
        guard end - position >= 4 else { throw error("fixed32 runs past the end of the message") }
        let v = buffer.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position += 4
        return UInt32(littleEndian: v)
    }

    mutating func readFixed64() throws -> UInt64 {
        guard end - position >= 8 else { throw error("fixed64 runs past the end of the message") }
        let v = buffer.loadUnaligned(fromByteOffset: position, as: UInt64.self)
        position += 8
        return UInt64(littleEndian: v)
    }

    /// The byte range of a length-delimited field's payload; the reader moves past it.
    mutating func readLengthDelimited() throws -> Range<Int> {
        let start = position
        let length = try readVarint()
        guard length <= UInt64(end - position) else {
            throw error("length \(length) runs past the end of the message (\(end - position) bytes left)", at: start)
        }
        let range = position..<(position + Int(length))
        position = range.upperBound
        return range
    }

    mutating func readBytes() throws -> [UInt8] {
        let r = try readLengthDelimited()
        return Array(UnsafeRawBufferPointer(rebasing: buffer[r]))
    }

    mutating func readString(field: String) throws -> String {
        let r = try readLengthDelimited()
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[r])
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw error("field '\(field)' is not valid UTF-8", at: r.lowerBound)
        }
        return s
    }

    mutating func readInt64() throws -> Int64 { Int64(bitPattern: try readVarint()) }

    mutating func readInt32() throws -> Int32 { Int32(truncatingIfNeeded: Int64(bitPattern: try readVarint())) }

    mutating func readFloat() throws -> Float { Float(bitPattern: try readFixed32()) }

    mutating func expect(_ wire: WireType, _ actual: WireType, field: String) throws {
        guard wire == actual else {
            throw error("field '\(field)' has wire type \(actual.rawValue), expected \(wire.rawValue)")
        }
    }

    /// Skips a field of an unknown number (forward compatibility), refusing groups.
    mutating func skip(_ wire: WireType) throws {
        switch wire {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        case .startGroup, .endGroup: throw error("protobuf groups are not used by ONNX")
        }
    }

    // MARK: Repeated scalars, packed or not

    /// Appends a repeated varint field, accepting both packed and unpacked encodings.
    mutating func appendVarints<T>(_ wire: WireType, to array: inout [T], _ convert: (UInt64) -> T) throws {
        if wire == .lengthDelimited {
            let r = try readLengthDelimited()
            var sub = try WireReader(buffer: buffer, file: file, range: r, context: context, depth: depth)
            while !sub.isAtEnd { array.append(convert(try sub.readVarint())) }
        } else {
            try expect(.varint, wire, field: "repeated varint")
            array.append(convert(try readVarint()))
        }
    }

    /// Appends a repeated fixed-width field (fixed32 or fixed64, per `W`), packed or not.
    mutating func appendFixed<W: FixedWidthInteger & UnsignedInteger, T>(_ wire: WireType, _: W.Type, to array: inout [T], _ convert: (W) -> T) throws {
        let size = MemoryLayout<W>.size
        if wire == .lengthDelimited {
            let r = try readLengthDelimited()
            guard r.count % size == 0 else { throw error("packed fixed\(size * 8) field of \(r.count) bytes is not a multiple of \(size)") }
            array.reserveCapacity(array.count + r.count / size)
            var p = r.lowerBound
            while p < r.upperBound {
                array.append(convert(W(littleEndian: buffer.loadUnaligned(fromByteOffset: p, as: W.self))))
                p += size
            }
        } else if size == 4 {
            try expect(.fixed32, wire, field: "repeated fixed32")
            array.append(convert(W(truncatingIfNeeded: try readFixed32())))
        } else {
            try expect(.fixed64, wire, field: "repeated fixed64")
            array.append(convert(W(truncatingIfNeeded: try readFixed64())))
        }
    }
}

