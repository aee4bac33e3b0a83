import Testing
@testable import Kernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `HugePages.allocate`: 64-byte aligned memory below 2 MB, 2 MB aligned from 2 MB on (including
/// sizes that are not whole huge pages), all of it writable and readable back, released by `free`.
@Suite struct HugePagesTests {
    @Test(arguments: [0, 1, 4096, HugePages.size - 1, HugePages.size, HugePages.size * 2 + 12345])
    func allocates(bytes: Int) throws {
        let p = try #require(HugePages.allocate(bytes))
        defer { free(p) }
        let alignment = bytes >= HugePages.size ? HugePages.size : 64
        #expect(Int(bitPattern: p) % alignment == 0)
        let n = max(bytes, 64)
        let bytesView = p.bindMemory(to: UInt8.self, capacity: n)
        for i in stride(from: 0, to: n, by: 4093) { bytesView[i] = UInt8(truncatingIfNeeded: i &* 31) }
        bytesView[n - 1] = 0xA5
        for i in stride(from: 0, to: n - 1, by: 4093) { #expect(bytesView[i] == UInt8(truncatingIfNeeded: i &* 31)) }
        #expect(bytesView[n - 1] == 0xA5)
    }
}
