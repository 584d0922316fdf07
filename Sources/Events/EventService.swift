import Control
import Filesystem
import Logging
import Platform
import Synchronization

/// Takes object-store events in (dedupe, journal) and applies them to the namespace in order, preloading
/// new objects where a link says `on-create: preload`.
package final class EventService: Sendable {
    /// Fills one file into the disk tier at warmup priority; true when all of it landed.
    package typealias Preload = @Sendable (WarmTarget) async -> Bool

    package let journal: EventJournal
    package let counters = EventCounters()
    package let verifier: SNSVerifier
    private let filesystem: Filesystem
    private let preload: Preload
    private let logger: Logger
    private let order = Locked(EventOrder())
    /// Serializes the admit-journal-commit step, so a refused journal write leaves no sequencer behind.
    private let intake = Locked(())
    private let queue: AsyncStream<(Int64, ObjectEvent)>.Continuation
    private let stream: AsyncStream<(Int64, ObjectEvent)>
    private let preloads = AsyncLimiter(4)
    /// What an earlier run accepted and did not apply, as the journal held it at start.
    private let replay: [(id: Int64, event: ObjectEvent)]
    /// Accepted events not yet applied, past which a sender is told to retry later (503).
    package static let maxPending = 100_000

    package init(filesystem: Filesystem, journal: EventJournal, verifier: SNSVerifier, logger: Logger, preload: @escaping Preload) {
        self.filesystem = filesystem
        self.journal = journal
        self.verifier = verifier
        self.logger = logger
        self.preload = preload
        (stream, queue) = AsyncStream.makeStream(of: (Int64, ObjectEvent).self)
        replay = journal.pending
    }

    /// Applies events until `stop`; first those an earlier run accepted and did not apply.
    package func run() async {
        // Events accepted since the start are in the stream already: only the earlier run's are replayed.
        for (id, e) in replay where !Task.isCancelled { await apply(id, e) }
        for await (id, e) in stream {
            if Task.isCancelled { break }
            await apply(id, e)
        }
    }

    /// Ends `run` after the event being applied; what is left stays in the journal for the next start.
    package func stop() {
        queue.finish()
        io.shutdown()
    }

    /// The journal's writes and fdatasyncs run here, not on the cooperative pool that FUSE requests share.
    private let io = IOThreadPool(threads: 1, name: "lakecache-events")

    /// `acceptNow` on the journal's thread.
    package func accept(_ events: [ObjectEvent]) async throws(EventRejection) -> Accepted {
        let r: Result<Accepted, EventRejection> = await withCheckedContinuation { c in
            io.submit { [self] in c.resume(returning: Result { () throws(EventRejection) in try acceptNow(events) }) }
        }
        return try r.get()
    }

    private func done(_ id: Int64) { io.submit { [journal] in journal.done(id) } }

    /// The answer to a batch of events: what was accepted, what was known already.
    package struct Accepted: Sendable {
        package var accepted = 0
        package var duplicates = 0
        package var stale = 0
        package var outside = 0
    }

    /// Dedupes the events by (bucket, key, sequencer), journals the rest durably, and queues them. Throws
    /// (nothing queued) when no link shows any of them, or the journal cannot be written.
    package func acceptNow(_ events: [ObjectEvent]) throws(EventRejection) -> Accepted {
        var result = Accepted()
        let shown = events.filter { filesystem.shows(bucket: $0.bucket, key: $0.key) }
        result.outside = events.count - shown.count
        counters.add("outside_links", result.outside)
        guard !shown.isEmpty else {
            let e = events[0]
            throw EventRejection(422, "outside_links", "no link of this mount shows s3://\(e.bucket)/\(e.key) (check the link's bucket, prefix and globs, or narrow the notification's prefix filter)")
        }
        guard journal.pendingCount < Self.maxPending else {
            throw EventRejection(503, "backlog", "\(journal.pendingCount) accepted events are not applied yet; send this one again later")
        }
        let r: Result<[ObjectEvent], EventRejection> = intake.withLock { _ in
            var fresh: [ObjectEvent] = []
            var trial = [String: String]()
            for e in shown {
                // Within one batch too: the second of two identical records is a duplicate.
                let id = e.bucket + "\u{0}" + e.key
                if let seq = e.sequencer, let seen = trial[id] {
                    let c = Sequencer.compare(seq, seen)
                    if c == 0 { result.duplicates += 1; continue }
                    if c < 0 { result.stale += 1; continue }
                }
                switch order.withLock({ $0.peek(bucket: e.bucket, key: e.key, sequencer: e.sequencer) }) {
                case .duplicate: result.duplicates += 1
                case .stale: result.stale += 1
                case .newer:
                    fresh.append(e)
                    if let seq = e.sequencer { trial[id] = seq }
                }
            }
            guard !fresh.isEmpty else { return .success([]) }
            switch journal.append(fresh) {
            case .failure(let error):
                return .failure(EventRejection(503, "journal_failed", "\(error.message); the event was not accepted: send it again"))
            case .success(let ids):
                order.withLock { o in for e in fresh { _ = o.admit(bucket: e.bucket, key: e.key, sequencer: e.sequencer) } }
                for (id, e) in zip(ids, fresh) { queue.yield((id, e)) }
                return .success(fresh)
            }
        }
        switch r {
        case .failure(let e): throw e
        case .success(let fresh): result.accepted = fresh.count
        }
        counters.add("accepted", result.accepted)
        counters.add("duplicates", result.duplicates)
        counters.add("stale", result.stale)
        return result
    }

    /// Reconciles the key with the bucket (a HEAD, retried on failure), then preloads where asked.
    private func apply(_ id: Int64, _ e: ObjectEvent) async {
        var effects = await filesystem.objectChanged(bucket: e.bucket, key: e.key)
        var attempt = 1
        while attempt < 4, effects.contains(where: { if case .skipped(let why) = $0.change { return why.hasPrefix("HEAD failed") } else { return false } }) {
            try? await Task.sleep(nanoseconds: UInt64(attempt) * 1_000_000_000)
            effects = await filesystem.objectChanged(bucket: e.bucket, key: e.key)
            attempt += 1
        }
        counters.add("applied")
        var targets: [WarmTarget] = []
        for f in effects {
            let what: String
            switch f.change {
            case .appeared: what = "appeared"
            case .changed: what = "changed: old blocks and pages dropped"
            case .vanished: what = "vanished"
            case .unchanged: what = "unchanged"
            case .skipped(let why): what = "left alone: \(why)"; counters.add("failed")
            }
            counters.add(Self.name(f.change))
            logger.info("event applied", metadata: ["event": "\(e.name)", "object": "s3://\(e.bucket)/\(e.key)", "path": "/\(f.path)", "effect": "\(what)"])
            if let t = f.preload { targets.append(t) }
        }
        guard !targets.isEmpty else { return done(id) }
        // Preloads run beside the next events; the journal keeps the event until they finish.
        Task { [self] in
            for t in targets {
                await preloads.run { [self] in
                    let ok = await preload(t)
                    counters.add(ok ? "preloaded" : "preload_failed")
                    if !ok { logger.warning("event preload did not complete", metadata: ["path": "/\(t.path)"]) }
                }
            }
            done(id)
        }
    }

    static func name(_ c: EventEffect.Change) -> String {
        switch c {
        case .appeared: return "appeared"
        case .changed: return "changed"
        case .vanished: return "vanished"
        case .unchanged: return "unchanged"
        case .skipped: return "skipped"
        }
    }
}

/// At most `limit` bodies at once, the rest waiting in order.
final class AsyncLimiter: Sendable {
    private let state: Locked<(free: Int, waiting: [CheckedContinuation<Void, Never>])>

    init(_ limit: Int) { state = Locked((limit, [])) }

    func run(_ body: @Sendable () async -> Void) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let go = state.withLock { s -> Bool in
                if s.free > 0 { s.free -= 1; return true }
                s.waiting.append(c)
                return false
            }
            if go { c.resume() }
        }
        await body()
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiting.isEmpty { s.free += 1; return nil }
            return s.waiting.removeFirst()
        }
        next?.resume()
    }
}
