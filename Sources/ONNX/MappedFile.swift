#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file (or, for a model that does not come from disk, a
/// read-only copy of some bytes).
///
/// Tensors loaded from a model are views into such mappings; a view keeps its mapping alive by
/// holding a reference to it. The pages are mapped `PROT_READ`, so nothing can write through
/// them, and `MAP_PRIVATE`. A file *replaced* on disk (a new file renamed over the path: a new
/// inode) does not affect the mapping. A file changed *in place* does: truncation turns reads of
/// the lost pages into SIGBUS, and rewritten bytes show through pages not yet read. The file stays
/// open while mapped so that ``checkUnchanged()`` can tell such a change before a run and refuse
/// to run on it (see docs/robustness.md for what this does and does not guard).
public final class MappedFile: @unchecked Sendable {
    /// The path the file was opened with.
    public let path: String
    /// The mapped bytes (empty for an empty file).
    public let bytes: UnsafeRawBufferPointer
    private let storage: Storage
    /// The file's identity, size and modification time when it was mapped.
    private let snapshot: FileSnapshot?

    private enum Storage {
        case mapped(fd: Int32, length: Int)
        case empty(fd: Int32)
        case copied
    }

    struct FileSnapshot: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modifiedSeconds: Int64
        var modifiedNanoseconds: Int64

        var identity: String { "\(device):\(inode):\(size):\(modifiedSeconds).\(modifiedNanoseconds)" }

        init(_ st: stat) {
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            #if canImport(Darwin)
            modifiedSeconds = Int64(st.st_mtimespec.tv_sec)
            modifiedNanoseconds = Int64(st.st_mtimespec.tv_nsec)
            #else
            modifiedSeconds = Int64(st.st_mtim.tv_sec)
            modifiedNanoseconds = Int64(st.st_mtim.tv_nsec)
            #endif
        }
    }

    /// Maps `path` read-only. With `hugePages`, the mapping starts on a 2 MB boundary and asks for
    /// transparent huge pages (`MADV_HUGEPAGE`, Linux): where the page cache holds the file in
    /// 2 MB folios (as a file written in 2 MB-aligned pieces is held, and as pages faulted in
    /// through such a mapping are read), each 2 MB is then one page-table entry and one TLB entry
    /// instead of 512, and mapping them in costs 139 steps instead of ~68,000 for 278 MB.
    public init(path: String, hugePages: Bool = false) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ONNXError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ONNXError.cannotOpen(path: path, reason: reason)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ONNXError.cannotOpen(path: path, reason: "not a regular file")
        }
        snapshot = FileSnapshot(st)
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            storage = .empty(fd: fd)
            return
        }
        guard let base = hugePages ? MappedFile.mapHugePageAligned(fd: fd, size: size) : mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              base != MAP_FAILED
        else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ONNXError.cannotOpen(path: path, reason: "mmap failed: \(reason)")
        }
        bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(base), count: size)
        storage = .mapped(fd: fd, length: size)
    }

    /// `size` bytes of the file at `fd` mapped read-only at a 2 MB-aligned address with
    /// `MADV_HUGEPAGE`; `MAP_FAILED` (and `errno`) when the address space cannot be had.
    private static func mapHugePageAligned(fd: Int32, size: Int) -> UnsafeMutableRawPointer? {
        let hugePage = 2 << 20
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let mappedLength = (size + pageSize - 1) / pageSize * pageSize
        // Reserve one huge page more than needed, map the file at the first 2 MB boundary inside,
        // and give back what is left on either side.
        let reserved = mappedLength + hugePage
        guard let raw = mmap(nil, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED else {
            return MAP_FAILED
        }
        let start = (Int(bitPattern: raw) + hugePage - 1) / hugePage * hugePage
        guard let base = mmap(UnsafeMutableRawPointer(bitPattern: start), size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0),
              base != MAP_FAILED
        else {
            let saved = errno
            munmap(raw, reserved)
            errno = saved
            return MAP_FAILED
        }
        let head = start - Int(bitPattern: raw), tail = reserved - head - mappedLength
        if head > 0 { munmap(raw, head) }
        if tail > 0 { munmap(base + mappedLength, tail) }
        #if os(Linux)
        _ = madvise(base, mappedLength, MADV_HUGEPAGE)
        #endif
        return base
    }

    /// A read-only copy of `contents`, named `path` in error messages (for models decoded from
    /// memory). The copy is exactly `contents.count` bytes long, so a read past its end is caught
    /// by AddressSanitizer (the fuzz targets rely on that).
    public init(copying contents: UnsafeRawBufferPointer, path: String) {
        self.path = path
        snapshot = nil
        storage = .copied
        if contents.isEmpty {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
        } else {
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: contents.count, alignment: 16)
            copy.copyMemory(from: contents)
            bytes = UnsafeRawBufferPointer(copy)
        }
    }

    deinit {
        switch storage {
        case .mapped(let fd, let length):
            if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), length) }
            close(fd)
        case .empty(let fd):
            close(fd)
        case .copied:
            bytes.baseAddress.map { UnsafeMutableRawPointer(mutating: $0).deallocate() }
        }
    }

    /// The file's size in bytes.
    public var count: Int { bytes.count }

    /// Device, inode, size and modification time of the file when it was mapped, as one string
    /// (nil for copies): two mappings with equal identities mapped the same, unchanged file, as
    /// far as `stat` can tell. Keys caches derived from the file.
    public var identity: String? { snapshot.map(\.identity) }

    /// The ``identity`` the file at `path` would have if mapped now; nil when it cannot be
    /// `stat`ed or is not a regular file.
    public static func identity(ofFileAt path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return FileSnapshot(st).identity
    }

    /// Drops the whole pages inside `range` (a part of this mapping) from the process's resident
    /// memory, for data that has been copied elsewhere (weights repacked at load). The mapping
    /// stays valid: a later read faults the file's pages back in. Nothing happens for copies made
    /// with `init(copying:path:)` or ranges outside the mapping.
    public func releaseResidentPages(_ range: UnsafeRawBufferPointer) {
        guard case .mapped = storage, let mapBase = bytes.baseAddress, let start = range.baseAddress else { return }
        let lo = Int(bitPattern: start), hi = lo + range.count
        let mapLo = Int(bitPattern: mapBase), mapHi = mapLo + bytes.count
        guard lo >= mapLo, hi <= mapHi else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (lo + page - 1) / page * page, last = hi / page * page
        guard last > first, let p = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(p, last - first, MADV_DONTNEED)
    }

    /// Maps every page of the file into the process now, in one system call
    /// (`MADV_POPULATE_READ`, Linux 5.14+), instead of one page fault per 64 KB on first read.
    /// Returns false where the kernel does not offer it (nothing happens then) and for copies.
    @discardableResult
    public func populate() -> Bool {
        #if os(Linux)
        guard case .mapped = storage, let base = bytes.baseAddress, !bytes.isEmpty else { return false }
        let madvPopulateRead: Int32 = 22
        return madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, madvPopulateRead) == 0
        #else
        return false
        #endif
    }

    /// How many bytes of the mapping the kernel maps in 2 MB pages now (Linux: `FilePmdMapped`
    /// of the mapping's entry in `/proc/self/smaps`); nil elsewhere, for copies, or when that
    /// cannot be read. Whether a file's pages map that way depends on how the page cache holds
    /// them (2 MB folios or small ones), which depends on the file system, the kernel and how
    /// the pages were read or written — not on this process.
    public func hugePageMappedBytes() -> Int? {
        #if os(Linux)
        guard case .mapped = storage, let base = bytes.baseAddress, let smaps = fopen("/proc/self/smaps", "r") else { return nil }
        defer { fclose(smaps) }
        // Each mapping's entry starts with "start-end perms …" (hex, no 0x) and ends with "VmFlags:".
        let entry = String(UInt(bitPattern: base), radix: 16) + "-"
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        var inside = false
        while getline(&line, &capacity, smaps) > 0, let text = line {
            if !inside {
                inside = strncmp(text, entry, entry.utf8.count) == 0
            } else if strncmp(text, "FilePmdMapped:", 14) == 0 {
                let kilobytes = strtol(text + 14, nil, 10)
                return kilobytes >= 0 ? kilobytes * 1024 : nil
            } else if strncmp(text, "VmFlags:", 8) == 0 {
                return nil
            }
        }
        return nil
        #else
        return nil
        #endif
    }

    /// Throws ``ONNXError/fileChanged(path:reason:)`` when the mapped file has been truncated,
    /// grown or rewritten in place since it was mapped (its size or modification time differ).
    /// A file replaced by rename is not a change of *this* file: the mapping keeps the old one.
    public func checkUnchanged() throws {
        guard let snapshot else { return }
        let fd: Int32
        switch storage {
        case .mapped(let f, _), .empty(let f): fd = f
        case .copied: return
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw ONNXError.fileChanged(path: path, reason: "cannot stat the mapped file: \(String(cString: strerror(errno)))")
        }
        let now = FileSnapshot(st)
        if now.size != snapshot.size {
            throw ONNXError.fileChanged(
                path: path, reason: "it was \(snapshot.size) bytes when loaded and is \(now.size) bytes now (modified in place)")
        }
        if now != snapshot {
            throw ONNXError.fileChanged(path: path, reason: "it was rewritten in place after loading (modification time changed)")
        }
    }
}
