import ObjectStore
import Platform
import Synchronization

/// A warmup running inside the daemon, so it outlives the command that started it: files fetched into the
/// disk tier `threads` at a time, yielding to demand reads, within a bandwidth cap.
package final class WarmupJob: Sendable {
    package enum State: String, Sendable { case running, done, failed, cancelled }

    /// Bytes one GET of a warmup asks for: adjacent missing blocks go in one request, so a large object pays
    /// a GET's wait for its first byte once per 8 MiB, not per block (the raw S3 figure in `make bench` uses
    /// parts of this size too).
    static let getBytes = 8 << 20

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
        /// Files resolved already (an event's preload); `paths` then only names them.
        package var targets: [WarmTarget]?
        /// Who asked: `cli`, or `event` for a preload on an object-store event.
        package var origin = "cli"
        package init(paths: [String]) { self.paths = paths }
    }

    /// Progress, for `jobs` and the progress bar.
    package struct Progress: Sendable {
        package var id: Int
        package var state: State
        package var paths: [String]
        /// `cli` or `event`.
        package var origin = "cli"
        package var filesTotal = 0
        package var filesDone = 0
        package var bytesTotal: Int64 = 0
        package var bytesDone: Int64 = 0
        /// Bytes fetched from the bucket by this job (the rest were cached already).
        package var bytesFetched: Int64 = 0
        package var failures: [WarmFailure] = []
        /// Seconds since the job started; for a job that ended, how long it ran.
        package var seconds = 0.0
        /// Listing the paths, before the totals are known.
        package var listing = true
    }

    package let id: Int
    let request: Request
    private let progress: Locked<Progress>
    private let cancelled = Atomic<Bool>(false)
    private let started = monotonicSeconds()
    private let bucket: TokenBucket?

    package init(id: Int, request: Request) {
        self.id = id
        self.request = request
        var p = Progress(id: id, state: .running, paths: request.paths)
        p.origin = request.origin
        progress = Locked(p)
        bucket = request.bandwidth.map { TokenBucket(rate: $0) }
    }

    package var snapshot: Progress {
        var p = progress.withLock { $0 }
        // An ended job keeps the time it took: its rate must not fall each time it is looked at.
        if p.state == .running { p.seconds = monotonicSeconds() - started }
        return p
    }

    package func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// Runs the job to its end; `busy` says whether applications are reading now (warmup then waits).
    package func run(_ fs: Filesystem, busy: @escaping @Sendable () -> Bool) async {
        let (targets, failures) = if let given = request.targets { (given, [WarmFailure]()) } else { await fs.warmTargets(request.paths) }
        let total = targets.reduce(Int64(0)) { $0 + $1.size }
        progress.withLock { p in
            p.filesTotal = targets.count
            p.bytesTotal = total
            p.failures = failures
            p.listing = false
        }
        if request.pin, let disk = fs.cache.disk, total > disk.pinBudget - disk.pinnedBytes {
            finish(.failed, failure: WarmFailure(path: request.paths.joined(separator: " "), reason: "over the pin budget: \(ByteCount.format(total)) asked for, \(ByteCount.format(disk.pinnedBytes)) of \(ByteCount.format(disk.pinBudget)) pinned already; unpin something or raise --pin-budget"))
            return
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
        // The unit of work is a run of adjacent blocks (one GET), not a file: a single large object keeps
        // every thread busy too.
        enum Done: Sendable {
            case blocks(Int, Range<Int64>, Filesystem.BlockResult)
            case landed(Int, Bool)
        }
        var remaining = [Int](repeating: 0, count: targets.count)
        var failed = [String?](repeating: nil, count: targets.count)
        var fileCursor = 0
        var runs: ArraySlice<(Int, Range<Int64>)> = []
        let blockSize = Int64(fs.cache.blockSize)
        // Under a bandwidth cap a block per GET: the cap is spent in smaller steps, so it holds more evenly.
        let perGet = bucket == nil ? Int64(max(1, Self.getBytes / fs.cache.blockSize)) : 1
        let memory = request.memory
        func nextRun() -> (Int, Range<Int64>)? {
            while runs.isEmpty {
                guard fileCursor < targets.count else { return nil }
                let i = fileCursor
                fileCursor += 1
                let missing = fs.missingBlocks(targets[i], memory: memory)
                let t = targets[i]
                let missingBytes = missing.reduce(Int64(0)) { $0 + min(blockSize, t.size - $1 * blockSize) }
                progress.withLock { p in
                    p.bytesDone += t.size - missingBytes
                    if missing.isEmpty { p.filesDone += 1 }
                }
                var fileRuns: [(Int, Range<Int64>)] = []
                for index in missing {
                    if let (_, r) = fileRuns.last, r.upperBound == index, Int64(r.count) < perGet {
                        fileRuns[fileRuns.count - 1].1 = r.lowerBound..<(index + 1)
                    } else {
                        fileRuns.append((i, index..<(index + 1)))
                    }
                }
                remaining[i] = fileRuns.count
                runs = fileRuns[...]
            }
            return runs.popFirst()
        }
        await withTaskGroup(of: Done.self) { group in
            func next() {
                guard !cancelled.load(ordering: .relaxed), let (i, run) = nextRun() else { return }
                let t = targets[i]
                if failed[i] != nil {
                    // The file failed already: its other blocks are not fetched.
                    group.addTask { .blocks(i, run, .cancelled) }
                    return
                }
                group.addTask { .blocks(i, run, await fs.warmBlocks(t, run, memory: memory, pace: pace)) }
            }
            for _ in 0..<max(1, request.threads) { next() }
            for await done in group {
                switch done {
                case .blocks(let i, let run, let result):
                    let t = targets[i]
                    switch result {
                    case .held(let fetched):
                        progress.withLock { p in
                            p.bytesDone += run.reduce(0) { $0 + min(blockSize, t.size - $1 * blockSize) }
                            p.bytesFetched += fetched
                        }
                    case .failed(let why):
                        if failed[i] == nil { failed[i] = why }
                    case .cancelled:
                        break
                    }
                    remaining[i] -= 1
                    if remaining[i] == 0 {
                        if let why = failed[i] {
                            progress.withLock { $0.failures.append(WarmFailure(path: t.path, reason: why)) }
                        } else if !cancelled.load(ordering: .relaxed) {
                            group.addTask { .landed(i, await fs.onDisk(t)) }
                        }
                    }
                    next()
                case .landed(let i, let landed):
                    progress.withLock { p in
                        p.filesDone += 1
                        if !landed { p.failures.append(WarmFailure(path: targets[i].path, reason: "did not fit in the cache: the disk tier skipped some of its blocks (full, or below its free-space floor)")) }
                    }
                }
            }
        }
        if cancelled.load(ordering: .relaxed) { return finish(.cancelled) }
        if request.pin, progress.withLock({ $0.failures.isEmpty }), case .failure(let e) = fs.pin(targets) {
            return finish(.failed, failure: WarmFailure(path: request.paths.joined(separator: " "), reason: e.message))
        }
        finish(progress.withLock { $0.failures.isEmpty } ? .done : .failed)
    }

    private func finish(_ state: State, failure: WarmFailure? = nil) {
        let now = monotonicSeconds()
        progress.withLock { p in
            p.state = state
            p.seconds = now - started
            if let failure { p.failures.append(failure) }
        }
    }
}

/// Bytes per second, spent as they come: a warmup never takes more than its share of the link.
final class TokenBucket: Sendable {
    private let rate: Double
    private let state: Locked<(tokens: Double, last: Double)>

    init(rate: Int64) {
        self.rate = Double(max(1, rate))
        state = Locked((Double(max(1, rate)), monotonicSeconds()))
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
