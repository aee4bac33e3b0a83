#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An ONNX model file, memory-mapped and decoded, with its external data files resolved.
///
/// Tensor payloads are not copied: ``bytes(of:)`` hands out views into the model file's mapping
/// (`raw_data`) or into an external data file's mapping. External data locations are checked
/// once, at load: relative, no `..`, no absolute path, and after resolving symlinks still inside
/// the model's folder; the byte range must lie within the file and match the tensor's size.
public final class ONNXModel: @unchecked Sendable {
    /// The path the model was loaded from (for a model decoded from memory, the name it was given).
    public let path: String
    /// The canonical (symlink-free) folder of the model file; external data must stay inside it.
    /// Nil for a model decoded from memory without a folder: it cannot use external data.
    public let directory: String?
    public let proto: ModelProto
    public let file: MappedFile
    /// Mapped external data files, keyed by their `location` string.
    public let externalFiles: [String: MappedFile]

    public convenience init(path: String) throws {
        let file = try MappedFile(path: path)
        guard let canonicalFile = ONNXModel.realPath(path) else {
            throw ONNXError.cannotOpen(path: path, reason: "cannot resolve the path")
        }
        try self.init(file: file, path: path, directory: ONNXModel.parentDirectory(of: canonicalFile))
    }

    /// Decodes a model from bytes in memory (copied). `name` stands for the file in error
    /// messages; external data is resolved inside `directory` (and refused when it is nil).
    public convenience init(bytes: UnsafeRawBufferPointer, name: String, directory: String? = nil) throws {
        var canonical: String?
        if let directory {
            guard let real = ONNXModel.realPath(directory) else {
                throw ONNXError.cannotOpen(path: directory, reason: "cannot resolve the folder")
            }
            canonical = real
        }
        try self.init(file: MappedFile(copying: bytes, path: name), path: name, directory: canonical)
    }

    private init(file: MappedFile, path: String, directory: String?) throws {
        self.path = path
        self.file = file
        self.directory = directory
        if file.count == 0 {
            throw ONNXError.malformed(file: path, offset: 0, context: "ModelProto", reason: "the file is empty")
        }
        var reader = try WireReader(buffer: file.bytes, file: path, range: 0..<file.count, context: "ModelProto", depth: 0)
        proto = try ModelProto.decode(&reader)

        var mapped: [String: MappedFile] = [:]
        for tensor in proto.graph.initializers {
            try ONNXModel.validateDims(tensor)
            if case .external(let ref) = tensor.payload, mapped[ref.location] == nil {
                mapped[ref.location] = try ONNXModel.openExternal(ref, tensor: tensor.name, directory: directory)
            }
        }
        externalFiles = mapped
        for tensor in proto.graph.initializers {
            _ = try bytes(of: tensor)
        }
    }

    /// Throws ``ONNXError/fileChanged(path:reason:)`` when the model file or one of its external
    /// data files was truncated or rewritten in place since loading (reading its pages could then
    /// crash with SIGBUS or give other weights than those loaded). Cheap (one `fstat` per file).
    public func checkFilesUnchanged() throws {
        try file.checkUnchanged()
        for location in externalFiles.keys.sorted() { try externalFiles[location]!.checkUnchanged() }
    }

    /// The bytes of a tensor stored as `raw_data` or external data (nil for typed-field payloads
    /// and empty payloads), with the mapping that owns them.
    ///
    /// The byte count is checked against `dims` × element size.
    public func bytes(of tensor: TensorProto) throws -> (bytes: UnsafeRawBufferPointer, owner: MappedFile)? {
        let region: UnsafeRawBufferPointer
        let owner: MappedFile
        switch tensor.payload {
        case .raw(let range):
            region = UnsafeRawBufferPointer(rebasing: file.bytes[range])
            owner = file
        case .external(let ref):
            let f: MappedFile
            if let known = externalFiles[ref.location] {
                f = known
            } else {
                // A tensor outside the initializer list (e.g. a Constant's attribute) with external data.
                f = try ONNXModel.openExternal(ref, tensor: tensor.name, directory: directory)
            }
            let length = try ref.length ?? expectedByteCount(tensor)
            let (end, overflow) = ref.offset.addingReportingOverflow(length)
            guard !overflow, end <= f.count else {
                throw ONNXError.invalidExternalData(
                    tensor: tensor.name, location: ref.location,
                    reason: "bytes \(ref.offset)..<\(ref.offset &+ length) lie outside the file (\(f.count) bytes)")
            }
            region = UnsafeRawBufferPointer(rebasing: f.bytes[ref.offset..<end])
            owner = f
        default:
            return nil
        }
        let expected = try expectedByteCount(tensor)
        guard region.count == expected else {
            throw ONNXError.invalidTensor(
                name: tensor.name,
                reason: "payload has \(region.count) bytes but dims \(tensor.dims) of \(tensor.elementType?.description ?? "type \(tensor.dataType)") need \(expected)")
        }
        return (region, owner)
    }

    /// `dims` × element size, refusing negative dims, unknown types and overflow.
    public func expectedByteCount(_ tensor: TensorProto) throws -> Int {
        let count = try ONNXModel.validateDims(tensor)
        // int4 and uint4 are packed two to a byte, the first in the low nibble.
        if tensor.elementType == .int4 || tensor.elementType == .uint4 { return count / 2 + count % 2 }
        guard let type = tensor.elementType, let size = type.byteSize else {
            let name = tensor.elementType.map { " (\($0))" } ?? ""
            throw ONNXError.invalidTensor(name: tensor.name, reason: "element type \(tensor.dataType)\(name) is not supported: sub-byte and unknown types have no fixed byte size")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow else { throw ONNXError.invalidTensor(name: tensor.name, reason: "byte size overflows") }
        return bytes
    }

    /// The element count of `tensor`'s dims, refusing negative dims and overflow.
    @discardableResult
    public static func validateDims(_ tensor: TensorProto) throws -> Int {
        var count = 1
        for d in tensor.dims {
            guard d >= 0 else { throw ONNXError.invalidTensor(name: tensor.name, reason: "negative dimension in dims \(tensor.dims)") }
            guard d <= Int64(Int.max) else { throw ONNXError.invalidTensor(name: tensor.name, reason: "dimension \(d) too large") }
            let (c, overflow) = count.multipliedReportingOverflow(by: Int(d))
            guard !overflow else { throw ONNXError.invalidTensor(name: tensor.name, reason: "element count of dims \(tensor.dims) overflows") }
            count = c
        }
        return count
    }

    // MARK: External data paths

    static func openExternal(_ ref: ExternalDataReference, tensor: String, directory: String?) throws -> MappedFile {
        guard let directory else {
            throw ONNXError.invalidExternalData(
                tensor: tensor, location: ref.location, reason: "the model was decoded from memory, without a folder for external data")
        }
        let resolved = try resolveExternalPath(ref.location, tensor: tensor, directory: directory)
        do {
            return try MappedFile(path: resolved)
        } catch let ONNXError.cannotOpen(_, reason) {
            throw ONNXError.invalidExternalData(tensor: tensor, location: ref.location, reason: "cannot open: \(reason)")
        }
    }

    /// Resolves `location` against `directory`, refusing anything that could read outside it.
    public static func resolveExternalPath(_ location: String, tensor: String, directory: String) throws -> String {
        func refuse(_ why: String) -> ONNXError {
            .invalidExternalData(tensor: tensor, location: location, reason: why)
        }
        guard !location.isEmpty else { throw refuse("empty location") }
        guard !location.utf8.contains(0) else { throw refuse("location contains a NUL byte") }
        guard !location.hasPrefix("/"), !location.hasPrefix("\\") else { throw refuse("absolute paths are refused") }
        if location.count >= 2, location.dropFirst().first == ":" { throw refuse("drive-letter paths are refused") }
        let components = location.split(omittingEmptySubsequences: true) { $0 == "/" || $0 == "\\" }
        guard !components.contains("..") else { throw refuse("'..' components are refused") }
        let joined = directory + "/" + components.joined(separator: "/")
        guard let real = realPath(joined) else { throw refuse("file not found in the model folder '\(directory)'") }
        guard real.hasPrefix(directory.hasSuffix("/") ? directory : directory + "/") else {
            throw refuse("resolves to '\(real)', outside the model folder '\(directory)' (symlink?)")
        }
        return real
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
