import Foundation
import Kernels
import ONNX

/// Weights repacked at load (`PackedQ4Matrix`), kept in a file between loads so that later loads
/// of the same model map them instead of packing them again (packing the 0.5B's 278 MB costs
/// more than the rest of the load).
///
/// One file per model file, named after its canonical path, in a cache directory of the user's
/// (`SessionOptions.packedWeightCacheDirectory`; `QwenModel` uses `~/.cache/qwen-swift`). It is
/// used only when it was made from the very files mapped now: the header records the device,
/// inode, size and modification time of the model file and each external data file, and every
/// matrix taken from it is checked on a sample (three row groups packed afresh and compared
/// byte for byte). Anything wrong with the file (missing, unreadable, other version, other model,
/// damaged) means packing as without a cache; the file is then rewritten. It is written to a
/// temporary name and renamed, so readers never see a half-written file. Only the cache
/// directory is written to; the model directory is never written. Each time a file is written,
/// the directory's cache files that can never be used again are removed (`removeStale`), so
/// that models deleted, moved or rebuilt do not leave their 278 MB behind for good.
///
/// Format: "QWENQ4X8", header length (UInt64 little endian), the JSON header, then each matrix's
/// packed bytes at a 4096-byte aligned offset given in the header.
final class PackedWeightCache: @unchecked Sendable {
    static let magic = Array("QWENQ4X8".utf8)
    static let formatVersion = 2
    static let fileExtension = "q4x8"

    struct Header: Codable {
        var version: Int
        /// Identities (`MappedFile.identity`) of the model file and its external data files.
        var files: [String]
        /// Their absolute paths, in the same order (since version 2: for `removeStale`).
        var paths: [String]
        var entries: [Entry]
    }

    struct Entry: Codable {
        var name: String
        var n: Int
        var k: Int
        var floatScales: Bool
        var offset: Int
        var bytes: Int
    }

    let url: URL
    private let files: [String]
    private let paths: [String]
    private let minimumBytes: Int
    private let mapping: MappedFile?
    /// The matrices' bytes: the mapping's, or a copy of them in anonymous 2 MB pages
    /// (`ResidentCopy`) when the page cache does not hold the file in 2 MB folios.
    private let contents: (bytes: UnsafeRawBufferPointer, owner: AnyObject)?
    private let stored: [String: Entry]
    private let lock = NSLock()
    /// Matrices this session uses, in the order asked for, and whether any was packed afresh.
    private var used: [(name: String, matrix: PackedQ4Matrix)] = []
    private var packedAfresh = 0

    /// Bytes packed afresh so far (not found in the file); 0 when every matrix came from it.
    var bytesPackedAfresh: Int { lock.withLock { packedAfresh } }

    /// A cache for `model` in `directory`, or nil when the model was not read from files (it
    /// has no identity to key the cache with). Never fails otherwise: an unusable file is ignored.
    /// Nothing is written unless at least `minimumBytes` were packed afresh.
    init?(directory: String, model: ONNXModel, minimumBytes: Int) {
        let mapped = [model.file] + model.externalFiles.keys.sorted().map { model.externalFiles[$0]! }
        let identities = mapped.compactMap(\.identity)
        guard identities.count == mapped.count, let folder = model.directory else { return nil }
        self.files = identities
        paths = mapped.map { URL(fileURLWithPath: $0.path).standardizedFileURL.path }
        self.minimumBytes = minimumBytes
        let modelPath = folder + "/" + (model.path as NSString).lastPathComponent
        url = URL(fileURLWithPath: directory).appendingPathComponent(
            "\((modelPath as NSString).lastPathComponent)-\(PackedWeightCache.hash(modelPath)).\(PackedWeightCache.fileExtension)")
        if let (mapping, header) = PackedWeightCache.open(url), header.files == identities {
            // Every repacked matrix is read by the first prefill: mapping the file's pages in one
            // call now costs less than the page faults that first pass would take in the middle
            // of its GEMMs (~4% of a 128-token prefill's samples with 64 KB pages). In 2 MB pages
            // (see `open`) the call costs under a millisecond.
            mapping.populate()
            self.mapping = mapping
            // Where the page cache holds the file in small folios, its mapping is in 4 KB pages:
            // the matrices are then read from a copy in 2 MB pages.
            if ResidentCopy.helps(hugeBytes: mapping.hugePageMappedBytes(), fileBytes: mapping.count),
               let copy = ResidentCopy(mapping) {
                contents = (copy.bytes, copy)
            } else {
                contents = (mapping.bytes, mapping)
            }
            stored = Dictionary(header.entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        } else {
            mapping = nil
            contents = nil
            stored = [:]
        }
    }

    /// FNV-1a, 64 bits, in hex: a stable name for a path.
    static func hash(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in s.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }

    /// The mapped file and its header, or nil when the file is missing or not a cache of this version.
    ///
    /// The file is mapped in 2 MB pages where the system allows (`MappedFile(path:hugePages:)`):
    /// `persist` writes it in 2 MB-aligned pieces, which a page cache with large folios keeps as
    /// 2 MB folios, and pages read back in after eviction through this mapping come in 2 MB
    /// folios too (where they do not, `init` copies the file: `ResidentCopy`). Every decode
    /// step streams all the packed weights; through 4 KB pages that costs a TLB miss per page and
    /// the hardware prefetcher stops at each page boundary (C harness, the LM head's GEMV on two
    /// threads: ~21 vs ~17 GB/s).
    static func open(_ url: URL) -> (MappedFile, Header)? {
        guard let file = try? MappedFile(path: url.path, hugePages: true), file.count >= 16 else { return nil }
        let bytes = file.bytes
        guard let length = headerLength(bytes.prefix(16)), length <= file.count - 16 else { return nil }
        let json = Data(bytes[16..<(16 + length)])
        guard let header = try? JSONDecoder().decode(Header.self, from: json), header.version == formatVersion,
              header.entries.allSatisfy({ $0.offset >= 16 + length && $0.bytes >= 0 && $0.offset <= file.count - $0.bytes })
        else { return nil }
        return (file, header)
    }

    /// The packed form of `matrix` (named `name`, unique in the model): from the file when it
    /// holds this matrix, else packed now. Nil when the packed kernels do not serve the matrix.
    func packed(_ name: String, _ matrix: BlockQuantizedMatrix) -> PackedQ4Matrix? {
        if let entry = stored[name], entry.n == matrix.n, entry.k == matrix.k, let contents,
           let view = PackedQ4Matrix(stored: UnsafeRawBufferPointer(rebasing: contents.bytes[entry.offset..<(entry.offset + entry.bytes)]),
                                     n: entry.n, k: entry.k, floatScales: entry.floatScales, owner: contents.owner),
           view.samplesMatch(matrix) {
            lock.withLock { used.append((name, view)) }
            return view
        }
        guard let fresh = PackedQ4Matrix(matrix) else { return nil }
        lock.withLock {
            used.append((name, fresh))
            packedAfresh += fresh.byteCount
        }
        return fresh
    }

    /// Writes the file when matrices were packed afresh (at least `minimumBytes` of them):
    /// every matrix this session uses, so the next load finds them all. Returns whether it wrote.
    @discardableResult
    func persist() -> Bool {
        let (entries, afresh) = lock.withLock { (used, packedAfresh) }
        guard afresh > 0, afresh >= minimumBytes, !entries.isEmpty else { return false }
        /// `bytes` rounded up to whole 4 KB pages (each matrix starts on a page).
        func pages(_ bytes: Int) -> Int { (bytes + 4095) / 4096 * 4096 }
        func header(dataStart: Int) -> Data? {
            var offset = dataStart
            var list: [Entry] = []
            for (name, m) in entries {
                list.append(Entry(name: name, n: m.n, k: m.k, floatScales: m.floatScales, offset: offset, bytes: m.byteCount))
                offset += pages(m.byteCount)
            }
            return try? JSONEncoder().encode(Header(version: PackedWeightCache.formatVersion, files: files, paths: paths, entries: list))
        }
        // The header's size depends on the offsets it lists; two passes settle it.
        guard let first = header(dataStart: 0) else { return false }
        let dataStart = pages(16 + first.count + 64)
        guard let json = header(dataStart: dataStart), 16 + json.count <= dataStart else { return false }

        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else { return false }
            let out = try FileHandle(forWritingTo: temporary)
            defer { try? out.close() }
            let writer = AlignedWriter(out)
            var prefix = Data(PackedWeightCache.magic)
            withUnsafeBytes(of: UInt64(json.count).littleEndian) { prefix.append(contentsOf: $0) }
            prefix.append(json)
            prefix.append(Data(count: dataStart - prefix.count))
            try prefix.withUnsafeBytes { try writer.append($0) }
            for (_, m) in entries {
                try writer.append(m.bytes)
                try writer.appendZeros(pages(m.byteCount) - m.byteCount)
            }
            try writer.finish()
            try out.synchronize()
            guard rename(temporary.path, url.path) == 0 else {
                try? FileManager.default.removeItem(at: temporary)
                return false
            }
            PackedWeightCache.removeStale(in: directory)
            return true
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            return false
        }
    }

    /// Removes the files in `directory` that no load can use again, and returns their names:
    /// cache files (named `*.q4x8`, starting with the magic) of another format version, or made
    /// from a model file or external data file that is gone or has changed since (its path now
    /// names no file, or one of another identity), and temporary files (`.*.q4x8.*.tmp`) not
    /// modified for `abandonedAfter` seconds (a writer that died). Nothing else is touched;
    /// files that cannot be read are left alone.
    @discardableResult
    static func removeStale(in directory: URL, abandonedAfter: TimeInterval = 3600) -> [String] {
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: directory.path) else { return [] }
        var removed: [String] = []
        for name in names {
            let url = directory.appendingPathComponent(name)
            let stale: Bool
            if name.hasPrefix("."), name.hasSuffix(".tmp"), name.contains(".\(fileExtension).") {
                let modified = (try? manager.attributesOfItem(atPath: url.path)[.modificationDate]) as? Date
                stale = modified.map { Date().timeIntervalSince($0) > abandonedAfter } ?? false
            } else if name.hasSuffix(".\(fileExtension)"), let header = readHeader(url) {
                stale = header.version != formatVersion || header.paths.count != header.files.count
                    || zip(header.paths, header.files).contains { MappedFile.identity(ofFileAt: $0) != $1 }
            } else {
                stale = false
            }
            if stale, (try? manager.removeItem(at: url)) != nil { removed.append(name) }
        }
        return removed
    }

    /// The header's length from a cache file's first 16 bytes (the magic, then the length as a
    /// UInt64, little endian); nil when they are not those of a cache file.
    private static func headerLength(_ prefix: some Collection<UInt8>) -> Int? {
        let bytes = Array(prefix)
        guard bytes.count == 16, Array(bytes[0..<8]) == magic else { return nil }
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(bytes[8 + i]) << (8 * UInt64(i)) }
        return length <= UInt64(Int.max - 16) ? Int(length) : nil
    }

    /// The version and model files of a cache file (read from its header alone); nil when the
    /// file is not one (no magic, an unreadable header). Files of version 1 have no paths.
    private static func readHeader(_ url: URL) -> (version: Int, files: [String], paths: [String])? {
        struct Versioned: Decodable {
            var version: Int
            var files: [String]
            var paths: [String]?
        }
        guard let handle = try? FileHandle(forReadingFrom: url) else { return nil }
        defer { try? handle.close() }
        guard let prefix = try? handle.read(upToCount: 16), let length = headerLength(prefix), length <= 64 << 20,
              let json = try? handle.read(upToCount: length), json.count == length,
              let header = try? JSONDecoder().decode(Versioned.self, from: json)
        else { return nil }
        return (header.version, header.files, header.paths ?? [])
    }

    /// Throws when the cache file in use was truncated or rewritten in place since it was mapped.
    func checkUnchanged() throws {
        try mapping?.checkUnchanged()
    }
}

/// A copy of a mapped file's bytes in anonymous memory in 2 MB pages (`HugePages`), for a cache
/// file whose mapping the kernel maps mostly in 4 KB pages. Every decode step streams all the
/// packed weights, and through 4 KB pages the TLB misses and the prefetcher's stops at page
/// boundaries cost ~12% of the decode rate (see docs/performance.md, "Huge pages"). The page
/// cache holds a file in small folios where the file system has no large folios (ext4 before
/// Linux 6.16, for one) or when its pages were read in other ways than through a 2 MB-aligned
/// mapping. The copy costs one pass over fresh memory at load.
final class ResidentCopy {
    let bytes: UnsafeRawBufferPointer

    /// Whether a copy would help: under half of the mapping's whole 2 MB pieces (`hugeBytes` of
    /// `fileBytes`) are mapped in 2 MB pages, and the system gives transparent huge pages at all.
    /// No when it cannot tell (`hugeBytes` nil: not Linux) or the file is under 2 MB. The page
    /// cache drifts: a file held in 2 MB folios when written was later found with 88% of it in
    /// 2 MB pages, where the decode loses at most ~12% of the ~13% and a copy cost 0.7 s.
    static func helps(hugeBytes: Int?, fileBytes: Int, transparentHugePages: Bool = HugePages.transparent) -> Bool {
        let whole = fileBytes / HugePages.size * HugePages.size
        guard whole > 0, transparentHugePages, let hugeBytes else { return false }
        return hugeBytes < whole / 2
    }

    /// A copy of `file`'s bytes, made on the session's threads 2 MB at a time, each piece's file
    /// pages dropped from the process once copied (the mapping stays, for `checkUnchanged`), so
    /// that resident memory holds the bytes about once throughout. Nil when memory cannot be had.
    init?(_ file: MappedFile) {
        let source = file.bytes
        guard !source.isEmpty, let memory = HugePages.allocate(source.count) else { return nil }
        let pieces = (source.count + HugePages.size - 1) / HugePages.size
        parallelFor(pieces) { range in
            for piece in range {
                let start = piece * HugePages.size, end = min(start + HugePages.size, source.count)
                (memory + start).copyMemory(from: source.baseAddress! + start, byteCount: end - start)
                file.releaseResidentPages(UnsafeRawBufferPointer(rebasing: source[start..<end]))
            }
        }
        bytes = UnsafeRawBufferPointer(start: memory, count: source.count)
    }

    deinit { free(UnsafeMutableRawPointer(mutating: bytes.baseAddress)) }
}

/// Writes a file in pieces of 2 MB at 2 MB-aligned offsets (the last one shorter), whatever the
/// sizes of the parts appended: a page cache with large folios (ext4, XFS on Linux 6.x) then holds
/// the file in 2 MB folios, which a 2 MB-aligned mapping maps as huge pages
/// (`MappedFile(path:hugePages:)`). Written in 64 KB pieces, the same file is held in small folios.
final class AlignedWriter {
    static let piece = HugePages.size
    private let out: FileHandle
    private var buffer = Data(capacity: AlignedWriter.piece)

    init(_ out: FileHandle) { self.out = out }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes
        while !rest.isEmpty {
            let take = min(rest.count, AlignedWriter.piece - buffer.count)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest.prefix(take)))
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(take))
            if buffer.count == AlignedWriter.piece { try flush() }
        }
    }

    func appendZeros(_ count: Int) throws {
        guard count > 0 else { return }
        try Data(count: count).withUnsafeBytes { try append($0) }
    }

    func finish() throws { try flush() }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try out.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}
