import CoreMetrics
import Platform
import Synchronization

/// Counters of backend traffic, safe to bump from the network thread and read from anywhere.
///
/// Latencies go to swift-metrics timers (`lakecache_backend_first_byte_seconds` and
/// `lakecache_backend_request_duration_seconds` by operation), which the daemon exports to Prometheus;
/// without a metrics backend they are swift-metrics' no-ops.
package final class BackendMetrics: Sendable {
    private let requestsByKind = Mutex<[String: Int]>([:])
    private let timers = Mutex<[String: (firstByte: CoreMetrics.Timer, total: CoreMetrics.Timer)]>([:])
    package let bytesIn = Atomic<Int64>(0)
    package let bytesOut = Atomic<Int64>(0)
    /// Requests that failed after retries, not counting NoSuchKey (an expected answer to lookups).
    package let errors = Atomic<Int>(0)
    package let retries = Atomic<Int>(0)

    package init() {}

    func countRequest(_ kind: String) {
        requestsByKind.withLock { $0[kind, default: 0] += 1 }
    }

    /// Records one exchange's latencies under its operation.
    func record(_ op: String, _ timing: HTTPTiming) {
        guard timing.totalMicroseconds > 0 else { return }
        let pair = timers.withLock { all in
            if let t = all[op] { return t }
            let t = (
                firstByte: CoreMetrics.Timer(label: "lakecache_backend_first_byte_seconds", dimensions: [("operation", op)]),
                total: CoreMetrics.Timer(label: "lakecache_backend_request_duration_seconds", dimensions: [("operation", op)])
            )
            all[op] = t
            return t
        }
        pair.firstByte.recordMicroseconds(timing.firstByteMicroseconds)
        pair.total.recordMicroseconds(timing.totalMicroseconds)
    }

    /// Requests sent so far, by operation name (GetObject, PutObject, …), retries included.
    package var requests: [String: Int] { requestsByKind.withLock { $0 } }
}
