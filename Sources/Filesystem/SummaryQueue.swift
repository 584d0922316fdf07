import Platform
import Synchronization

/// The directories whose metadata summaries are out of date, with what changed in each since its last
/// rewrite, and the rewrites in flight.
///
/// Changes are gathered for a quiet moment before a directory is rewritten (one LIST and one PUT for a
/// burst of writes, not one per file), but never longer than `maxDelay` after the first of them.
final class SummaryQueue: Sendable {
    enum Change: Sendable, Equatable {
        case set(DirectorySummary.Entry)
        case removed
    }

    struct Pending: Sendable {
        var link: Link
        var changes: [String: Change] = [:]
        var first: Double
        var last: Double
        /// Rewrites of these changes that failed.
        var failures = 0
    }

    private struct State {
        var pending: [String: Pending] = [:]
        var writing: Set<String> = []
        var flusherRunning = false
    }

    /// Seconds without a change before a directory is rewritten, and at most after its first change.
    static let quiet = 1.0
    static let maxDelay = 10.0
    /// A failed rewrite is tried again after this many seconds, this many times at most.
    static let retryDelay = 5.0
    static let attempts = 5

    private let state = Locked(State())

    /// Records a change of `name` in the directory at namespace path `dir`; true when no flusher runs and
    /// the caller must start one.
    func record(dir: String, link: Link, name: String, _ change: Change, now: Double) -> Bool {
        state.withLock { s in
            s.pending[dir, default: Pending(link: link, first: now, last: now)].changes[name] = change
            s.pending[dir]!.last = now
            if s.flusherRunning { return false }
            s.flusherRunning = true
            return true
        }
    }

    /// Takes the directories due for a rewrite (all of them with `all`), marking them as being written; a
    /// directory being written stays queued until that write ends.
    func takeDue(now: Double, all: Bool) -> [(String, Pending)] {
        state.withLock { s in
            let due = s.pending.filter { dir, p in
                !s.writing.contains(dir) && (all || now - p.last >= Self.quiet || now - p.first >= Self.maxDelay)
            }
            for (dir, _) in due {
                s.pending.removeValue(forKey: dir)
                s.writing.insert(dir)
            }
            return due.map { ($0.key, $0.value) }
        }
    }

    /// A rewrite ended. A failed one puts its changes back under any that came since (newer ones win), to be
    /// tried again after `retryDelay`; false when they were tried `attempts` times and are dropped.
    @discardableResult
    func finished(_ dir: String, requeue failed: Pending?, now: Double) -> Bool {
        state.withLock { s in
            s.writing.remove(dir)
            guard var failed else { return true }
            failed.failures += 1
            guard failed.failures < Self.attempts else { return false }
            // Due again once `retryDelay` has passed: `first` and `last` both move, or maxDelay would fire now.
            failed.first = now + Self.retryDelay - Self.maxDelay
            failed.last = now + Self.retryDelay - Self.quiet
            if let newer = s.pending[dir] {
                failed.changes.merge(newer.changes) { _, newer in newer }
                failed.first = max(failed.first, newer.first)
                failed.last = max(failed.last, newer.last)
            }
            s.pending[dir] = failed
            return true
        }
    }

    /// Whether anything is queued or being written; when nothing is, the flusher stops (and a later change
    /// starts a new one).
    func idle(stopping: Bool) -> Bool {
        state.withLock { s in
            let idle = s.pending.isEmpty && s.writing.isEmpty
            if idle && stopping { s.flusherRunning = false }
            return idle
        }
    }

    /// Directories queued or being written.
    var count: Int { state.withLock { $0.pending.count + $0.writing.count } }
}
