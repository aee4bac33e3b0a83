#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory for large buffers that are streamed through again and again (repacked weights, the KV
/// cache): from 2 MB on it starts on a 2 MB boundary and asks for transparent huge pages
/// (`MADV_HUGEPAGE`, Linux; a hint the kernel may ignore). Through 4 KB pages such a stream
/// costs a TLB miss per page and stops the hardware prefetcher at every page boundary: the
/// decode GEMV read the LM head at ~17 GB/s from 4 KB pages and ~21 GB/s from 2 MB ones (C
/// harness, two threads).
public enum HugePages {
    /// The huge page size asked for.
    public static let size = 2 << 20

    /// Whether the system may give transparent huge pages to memory that asks for them (Linux:
    /// `/sys/kernel/mm/transparent_hugepage/enabled` says `[always]` or `[madvise]`); false
    /// elsewhere.
    public static let transparent: Bool = {
        #if os(Linux)
        guard let file = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r") else { return false }
        defer { fclose(file) }
        var text = [UInt8](repeating: 0, count: 128)
        let count = fread(&text, 1, text.count, file)
        let setting = String(decoding: text.prefix(count), as: UTF8.self)
        return setting.contains("[always]") || setting.contains("[madvise]")
        #else
        return false
        #endif
    }()

    /// `bytes` bytes (at least 64) of 64-byte aligned memory from `posix_memalign`, to be
    /// released with `free`; 2 MB aligned with `MADV_HUGEPAGE` from 2 MB on. Nil when memory
    /// cannot be had.
    public static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer? {
        let huge = bytes >= size
        var memory: UnsafeMutableRawPointer?
        guard posix_memalign(&memory, huge ? size : 64, max(bytes, 64)) == 0, let memory else { return nil }
        #if os(Linux)
        if huge {
            _ = madvise(memory, bytes / size * size, MADV_HUGEPAGE)
        }
        #endif
        return memory
    }
}
