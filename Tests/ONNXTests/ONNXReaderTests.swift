import Foundation
import Testing
@testable import ONNX

@Suite struct ONNXReaderTests {
    @Test func decodesGraphNodesAndRawInitializer() throws {
        let dir = try TemporaryDirectory()
        let bytes = ONNXBuilder.addModel { t in
            ONNXBuilder.tensor(&t, name: "W", dims: [2], type: 1, raw: ONNXBuilder.floatBytes([1.5, -2]))
        }
        let model = try ONNXModel(path: try dir.write("m.onnx", bytes))
        let g = model.proto.graph
        #expect(model.proto.irVersion == 9)
        #expect(model.proto.producerName == "qwen-swift-tests")
        #expect(model.proto.opsetVersion(for: "") == 18)
        #expect(g.nodes.count == 1)
        #expect(g.nodes[0].opType == "Add")
        #expect(g.nodes[0].inputs == ["X", "W"])
        #expect(g.inputs.map(\.name) == ["X"])
        #expect(g.initializers[0].dims == [2])
        let (raw, _) = try #require(try model.bytes(of: g.initializers[0]))
        #expect(raw.count == 8)
        #expect(raw.loadUnaligned(fromByteOffset: 4, as: Float.self) == -2)
        guard case let .tensor(elem, shape)? = g.outputs[0].type else { Issue.record("no type"); return }
        #expect(elem == 1)
        #expect(shape == [.value(2)])
    }

    @Test func acceptsPackedAndUnpackedRepeatedFields() throws {
        // dims unpacked (one varint per element), float_data packed.
        var t = ProtoWriter()
        t.int(1, 2); t.int(1, 3)
        t.int(2, 1)
        t.string(8, "T")
        t.packedFloats(4, [1, 2, 3, 4, 5, 6])
        var r = try WireReader(buffer: t.bytes.withUnsafeBytes { UnsafeRawBufferPointer(start: UnsafeRawPointer($0.baseAddress!), count: $0.count) },
                               file: "mem", range: 0..<t.bytes.count, context: "test", depth: 0)
        // Keep the bytes alive while decoding.
        try withExtendedLifetime(t) {
            let tensor = try TensorProto.decode(&r)
            #expect(tensor.dims == [2, 3])
            guard case .floats(let f) = tensor.payload else { Issue.record("expected float_data"); return }
            #expect(f == [1, 2, 3, 4, 5, 6])
        }
    }

    @Test func externalDataIsMappedAndBoundsChecked() throws {
        let dir = try TemporaryDirectory()
        _ = try dir.write("w.bin", [0, 0, 0, 0] + ONNXBuilder.floatBytes([3, 4]))
        let ok = ONNXBuilder.addModel { ONNXBuilder.externalTensor(&$0, name: "W", dims: [2], type: 1, location: "w.bin", offset: 4, length: 8) }
        let model = try ONNXModel(path: try dir.write("ok.onnx", ok))
        let (raw, owner) = try #require(try model.bytes(of: model.proto.graph.initializers[0]))
        #expect(raw.loadUnaligned(fromByteOffset: 0, as: Float.self) == 3)
        #expect(owner.path.hasSuffix("w.bin"))

        let past = ONNXBuilder.addModel { ONNXBuilder.externalTensor(&$0, name: "W", dims: [2], type: 1, location: "w.bin", offset: 8, length: 8) }
        #expect(throws: ONNXError.self) { try ONNXModel(path: try dir.write("past.onnx", past)) }

        let wrongLength = ONNXBuilder.addModel { ONNXBuilder.externalTensor(&$0, name: "W", dims: [2], type: 1, location: "w.bin", offset: 0, length: 4) }
        #expect(throws: ONNXError.self) { try ONNXModel(path: try dir.write("short.onnx", wrongLength)) }
    }

    @Test(arguments: ["/etc/passwd", "../w.bin", "sub/../../w.bin", "missing.bin", "link.bin"])
    func unsafeExternalLocationsAreRefused(location: String) throws {
        let outer = try TemporaryDirectory()
        let inner = outer.url.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: inner, withIntermediateDirectories: true)
        _ = try outer.write("w.bin", ONNXBuilder.floatBytes([3, 4]))
        // A symlink inside the model folder that points outside it.
        try FileManager.default.createSymbolicLink(atPath: inner.appendingPathComponent("link.bin").path,
                                                   withDestinationPath: outer.url.appendingPathComponent("w.bin").path)
        let bytes = ONNXBuilder.addModel { ONNXBuilder.externalTensor(&$0, name: "W", dims: [2], type: 1, location: location, offset: 0, length: 8) }
        let path = inner.appendingPathComponent("m.onnx").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            _ = try ONNXModel(path: path)
            Issue.record("location '\(location)' was accepted")
        } catch let ONNXError.invalidExternalData(tensor, loc, _) {
            #expect(tensor == "W")
            #expect(loc == location)
        }
    }

    @Test func malformedFilesGiveTypedErrors() throws {
        let dir = try TemporaryDirectory()
        let good = ONNXBuilder.addModel { ONNXBuilder.tensor(&$0, name: "W", dims: [2], type: 1, raw: ONNXBuilder.floatBytes([1, 2])) }
        // Empty file.
        #expect(throws: ONNXError.self) { try ONNXModel(path: try dir.write("empty.onnx", [])) }
        // Every truncation of a valid file fails cleanly (no crash).
        for cut in stride(from: 1, to: good.count, by: 3) {
            #expect(throws: ONNXError.self) { try ONNXModel(path: try dir.write("cut.onnx", Array(good.prefix(cut)))) }
        }
        // Random bytes.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let junk = (0..<200).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(throws: ONNXError.self) { try ONNXModel(path: try dir.write("junk.onnx", junk)) }
        }
        // A varint of 11 bytes.
        #expect(throws: ONNXError.self) { try ONNXModel(path: try dir.write("varint.onnx", [0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01])) }
        // The graph field with the wrong wire type.
        #expect(throws: ONNXError.self) { try ONNXModel(path: try dir.write("wire.onnx", [0x08, 0x09, 0x38, 0x01])) }
        // Missing file.
        #expect(throws: ONNXError.self) { try ONNXModel(path: dir.url.appendingPathComponent("nope.onnx").path) }
    }

    @Test func nestingBombIsRefused() throws {
        // A graph attribute holding a node with a graph attribute ... 200 levels deep.
        func nestedGraph(_ depth: Int) -> [UInt8] {
            var g = ProtoWriter()
            if depth > 0 {
                g.message(1) { n in
                    n.string(4, "If")
                    n.message(5) { a in
                        a.string(1, "then_branch")
                        a.int(20, 5)
                        a.bytes(6, nestedGraph(depth - 1))
                    }
                }
            }
            return g.bytes
        }
        var m = ProtoWriter()
        m.int(1, 9)
        m.bytes(7, nestedGraph(200))
        let dir = try TemporaryDirectory()
        do {
            _ = try ONNXModel(path: try dir.write("bomb.onnx", m.bytes))
            Issue.record("a 200-deep graph was accepted")
        } catch ONNXError.nestingTooDeep(_, _, let limit) {
            #expect(limit == WireReader.maxDepth)
        }
    }

    @Test func negativeAndOverflowingDimsAreRefused() throws {
        let dir = try TemporaryDirectory()
        let negative = ONNXBuilder.addModel { ONNXBuilder.tensor(&$0, name: "W", dims: [-2], type: 1, raw: []) }
        #expect(throws: ONNXError.self) { try ONNXModel(path: try dir.write("neg.onnx", negative)) }
        let huge = ONNXBuilder.addModel { ONNXBuilder.tensor(&$0, name: "W", dims: [1 << 40, 1 << 40], type: 1, raw: []) }
        #expect(throws: ONNXError.self) { try ONNXModel(path: try dir.write("huge.onnx", huge)) }
        let mismatch = ONNXBuilder.addModel { ONNXBuilder.tensor(&$0, name: "W", dims: [3], type: 1, raw: ONNXBuilder.floatBytes([1, 2])) }
        #expect(throws: ONNXError.self) { try ONNXModel(path: try dir.write("mismatch.onnx", mismatch)) }
    }
}

/// `MappedFile.releaseResidentPages`: dropping pages of a mapping (weights copied elsewhere)
/// leaves its contents readable and unchanged, inside and around the range, with unaligned ends.
@Suite struct MappedFileTests {
    @Test func releasedPagesReadBackUnchanged() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = 5 * page + 123
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mapped-\(UUID().uuidString).bin")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try MappedFile(path: url.path)
        #expect(Array(file.bytes) == bytes)
        let base = file.bytes.baseAddress!
        // Unaligned both ends (pages 1-3 whole), a range past the end (ignored), an empty one.
        file.releaseResidentPages(UnsafeRawBufferPointer(start: base + page / 2, count: 3 * page + 17))
        file.releaseResidentPages(UnsafeRawBufferPointer(start: base + 4 * page, count: 4 * page))
        file.releaseResidentPages(UnsafeRawBufferPointer(start: base, count: 0))
        #expect(Array(file.bytes) == bytes)
        // A copy (not a mapping) is left alone.
        let copy = bytes.withUnsafeBytes { MappedFile(copying: $0, path: "copy") }
        copy.releaseResidentPages(copy.bytes)
        #expect(Array(copy.bytes) == bytes)
    }

    /// `hugePages: true` maps the same bytes at a 2 MB boundary (files of 0 bytes, under a page,
    /// and over two huge pages with a ragged end); releasing pages and the change check still work.
    @Test(arguments: [0, 1000, (4 << 20) + 12345])
    func hugePageMappingReadsTheSameBytes(size: Int) throws {
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 11) }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mapped-huge-\(UUID().uuidString).bin")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try MappedFile(path: url.path, hugePages: true)
        #expect(file.count == size)
        #expect(Array(file.bytes) == bytes)
        if let base = file.bytes.baseAddress {
            #expect(Int(bitPattern: base) % (2 << 20) == 0, "not on a 2 MB boundary")
            file.releaseResidentPages(UnsafeRawBufferPointer(start: base + 100, count: size / 2))
            #expect(Array(file.bytes) == bytes)
        }
        try file.checkUnchanged()
        let handle = try FileHandle(forUpdating: url)
        try handle.truncate(atOffset: UInt64(size / 3))
        try handle.close()
        if size > 0 { #expect(throws: ONNXError.self) { try file.checkUnchanged() } }
    }
}
