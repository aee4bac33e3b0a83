import Foundation
import Kernels
import ONNX
@testable import Runtime

/// Runs one node on `inputs` through a real Session (inputs are graph feeds, so nothing is
/// folded away, except those at positions `constantInputs`, which are initializers, as weights
/// are) and returns its outputs.
func runOp(_ opType: String, domain: String = "", _ inputs: [Tensor?], attributes: [String: AttributeProto] = [:],
           opset: Int = 18, outputs: Int = 1, constantInputs: Set<Int> = [],
           options: SessionOptions = SessionOptions()) throws -> [Tensor] {
    var specs: [ValueSpec] = []
    var feeds: [String: Tensor] = [:]
    var constants: [String: Tensor] = [:]
    var names: [String] = []
    for (i, t) in inputs.enumerated() {
        guard let t else { names.append(""); continue }
        let name = "in\(i)"
        names.append(name)
        if constantInputs.contains(i) {
            constants[name] = t
        } else {
            specs.append(ValueSpec(name: name, elementType: t.dtype, shape: nil))
            feeds[name] = t
        }
    }
    let outNames = (0..<outputs).map { "out\($0)" }
    let node = Node(name: "node", opType: opType, domain: domain, inputs: names, outputs: outNames, attributes: attributes)
    let graph = try Graph(nodes: [node], constants: constants, inputs: specs,
                          outputs: outNames.map { ValueSpec(name: $0, elementType: nil, shape: nil) },
                          opsets: ["": opset, "com.microsoft": 1])
    let result = try Session(graph: graph, options: options).run(feeds)
    return outNames.map { result[$0]! }
}

func attr(_ name: String, int: Int) -> AttributeProto {
    var a = AttributeProto(); a.name = name; a.kind = .int; a.i = Int64(int); return a
}

func attr(_ name: String, ints: [Int]) -> AttributeProto {
    var a = AttributeProto(); a.name = name; a.kind = .ints; a.ints = ints.map(Int64.init); return a
}

func attr(_ name: String, float: Float) -> AttributeProto {
    var a = AttributeProto(); a.name = name; a.kind = .float; a.f = float; return a
}

func attr(_ name: String, string: String) -> AttributeProto {
    var a = AttributeProto(); a.name = name; a.kind = .string; a.s = Array(string.utf8); return a
}

func attrs(_ list: AttributeProto...) -> [String: AttributeProto] {
    Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
}


func randomFloats(_ n: Int, _ rng: inout SeededRandom, in range: ClosedRange<Float> = -1...1) -> [Float] {
    (0..<n).map { _ in Float.random(in: range, using: &rng) }
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count)")
    var m: Float = 0
    for i in a.indices {
        if a[i].isNaN != b[i].isNaN { return .infinity }
        if a[i].isNaN { continue }
        if a[i] == b[i] { continue }
        m = max(m, abs(a[i] - b[i]))
    }
    return m
}
