import Filesystem
import Logging
import Platform
import Synchronization

/// What runs by itself per link: syncs every `sync-interval`, and the last result of each for `links`.
final class BackgroundWork: Sendable {
    private struct State {
        var timers: [String: Task<Void, Never>] = [:]
        /// The interval each timer was started for, to restart it only when it changed.
        var intervals: [String: Double] = [:]
        var lastSync: [String: SyncReport] = [:]
        var stopped = false
    }

    private let state = Mutex(State())
    private let filesystem: Filesystem
    private let cacheDir: String
    private let logger: Logger

    init(filesystem: Filesystem, cacheDir: String, logger: Logger) {
        self.filesystem = filesystem
        self.cacheDir = cacheDir
        self.logger = logger
    }

    /// (Re)starts the per-link work for the links now serving; work of links gone or changed stops.
    func start(_ links: [Link]) {
        let wanted = Dictionary(links.compactMap { l in l.policy.syncInterval.map { (l.path, $0) } }, uniquingKeysWith: { $1 })
        state.withLock { s in
            guard !s.stopped else { return }
            for (path, task) in s.timers where wanted[path] != s.intervals[path] {
                task.cancel()
                s.timers.removeValue(forKey: path)
                s.intervals.removeValue(forKey: path)
            }
            for (path, interval) in wanted where s.timers[path] == nil {
                s.intervals[path] = interval
                s.timers[path] = Task { [self] in await syncEvery(interval, path) }
            }
        }
    }

    private func syncEvery(_ interval: Double, _ path: String) async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
            if Task.isCancelled { return }
            do {
                let r = try await filesystem.sync(path: path)
                recordSync(path, r)
                if r.new + r.changed + r.deleted > 0 {
                    logger.info("background sync", metadata: [
                        "link": "/\(path)", "new": "\(r.new)", "changed": "\(r.changed)", "deleted": "\(r.deleted)", "seconds": "\(r.seconds)",
                    ])
                }
            } catch {
                logger.warning("background sync failed; retried at the next interval", metadata: ["link": "/\(path)", "error": "\(error)"])
            }
        }
    }

    func recordSync(_ link: String, _ r: SyncReport) { state.withLock { $0.lastSync[link] = r } }

    func lastSync(_ link: String) -> SyncReport? { state.withLock { $0.lastSync[link] } }

    func stop() {
        state.withLock { s in
            s.stopped = true
            for t in s.timers.values { t.cancel() }
            s.timers = [:]
        }
    }
}
