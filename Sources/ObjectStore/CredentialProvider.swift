import Logging
import Platform
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A source that fetches temporary credentials over the network or from a process.
package protocol CredentialFetching: Sendable {
    /// What messages call the source.
    var name: String { get }
    /// Fetches the credentials now (blocking); the error names the source and never a secret.
    func fetch() throws(ObjectStoreError) -> Credentials
}

/// Hands out the credentials that sign requests, and keeps temporary ones fresh.
///
/// Signing calls `current()` on whatever thread builds a request (FUSE workers included), so it only takes
/// a lock and never waits on the network. Temporary credentials are refreshed by a thread of the provider's
/// own, a while before they expire (`refreshLead`), so no read or upload waits for a refresh. A refresh that
/// fails keeps the old credentials, which stay good until their expiry, and is retried with backoff.
package final class CredentialProvider: Sendable {
    /// Where the credentials come from, for messages: "environment variables", "profile 'train' (AssumeRole …)".
    package let source: String
    private let fetcher: (@Sendable () throws(ObjectStoreError) -> Credentials)?
    private let state: Locked<State>
    private let wake = ThreadSignal()
    private let logger: Logger

    private struct State {
        var credentials: Credentials?
        /// Wall-clock seconds of the last successful fetch, for the lifetime of what it returned.
        var fetchedAt: Int64 = 0
        var refreshes = 0
        var failures = 0
        var lastError: String?
        var refresherStarted = false
    }

    /// Long-lived credentials that are never refreshed.
    package init(static credentials: Credentials, source: String) {
        self.source = source
        fetcher = nil
        state = Locked(State(credentials: credentials))
        logger = Logger(label: "lakecache.credentials")
    }

    /// Credentials that `fetching` obtains, named after it; call `start()` for the first fetch.
    package convenience init(_ fetching: some CredentialFetching) {
        self.init(source: fetching.name) { () throws(ObjectStoreError) in try fetching.fetch() }
    }

    /// Credentials that `fetch` obtains; call `start()` for the first fetch.
    package init(source: String, logger: Logger = Logger(label: "lakecache.credentials"), fetch: @escaping @Sendable () throws(ObjectStoreError) -> Credentials) {
        self.source = source
        fetcher = fetch
        state = Locked(State())
        self.logger = logger
    }

    /// Whether a rejected credential can be replaced by fetching again.
    package var refreshable: Bool { fetcher != nil }

    /// Fetches the first credentials (blocking) unless they are in hand, and starts refreshing them if they expire.
    package func start() throws(ObjectStoreError) {
        guard let fetcher, state.withLock({ $0.credentials == nil }) else { return }
        let fresh = try fetcher()
        let begin = state.withLock { s -> Bool in
            s.credentials = fresh
            s.fetchedAt = Int64(wallClock().seconds)
            guard fresh.expiration != nil, !s.refresherStarted else { return false }
            s.refresherStarted = true
            return true
        }
        if begin { startRefresher() }
    }

    /// The credentials to sign with now; nil before the first `start()` succeeded. Never fetches: it runs on
    /// whatever thread builds a request, FUSE workers and the network thread included.
    package func current() -> Credentials? {
        state.withLock { $0.credentials }
    }

    /// The backend refused the credentials as expired or invalid: fetch new ones now rather than at the lead time.
    package func rejected() {
        guard refreshable else { return }
        wake.signal()
    }

    /// How often the credentials were replaced, and when the current ones expire.
    package var refreshStats: (refreshes: Int, expiration: Int64?, lastError: String?) {
        state.withLock { ($0.refreshes, $0.credentials?.expiration, $0.lastError) }
    }

    /// How long before expiry a refresh starts: five minutes for the usual hour-long credentials, a third of
    /// the lifetime for short ones (and at least half a second).
    package static func refreshLead(lifetime: Double) -> Double {
        min(300, max(0.5, lifetime / 3))
    }

    /// Seconds until the next refresh attempt, given the state at `now` (wall-clock seconds).
    private static func delay(_ s: State, now: Int64) -> Double {
        if s.failures > 0 { return min(30, Double(1 << min(s.failures - 1, 5))) }
        guard let expiration = s.credentials?.expiration else { return 3600 }
        let lifetime = Double(max(1, expiration - s.fetchedAt))
        // At least a second between fetches: a source that keeps handing back nearly expired credentials
        // (IMDS does, shortly before it rotates them) must not be polled in a loop.
        return max(1, Double(expiration - now) - refreshLead(lifetime: lifetime))
    }

    private func startRefresher() {
        let wake = self.wake
        startDetachedThread { [weak self] in
            while true {
                guard let delay = self.map({ me in me.state.withLock { Self.delay($0, now: Int64(wallClock().seconds)) } }) else { return }
                wake.wait(seconds: delay)
                guard let me = self else { return }
                me.refreshOnce()
            }
        }
    }

    private func refreshOnce() {
        guard let fetcher else { return }
        do {
            let fresh = try fetcher()
            state.withLock { s in
                s.credentials = fresh
                s.fetchedAt = Int64(wallClock().seconds)
                s.refreshes += 1
                s.failures = 0
                s.lastError = nil
            }
            logger.debug("credentials refreshed", metadata: ["source": "\(source)", "access_key": "\(fresh.accessKeyID)"])
        } catch {
            let (failures, expiration) = state.withLock { s -> (Int, Int64?) in
                s.failures += 1
                s.lastError = error.message
                return (s.failures, s.credentials?.expiration)
            }
            let left = expiration.map { "\($0 - Int64(wallClock().seconds)) s" } ?? "unknown"
            logger.warning("credential refresh failed; the current credentials stay in use until they expire", metadata: [
                "source": "\(source)", "attempt": "\(failures)", "expires_in": "\(left)", "error": "\(error.message)",
            ])
        }
    }
}
