import Events
import HTTPServing
import Filesystem
import MountConfig
import ObjectStore
import Platform
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// One link as `mount` resolved it: where it appears, what it shows, how to reach its store, its policy.
struct LinkPlan {
    var path: String
    var bucket: BucketURL
    var s3: S3Configuration
    /// The store's name: "" for a one-URL mount, else its canonical endpoint, region and identity.
    var storeName: String
    var policy: LinkPolicy
    /// The YAML line it came from, for messages (0 on the command line).
    var line = 0

    /// How a message names it: `link 'models'`, or the URL for a one-URL mount.
    var label: String { path.isEmpty && line == 0 ? "\(bucket)" : "link '/\(path)'" }
}

/// The events endpoint as `mount` resolved it.
struct EventsPlan {
    var address: EventAddress
    /// Never logged.
    var token: String
    var snsVerify: SNSVerifier.Mode
}

/// Everything `mount` resolved and checked before it starts serving.
struct MountPlan {
    var mountpoint: String
    var configFile: String?
    var links: [LinkPlan]
    var cacheDir: String
    var cacheSize: Int64
    var memoryCache: Int64
    var partSize: Int64
    var uploadConcurrency: Int
    var maxConcurrency: Int
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
    var listingReadAhead: Int
    var metadataReadAhead: Int
    /// Bytes pinned files may hold in the disk tier; nil for half of it.
    var pinBudget: Int64? = nil
    /// What an async close secures before it returns.
    var closeDurability = CloseDurability.device
    /// This boot's id (`LAKECACHE_BOOT_ID` overrides it, for tests that simulate a reboot).
    var bootID = ""
    /// The events endpoint, when asked for.
    var events: EventsPlan? = nil
    /// Where `/metrics` is served, when asked for.
    var metrics: ListenAddress? = nil

    /// Whether any link takes writes (else no write path is built).
    var writable: Bool { links.contains { !$0.policy.readOnly } }

    /// `prepare` as a `Result`.
    static func result(_ cmd: MountCommand) async -> Result<MountPlan, CLIFailure> {
        do {
            return .success(try await prepare(cmd))
        } catch {
            return .failure(error)
        }
    }

    /// Validates input in order of cost; the first problem becomes a one-line `CLIFailure`.
    static func prepare(_ command: MountCommand) async throws(CLIFailure) -> MountPlan {
        var cmd = command
        try applyFstabOptions(&cmd)
        let (url, mountpointArgument) = try positional(cmd)
        let file = try loadConfig(cmd)
        let s = file?.settings ?? MountSettings()
        func usage(_ m: String) -> CLIFailure { CLIFailure(message: m, exitCode: 64) }

        let blockSize = try size(cmd.blockSize) ?? s.blockSize ?? 4 << 20
        guard blockSize >= 1 << 20, blockSize <= 16 << 20, blockSize & (blockSize - 1) == 0 else {
            throw usage("invalid block size \(blockSize): expected a power of two from 1M to 16M")
        }
        guard (0...65536).contains(cmd.kernelReadahead) else {
            throw usage("invalid --kernel-readahead \(cmd.kernelReadahead): expected 0 to 65536 (KiB)")
        }
        let fuseThreads = cmd.fuseThreads ?? s.fuseThreads ?? 16
        guard (1...256).contains(fuseThreads) else { throw usage("invalid FUSE thread count \(fuseThreads): expected 1 to 256") }
        let maxConcurrency = cmd.maxConcurrency ?? s.maxConcurrency ?? 64
        guard (1...1024).contains(maxConcurrency) else { throw usage("invalid --max-concurrency \(maxConcurrency): expected 1 to 1024") }
        let partSize = try size(cmd.partSize) ?? s.partSize ?? 16 << 20
        guard partSize >= 5 << 20, partSize <= 5 << 30 else { throw usage("invalid part size \(ByteCount.format(partSize)): S3 parts must be 5M to 5G") }
        let uploadConcurrency = cmd.uploadConcurrency ?? s.uploadConcurrency ?? 8
        guard (1...256).contains(uploadConcurrency) else { throw usage("invalid upload concurrency \(uploadConcurrency): expected 1 to 256") }
        let dirReadAhead = cmd.dirReadAhead ?? s.dirReadAhead ?? 64
        guard (0...100_000).contains(dirReadAhead) else { throw usage("invalid --dir-read-ahead \(dirReadAhead): expected 0 (off) to 100000 files") }
        let listingReadAhead = cmd.listingReadAhead ?? s.listingReadAhead ?? 8
        guard (0...256).contains(listingReadAhead) else { throw usage("invalid --listing-read-ahead \(listingReadAhead): expected 0 (off) to 256 directories") }
        let metadataReadAhead = cmd.metadataReadAhead ?? s.metadataReadAhead ?? 64
        guard (0...1024).contains(metadataReadAhead) else { throw usage("invalid --metadata-read-ahead \(metadataReadAhead): expected 0 (off) to 1024") }
        let cacheDir = cmd.cacheDir ?? s.cacheDir ?? "/var/cache/lakecache"
        let cacheSize = try size(cmd.cacheSize) ?? s.cacheSize ?? 100 << 30
        let pinBudget = try size(cmd.pinBudget) ?? s.pinBudget
        if let pinBudget, pinBudget > cacheSize { throw usage("the pin budget (\(ByteCount.format(pinBudget))) is larger than the disk tier (\(ByteCount.format(cacheSize))); give --pin-budget at most --cache-size") }
        let memoryCache = try size(cmd.memoryCache) ?? s.memoryCache ?? 1 << 30
        let fileMode = try mode(cmd.fileMode, option: "--file-mode") ?? s.fileMode ?? 0o644
        let dirMode = try mode(cmd.dirMode, option: "--dir-mode") ?? s.dirMode ?? 0o755
        let links = try linkPlans(cmd, url: url, file: file)
        let events = try eventsPlan(cmd, s)
        let durabilityText = cmd.closeDurability ?? s.closeDurability ?? "device"
        guard let closeDurability = CloseDurability(rawValue: durabilityText) else {
            throw usage("invalid --close-durability '\(durabilityText)': expected device (close() waits for the device) or kernel (close() waits for the page cache)")
        }
        let bootID = getenv("LAKECACHE_BOOT_ID").map { String(cString: $0) } ?? BootID.current() ?? ""
        if closeDurability == .kernel && bootID.isEmpty {
            throw usage("--close-durability kernel needs the boot id (/proc/sys/kernel/random/boot_id) to tell a power cut from a crash after one, and it cannot be read; mount /proc, or use --close-durability device")
        }
        var metrics: ListenAddress?
        if let text = cmd.metricsAddress ?? s.metricsAddress {
            do { metrics = try ListenAddress.parse(text, option: "--metrics-address") } catch { throw usage(error.message) }
        }

        let mountpoint = try MountChecks.checkMountpoint(mountpointArgument)
        try MountChecks.checkFuseDevice()
        try MountChecks.prepareCacheDir(cacheDir)
        try await MountChecks.checkBuckets(links)
        return MountPlan(
            mountpoint: mountpoint, configFile: file?.file, links: links, cacheDir: cacheDir,
            cacheSize: cacheSize, memoryCache: memoryCache,
            partSize: partSize, uploadConcurrency: uploadConcurrency, maxConcurrency: maxConcurrency,
            allowOther: cmd.allowOther || (s.allowOther ?? false), uid: cmd.uid ?? s.uid ?? getuid(), gid: cmd.gid ?? s.gid ?? getgid(),
            fileMode: fileMode, dirMode: dirMode,
            foreground: cmd.foreground, blockSize: Int(blockSize), fuseThreads: fuseThreads,
            kernelReadaheadKB: cmd.kernelReadahead, dirReadAhead: dirReadAhead, listingReadAhead: listingReadAhead, metadataReadAhead: metadataReadAhead, pinBudget: pinBudget,
            closeDurability: closeDurability, bootID: bootID, events: events, metrics: metrics)
    }

    /// The events endpoint's address, token and SNS mode; nil when no address is given.
    static func eventsPlan(_ cmd: MountCommand, _ s: MountSettings) throws(CLIFailure) -> EventsPlan? {
        let tokenFile = cmd.eventsTokenFile ?? s.eventsTokenFile
        guard let text = cmd.eventsAddress ?? s.eventsAddress else {
            if tokenFile != nil { throw CLIFailure(message: "--events-token-file is given without --events-address: say where the events endpoint listens", exitCode: 64) }
            return nil
        }
        do throws(SystemError) {
            let address = try EventAddress.parse(text)
            guard let tokenFile else {
                throw SystemError("--events-address needs --events-token-file FILE: every POST must carry the token in it (openssl rand -hex 32 > FILE; chmod 600 FILE)")
            }
            let token = try EventToken.load(tokenFile)
            let modeText = cmd.eventsSnsVerify ?? s.eventsSNSVerify ?? "when-reachable"
            guard let mode = SNSVerifier.Mode(rawValue: modeText) else {
                throw SystemError("invalid --events-sns-verify '\(modeText)': expected required, when-reachable or off")
            }
            return EventsPlan(address: address, token: token, snsVerify: mode)
        } catch {
            throw CLIFailure(message: error.message, exitCode: 64)
        }
    }

    /// `URL MOUNTPOINT`, or `MOUNTPOINT` with a config file.
    static func positional(_ cmd: MountCommand) throws(CLIFailure) -> (String?, String) {
        switch (cmd.config, cmd.arguments.count) {
        case (nil, 2): return (cmd.arguments[0], cmd.arguments[1])
        case (_?, 1): return (nil, cmd.arguments[0])
        case (_?, 2): throw CLIFailure(message: "give either a bucket URL or --config, not both: the config file declares the links", exitCode: 64)
        case (nil, 1): throw CLIFailure(message: "missing MOUNTPOINT: lakecache mount s3://BUCKET[/PREFIX] MOUNTPOINT (or --config FILE MOUNTPOINT)", exitCode: 64)
        default: throw CLIFailure(message: "expected s3://BUCKET[/PREFIX] MOUNTPOINT, or --config FILE MOUNTPOINT", exitCode: 64)
        }
    }

    static func loadConfig(_ cmd: MountCommand) throws(CLIFailure) -> MountConfig? {
        guard let path = cmd.config else { return nil }
        do {
            return try MountConfig.load(path: path)
        } catch {
            throw CLIFailure(message: error.message, exitCode: 64)
        }
    }

    /// The links: one at the root for a URL, else the file's, each with the command line's settings applied
    /// over the file's top-level ones (a link's own setting wins over both).
    static func linkPlans(_ cmd: MountCommand, url: String?, file: MountConfig?) throws(CLIFailure) -> [LinkPlan] {
        func usage(_ m: String) -> CLIFailure { CLIFailure(message: m, exitCode: 64) }
        if let url {
            let bucket: BucketURL
            do { bucket = try BucketURL(parsing: url) } catch { throw usage(error.message) }
            var spec = LinkSpec(path: "", url: bucket, line: 0)
            spec.metadata = nil
            return [try plan(spec, own: [], cmd: cmd, storeName: "")]
        }
        guard let file else { throw usage("no links: give s3://BUCKET[/PREFIX] or --config FILE") }
        var plans: [LinkPlan] = []
        for spec in file.links {
            plans.append(try plan(spec, own: spec.ownKeys, cmd: cmd, storeName: nil))
        }
        return plans
    }

    /// One link's plan. A setting comes from the link itself (`own`), else the command line, else the file's
    /// top level (already in `spec`), else the built-in default.
    static func plan(_ spec: LinkSpec, own: Set<String>, cmd: MountCommand, storeName: String?) throws(CLIFailure) -> LinkPlan {
        let at = spec.line > 0 ? "link '/\(spec.path)' (line \(spec.line)): " : ""
        func usage(_ m: String) -> CLIFailure { CLIFailure(message: at + m, exitCode: 64) }
        func pick<T>(_ key: String, _ fromCommand: T?, _ fromSpec: T?) -> T? { own.contains(key) ? fromSpec : (fromCommand ?? fromSpec) }

        var policy = LinkPolicy()
        policy.readOnly = own.contains("read-only") ? (spec.readOnly ?? false) : (cmd.readOnly || (spec.readOnly ?? false))
        let writeMode = pick("write-mode", cmd.writeMode, spec.writeMode?.rawValue) ?? "async"
        guard writeMode == "async" || writeMode == "sync" else { throw usage("invalid --write-mode '\(writeMode)': expected async or sync") }
        policy.syncClose = writeMode == "sync"
        let cliTTL = try cmd.metadataTtl.flatMap { (t: String) throws(CLIFailure) -> TTL? in try parseTTL(t, option: "--metadata-ttl") }
        let cliNegative = try cmd.negativeTtl.flatMap { (t: String) throws(CLIFailure) -> TTL? in try parseTTL(t, option: "--negative-ttl") }
        let ttl = pick("metadata-ttl", cliTTL, spec.metadataTTL) ?? .seconds(60)
        policy.metadataTTL = ttl.seconds
        policy.negativeTTL = (pick("negative-ttl", cliNegative, spec.negativeTTL) ?? ttl).seconds
        let metadata = pick("metadata", cmd.metadata, spec.metadata) ?? "exact"
        guard let m = MetadataPolicy(rawValue: metadata) else {
            throw usage("invalid --metadata '\(metadata)': expected \(MetadataPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        policy.metadata = m
        policy.filter = KeyFilter(include: spec.include, exclude: spec.exclude)
        policy.preload = spec.importMode == .preload
        let onCreate = pick("on-create", cmd.onCreate, spec.onCreate) ?? "lazy"
        guard onCreate == "lazy" || onCreate == "preload" else { throw usage("invalid --on-create '\(onCreate)': expected lazy or preload") }
        policy.preloadOnCreate = onCreate == "preload"
        policy.syncInterval = spec.syncInterval

        let addressingText = pick("addressing-style", cmd.addressingStyle, spec.addressingStyle) ?? "auto"
        guard let addressing = AddressingStyle(rawValue: addressingText) else {
            throw usage("invalid --addressing-style '\(addressingText)': expected auto, path or virtual")
        }
        let anonymous = own.contains("no-sign-request") ? (spec.noSignRequest ?? false) : (cmd.noSignRequest || (spec.noSignRequest ?? false))
        var s3: S3Configuration
        do {
            s3 = try S3Configuration.resolve(
                endpoint: pick("endpoint", cmd.endpoint, spec.endpoint), region: pick("region", cmd.region, spec.region),
                profile: pick("profile", cmd.profile, spec.profile), anonymous: anonymous, environment: MountChecks.environment())
        } catch {
            throw usage(error.message)
        }
        s3.addressing = addressing
        let profile = pick("profile", cmd.profile, spec.profile) ?? ""
        let name = storeName ?? "\(s3.endpoint)|\(s3.region)|\(anonymous ? "anonymous" : "profile=" + profile)|\(addressing.rawValue)"
        return LinkPlan(path: spec.path, bucket: spec.url, s3: s3, storeName: name, policy: policy, line: spec.line)
    }

    static func size(_ text: String?) throws(CLIFailure) -> Int64? {
        guard let text else { return nil }
        return try ByteSize.parse(text)
    }

    static func mode(_ text: String?, option: String) throws(CLIFailure) -> UInt32? {
        guard let text else { return nil }
        return try parseMode(text, option: option)
    }

    static func parseTTL(_ text: String, option: String) throws(CLIFailure) -> TTL {
        if text == "indefinite" { return .indefinite }
        guard let seconds = Double(text), seconds >= 0, seconds.isFinite else {
            throw CLIFailure(message: "invalid \(option) '\(text)': expected seconds (e.g. 60) or 'indefinite'", exitCode: 64)
        }
        return .seconds(seconds)
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
                func number<T: FixedWidthInteger>(_: T.Type) throws(CLIFailure) -> T {
                    let text = try need()
                    guard let v = T(text) else { throw CLIFailure(message: "mount option \(name)=\(text) is not a number", exitCode: 64) }
                    return v
                }
                switch name {
                case "ro": cmd.readOnly = true
                case "rw", "defaults", "auto", "noauto", "user", "nouser", "_netdev", "nofail", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime":
                    break  // handled by mount(8) or the kernel, or meaningless here
                case "allow_other": cmd.allowOther = true
                case "uid": cmd.uid = try number(UInt32.self)
                case "gid": cmd.gid = try number(UInt32.self)
                case "config": cmd.config = try need()
                case "endpoint": cmd.endpoint = try need()
                case "region": cmd.region = try need()
                case "profile": cmd.profile = try need()
                case "cache_dir", "cache-dir": cmd.cacheDir = try need()
                case "cache_size", "cache-size": cmd.cacheSize = try need()
                case "memory_cache", "memory-cache": cmd.memoryCache = try need()
                case "write_mode", "write-mode": cmd.writeMode = try need()
                case "close_durability", "close-durability": cmd.closeDurability = try need()
                case "metadata_ttl", "metadata-ttl": cmd.metadataTtl = try need()
                case "negative_ttl", "negative-ttl": cmd.negativeTtl = try need()
                case "file_mode", "file-mode": cmd.fileMode = try need()
                case "dir_mode", "dir-mode": cmd.dirMode = try need()
                case "no_sign_request", "no-sign-request": cmd.noSignRequest = true
                case "metadata": cmd.metadata = try need()
                case "pin_budget", "pin-budget": cmd.pinBudget = try need()
                case "on_create", "on-create": cmd.onCreate = try need()
                case "events_address", "events-address": cmd.eventsAddress = try need()
                case "events_token_file", "events-token-file": cmd.eventsTokenFile = try need()
                case "events_sns_verify", "events-sns-verify": cmd.eventsSnsVerify = try need()
                case "metrics_address", "metrics-address": cmd.metricsAddress = try need()
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

extension TTL {
    /// Seconds, or nil for indefinite (as `LinkPolicy` keeps TTLs).
    var seconds: Double? {
        switch self {
        case .seconds(let s): return s
        case .indefinite: return nil
        }
    }
}
