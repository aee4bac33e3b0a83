import Foundation
import Testing
@testable import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// The recycling of large tensor buffers: only buffers of at least 256 KB, reused for the same
/// page-rounded size only, at most 64 MB held; and tensors built on recycled memory are whole.
@Suite struct LargeBuffersTests {
    @Test func recyclesLargeBuffersBySizeUpToTheCap() throws {
        let cache = LargeBuffers()
        let size = 1 << 20
        let p = try #require(malloc(LargeBuffers.allocationSize(size)))
        #expect(cache.take(size) == nil)
        #expect(cache.give(p, byteCount: size))
        #expect(cache.heldBytes == size)
        #expect(cache.take(size + 8192) == nil, "another size class")
        #expect(cache.take(size - 100) == p, "the same page-rounded size")
        #expect(cache.heldBytes == 0 && cache.take(size) == nil)

        let small = try #require(malloc(1024))
        #expect(!cache.give(small, byteCount: 1024), "small buffers go back to malloc")
        free(small)

        let block = 16 << 20
        for _ in 0..<(LargeBuffers.maximumHeldBytes / block) {
            let b = try #require(malloc(block))
            #expect(cache.give(b, byteCount: block))
        }
        #expect(cache.heldBytes == LargeBuffers.maximumHeldBytes)
        #expect(!cache.give(p, byteCount: size), "full")
        while let b = cache.take(block) { free(b) }
        free(p)
    }

    @Test func tensorsOnRecycledMemoryHoldWhatIsWritten() {
        // Two rounds of the same large shape: the second may reuse the first's memory.
        for round in 0..<2 {
            let t = Tensor(dtype: .float, shape: [300, 1000])
            let p = t.pointer(as: Float.self)
            for i in 0..<t.count { p[i] = Float(i % 977) + Float(round) }
            #expect(t.floats().enumerated().allSatisfy { $0.element == Float($0.offset % 977) + Float(round) })
        }
    }
}

/// `.npy` writing: a round trip through a temporary file, and a file that cannot be written named
/// with the system's reason.
@Suite struct NumPyWriteTests {
    @Test func roundTripsAndNamesUnwritableFiles() throws {
        let path = NSTemporaryDirectory() + "numpy-write-\(getpid()).npy"
        defer { unlink(path) }
        let t = Tensor([1.5, -2, 3.25, 0, 7, 8], shape: [2, 3])
        try NumPy.write(t, to: path)
        let back = try NumPy.read(path)
        #expect(back.shape == [2, 3] && back.floats() == t.floats())
        let missing = NSTemporaryDirectory() + "no-such-directory-\(getpid())/x.npy"
        #expect { try NumPy.write(t, to: missing) } throws: { error in
            "\(error)" == "cannot write '\(missing)': No such file or directory"
        }
    }
}
