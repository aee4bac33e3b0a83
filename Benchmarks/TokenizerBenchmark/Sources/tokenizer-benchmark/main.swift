// Measures tokenizer.json load time and encode throughput of the Swift tokenizer.
//
//   tokenizer-benchmark MODEL_DIR TEXT_FILE [REPEATS]
//
// Prints one JSON object: load times (wall and thread CPU seconds, each of REPEATS loads), the
// best encode throughput over REPEATS runs, the token count and a checksum of the ids (compared
// with Hugging Face's by scripts/tokenizer_benchmark.py).
import Foundation
import Tokenizer

func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func wallSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: tokenizer-benchmark MODEL_DIR TEXT_FILE [REPEATS]\n".utf8))
    exit(64)
}
let directory = URL(fileURLWithPath: arguments[1])
let text = try String(contentsOfFile: arguments[2], encoding: .utf8)
let repeats = arguments.count > 3 ? Int(arguments[3]) ?? 5 : 5

var loadWall: [Double] = []
var loadCPU: [Double] = []
var tokenizer: Tokenizer?
for _ in 0..<repeats {
    let w = wallSeconds(), c = threadCPUSeconds()
    tokenizer = try Tokenizer(directory: directory)
    loadCPU.append(threadCPUSeconds() - c)
    loadWall.append(wallSeconds() - w)
}

let bytes = Double(text.utf8.count)
var bestWall = Double.infinity, bestCPU = Double.infinity
var ids: [Int] = []
for _ in 0..<repeats {
    let w = wallSeconds(), c = threadCPUSeconds()
    ids = tokenizer!.encode(text)
    bestCPU = min(bestCPU, threadCPUSeconds() - c)
    bestWall = min(bestWall, wallSeconds() - w)
}
func checksum(_ ids: [Int]) -> UInt64 {
    var c: UInt64 = 0
    for (i, id) in ids.enumerated() { c = c &* 1_000_003 &+ UInt64(id) &+ UInt64(i) }
    return c
}

// The same text as many short inputs: one encode call per line (newline kept).
let lineBytes = Array(text.utf8).split(separator: 0x0A, omittingEmptySubsequences: false)
var lines = lineBytes.enumerated().map { i, l in String(decoding: l, as: UTF8.self) + (i + 1 < lineBytes.count ? "\n" : "") }
if lines.last == "" { lines.removeLast() }
var bestLinesWall = Double.infinity, bestLinesCPU = Double.infinity
var lineIDs: [Int] = []
for _ in 0..<repeats {
    let w = wallSeconds(), c = threadCPUSeconds()
    lineIDs = []
    for line in lines { lineIDs += tokenizer!.encode(line) }
    bestLinesCPU = min(bestLinesCPU, threadCPUSeconds() - c)
    bestLinesWall = min(bestLinesWall, wallSeconds() - w)
}

func list(_ xs: [Double]) -> String { "[" + xs.map { String(format: "%.4f", $0) }.joined(separator: ", ") + "]" }
print("""
{"load_wall_s": \(list(loadWall)), "load_cpu_s": \(list(loadCPU)), \
"encode_wall_mb_s": \(String(format: "%.3f", bytes / bestWall / 1e6)), \
"encode_cpu_mb_s": \(String(format: "%.3f", bytes / bestCPU / 1e6)), \
"lines_encode_wall_mb_s": \(String(format: "%.3f", bytes / bestLinesWall / 1e6)), \
"lines_encode_cpu_mb_s": \(String(format: "%.3f", bytes / bestLinesCPU / 1e6)), "lines": \(lines.count), \
"lines_checksum": "\(checksum(lineIDs))", \
"bytes": \(Int(bytes)), "tokens": \(ids.count), "checksum": "\(checksum(ids))"}
""")
