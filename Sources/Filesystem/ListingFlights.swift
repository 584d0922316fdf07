import Platform
import Synchronization

/// Directories whose listings are being fetched ahead of the application, and who waits for them.
///
/// An application that reaches a directory while its read-ahead LIST is out waits for that LIST instead of
/// sending its own: a walk then lists each directory once.
final class ListingFlights: Sendable {
    private struct State {
        var inFlight: [String: [CheckedContinuation<Void, Never>]] = [:]
    }

    private let state = Locked(State())

    /// Marks those of `paths` not in flight already as in flight and returns them, at most `limit` in
    /// flight in all.
    func begin(_ paths: [String], limit: Int) -> [String] {
        state.withLock { s in
            var started: [String] = []
            for p in paths where s.inFlight[p] == nil && s.inFlight.count < limit {
                s.inFlight[p] = []
                started.append(p)
            }
            return started
        }
    }

    /// Ends the flight of `path` and wakes whoever waits for it.
    func finish(_ path: String) {
        let waiters = state.withLock { $0.inFlight.removeValue(forKey: path) } ?? []
        for w in waiters { w.resume() }
    }

    /// Returns once no read-ahead LIST of `path` is out (at once if none is).
    func wait(_ path: String) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let waiting = state.withLock { s -> Bool in
                guard s.inFlight[path] != nil else { return false }
                s.inFlight[path]!.append(c)
                return true
            }
            if !waiting { c.resume() }
        }
    }

    /// Whether a read-ahead LIST of `path` is out.
    func isInFlight(_ path: String) -> Bool { state.withLock { $0.inFlight[path] != nil } }

    /// Read-ahead LISTs out now.
    var count: Int { state.withLock { $0.inFlight.count } }
}
