import Filesystem
import Logging
import ObjectStore
import Platform
import Synchronization

/// Turns link plans into live links: one S3 client per store (shared by the links on it), and per link a
/// counting view of it and counters that outlive a reload of the same path.
final class NamespaceBuilder: Sendable {
    private struct State {
        var clients: [String: S3Client] = [:]
        var requests: [String: RequestCounters] = [:]
        var counters: [String: LinkCounters] = [:]
        /// The links now, for the journal's store lookups.
        var current: [Link] = []
        /// The plans now, for `links` and `status`.
        var plans: [String: LinkPlan] = [:]
    }

    private let state = Locked(State())
    private let maxConcurrency: Int

    init(maxConcurrency: Int) { self.maxConcurrency = maxConcurrency }

    /// Links for `plans`, reusing the clients, counters and (for an unchanged plan) the `Link` objects of the
    /// links there already are.
    func links(for plans: [LinkPlan]) -> [Link] {
        state.withLock { s in
            plans.map { plan in
                if let old = s.current.first(where: { $0.path == plan.path }), let oldPlan = s.plans[plan.path], Self.same(oldPlan, plan) {
                    return old
                }
                let client: S3Client
                if let existing = s.clients[plan.storeName] {
                    client = existing
                } else {
                    var config = plan.s3
                    config.transport.maxConcurrentTransfers = maxConcurrency
                    client = S3Client(configuration: config, logger: Logger(label: "lakecache.s3"))
                    s.clients[plan.storeName] = client
                }
                let requests = s.requests[plan.path] ?? RequestCounters()
                s.requests[plan.path] = requests
                let counters = s.counters[plan.path] ?? LinkCounters()
                s.counters[plan.path] = counters
                let store = Store(name: plan.storeName, client: CountingObjectStore(client, counters: requests))
                return Link(path: plan.path, bucket: plan.bucket, store: store, policy: plan.policy, counters: counters)
            }
        }
    }

    /// Records the links now serving (after the table took them).
    func commit(_ links: [Link], plans: [LinkPlan]) {
        state.withLock { s in
            s.current = links
            s.plans = Dictionary(plans.map { ($0.path, $0) }, uniquingKeysWith: { $1 })
        }
    }

    static func same(_ a: LinkPlan, _ b: LinkPlan) -> Bool {
        a.bucket == b.bucket && a.storeName == b.storeName && a.policy == b.policy
    }

    /// The store a journal record names, if a link of the mount uses it.
    func store(named name: String) -> Store? {
        state.withLock { s in s.current.first { $0.store.name == name }?.store }
    }

    /// The client of a store, for its own metrics.
    var clients: [String: S3Client] { state.withLock { $0.clients } }

    func requests(_ path: String) -> RequestCounters? { state.withLock { $0.requests[path] } }

    func plan(_ path: String) -> LinkPlan? { state.withLock { $0.plans[path] } }

    func shutdown() {
        for client in state.withLock({ Array($0.clients.values) }) { client.shutdown() }
    }
}
