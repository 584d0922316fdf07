import CSpawn
import ArgumentParser
import Control
import Filesystem
import Logging
import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

/// `lakecache mount s3://BUCKET[/PREFIX] MOUNTPOINT [options]`.
struct MountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount a bucket (or a prefix of it) at a local directory.",
        discussion: "Returns once the mount is live, unless --foreground is given. Fails with one clear line otherwise.")

    @Argument(help: "The bucket URL: s3://BUCKET or s3://BUCKET/PREFIX.") var url: String
    @Argument(help: "An existing, empty directory to mount on.") var mountpoint: String

    @Option(help: "S3 endpoint URL (else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then the AWS regional endpoint).") var endpoint: String?
    @Option(help: "Region (else AWS_REGION, AWS_DEFAULT_REGION, then us-east-1).") var region: String?
    @Option(help: "Profile in the shared credentials file (else AWS_PROFILE, then default).") var profile: String?
    @Flag(help: "Send anonymous requests (public buckets).") var noSignRequest = false
    @Option(help: "Request addressing: auto, path or virtual.") var addressingStyle: String = "auto"
    @Option(help: "Directory of the NVMe cache tier; created with mode 0700.") var cacheDir: String = "/var/cache/lakecache"
    @Option(help: "Bound of the disk tier, e.g. 200G.") var cacheSize: String = "100G"
    @Option(help: "Bound of the memory tier, e.g. 2G.") var memoryCache: String = "1G"
    @Option(help: "Close mode for written files: async or sync.") var writeMode: String = "async"
    @Option(help: "Multipart part size for the first 1,000 parts (doubling every 1,000 after), e.g. 16M.") var partSize: String = "16M"
    @Option(help: "Upload parts in flight across all files.") var uploadConcurrency: Int = 8
    @Option(help: "Metadata cache lifetime in seconds, or 'indefinite' for immutable data.") var metadataTtl: String = "60"
    @Flag(help: "Refuse all writes.") var readOnly = false
    @Flag(help: "Let other users access the mount (needs user_allow_other for non-root).") var allowOther = false
    @Option(help: "Owner uid shown for objects without uid metadata.") var uid: UInt32?
    @Option(help: "Group gid shown for objects without gid metadata.") var gid: UInt32?
    @Option(help: "Mode (octal) of files without mode metadata.") var fileMode: String = "0644"
    @Option(help: "Mode (octal) of directories without mode metadata.") var dirMode: String = "0755"
    @Option(help: "Concurrent backend transfers.") var maxConcurrency: Int = 64
    @Flag(name: [.customShort("f"), .long], help: "Stay in the foreground (for systemd).") var foreground = false
    @Option(name: .customShort("o"), help: "Comma-separated mount options, fstab style (ro, allow_other, uid=, gid=, ...).") var options: [String] = []
    @Option(help: "Cache block size, e.g. 4M (1M to 16M).") var blockSize: String = "4M"
    @Option(help: "FUSE worker threads.") var fuseThreads: Int = 16
    @Option(help: "Kernel readahead for the mount in KiB (0 keeps the kernel default; needs root).") var kernelReadahead: Int = 1024
    @Option(help: "Small files of a directory fetched ahead once an application reads several of them (0 turns it off).") var dirReadAhead: Int = 64
    @Option(help: "Where listed files' type, mode and owner come from: exact (their metadata; HEADs as a listing arrives) or listing (plain objects: defaults, no HEAD per file).") var metadata: String = "exact"
    @Option(help: "HEADs in flight that learn listed files' metadata ahead of their lookups (exact policy).") var metadataReadAhead: Int = 64
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: LogLevelOption = .info
    @Option(help: .hidden) var daemonReadyFd: Int32?

    func run() async throws {
        bootstrapLogging(logLevel)
        if !foreground && daemonReadyFd == nil {
            // Return only once the daemon says the mount is live (or why it is not).
            Glibc.exit(Daemonizer.spawnAndWait())
        }
        let readyFD = daemonReadyFd
        if readyFD != nil { setsid() }
        let prepared = await MountPlan.result(self)
        guard case .success(let plan) = prepared else {
            if case .failure(let failure) = prepared { Daemonizer.report(failure, to: readyFD) }
            Glibc.exit(1)
        }
        let daemon = MountDaemon(plan: plan, logger: Logger(label: "lakecache"))
        let rc = await daemon.run { failure in
            if let failure { Daemonizer.report(failure, to: readyFD) }
            if let readyFD {
                Daemonizer.signalReady(readyFD, logFile: plan.cacheDir + "/lakecache.log")
            }
        }
        Glibc.exit(rc)
    }
}

/// The parent half of `mount` without --foreground: starts the daemon and relays its readiness.
enum Daemonizer {
    /// Spawns this binary again with `--daemon-ready-fd 3` and waits for "ok" or an error line on that pipe.
    static func spawnAndWait() -> Int32 {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            CLIFailure(message: "cannot create a pipe: \(Errno(errno))").exit(command: "mount")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Close the read end first: if pipe() returned 3 and 4, the dup2 below puts the write end on 3.
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // The daemon outlives us: it must not hold on to descriptors it never asked for.
        CSpawn_file_actions_addclosefrom(&actions, 4)
        let args = Array(CommandLine.arguments.dropFirst()) + ["--daemon-ready-fd", "3"]
        let argv = (["lakecache"] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, "/proc/self/exe", &actions, nil, argv, environ)
        close(fds[1])
        guard rc == 0 else {
            CLIFailure(message: "cannot start the daemon: \(Errno(rc))").exit(command: "mount")
        }
        let line = readLine(fds[0])
        close(fds[0])
        if line == "ok" { return 0 }
        if line.hasPrefix("error ") {
            let rest = line.dropFirst(6)
            let code = Int32(rest.prefix { $0 != " " }) ?? 1
            let message = String(rest.drop { $0 != " " }.dropFirst())
            CLIFailure(message: message, exitCode: code).exit(command: "mount")
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        CLIFailure(message: "the daemon exited before the mount was live (status \(status)); run with --foreground to see its log").exit(command: "mount")
    }

    /// Reports a failure to the waiting parent (or stderr in the foreground) and exits.
    static func report(_ failure: CLIFailure, to fd: Int32?) -> Never {
        if let fd {
            var line = "error \(failure.exitCode) \(failure.message.replacingNewlines())\n"
            _ = line.withUTF8 { write(fd, $0.baseAddress, $0.count) }
            Glibc.exit(failure.exitCode)
        }
        failure.exit(command: "mount")
    }

    /// Tells the parent the mount is live, then sends this daemon's output to its log file.
    static func signalReady(_ fd: Int32, logFile: String) {
        let log = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if log >= 0 {
            dup2(log, 1)
            dup2(log, 2)
            close(log)
        }
        var line = "ok\n"
        _ = line.withUTF8 { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}

extension String {
    func replacingNewlines() -> String { String(map { $0 == "\n" ? " " : $0 }) }
}

/// Everything `mount` resolved and checked before it starts serving.
struct MountPlan {
    var bucket: BucketURL
    var mountpoint: String
    var s3: S3Configuration
    var cacheDir: String
    var cacheSize: Int64
    var memoryCache: Int64
    var writeMode: String
    var partSize: Int64
    var uploadConcurrency: Int
    /// nil means indefinite.
    var metadataTTL: Double?
    var readOnly: Bool
    var allowOther: Bool
    var uid: UInt32
    var gid: UInt32
    var fileMode: UInt32
    var dirMode: UInt32
    var foreground: Bool
    var blockSize: Int
    var fuseThreads: Int
    var kernelReadaheadKB: Int
    var dirReadAhead: Int
    var metadataPolicy: MetadataPolicy = .exact
    var metadataReadAhead = 64

    /// `prepare` as a `Result`.
    static func result(_ cmd: MountCommand) async -> Result<MountPlan, CLIFailure> {
        do {
            return .success(try await prepare(cmd))
        } catch {
            return .failure(error)
        }
    }

    /// Validates input in order of cost; the first problem becomes a one-line `CLIFailure`.
    static func prepare(_ cmd: MountCommand) async throws(CLIFailure) -> MountPlan {
        var cmd = cmd
        try applyFstabOptions(&cmd)
        let bucket: BucketURL
        do { bucket = try BucketURL(parsing: cmd.url) } catch { throw CLIFailure(message: error.message, exitCode: 64) }
        guard cmd.writeMode == "async" || cmd.writeMode == "sync" else {
            throw CLIFailure(message: "invalid --write-mode '\(cmd.writeMode)': expected async or sync", exitCode: 64)
        }
        guard let addressing = AddressingStyle(rawValue: cmd.addressingStyle) else {
            throw CLIFailure(message: "invalid --addressing-style '\(cmd.addressingStyle)': expected auto, path or virtual", exitCode: 64)
        }
        let ttl: Double?
        if cmd.metadataTtl == "indefinite" {
            ttl = nil
        } else if let seconds = Double(cmd.metadataTtl), seconds >= 0, seconds.isFinite {
            ttl = seconds
        } else {
            throw CLIFailure(message: "invalid --metadata-ttl '\(cmd.metadataTtl)': expected seconds (e.g. 60) or 'indefinite'", exitCode: 64)
        }
        let fileMode = try parseMode(cmd.fileMode, option: "--file-mode")
        let dirMode = try parseMode(cmd.dirMode, option: "--dir-mode")
        let blockSize = try ByteSize.parse(cmd.blockSize)
        guard blockSize >= 1 << 20, blockSize <= 16 << 20, blockSize & (blockSize - 1) == 0 else {
            throw CLIFailure(message: "invalid --block-size '\(cmd.blockSize)': expected a power of two from 1M to 16M", exitCode: 64)
        }
        guard (0...65536).contains(cmd.kernelReadahead) else {
            throw CLIFailure(message: "invalid --kernel-readahead \(cmd.kernelReadahead): expected 0 to 65536 (KiB)", exitCode: 64)
        }
        guard (1...256).contains(cmd.fuseThreads) else {
            throw CLIFailure(message: "invalid --fuse-threads \(cmd.fuseThreads): expected 1 to 256", exitCode: 64)
        }
        let cacheSize = try ByteSize.parse(cmd.cacheSize)
        let memoryCache = try ByteSize.parse(cmd.memoryCache)
        guard (1...1024).contains(cmd.maxConcurrency) else {
            throw CLIFailure(message: "invalid --max-concurrency \(cmd.maxConcurrency): expected 1 to 1024", exitCode: 64)
        }
        let partSize = try ByteSize.parse(cmd.partSize)
        guard partSize >= 5 << 20, partSize <= 5 << 30 else {
            throw CLIFailure(message: "invalid --part-size '\(cmd.partSize)': S3 parts must be 5M to 5G", exitCode: 64)
        }
        guard (1...256).contains(cmd.uploadConcurrency) else {
            throw CLIFailure(message: "invalid --upload-concurrency \(cmd.uploadConcurrency): expected 1 to 256", exitCode: 64)
        }
        guard (0...100_000).contains(cmd.dirReadAhead) else {
            throw CLIFailure(message: "invalid --dir-read-ahead \(cmd.dirReadAhead): expected 0 (off) to 100000 files", exitCode: 64)
        }
        guard let metadataPolicy = MetadataPolicy(rawValue: cmd.metadata) else {
            throw CLIFailure(message: "invalid --metadata '\(cmd.metadata)': expected exact or listing", exitCode: 64)
        }
        guard (0...1024).contains(cmd.metadataReadAhead) else {
            throw CLIFailure(message: "invalid --metadata-read-ahead \(cmd.metadataReadAhead): expected 0 (off) to 1024", exitCode: 64)
        }
        let mountpoint = try MountChecks.checkMountpoint(cmd.mountpoint)
        try MountChecks.checkFuseDevice()
        try MountChecks.prepareCacheDir(cmd.cacheDir)

        var s3: S3Configuration
        do {
            s3 = try S3Configuration.resolve(
                endpoint: cmd.endpoint, region: cmd.region, profile: cmd.profile, anonymous: cmd.noSignRequest,
                environment: MountChecks.environment())
        } catch {
            throw CLIFailure(message: error.message, exitCode: 64)
        }
        s3.addressing = addressing
        s3.transport.maxConcurrentTransfers = cmd.maxConcurrency
        try await MountChecks.checkBucket(bucket, configuration: s3)
        var plan = MountPlan(
            bucket: bucket, mountpoint: mountpoint, s3: s3, cacheDir: cmd.cacheDir,
            cacheSize: cacheSize, memoryCache: memoryCache,
            writeMode: cmd.writeMode, partSize: partSize, uploadConcurrency: cmd.uploadConcurrency, metadataTTL: ttl, readOnly: cmd.readOnly, allowOther: cmd.allowOther,
            uid: cmd.uid ?? getuid(), gid: cmd.gid ?? getgid(), fileMode: fileMode, dirMode: dirMode, foreground: cmd.foreground,
            blockSize: Int(blockSize), fuseThreads: cmd.fuseThreads, kernelReadaheadKB: cmd.kernelReadahead, dirReadAhead: cmd.dirReadAhead)
        plan.metadataPolicy = metadataPolicy
        plan.metadataReadAhead = cmd.metadataReadAhead
        return plan
    }

    /// Folds `-o a,b=c` into the typed options, as mount.fuse3 and fstab pass them.
    static func applyFstabOptions(_ cmd: inout MountCommand) throws(CLIFailure) {
        for group in cmd.options {
            for item in group.split(separator: ",") {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                let name = parts[0]
                let value = parts.count > 1 ? parts[1] : nil
                func need() throws(CLIFailure) -> String {
                    guard let value, !value.isEmpty else { throw CLIFailure(message: "mount option '\(name)' needs a value (\(name)=...)", exitCode: 64) }
                    return value
                }
                switch name {
                case "ro": cmd.readOnly = true
                case "rw", "defaults", "auto", "noauto", "user", "nouser", "_netdev", "nofail", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime":
                    break  // handled by mount(8) or the kernel, or meaningless here
                case "allow_other": cmd.allowOther = true
                case "uid":
                    guard let v = UInt32(try need()) else { throw CLIFailure(message: "mount option uid=\(value ?? "") is not a number", exitCode: 64) }
                    cmd.uid = v
                case "gid":
                    guard let v = UInt32(try need()) else { throw CLIFailure(message: "mount option gid=\(value ?? "") is not a number", exitCode: 64) }
                    cmd.gid = v
                case "endpoint": cmd.endpoint = try need()
                case "region": cmd.region = try need()
                case "profile": cmd.profile = try need()
                case "cache_dir": cmd.cacheDir = try need()
                case "cache_size": cmd.cacheSize = try need()
                case "memory_cache": cmd.memoryCache = try need()
                case "write_mode": cmd.writeMode = try need()
                case "metadata_ttl": cmd.metadataTtl = try need()
                case "file_mode": cmd.fileMode = try need()
                case "dir_mode": cmd.dirMode = try need()
                case "no_sign_request": cmd.noSignRequest = true
                case "metadata": cmd.metadata = try need()
                default:
                    throw CLIFailure(message: "unknown mount option '\(name)'; see 'lakecache mount --help' and docs/configuration.md", exitCode: 64)
                }
            }
        }
    }

    static func parseMode(_ text: String, option: String) throws(CLIFailure) -> UInt32 {
        guard let mode = UInt32(text, radix: 8), mode <= 0o7777 else {
            throw CLIFailure(message: "invalid \(option) '\(text)': expected an octal mode such as 0644", exitCode: 64)
        }
        return mode
    }
}
