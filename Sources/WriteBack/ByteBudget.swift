import Platform
import Synchronization

/// Bytes that requests may hold at once; a request over the limit waits until enough come back.
///
/// Bounds the write path's part bodies read back from staging files, so that a backlog of uploads does not
/// hold `concurrency` part-sized buffers on top of the memory tier. Waiters are served in arrival order. A
/// single request larger than the limit is let through when nothing else is held, so it cannot wait forever.
final class ByteBudget: Sendable {
    private struct State {
        var held = 0
        var waiting: [(bytes: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    let limit: Int
    private let state = Locked(State())

    init(limit: Int) { self.limit = max(1, limit) }

    /// Bytes held now.
    var held: Int { state.withLock { $0.held } }

    /// Requests waiting for bytes now.
    var waiters: Int { state.withLock { $0.waiting.count } }

    /// Takes `bytes`, waiting while they would pass the limit.
    func acquire(_ bytes: Int) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                guard s.waiting.isEmpty, s.held == 0 || s.held + bytes <= limit else {
                    s.waiting.append((bytes, c))
                    return false
                }
                s.held += bytes
                return true
            }
            if now { c.resume() }
        }
    }

    /// Gives back `bytes` and starts the waiters that now fit, in order.
    func release(_ bytes: Int) {
        let ready = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.held -= bytes
            var out: [CheckedContinuation<Void, Never>] = []
            while let first = s.waiting.first, s.held == 0 || s.held + first.bytes <= limit {
                s.held += first.bytes
                out.append(s.waiting.removeFirst().continuation)
            }
            return out
        }
        for c in ready { c.resume() }
    }
}
