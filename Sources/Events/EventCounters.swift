import Platform
import Control
import Synchronization

/// What the events endpoint has seen, for `status`: accepted, applied, and each kind of refusal.
package final class EventCounters: Sendable {
    private let counts = Locked<[String: Int]>([:])
    private let last = Locked<String?>(nil)

    package init() {}

    package func add(_ name: String, _ n: Int = 1) {
        guard n != 0 else { return }
        counts.withLock { $0[name, default: 0] += n }
    }

    package subscript(name: String) -> Int { counts.withLock { $0[name] ?? 0 } }

    /// Remembers the most recent refusal's reason, for `status`.
    package func refused(_ r: EventRejection) {
        add("rejected_" + r.counter)
        last.withLock { $0 = "\(r.status) \(r.reason)" }
    }

    package var all: [String: Int] { counts.withLock { $0 } }
    package var lastRejection: String? { last.withLock { $0 } }
}
