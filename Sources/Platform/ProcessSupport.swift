#if canImport(Glibc)
import Glibc
#endif

/// The process environment as a dictionary (configuration resolution takes it explicitly, for tests).
package func processEnvironment() -> [String: String] {
    var env: [String: String] = [:]
    var p = environ
    while let entry = p.pointee {
        let s = String(cString: entry)
        if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
        p += 1
    }
    return env
}

/// Runs `work` on a new detached pthread: for long-lived loops and rare one-off work that must stay off
/// FUSE workers and the cooperative pool.
package func startDetachedThread(_ work: @escaping () -> Void) {
    final class Box {
        let work: () -> Void
        init(_ w: @escaping () -> Void) { work = w }
    }
    var t = pthread_t()
    let box = Unmanaged.passRetained(Box(work)).toOpaque()
    let rc = pthread_create(&t, nil, { arg in
        Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().work()
        return nil
    }, box)
    precondition(rc == 0, "cannot start a thread: \(Errno(rc))")
    pthread_detach(t)
}

/// The wall-clock time, for modification times.
package func wallClock() -> Timestamp {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Timestamp(seconds: Int64(ts.tv_sec), nanoseconds: Int32(ts.tv_nsec))
}

/// Monotonic seconds, for TTLs, deadlines and benchmarks.
package func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Monotonic nanoseconds, for latencies.
package func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

extension Dictionary where Key == String, Value == String {
    /// The value of an environment variable (or a setting), nil when it is unset or empty: the AWS tools
    /// treat `VAR=` as unset.
    package func nonEmpty(_ name: String) -> String? {
        guard let v = self[name], !v.isEmpty else { return nil }
        return v
    }
}
