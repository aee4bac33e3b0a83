import Foundation

/// Per-op-type (or, with `QWEN_PROFILE=shapes`, per op type and input shapes) time spent in `Session.run`, collected when the environment variable
/// `QWEN_PROFILE` is set (e.g. `QWEN_PROFILE=1 qwen-run ...` prints a table at exit).
public final class Profiler: @unchecked Sendable {
    public static let shared = Profiler()
    public static let isEnabled = ProcessInfo.processInfo.environment["QWEN_PROFILE"] != nil
    /// `QWEN_PROFILE=shapes`: one row per op type and input shapes instead of per op type.
    public static let byShape = ProcessInfo.processInfo.environment["QWEN_PROFILE"] == "shapes"

    private let lock = NSLock()
    private var seconds: [String: Double] = [:]
    private var calls: [String: Int] = [:]
    /// Load phases (reading the model, passes, building operators), in order.
    private var phases: [(String, Double)] = []

    /// Records a load phase that took `s` seconds (shown above the op table).
    public func recordPhase(_ name: String, _ s: Double) {
        lock.lock()
        phases.append((name, s))
        lock.unlock()
    }

    func record(_ opType: String, _ s: Double) {
        lock.lock()
        seconds[opType, default: 0] += s
        calls[opType, default: 0] += 1
        lock.unlock()
    }

    /// A table of op types by total time, most expensive first.
    public func report() -> String {
        lock.lock()
        defer { lock.unlock() }
        let total = seconds.values.reduce(0, +)
        var lines = phases.map { String(format: "load: %-54@ %10.1f ms", $0.0 as NSString, $0.1 * 1000) }
        lines += [String(format: "%-60@ %10@ %8@ %10@ %6@", "op" as NSString, "total ms" as NSString, "calls" as NSString, "µs/call" as NSString, "%" as NSString)]
        for (op, s) in seconds.sorted(by: { $0.value > $1.value }) {
            let n = calls[op] ?? 1
            lines.append(String(format: "%-60@ %10.1f %8d %10.1f %6.1f", op as NSString, s * 1000, n, s * 1e6 / Double(n), 100 * s / max(total, 1e-12)))
        }
        lines.append(String(format: "%-60@ %10.1f", "total" as NSString, total * 1000))
        return lines.joined(separator: "\n")
    }
}

@inline(__always)
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
