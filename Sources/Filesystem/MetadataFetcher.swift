import DequeModule
import Platform
import ObjectStore
import ReadCache
import Synchronization

/// Learns objects' metadata, single-flight by (bucket, key), with a bounded background queue.
///
/// A listing says nothing of a file's mode or type, so under the `exact` policy each listed file needs a HEAD
/// before its attributes can be shown. The files of a listing page are queued as the page arrives and
/// fetched `backgroundLimit` at a time, so that the lookups that follow (`ls -l`, `os.walk`) find them done
/// or in flight. A lookup that needs one now joins it, or takes it out of the queue and starts it at once:
/// demand never waits behind read-ahead. An object small enough for one small cache slot is fetched whole
/// by a GET instead (`BlockCache.prefetchSmallObject`): its headers say what a HEAD's would, for the same
/// one request, and the read that usually follows is then a hit.
final class MetadataFetcher: Sendable {
    typealias Learned = @Sendable (_ bucket: String, _ key: String, _ info: ObjectInfo) -> Void
    /// Starts a whole-object GET through the cache; false when it did not start.
    typealias SmallFetch = @Sendable (ObjectVersion, @escaping BlockCache.MetadataSink) -> Bool

    /// An object a listing showed.
    struct Item: Sendable {
        var bucket: String
        var key: String
        var etag: String
        var size: Int64
    }

    private struct Waiter {
        let continuation: CheckedContinuation<ObjectInfo?, any Error>
        init(_ c: CheckedContinuation<ObjectInfo?, any Error>) { continuation = c }
    }

    private struct Flight {
        var waiters: [Waiter] = []
        var background: Bool
    }

    private struct State {
        var inFlight: [String: Flight] = [:]
        var queue = Deque<String>()
        var queued: [String: Item] = [:]
        var runningBackground = 0
    }

    /// Keys waiting in the background queue at most; beyond it, later keys are left to their lookups.
    static let queueLimit = 200_000

    private let store: any ObjectStore
    private let backgroundLimit: Int
    private let smallFetch: SmallFetch?
    private let state = Locked(State())
    /// In a struct: a lock holding a bare closure re-wraps it in a reabstraction thunk at every
    /// `withLock { $0 }`, which made more than half of the daemon's CPU in an `ls -l` of 10,000 files.
    private struct Hook { var learned: Learned? }
    private let hook = Locked(Hook())

    init(store: any ObjectStore, backgroundLimit: Int, smallFetch: SmallFetch? = nil) {
        self.store = store
        self.backgroundLimit = max(1, backgroundLimit)
        self.smallFetch = smallFetch
    }

    /// Sets what hears of every fetch that succeeded, demand or background.
    func onLearned(_ learned: @escaping Learned) { hook.withLock { $0.learned = learned } }

    private static func id(_ bucket: String, _ key: String) -> String { bucket + "\u{0}" + key }

    /// The object's metadata now: joins a fetch in flight, or starts one (taking it out of the queue).
    ///
    /// `known` is asked under the fetcher's lock before a new fetch starts: a flight that ended just before
    /// has taught the caller's state already (the hook runs before a flight ends), and then the answer is
    /// nil instead of a second request.
    func head(bucket: String, key: String, unless known: () -> Bool) async throws -> ObjectInfo? {
        let id = Self.id(bucket, key)
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<ObjectInfo?, any Error>) in
            enum Step { case joined, start(Item), known }
            let step = state.withLock { s -> Step in
                if s.inFlight[id] != nil {
                    s.inFlight[id]!.waiters.append(Waiter(c))
                    return .joined
                }
                if known() { return .known }
                // A queued key stays in the deque; the pump skips keys no longer in `queued`.
                let item = s.queued.removeValue(forKey: id) ?? Item(bucket: bucket, key: key, etag: "", size: -1)
                s.inFlight[id] = Flight(waiters: [Waiter(c)], background: false)
                return .start(item)
            }
            switch step {
            case .joined: break
            case .known: c.resume(returning: nil)
            case .start(let item): launch(item, id: id)
            }
        }
    }

    /// The object's metadata now, joining a fetch in flight.
    func head(bucket: String, key: String) async throws -> ObjectInfo {
        // Without a `known` check the answer is always a fetch's.
        try await head(bucket: bucket, key: key, unless: { false })!
    }

    /// Queues the objects behind any demand; objects in flight or queued already are skipped.
    func prefetch(_ items: [Item]) {
        guard !items.isEmpty else { return }
        state.withLock { s in
            for item in items where s.queue.count < Self.queueLimit {
                let id = Self.id(item.bucket, item.key)
                guard s.inFlight[id] == nil, s.queued[id] == nil else { continue }
                s.queued[id] = item
                s.queue.append(id)
            }
        }
        pump()
    }

    /// Background fetches waiting or running, for status and tests.
    var backlog: Int { state.withLock { $0.queued.count + $0.runningBackground } }

    private func pump() {
        var starts: [(Item, String)] = []
        state.withLock { s in
            while s.runningBackground < backgroundLimit, let id = s.queue.popFirst() {
                guard let item = s.queued.removeValue(forKey: id), s.inFlight[id] == nil else { continue }
                s.inFlight[id] = Flight(background: true)
                s.runningBackground += 1
                starts.append((item, id))
            }
        }
        for (item, id) in starts { launch(item, id: id) }
    }

    /// A whole-object GET for a small object the listing described, else (or if that brings no headers) a HEAD.
    private func launch(_ item: Item, id: String) {
        if item.size > 0, !item.etag.isEmpty, let smallFetch {
            let version = ObjectVersion(bucket: item.bucket, key: item.key, etag: item.etag, size: item.size)
            let started = smallFetch(version) { [self] result in
                if case .success(let r?) = result {
                    let info = ObjectInfo(
                        key: item.key, size: r.objectSize, etag: r.etag, lastModified: r.lastModified ?? Timestamp(seconds: 0),
                        metadata: r.metadata)
                    land(item, id: id, .success(info))
                } else {
                    // Served from the disk tier (no headers), or changed since the listing (412): ask plainly.
                    headThenLand(item, id: id)
                }
            }
            if started { return }
        }
        headThenLand(item, id: id)
    }

    private func headThenLand(_ item: Item, id: String) {
        Task {
            do { land(item, id: id, .success(try await store.headObject(bucket: item.bucket, key: item.key))) } catch { land(item, id: id, .failure(error)) }
        }
    }

    private func land(_ item: Item, id: String, _ result: Result<ObjectInfo, any Error>) {
        // Learned before the flight ends: a lookup that no longer finds the flight finds the listing taught.
        if case .success(let info) = result, let learned = hook.withLock({ $0.learned }) { learned(item.bucket, item.key, info) }
        let flight = state.withLock { s -> Flight? in
            let f = s.inFlight.removeValue(forKey: id)
            if f?.background == true { s.runningBackground -= 1 }
            return f
        }
        for w in flight?.waiters ?? [] { w.continuation.resume(with: result.map { $0 }) }
        pump()
    }
}
