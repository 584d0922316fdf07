import ArgumentParser
import Control
import Filesystem
import Logging
import ObjectStore
import Platform

#if canImport(Glibc)
import Glibc
#endif

/// `lakecache mount s3://BUCKET[/PREFIX] MOUNTPOINT [options]` and `lakecache mount --config FILE MOUNTPOINT`.
///
/// Options are optional here so that a config file's settings apply where the command line is silent: the
/// built-in defaults (in each help text) come last, in `MountPlan`.
struct MountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount a bucket (or a prefix of it), or a namespace of links from a config file, at a local directory.",
        discussion: """
            lakecache mount s3://BUCKET[/PREFIX] MOUNTPOINT [options]
            lakecache mount --config FILE MOUNTPOINT [options]      (options apply on top of the file's settings)
            Returns once the mount is live, unless --foreground is given. Fails with one clear line otherwise.
            """)

    @Argument(help: "s3://BUCKET[/PREFIX] and MOUNTPOINT, or MOUNTPOINT alone with --config.") var arguments: [String] = []

    @Option(help: "A YAML file declaring the links of the namespace (docs/configuration.md).") var config: String?
    @Option(help: "S3 endpoint URL (else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then the AWS regional endpoint).") var endpoint: String?
    @Option(help: "Region (else AWS_REGION, AWS_DEFAULT_REGION, then us-east-1).") var region: String?
    @Option(help: "Profile of ~/.aws/credentials and ~/.aws/config (else AWS_PROFILE, then default); skips the environment keys.") var profile: String?
    @Flag(help: "Send anonymous requests (public buckets).") var noSignRequest = false
    @Option(help: "Request addressing: auto, path or virtual (default auto).") var addressingStyle: String?
    @Option(help: "Directory of the NVMe cache tier; created with mode 0700 (default /var/cache/lakecache).") var cacheDir: String?
    @Option(help: "Bound of the disk tier, e.g. 200G (default 100G).") var cacheSize: String?
    @Option(help: "Bound of the memory tier, e.g. 2G (default 1G).") var memoryCache: String?
    @Option(help: "Close mode for written files: async or sync (default async).") var writeMode: String?
    @Option(help: "What an async close() secures: device (bytes and journal record fdatasynced; survives a power cut) or kernel (bytes in the page cache, synced just after; survives kill -9). Default device.") var closeDurability: String?
    @Option(help: "Multipart part size for the first 1,000 parts (doubling every 1,000 after), e.g. 16M (default 16M).") var partSize: String?
    @Option(help: "Upload parts in flight across all files (default 8).") var uploadConcurrency: Int?
    @Option(help: "Metadata cache lifetime in seconds, or 'indefinite' for immutable data (default 60).") var metadataTtl: String?
    @Option(help: "Lifetime of 'no such file' answers in seconds, or 'indefinite' (default: the metadata TTL).") var negativeTtl: String?
    @Flag(help: "Refuse all writes.") var readOnly = false
    @Flag(help: "Let other users access the mount (needs user_allow_other for non-root).") var allowOther = false
    @Option(help: "Owner uid shown for objects without uid metadata (default: yours).") var uid: UInt32?
    @Option(help: "Group gid shown for objects without gid metadata (default: yours).") var gid: UInt32?
    @Option(help: "Mode (octal) of files without mode metadata (default 0644).") var fileMode: String?
    @Option(help: "Mode (octal) of directories without mode metadata (default 0755).") var dirMode: String?
    @Option(help: "Concurrent backend transfers (default 64).") var maxConcurrency: Int?
    @Flag(name: [.customShort("f"), .long], help: "Stay in the foreground (for systemd).") var foreground = false
    @Option(name: .customShort("o"), help: "Comma-separated mount options, fstab style (ro, allow_other, uid=, gid=, config=, ...).") var options: [String] = []
    @Option(help: "Cache block size, e.g. 4M (1M to 16M; default 4M).") var blockSize: String?
    @Option(help: "FUSE worker threads (default 16).") var fuseThreads: Int?
    @Option(help: "Kernel readahead for the mount in KiB (0 keeps the kernel default; needs root).") var kernelReadahead: Int = 1024
    @Option(help: "Small files of a directory fetched ahead once an application reads several of them (0 turns it off; default 64).") var dirReadAhead: Int?
    @Option(help: "Sibling directories listed ahead once a walk has opened two adjacent ones (0 turns it off; default 8).") var listingReadAhead: Int?
    @Option(help: "Where listed files' type, mode and owner come from: exact (their metadata, fetched as a listing arrives) or listing (plain objects: defaults, no request per file). Default exact.") var metadata: String?
    @Option(help: "Metadata fetches in flight ahead of lookups under the exact policy (default 64).") var metadataReadAhead: Int?
    @Option(help: "Bytes of the disk tier pinned files may hold (lakecache pin), e.g. 50G (default: half of --cache-size).") var pinBudget: String?
    @Option(help: "What an object-store event announcing a new or changed object does: lazy (show it; fetch on first read) or preload (also fill it into the disk tier). Default lazy.") var onCreate: String?
    @Option(help: "Serve the object-store events endpoint here, HOST:PORT (AWS S3/SNS, MinIO and Ceph RGW notifications; default host 127.0.0.1).") var eventsAddress: String?
    @Option(help: "File (mode 0600) holding the token event senders present; required with --events-address.") var eventsTokenFile: String?
    @Option(help: "SNS signature checks: required, when-reachable (default: verify when the certificate can be fetched) or off.") var eventsSnsVerify: String?
    @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics (default host 127.0.0.1; the same address as --events-address shares its server).") var metricsAddress: String?
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
        let daemon = MountDaemon(plan: plan, command: self, logger: Logger(label: "lakecache"))
        let rc = await daemon.run { failure in
            if let failure { Daemonizer.report(failure, to: readyFD) }
            if let readyFD {
                Daemonizer.signalReady(readyFD, logFile: plan.cacheDir + "/lakecache.log")
            }
        }
        Glibc.exit(rc)
    }
}
