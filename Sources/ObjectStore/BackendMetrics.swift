import Platform
import Synchronization

/// Counters of backend traffic, safe to bump from the network thread and read from anywhere.
package final class BackendMetrics: Sendable {
    private let requestsByKind = Mutex<[String: Int]>([:])
    package let bytesIn = Atomic<Int64>(0)
    package let bytesOut = Atomic<Int64>(0)
    /// Requests that failed after retries, not counting NoSuchKey (an expected answer to lookups).
    package let errors = Atomic<Int>(0)
    package let retries = Atomic<Int>(0)

    package init() {}

    func countRequest(_ kind: String) {
        requestsByKind.withLock { $0[kind, default: 0] += 1 }
    }

    /// Requests sent so far, by operation name (GetObject, PutObject, …), retries included.
    package var requests: [String: Int] { requestsByKind.withLock { $0 } }
}
