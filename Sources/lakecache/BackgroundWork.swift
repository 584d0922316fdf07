import Filesystem
import Logging
import ReadCache
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

    private let state = Locked(State())
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

    /// Lists each link whole in the background (`import: preload`, or an immutable link without a saved
    /// listing), then, for `preload`, fills the disk tier with its data below every application read.
    func importListings(_ links: [Link]) {
        for link in links {
            Task { [self] in
                let started = monotonicSeconds()
                do {
                    let n = try await filesystem.listWhole(link)
                    logger.info("link listed whole", metadata: ["link": "/\(link.path)", "objects": "\(n)", "seconds": "\(monotonicSeconds() - started)"])
                } catch {
                    logger.warning("cannot list the link whole; it is listed directory by directory as it is used", metadata: ["link": "/\(link.path)", "error": "\(error)"])
                    return
                }
                guard link.policy.preload else { return }
                let demand = DemandSampler(cache: filesystem.cache)
                let r = await filesystem.preloadData(link, busy: { demand.busy() })
                logger.info("link preloaded", metadata: [
                    "link": "/\(link.path)", "objects": "\(r.objects)", "bytes": "\(r.bytes)",
                    "stopped": "\(r.stoppedFull ? "the disk tier is nearly full" : "no")",
                ])
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

/// Whether applications are reading from the backend now: cache misses, or read-ahead their reads started
/// (a sequential window, a directory's small files, a listing's metadata), in the last `quiet` seconds.
/// Warmup fills count as neither. Misses alone are not enough: an epoch whose files the directory read-ahead
/// fetched first reads them as hits, and a warmup that saw no misses ran beside it at full speed.
///
/// An epoch's demand comes in bursts with short gaps (a directory's files all fetched ahead, the next not
/// listed yet). With a 100-ms window every gap let each warmup thread start an 8 MiB GET, and a cold epoch
/// beside an 8-thread warmup ran 18–24% slower than alone; remembering demand for half a second brought
/// that to 7.4–7.6% (three alternating pairs each).
final class DemandSampler: Sendable {
    /// How long after the last demand a warmup still waits.
    static let quiet = 0.5
    private let cache: BlockCache
    private let last: Locked<(count: Int, at: Double)>

    init(cache: BlockCache) {
        self.cache = cache
        // What happened before the sampler existed is not demand now.
        last = Locked((Self.count(cache), -Double.infinity))
    }

    private static func count(_ cache: BlockCache) -> Int {
        cache.misses.load(ordering: .relaxed) + cache.prefetches.load(ordering: .relaxed)
    }

    func busy() -> Bool {
        let now = monotonicSeconds()
        let count = Self.count(cache)
        return last.withLock { s in
            if count != s.count {
                s.count = count
                s.at = now
            }
            return now - s.at < Self.quiet
        }
    }
}
