import Control
import Events
import HTTPServing
import Filesystem
import FuseBridge
import Logging
import ObjectStore
import Platform
import ReadCache
import Synchronization
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// Serves one mount in this process: builds the layers, mounts, answers the control socket, and owns the
/// order of shutdown (stop the control socket, leave the FUSE loop, unmount, drain disk writes, stop the
/// network threads). SIGTERM and SIGINT unmount the kernel side through `SignalWatcher`, which ends the
/// loop and runs the same order; SIGHUP rereads the config file.
final class MountDaemon: @unchecked Sendable {
    let plan: MountPlan
    let command: MountCommand
    let logger: Logger

    init(plan: MountPlan, command: MountCommand, logger: Logger) {
        self.plan = plan
        self.command = command
        self.logger = logger
    }

    /// What the handlers of the control verbs work with.
    struct Parts: @unchecked Sendable {
        let plan: MountPlan
        let command: MountCommand
        let builder: NamespaceBuilder
        let cache: BlockCache
        let disk: DiskTier
        let filesystem: Filesystem
        let writeBack: WriteBack?
        let started: Double
        let logger: Logger
        let background: BackgroundWork
        let jobs: JobTable
        /// The events endpoint, when `--events-address` asked for one.
        let events: EventsRuntime?
        /// The metrics endpoint, when `--metrics-address` asked for one.
        let metrics: MetricsRuntime?
    }

    /// The events endpoint's parts: the service that applies events, and the server in front of it.
    struct EventsRuntime: Sendable {
        let service: EventService
        let server: HTTPServer
        let address: EventAddress
    }

    /// The metrics endpoint: the exporter and the server it answers on (the events server when they share
    /// an address).
    struct MetricsRuntime: Sendable {
        let exporter: MetricsExporter
        let server: HTTPServer
        let address: ListenAddress
        let shared: Bool
    }

    /// Mounts; `ready` is called once with nil when the mount is live or with the failure.
    func run(ready: (CLIFailure?) -> Void) async -> Int32 {
        // One daemon per cache directory: the disk tier is not shared between processes.
        let lockPath = plan.cacheDir + "/lock"
        let lockFD = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0, flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            ready(CLIFailure(message: "cache directory \(plan.cacheDir) is in use by another lakecache mount; give each mount its own --cache-dir"))
            return 1
        }
        defer { close(lockFD) }

        // swift-metrics is bootstrapped before any S3 client or the FUSE bridge makes its timers.
        let exporter = plan.metrics.map { _ in MetricsExporter() }
        let builder = NamespaceBuilder(maxConcurrency: plan.maxConcurrency)
        let links = builder.links(for: plan.links)
        builder.commit(links, plans: plan.links)
        let table: LinkTable
        do { table = try LinkTable(links) } catch {
            ready(CLIFailure(message: "\(error)", exitCode: 64))
            return 1
        }
        let disk: DiskTier
        do {
            disk = try DiskTier(directory: plan.cacheDir, capacity: plan.cacheSize, freeSpaceFloor: Self.freeSpaceFloor(plan.cacheDir), pinBudget: plan.pinBudget)
        } catch {
            builder.shutdown()
            ready(CLIFailure(message: error.message))
            return 1
        }
        var cacheConfig = BlockCacheConfiguration()
        cacheConfig.blockSize = plan.blockSize
        cacheConfig.memoryBytes = plan.memoryCache
        // Commit the memory tier up front only when a quarter of the machine's memory (at least 1 GiB) stays
        // available after it: the pages then stay the daemon's, as they would once reads had used every slot.
        let memory = memoryInfo() ?? (0, 0)
        let reserve = max(1 << 30, memory.total / 4)
        cacheConfig.prefaultMemory = memory.available >= plan.memoryCache + reserve
        if !cacheConfig.prefaultMemory {
            logger.info("the memory tier is committed as reads use it, not up front: less memory is available than the tier plus a quarter of the machine's", metadata: [
                "memory_cache": "\(ByteCount.format(plan.memoryCache))", "available": "\(ByteCount.format(memory.available))",
            ])
        }
        let cache = BlockCache(store: links[0].store.client, configuration: cacheConfig, disk: disk, logger: Logger(label: "lakecache.cache"))
        var writeBack: WriteBack?
        var replayed = ReplayReport()
        if plan.writable {
            var wb = WriteBackOptions(directory: plan.cacheDir)
            wb.partSize = plan.partSize
            wb.concurrency = plan.uploadConcurrency
            wb.closeDurability = plan.closeDurability
            wb.bootID = plan.bootID
            // Files written here stay resident (the newest checkpoint first) within the pin budget, beside
            // what `lakecache pin` holds.
            wb.residentBytes = disk.pinBudget
            wb.residentBudget = { [disk] in max(0, disk.pinBudget - disk.pinnedBytes) }
            do {
                writeBack = try WriteBack(stores: { builder.store(named: $0) }, options: wb, logger: Logger(label: "lakecache.writeback"))
            } catch {
                disk.shutdown()
                builder.shutdown()
                ready(CLIFailure(message: error.message))
                return 1
            }
            // Acknowledged writes from before a crash go first: reads of those paths must see them.
            replayed = await writeBack!.replay()
            if !replayed.resumed.isEmpty || replayed.abortedUploads > 0 || !replayed.unusable.isEmpty || !replayed.waitingForStore.isEmpty
                || replayed.completedBeforeCrash > 0 || !replayed.lostInPowerCut.isEmpty {
                logger.info("journal replayed", metadata: [
                    "resumed": "\(replayed.resumed.count)", "reused_parts": "\(replayed.reusedParts)",
                    "aborted_uploads": "\(replayed.abortedUploads)", "unusable_records": "\(replayed.unusable.count)",
                    "waiting_for_a_store": "\(replayed.waitingForStore.count)",
                    "completed_by_the_store": "\(replayed.completedBeforeCrash)",
                    "lost_in_power_cut": "\(replayed.lostInPowerCut.count)",
                ])
            }
        }
        var fsOptions = FilesystemOptions(uid: plan.uid, gid: plan.gid)
        fsOptions.fileMode = plan.fileMode
        fsOptions.dirMode = plan.dirMode
        fsOptions.directoryReadAhead = plan.dirReadAhead
        fsOptions.listingReadAhead = plan.listingReadAhead
        fsOptions.metadataReadAhead = plan.metadataReadAhead
        fsOptions.snapshotDirectory = plan.cacheDir + "/listings"
        let filesystem = Filesystem(links: table, cache: cache, writeBack: writeBack, options: fsOptions, logger: Logger(label: "lakecache.fs"))
        filesystem.adoptReplayed(replayed.resumed)
        // Saved listings of immutable links go in before the first request: a remount lists nothing.
        var snapshotted: [String: Int] = [:]
        for link in links {
            if let n = filesystem.loadSnapshot(link) { snapshotted[link.path] = n }
        }
        let jobs = JobTable()
        var events: EventsRuntime?
        var metrics: MetricsRuntime?
        let sharesEvents = plan.metrics != nil && plan.metrics == plan.events?.address
        if let e = plan.events {
            switch await Self.startEvents(e, plan: plan, filesystem: filesystem, jobs: jobs, logger: logger, metrics: sharesEvents ? exporter : nil) {
            case .success(let runtime):
                events = runtime
                if sharesEvents, let exporter { metrics = MetricsRuntime(exporter: exporter, server: runtime.server, address: e.address, shared: true) }
            case .failure(let error):
                disk.shutdown()
                builder.shutdown()
                ready(CLIFailure(message: error.message))
                return 1
            }
        }
        if let address = plan.metrics, let exporter, !sharesEvents {
            do {
                let server = try await HTTPServer.start(address, responder: MetricsResponder(exporter: exporter, events: nil), what: "metrics", option: "--metrics-address")
                metrics = MetricsRuntime(exporter: exporter, server: server, address: address, shared: false)
            } catch {
                if let events { await events.server.stop() }
                disk.shutdown()
                builder.shutdown()
                ready(CLIFailure(message: error.message))
                return 1
            }
        }
        var fuseOptions = FuseOptions(mountpoint: plan.mountpoint, fsName: "lakecache:" + (plan.links.count == 1 ? plan.links[0].bucket.bucket : "links"))
        fuseOptions.allowOther = plan.allowOther
        fuseOptions.readOnly = !plan.writable
        fuseOptions.threads = plan.fuseThreads
        let bridge = FuseBridge(filesystem: filesystem, options: fuseOptions, logger: Logger(label: "lakecache.fuse"))
        do {
            try bridge.mount()
        } catch {
            if let events { await events.server.stop() }
            if let metrics, !metrics.shared { await metrics.server.stop() }
            disk.shutdown()
            builder.shutdown()
            ready(CLIFailure(message: error.message))
            return 1
        }
        Self.raiseKernelReadahead(plan.mountpoint, kilobytes: plan.kernelReadaheadKB, logger: logger)
        let background = BackgroundWork(filesystem: filesystem, cacheDir: plan.cacheDir, logger: logger)
        let parts = Parts(
            plan: plan, command: command, builder: builder, cache: cache, disk: disk, filesystem: filesystem, writeBack: writeBack,
            started: monotonicSeconds(), logger: logger, background: background, jobs: jobs, events: events, metrics: metrics)
        exporter?.attach(parts)
        let router = ControlRouter(logger: logger)
        ControlHandlers.register(on: router, parts)
        let control = ControlServer(path: ControlPaths.socket(for: plan.mountpoint), logger: logger) { router.handle($0) }
        do {
            try control.start()
        } catch {
            logger.error("control socket unavailable; status and unmount will not work", metadata: ["error": "\(error)"])
        }
        background.start(links)
        background.importListings(links.filter { $0.policy.preload || ($0.policy.metadataTTL == nil && snapshotted[$0.path] == nil) })
        ready(nil)
        var eventsRun: Task<Void, Never>?
        if let events {
            eventsRun = Task { await events.service.run() }
            logger.info("events endpoint listening", metadata: ["address": "\(events.address.host):\(events.server.port)", "pending": "\(events.service.journal.pending.count)"])
        }
        if let metrics {
            logger.info("metrics endpoint listening", metadata: ["url": "http://\(ListenAddress(host: metrics.address.host, port: metrics.server.port))/metrics"])
        }
        for (path, n) in snapshotted { logger.info("listing snapshot loaded", metadata: ["link": "/\(path)", "objects": "\(n)"]) }
        let logger = self.logger
        let mountpoint = plan.mountpoint
        SignalWatcher.install { sig in
            if sig == SIGHUP {
                logger.info("SIGHUP: rereading the config file")
                let answer = ReloadHandler.reload(parts)
                logger.info("reload", metadata: ["outcome": "\(answer)"])
                return
            }
            logger.info("signal \(sig): unmounting", metadata: ["mountpoint": "\(mountpoint)"])
            // A busy mountpoint must not keep a stopping service alive: detach lazily if a plain unmount fails.
            if getuid() == 0 {
                if umount2(mountpoint, 0) != 0 { umount2(mountpoint, Int32(MNT_DETACH)) }
            } else if runProcess("/bin/fusermount3", ["-u", mountpoint]) != 0 {
                _ = runProcess("/bin/fusermount3", ["-uz", mountpoint])
            }
        }
        // systemd (Type=notify): live now; then the uploads still pending, as they change.
        SystemdNotify.send("READY=1\nSTATUS=serving \(plan.mountpoint) (\(plan.links.count) link\(plan.links.count == 1 ? "" : "s"))")
        let notifier = Task { [writeBack] in
            guard getenv("NOTIFY_SOCKET") != nil, let writeBack else { return }
            var last = ""
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 2_000_000_000)
                let u = writeBack.stats()
                let status = u.pendingFiles == 0 ? "serving \(mountpoint): no uploads pending" : "serving \(mountpoint): \(u.pendingFiles) upload(s) pending, \(ByteCount.format(u.pendingBytes))"
                if status != last { SystemdNotify.send("STATUS=" + status) }
                last = status
            }
        }
        logger.info("mounted", metadata: [
            "mountpoint": "\(plan.mountpoint)", "links": "\(plan.links.map { "/\($0.path)=\($0.bucket)@\($0.s3.endpoint)" }.joined(separator: " "))",
        ])

        let rc: Int32 = await withCheckedContinuation { continuation in
            // Its own thread: the loop lives as long as the mount, and must not hold a cooperative thread.
            startDetachedThread { continuation.resume(returning: bridge.serve()) }
        }
        logger.info("unmounting", metadata: ["mountpoint": "\(plan.mountpoint)"])
        notifier.cancel()
        let pending = writeBack?.stats().pendingFiles ?? 0
        SystemdNotify.send("STOPPING=1\nSTATUS=unmounting \(plan.mountpoint)" + (pending > 0 ? ": \(pending) upload(s) pending stay journaled for the next mount" : ""))
        control.stop()
        if let events {
            // No new events, the ones being answered answered; then the one being applied finishes and the
            // rest wait in the journal for the next mount.
            await events.server.stop()
            eventsRun?.cancel()
            events.service.stop()
            await eventsRun?.value
        }
        if let metrics, !metrics.shared { await metrics.server.stop() }
        // What this mount changed is described in the bucket before it goes (summary links).
        await filesystem.flushSummaries()
        background.stop()
        writeBack?.shutdown()
        bridge.unmount()
        disk.shutdown()
        builder.shutdown()
        return rc == 0 ? 0 : 1
    }

    /// Opens the events journal (replaying what it holds once running) and starts listening.
    static func startEvents(
        _ e: EventsPlan, plan: MountPlan, filesystem: Filesystem, jobs: JobTable, logger: Logger, metrics: MetricsExporter?
    ) async -> Result<EventsRuntime, SystemError> {
        if !e.address.isLoopback {
            logger.notice("the events endpoint listens beyond this machine; every POST needs the token, and TLS is not served: put it behind a TLS proxy for senders outside a private network", metadata: ["address": "\(e.address)"])
        }
        let journal: EventJournal
        do { journal = try EventJournal(directory: plan.cacheDir) } catch { return .failure(error) }
        var transport = TransportOptions()
        transport.connectTimeoutMilliseconds = 5_000
        transport.maxConcurrentTransfers = 4
        transport.caBundle = plan.links.first?.s3.transport.caBundle
        // Tests serve their own signing certificate over plain HTTP; nothing else should set this.
        let testPrefix = getenv("LAKECACHE_TEST_SNS_CERT_PREFIX").map { String(cString: $0) }
        let verifier = SNSVerifier(mode: e.snsVerify, transport: CurlTransport(options: transport), trustedCertificatePrefix: testPrefix)
        let demand = DemandSampler(cache: filesystem.cache)
        let service = EventService(filesystem: filesystem, journal: journal, verifier: verifier, logger: Logger(label: "lakecache.events")) { target in
            var request = WarmupJob.Request(paths: [target.path])
            request.targets = [target]
            request.origin = "event"
            // One large model uses the backend's concurrency, as a raw download would.
            request.threads = 16
            let job = await jobs.run(request, filesystem) { demand.busy() }
            return job.snapshot.state == .done
        }
        let endpoint = EventEndpoint(service: service, token: e.token, logger: Logger(label: "lakecache.events"))
        do {
            let responder: any HTTPResponder = metrics.map { MetricsResponder(exporter: $0, events: endpoint) } ?? endpoint
            let server = try await HTTPServer.start(e.address, responder: responder, what: "events", option: "--events-address")
            return .success(EventsRuntime(service: service, server: server, address: e.address))
        } catch {
            return .failure(error)
        }
    }

    /// Raises the kernel's readahead for this mount (its backing device info), so sequential reads reach the
    /// daemon as 1 MiB requests instead of 128 KiB ones: eight times fewer round trips. Needs root; else the
    /// kernel default stays.
    static func raiseKernelReadahead(_ mountpoint: String, kilobytes: Int, logger: Logger) {
        // The device number comes from mountinfo: a stat of the mountpoint would be a FUSE request that no
        // one serves yet, and would deadlock the mount.
        guard kilobytes > 0, let device = MountChecks.deviceNumber(of: mountpoint) else { return }
        let path = "/sys/class/bdi/\(device)/read_ahead_kb"
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else {
            logger.debug("kernel readahead left at its default", metadata: ["file": "\(path)", "error": "\(Errno(errno))"])
            return
        }
        var text = "\(kilobytes)\n"
        _ = text.withUTF8 { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// The free space the disk tier leaves on its filesystem: 5% of it, at most 1 GiB.
    static func freeSpaceFloor(_ dir: String) -> Int64 {
        var vfs = statvfs()
        guard statvfs(dir, &vfs) == 0 else { return 1 << 30 }
        return min(1 << 30, Int64(vfs.f_blocks) * Int64(vfs.f_frsize) / 20)
    }
}

/// Runs `path args` and returns its exit status (-1 if it cannot start).
func runProcess(_ path: String, _ args: [String]) -> Int32 {
    var pid = pid_t()
    let argv = ([path] + args).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    guard posix_spawn(&pid, path, nil, nil, argv, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
}
