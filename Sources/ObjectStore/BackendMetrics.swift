import CoreMetrics
import Platform
import Synchronization

/// Counters of backend traffic by operation, safe to bump from the network thread and read from anywhere.
///
/// One fixed array indexed by `BackendOperation` under one lock: a request's bookkeeping is an index and an
/// add, with no hashing or allocation on the network thread.
///
/// Latencies go to swift-metrics timers (`lakecache_backend_first_byte_seconds` and
/// `lakecache_backend_request_duration_seconds` by operation), which the daemon exports to Prometheus;
/// without a metrics backend they are swift-metrics' no-ops.
package final class BackendMetrics: Sendable {
    private typealias TimerPair = (firstByte: CoreMetrics.Timer, total: CoreMetrics.Timer)
    private let table = Locked([OperationTraffic](repeating: OperationTraffic(), count: BackendOperation.allCases.count))
    // Made on first use, not at init: swift-metrics must be bootstrapped before a timer is made.
    private let timers = Locked([TimerPair?](repeating: nil, count: BackendOperation.allCases.count))

    package init() {}

    /// One attempt sent, with its request body.
    func sent(_ op: BackendOperation, bodyBytes: Int64) {
        table.withLock { t in
            t[op.rawValue].requests += 1
            t[op.rawValue].bytesOut += bodyBytes
        }
    }

    /// An answer's bytes arrived.
    func received(_ op: BackendOperation, bytes: Int64) {
        table.withLock { $0[op.rawValue].bytesIn += bytes }
    }

    /// An attempt failed and will be sent again.
    func retried(_ op: BackendOperation) {
        table.withLock { $0[op.rawValue].retries += 1 }
    }

    /// The operation failed for good (the caller leaves NoSuchKey out).
    func failed(_ op: BackendOperation) {
        table.withLock { $0[op.rawValue].errors += 1 }
    }

    /// Records one exchange's latencies under its operation.
    func record(_ op: BackendOperation, _ timing: HTTPTiming) {
        guard timing.totalMicroseconds > 0 else { return }
        let pair = timers.withLock { all in
            if let t = all[op.rawValue] { return t }
            let dimensions = [("operation", op.name)]
            let t: TimerPair = (
                firstByte: CoreMetrics.Timer(label: "lakecache_backend_first_byte_seconds", dimensions: dimensions),
                total: CoreMetrics.Timer(label: "lakecache_backend_request_duration_seconds", dimensions: dimensions)
            )
            all[op.rawValue] = t
            return t
        }
        pair.firstByte.recordMicroseconds(timing.firstByteMicroseconds)
        pair.total.recordMicroseconds(timing.totalMicroseconds)
    }

    /// A snapshot of the traffic of every operation, indexed by `BackendOperation.rawValue`.
    package var byOperation: [OperationTraffic] { table.withLock { $0 } }

    /// The traffic of one operation.
    package func traffic(_ op: BackendOperation) -> OperationTraffic { table.withLock { $0[op.rawValue] } }

    /// The sum over operations.
    package var totals: OperationTraffic {
        var sum = OperationTraffic()
        for t in byOperation { sum.add(t) }
        return sum
    }

    /// HTTP requests sent so far, by operation name (GetObject, PutObject, …), retries included; operations
    /// never sent are left out.
    package var requests: [String: Int] {
        let all = byOperation
        return BackendOperation.named { all[$0.rawValue].requests }
    }
}
