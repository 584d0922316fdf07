import Logging
import ObjectStore
import Platform
import Synchronization

/// A token bucket for the warnings of failed operations, so that a storm of failures cannot flood the log.
final class FailureLog: Sendable {
    private struct State {
        var tokens: Double = 20
        var last: Double = 0
        var suppressed = 0
    }

    private let state = Locked(State())
    /// Warnings allowed per second on average, and in a burst.
    static let rate = 5.0
    static let burst = 20.0

    /// Whether to log one more warning now, and how many were held back since the last one logged.
    func admit() -> (Bool, suppressed: Int) {
        let now = monotonicSeconds()
        return state.withLock { s in
            s.tokens = min(Self.burst, s.tokens + (now - s.last) * Self.rate)
            s.last = now
            guard s.tokens >= 1 else {
                s.suppressed += 1
                return (false, 0)
            }
            s.tokens -= 1
            defer { s.suppressed = 0 }
            return (true, s.suppressed)
        }
    }
}

extension Filesystem {
    /// The error an application gets because a backend request or an internal step failed, logged once at
    /// warning level with the operation, the path and the cause, whatever errno it maps to.
    func failed(_ operation: String, _ path: String, _ error: any Error) -> FilesystemError {
        let e = FilesystemError.from(error)
        warnRateLimited("operation failed", ["operation": "\(operation)", "path": "/\(path)", "errno": "\(e.errno)", "cause": "\(error)"])
        return e
    }

    /// A warning within the failures' rate limit, with how many were held back since the last one.
    func warnRateLimited(_ message: Logger.Message, _ metadata: @autoclosure () -> Logger.Metadata) {
        let (log, suppressed) = failures.admit()
        guard log else { return }
        var m = metadata()
        if suppressed > 0 { m["suppressed_since_last"] = "\(suppressed)" }
        logger.warning(message, metadata: m)
    }
}
