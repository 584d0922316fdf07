import DequeModule
import ObjectStore
import Synchronization

/// HEADs of objects, single-flight by (bucket, key), with a bounded background queue.
///
/// A listing says nothing of a file's mode or type, so under the `exact` policy each listed file needs its
/// HEAD before its attributes can be shown. The HEADs of a listing page start in the background as the page
/// arrives, at most `backgroundLimit` at a time, so that the lookups that follow (`ls -l`, `os.walk`) find
/// them done or in flight. A lookup that needs one now joins it, or takes it out of the queue and starts it
/// at once: demand never waits behind read-ahead.
final class MetadataFetcher: Sendable {
    typealias Learned = @Sendable (_ bucket: String, _ key: String, _ info: ObjectInfo) -> Void

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
        var queue = Deque<(bucket: String, key: String)>()
        var queued = Set<String>()
        var runningBackground = 0
    }

    /// Keys waiting in the background queue at most; beyond it, later keys are left to their lookups.
    static let queueLimit = 200_000

    private let store: any ObjectStore
    private let backgroundLimit: Int
    private let state = Mutex(State())
    private let learned: Mutex<Learned?> = Mutex(nil)

    init(store: any ObjectStore, backgroundLimit: Int) {
        self.store = store
        self.backgroundLimit = max(1, backgroundLimit)
    }

    /// Sets what hears of every HEAD that succeeded, demand or background.
    func onLearned(_ hook: @escaping Learned) { learned.withLock { $0 = hook } }

    private static func id(_ bucket: String, _ key: String) -> String { bucket + "\u{0}" + key }

    /// The object's metadata now: joins a HEAD in flight, or starts one (taking it out of the queue).
    ///
    /// `known` is asked under the fetcher's lock before a new HEAD starts: a flight that ended just before
    /// has taught the caller's state already (the hook runs before a flight ends), and then the answer is
    /// nil instead of a second HEAD.
    func head(bucket: String, key: String, unless known: () -> Bool) async throws -> ObjectInfo? {
        let id = Self.id(bucket, key)
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<ObjectInfo?, any Error>) in
            enum Step { case joined, start, known }
            let step = state.withLock { s -> Step in
                if s.inFlight[id] != nil {
                    s.inFlight[id]!.waiters.append(Waiter(c))
                    return .joined
                }
                if known() { return .known }
                // A queued key stays in the deque; the pump skips keys no longer in `queued`.
                s.queued.remove(id)
                s.inFlight[id] = Flight(waiters: [Waiter(c)], background: false)
                return .start
            }
            switch step {
            case .joined: break
            case .known: c.resume(returning: nil)
            case .start: launch(bucket: bucket, key: key, id: id)
            }
        }
    }

    /// The object's metadata now, joining a HEAD in flight.
    func head(bucket: String, key: String) async throws -> ObjectInfo {
        // Without a `known` check the answer is always a HEAD's.
        try await head(bucket: bucket, key: key, unless: { false })!
    }

    /// Queues HEADs of `keys` behind any demand; keys in flight or queued already are skipped.
    func prefetch(bucket: String, keys: [String]) {
        guard !keys.isEmpty else { return }
        state.withLock { s in
            for key in keys where s.queue.count < Self.queueLimit {
                let id = Self.id(bucket, key)
                guard s.inFlight[id] == nil, s.queued.insert(id).inserted else { continue }
                s.queue.append((bucket, key))
            }
        }
        pump()
    }

    /// Background HEADs waiting or running, for status and tests.
    var backlog: Int { state.withLock { $0.queued.count + $0.runningBackground } }

    private func pump() {
        var starts: [(String, String, String)] = []
        state.withLock { s in
            while s.runningBackground < backgroundLimit, let next = s.queue.popFirst() {
                let id = Self.id(next.bucket, next.key)
                guard s.queued.remove(id) != nil, s.inFlight[id] == nil else { continue }
                s.inFlight[id] = Flight(background: true)
                s.runningBackground += 1
                starts.append((next.bucket, next.key, id))
            }
        }
        for (bucket, key, id) in starts { launch(bucket: bucket, key: key, id: id) }
    }

    private func launch(bucket: String, key: String, id: String) {
        Task {
            let result: Result<ObjectInfo, any Error>
            do { result = .success(try await store.headObject(bucket: bucket, key: key)) } catch { result = .failure(error) }
            // Learned before the flight ends: a lookup that no longer finds the flight finds the listing taught.
            if case .success(let info) = result, let hook = learned.withLock({ $0 }) { hook(bucket, key, info) }
            let flight = state.withLock { s -> Flight? in
                let f = s.inFlight.removeValue(forKey: id)
                if f?.background == true { s.runningBackground -= 1 }
                return f
            }
            for w in flight?.waiters ?? [] { w.continuation.resume(with: result.map { $0 }) }
            pump()
        }
    }
}
