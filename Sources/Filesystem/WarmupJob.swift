import ObjectStore
import Platform
import Synchronization

/// A warmup running inside the daemon, so it outlives the command that started it: files fetched into the
/// disk tier `threads` at a time, yielding to demand reads, within a bandwidth cap.
package final class WarmupJob: Sendable {
    package enum State: String, Sendable { case running, done, failed, cancelled }

    /// What a job is asked to do.
    package struct Request: Sendable {
        package var paths: [String]
        package var threads = 8
        /// Bytes per second at most; nil for no cap.
        package var bandwidth: Int64?
        /// Keep the data in the memory tier too.
        package var memory = false
        /// Pin the files once cached.
        package var pin = false
        package init(paths: [String]) { self.paths = paths }
    }

    /// Progress, for `jobs` and the progress bar.
    package struct Progress: Sendable {
        package var id: Int
        package var state: State
        package var paths: [String]
        package var filesTotal = 0
        package var filesDone = 0
        package var bytesTotal: Int64 = 0
        package var bytesDone: Int64 = 0
        /// Bytes fetched from the bucket by this job (the rest were cached already).
        package var bytesFetched: Int64 = 0
        package var failures: [WarmFailure] = []
        package var seconds = 0.0
        /// Listing the paths, before the totals are known.
        package var listing = true
    }

    package let id: Int
    let request: Request
    private let progress: Mutex<Progress>
    private let cancelled = Atomic<Bool>(false)
    private let started = monotonicSeconds()
    private let bucket: TokenBucket?

    package init(id: Int, request: Request) {
        self.id = id
        self.request = request
        progress = Mutex(Progress(id: id, state: .running, paths: request.paths))
        bucket = request.bandwidth.map { TokenBucket(rate: $0) }
    }

    package var snapshot: Progress {
        var p = progress.withLock { $0 }
        p.seconds = monotonicSeconds() - started
        return p
    }

    package func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// Runs the job to its end; `busy` says whether applications are reading now (warmup then waits).
    package func run(_ fs: Filesystem, busy: @escaping @Sendable () -> Bool) async {
        let (targets, failures) = await fs.warmTargets(request.paths)
        let total = targets.reduce(Int64(0)) { $0 + $1.size }
        progress.withLock { p in
            p.filesTotal = targets.count
            p.bytesTotal = total
            p.failures = failures
            p.listing = false
        }
        if let disk = fs.cache.disk, total > disk.capacity - disk.pinnedBytes {
            finish(.failed, failure: WarmFailure(path: request.paths.joined(separator: " "), reason: "did not fit in the cache: \(ByteCount.format(total)) asked for, the disk tier holds \(ByteCount.format(disk.capacity)) (\(ByteCount.format(disk.pinnedBytes)) pinned); raise --cache-size or warm less"))
            return
        }
        let pace: @Sendable (Int64) async -> Bool = { [self] bytes in
            while busy() {
                if cancelled.load(ordering: .relaxed) { return false }
                try? await Task.sleep(nanoseconds: 20_000_000)
            }
            if let bucket { await bucket.take(bytes) }
            return !cancelled.load(ordering: .relaxed)
        }
        var queue = targets[...]
        await withTaskGroup(of: (WarmTarget, Filesystem.WarmResult).self) { group in
            func next() {
                guard let t = queue.popFirst() else { return }
                group.addTask { (t, await fs.warm(t, memory: self.request.memory, pace: pace)) }
            }
            for _ in 0..<max(1, request.threads) { next() }
            for await (t, result) in group {
                switch result {
                case .done(let fetched):
                    let landed = await fs.onDisk(t)
                    progress.withLock { p in
                        p.filesDone += 1
                        p.bytesDone += t.size
                        p.bytesFetched += fetched
                        if !landed { p.failures.append(WarmFailure(path: t.path, reason: "did not fit in the cache: the disk tier skipped some of its blocks (full, or below its free-space floor)")) }
                    }
                case .failed(let why):
                    progress.withLock { $0.failures.append(WarmFailure(path: t.path, reason: why)) }
                case .cancelled:
                    break
                }
                if !cancelled.load(ordering: .relaxed) { next() }
            }
        }
        if cancelled.load(ordering: .relaxed) { return finish(.cancelled) }
        if request.pin, progress.withLock({ $0.failures.isEmpty }), case .failure(let e) = fs.pin(targets) {
            return finish(.failed, failure: WarmFailure(path: request.paths.joined(separator: " "), reason: e.message))
        }
        finish(progress.withLock { $0.failures.isEmpty } ? .done : .failed)
    }

    private func finish(_ state: State, failure: WarmFailure? = nil) {
        progress.withLock { p in
            p.state = state
            if let failure { p.failures.append(failure) }
        }
    }
}

/// Bytes per second, spent as they come: a warmup never takes more than its share of the link.
final class TokenBucket: Sendable {
    private let rate: Double
    private let state: Mutex<(tokens: Double, last: Double)>

    init(rate: Int64) {
        self.rate = Double(max(1, rate))
        state = Mutex((Double(max(1, rate)), monotonicSeconds()))
    }

    func take(_ bytes: Int64) async {
        while true {
            let wait = state.withLock { s -> Double in
                let now = monotonicSeconds()
                s.tokens = min(rate, s.tokens + (now - s.last) * rate)
                s.last = now
                if s.tokens >= Double(bytes) || s.tokens >= rate {
                    s.tokens -= Double(bytes)
                    return 0
                }
                return (Double(bytes) - s.tokens) / rate
            }
            if wait <= 0 { return }
            try? await Task.sleep(nanoseconds: UInt64(min(wait, 1) * 1e9))
        }
    }
}
