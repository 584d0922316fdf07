import Control
import Filesystem
import FuseBridge
import Logging
import Platform
import ObjectStore
import ReadCache
import WriteBack
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Serves one mount in this process: builds the layers, mounts, answers the control socket, and owns the
/// order of shutdown (stop the control socket, leave the FUSE loop, unmount, drain disk writes, stop the
/// network thread). SIGTERM, SIGINT and SIGHUP unmount the kernel side through `SignalWatcher`, which ends
/// the loop and runs the same order.
final class MountDaemon: @unchecked Sendable {
    let plan: MountPlan
    let logger: Logger

    init(plan: MountPlan, logger: Logger) {
        self.plan = plan
        self.logger = logger
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

        let client = S3Client(configuration: plan.s3, logger: Logger(label: "lakecache.s3"))
        let disk: DiskTier
        do {
            disk = try DiskTier(directory: plan.cacheDir, capacity: plan.cacheSize, freeSpaceFloor: Self.freeSpaceFloor(plan.cacheDir))
        } catch {
            client.shutdown()
            ready(CLIFailure(message: error.message))
            return 1
        }
        var cacheConfig = BlockCacheConfiguration()
        cacheConfig.blockSize = plan.blockSize
        cacheConfig.memoryBytes = plan.memoryCache
        let cache = BlockCache(store: client, configuration: cacheConfig, disk: disk, logger: Logger(label: "lakecache.cache"))
        var writeBack: WriteBack?
        var replayed = ReplayReport()
        if !plan.readOnly {
            var wb = WriteBackOptions(directory: plan.cacheDir)
            wb.partSize = plan.partSize
            wb.concurrency = plan.uploadConcurrency
            wb.residentBytes = plan.cacheSize / 2
            do {
                writeBack = try WriteBack(store: client, options: wb, logger: Logger(label: "lakecache.writeback"))
            } catch {
                disk.shutdown()
                client.shutdown()
                ready(CLIFailure(message: error.message))
                return 1
            }
            // Acknowledged writes from before a crash go first: reads of those paths must see them.
            replayed = await writeBack!.replay()
            if !replayed.resumed.isEmpty || replayed.abortedUploads > 0 || !replayed.unusable.isEmpty {
                logger.info("journal replayed", metadata: [
                    "resumed": "\(replayed.resumed.count)", "reused_parts": "\(replayed.reusedParts)",
                    "aborted_uploads": "\(replayed.abortedUploads)", "unusable_records": "\(replayed.unusable.count)",
                ])
            }
        }
        var fsOptions = FilesystemOptions(bucket: plan.bucket, uid: plan.uid, gid: plan.gid)
        fsOptions.fileMode = plan.fileMode
        fsOptions.dirMode = plan.dirMode
        fsOptions.metadataTTL = plan.metadataTTL
        fsOptions.readOnly = plan.readOnly
        fsOptions.syncClose = plan.writeMode == "sync"
        fsOptions.directoryReadAhead = plan.dirReadAhead
        fsOptions.metadata = plan.metadataPolicy
        fsOptions.metadataReadAhead = plan.metadataReadAhead
        let writer = writeBack
        let filesystem = Filesystem(store: client, cache: cache, writeBack: writeBack, options: fsOptions, logger: Logger(label: "lakecache.fs"))
        filesystem.adoptReplayed(replayed.resumed)
        var fuseOptions = FuseOptions(mountpoint: plan.mountpoint, fsName: "lakecache:\(plan.bucket.bucket)")
        fuseOptions.allowOther = plan.allowOther
        fuseOptions.readOnly = plan.readOnly
        fuseOptions.threads = plan.fuseThreads
        let bridge = FuseBridge(filesystem: filesystem, options: fuseOptions, logger: Logger(label: "lakecache.fuse"))
        do {
            try bridge.mount()
        } catch {
            disk.shutdown()
            client.shutdown()
            ready(CLIFailure(message: error.message))
            return 1
        }
        Self.raiseKernelReadahead(plan.mountpoint, kilobytes: plan.kernelReadaheadKB, logger: logger)
        var started = timespec()
        clock_gettime(CLOCK_MONOTONIC, &started)
        let startedAt = Double(started.tv_sec) + Double(started.tv_nsec) / 1e9
        let plan = self.plan
        let control = ControlServer(path: ControlPaths.socket(for: plan.mountpoint), logger: logger) { command in
            switch command.split(separator: " ").first.map(String.init) ?? "" {
            case "status":
                return StatusReport.build(plan: plan, client: client, cache: cache, disk: disk, filesystem: filesystem, writeBack: writer, started: startedAt).encoded()
            case let verb where verb == "pending" || verb == "retry":
                let path = command.split(separator: " ", maxSplits: 1).dropFirst().first.flatMap { URIEncoding.decode(String($0)) } ?? ""
                return StatusReport.pending(writer, key: plan.bucket.prefix + path, retry: verb == "retry").encoded()
            case "unmount":
                return Self.unmountKernel(plan.mountpoint)
            default:
                return JSONValue.object([("error", .string("unknown command '\(command)'"))]).encoded()
            }
        }
        do {
            try control.start()
        } catch {
            logger.error("control socket unavailable; status and unmount will not work", metadata: ["error": "\(error)"])
        }
        ready(nil)
        let logger = self.logger
        SignalWatcher.install { sig in
            logger.info("signal \(sig): unmounting", metadata: ["mountpoint": "\(plan.mountpoint)"])
            // A busy mountpoint must not keep a stopping service alive: detach lazily if a plain unmount fails.
            if getuid() == 0 {
                if umount2(plan.mountpoint, 0) != 0 { umount2(plan.mountpoint, Int32(MNT_DETACH)) }
            } else if runProcess("/bin/fusermount3", ["-u", plan.mountpoint]) != 0 {
                _ = runProcess("/bin/fusermount3", ["-uz", plan.mountpoint])
            }
        }
        logger.info("mounted", metadata: ["bucket": "\(plan.bucket)", "mountpoint": "\(plan.mountpoint)", "endpoint": "\(plan.s3.endpoint)"])

        let rc: Int32 = await withCheckedContinuation { continuation in
            // Its own thread: the loop lives as long as the mount, and must not hold a cooperative thread.
            startDetachedThread { continuation.resume(returning: bridge.serve()) }
        }
        logger.info("unmounting", metadata: ["mountpoint": "\(plan.mountpoint)"])
        control.stop()
        writeBack?.shutdown()
        bridge.unmount()
        disk.shutdown()
        client.shutdown()
        return rc == 0 ? 0 : 1
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

    /// Unmounts at the kernel, which ends the FUSE loop; the answer says whether it worked.
    static func unmountKernel(_ mountpoint: String) -> String {
        if getuid() == 0 {
            if umount2(mountpoint, 0) == 0 { return JSONValue.object([("ok", .bool(true))]).encoded() }
            let e = errno
            let why = e == EBUSY ? "the mountpoint is busy (a process has a file or directory open there); close it and retry" : "\(Errno(e))"
            return JSONValue.object([("error", .string("cannot unmount \(mountpoint): \(why)"))]).encoded()
        }
        let status = runProcess("/bin/fusermount3", ["-u", mountpoint])
        return status == 0 ? JSONValue.object([("ok", .bool(true))]).encoded()
            : JSONValue.object([("error", .string("fusermount3 -u \(mountpoint) failed (is the mountpoint busy?)"))]).encoded()
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
