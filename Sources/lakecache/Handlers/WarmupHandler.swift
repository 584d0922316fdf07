import Control
import Filesystem
import Platform
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Warmup jobs of a mount: started by `warmup`, listed by `jobs`, followed by `job`, stopped by `cancel`.
final class JobTable: Sendable {
    private let jobs = Locked<(next: Int, all: [Int: WarmupJob])>((1, [:]))
    /// Finished jobs kept for `jobs`; older ones are forgotten (events start one per preload).
    static let keptFinished = 200

    func start(_ request: WarmupJob.Request, _ fs: Filesystem, busy: @escaping @Sendable () -> Bool) -> WarmupJob {
        let job = add(request)
        Task { await job.run(fs, busy: busy) }
        return job
    }

    /// Runs a job to its end, listed in `jobs` meanwhile.
    func run(_ request: WarmupJob.Request, _ fs: Filesystem, busy: @escaping @Sendable () -> Bool) async -> WarmupJob {
        let job = add(request)
        await job.run(fs, busy: busy)
        return job
    }

    private func add(_ request: WarmupJob.Request) -> WarmupJob {
        jobs.withLock { s -> WarmupJob in
            defer { s.next += 1 }
            let j = WarmupJob(id: s.next, request: request)
            s.all[s.next] = j
            let finished = s.all.filter { $0.value.snapshot.state != .running }.keys.sorted()
            for id in finished.dropLast(Self.keptFinished) { s.all.removeValue(forKey: id) }
            return j
        }
    }

    /// The job a CLI names: `PID-N`, unique across the user's mounts, or a bare `N`.
    subscript(name: String) -> WarmupJob? {
        let parts = name.split(separator: "-").map { Int($0) }
        if parts.count == 2, parts[0] != Int(getpid()) { return nil }
        guard let n = parts.last ?? nil else { return nil }
        return jobs.withLock { $0.all[n] }
    }

    /// The name a CLI uses for job `n`.
    static func name(_ n: Int) -> String { "\(getpid())-\(n)" }

    var all: [WarmupJob] { jobs.withLock { $0.all.values.sorted { $0.id < $1.id } } }
}

/// `warmup`, `job`, `jobs`, `cancel`, `pin` and `unpin`.
enum WarmupHandler {
    /// Parses `key=value` options and the paths after `--`.
    static func parse(_ args: [String]) -> (options: [String: String], paths: [String]) {
        var options: [String: String] = [:]
        var paths: [String] = []
        var inPaths = false
        for a in args {
            if inPaths { paths.append(a.trimmingSlashes()); continue }
            if a == "--" { inPaths = true; continue }
            let kv = a.split(separator: "=", maxSplits: 1).map(String.init)
            options[kv[0]] = kv.count > 1 ? kv[1] : ""
        }
        if let list = options["list"], let text = readTextFile(list) {
            paths += text.split(separator: "\n").map { String($0).trimmingWhitespace().trimmingSlashes() }.filter { !$0.isEmpty }
        }
        return (options, paths)
    }

    static func warmup(_ p: MountDaemon.Parts, _ args: [String]) -> String {
        let (options, paths) = parse(args)
        guard !paths.isEmpty else { return ControlHandlers.error("nothing to warm: give paths inside the mount, or --file LIST") }
        switch options["mode"] ?? "warm" {
        case "check":
            return ControlHandlers.wait { await check(p, paths).encoded() }
        case "evict":
            return ControlHandlers.wait { await evict(p, paths).encoded() }
        default:
            var request = WarmupJob.Request(paths: paths)
            request.threads = options["threads"].flatMap { Int($0) }.map { max(1, min(256, $0)) } ?? 8
            request.bandwidth = options["bandwidth"].flatMap { ByteCount.parse($0) }
            request.memory = options["memory"] != nil
            request.pin = options["pin"] != nil
            let demand = DemandSampler(cache: p.filesystem.cache)
            let job = p.jobs.start(request, p.filesystem) { demand.busy() }
            return JSONValue.object([("id", .string(JobTable.name(job.id)))]).encoded()
        }
    }

    /// How much of the paths is cached, without fetching anything.
    static func check(_ p: MountDaemon.Parts, _ paths: [String]) async -> JSONValue {
        let (targets, failures) = await p.filesystem.warmTargets(paths)
        var files = 0
        var bytes: Int64 = 0
        var total: Int64 = 0
        var missing: [String] = []
        for t in targets {
            let held = p.filesystem.cachedBytes(t, onDisk: true)
            total += t.size
            bytes += held
            if held >= t.size { files += 1 } else if missing.count < 20 { missing.append("/" + t.path) }
        }
        return .object([
            ("files", .number(Double(targets.count))), ("cached_files", .number(Double(files))),
            ("bytes", .number(Double(total))), ("cached_bytes", .number(Double(bytes))),
            ("not_cached", .array(missing.map { .string($0) })), ("failures", failureList(failures)),
        ])
    }

    static func evict(_ p: MountDaemon.Parts, _ paths: [String]) async -> JSONValue {
        let (targets, failures) = await p.filesystem.warmTargets(paths)
        for t in targets { p.filesystem.evictCached(t) }
        return .object([
            ("files", .number(Double(targets.count))), ("bytes", .number(Double(targets.reduce(Int64(0)) { $0 + $1.size }))),
            ("failures", failureList(failures)),
        ])
    }

    static func failureList(_ failures: [WarmFailure]) -> JSONValue {
        .array(failures.map { .object([("path", .string("/" + $0.path)), ("reason", .string($0.reason))]) })
    }

    static func describe(_ j: WarmupJob.Progress) -> JSONValue {
        let rate = j.seconds > 0 ? Double(j.bytesFetched) / j.seconds : 0
        let left = Double(j.bytesTotal - j.bytesDone)
        return .object([
            ("id", .string(JobTable.name(j.id))), ("state", .string(j.listing && j.state == .running ? "listing" : j.state.rawValue)),
            ("paths", .array(j.paths.prefix(10).map { .string("/" + $0) })), ("origin", .string(j.origin)),
            ("files", .number(Double(j.filesTotal))), ("files_done", .number(Double(j.filesDone))),
            ("bytes", .number(Double(j.bytesTotal))), ("bytes_done", .number(Double(j.bytesDone))),
            ("bytes_fetched", .number(Double(j.bytesFetched))),
            ("rate_bytes_per_second", .number(rate.rounded())),
            ("eta_seconds", rate > 0 && j.state == .running ? .number((left / rate).rounded()) : .null),
            ("seconds", .number((j.seconds * 10).rounded() / 10)),
            ("failures", failureList(j.failures)),
        ])
    }

    /// `job ID [WAIT-MS]`: the job's progress; with a wait (at most 2 s), answered as soon as the job ends,
    /// or when the wait is over, so that a follower sees the end when it happens and not at its next poll.
    static func job(_ p: MountDaemon.Parts, _ args: [String]) -> String {
        guard let id = args.first, let job = p.jobs[id] else {
            return ControlHandlers.error("no warmup job \(args.first ?? "") on this mount; lakecache jobs MOUNTPOINT lists them")
        }
        // Each control connection has a thread of its own: waiting here holds up no other call.
        let wait = args.dropFirst().first.flatMap { Int($0) }.map { min(max($0, 0), 2_000) } ?? 0
        let deadline = monotonicSeconds() + Double(wait) / 1000
        var snapshot = job.snapshot
        while snapshot.state == .running && monotonicSeconds() < deadline {
            usleep(5_000)
            snapshot = job.snapshot
        }
        return describe(snapshot).encoded()
    }

    static func jobs(_ p: MountDaemon.Parts) -> String {
        JSONValue.object([("jobs", .array(p.jobs.all.map { describe($0.snapshot) }))]).encoded()
    }

    static func cancel(_ p: MountDaemon.Parts, _ args: [String]) -> String {
        guard let id = args.first, let job = p.jobs[id] else {
            return ControlHandlers.error("no warmup job \(args.first ?? "") on this mount; lakecache jobs MOUNTPOINT lists them")
        }
        job.cancel()
        return JSONValue.object([("ok", .bool(true)), ("id", .string(JobTable.name(job.id)))]).encoded()
    }

    /// `pin PATH...`: warms the files (waiting for it), then keeps them through eviction.
    static func pin(_ p: MountDaemon.Parts, _ args: [String]) -> String {
        let (_, paths) = parse(["--"] + args)
        var request = WarmupJob.Request(paths: paths)
        request.pin = true
        let demand = DemandSampler(cache: p.filesystem.cache)
        let job = p.jobs.start(request, p.filesystem) { demand.busy() }
        return JSONValue.object([("id", .string(JobTable.name(job.id)))]).encoded()
    }

    static func unpin(_ p: MountDaemon.Parts, _ args: [String]) -> String {
        var n = 0
        for path in args { n += p.filesystem.unpin(below: path.trimmingSlashes()) }
        return JSONValue.object([("ok", .bool(true)), ("unpinned", .number(Double(n)))]).encoded()
    }
}
