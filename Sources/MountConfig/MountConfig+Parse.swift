import Platform
import Yams

extension MountConfig {
    /// The largest config file accepted: thousands of links fit in a fraction of it.
    package static let maxFileBytes = 1 << 20
    /// The most links one mount serves.
    package static let maxLinks = 10_000

    /// Parses and validates `text`; `file` names it in messages. The first problem is thrown.
    package static func parse(_ text: String, file: String) throws(ConfigError) -> MountConfig {
        try parse(text, file: file, valueLimit: 1_000_000)
    }

    /// `parse` with a bound on the values aliases may expand to, lowered by tests.
    static func parse(_ text: String, file: String, valueLimit: Int) throws(ConfigError) -> MountConfig {
        guard text.utf8.count <= maxFileBytes else {
            throw ConfigError("\(file): the file is \(text.utf8.count) bytes, over the 1 MiB limit; check that it is the links config file, or split the mount")
        }
        let document = try YAMLDocument.compose(text, file: file)
        let reader = ConfigReader(file: file, renamedDuplicates: document.renamedDuplicates, valueLimit: valueLimit)
        guard let root = document.root else {
            throw ConfigError("\(file):1: the file is empty; add a 'links:' list with at least one '- path: DIR' and 'url: s3://BUCKET[/PREFIX]'")
        }
        guard case .mapping(let mapping) = root else {
            throw reader.error(root.mark?.line ?? 1, .top, "the top level is \(describe(root)), not a mapping", "write settings as 'key: value' lines and the links under 'links:'")
        }
        let config = try reader.config(mapping)
        if let unvisited = document.unvisitedDuplicate { throw unvisited }
        return config
    }
}

/// Top-level keys that only links take, and where they go instead.
private let linkOnlyKeys: [String: String] = Dictionary(
    uniqueKeysWithValues: ["path", "url", "include", "exclude", "on-create"].map {
        ($0, "it is a link field: move it under a link in 'links:' (- path: DIR)")
    })

/// The mount-wide keys, for suggestions and for links that use one.
let mountKeys = [
    "cache-dir", "cache-size", "memory-cache", "block-size", "part-size", "upload-concurrency", "max-concurrency",
    "fuse-threads", "dir-read-ahead", "listing-read-ahead", "metadata-read-ahead", "allow-other", "uid", "gid", "file-mode", "dir-mode",
    "log-level", "metrics-address", "events-address", "events-token-file", "events-sns-verify", "pin-budget", "close-durability",
]

extension ConfigReader {
    /// The top-level mapping: settings, link defaults, then the links with those defaults.
    func config(_ mapping: Node.Mapping) throws(ConfigError) -> MountConfig {
        var settings = MountSettings()
        var defaults = LinkFields()
        var links: Entry?
        for e in try entries(of: mapping, .top) {
            if try read(e, into: &defaults, .top) { continue }
            switch e.key {
            case "cache-dir": settings.cacheDir = try string(e, .top, example: "/var/cache/lakecache")
            case "cache-size": settings.cacheSize = try size(e, .top, example: "200G")
            case "memory-cache": settings.memoryCache = try size(e, .top, example: "8G")
            case "block-size":
                let bytes = try size(e, .top, (1 << 20)...(16 << 20), example: "4M", rule: "a power of two from 1M to 16M")
                guard bytes & (bytes - 1) == 0 else {
                    throw error(e.line, .top, "'block-size' is \(ByteCount.format(bytes)), not a power of two", "use 1M, 2M, 4M, 8M or 16M")
                }
                settings.blockSize = bytes
            case "part-size": settings.partSize = try size(e, .top, (5 << 20)...(5 << 30), example: "16M", rule: "5M to 5G (S3's part sizes)")
            case "upload-concurrency": settings.uploadConcurrency = try integer(e, .top, 1...256, example: 8)
            case "max-concurrency": settings.maxConcurrency = try integer(e, .top, 1...1024, example: 64)
            case "fuse-threads": settings.fuseThreads = try integer(e, .top, 1...256, example: 16)
            case "dir-read-ahead": settings.dirReadAhead = try integer(e, .top, 0...100_000, example: 64)
            case "listing-read-ahead": settings.listingReadAhead = try integer(e, .top, 0...256, example: 8)
            case "metadata-read-ahead": settings.metadataReadAhead = try integer(e, .top, 0...1024, example: 64)
            case "allow-other": settings.allowOther = try bool(e, .top)
            case "uid": settings.uid = try integer(e, .top, 0...UInt32.max, example: 1000)
            case "gid": settings.gid = try integer(e, .top, 0...UInt32.max, example: 1000)
            case "file-mode": settings.fileMode = try mode(e, .top, example: "0644")
            case "dir-mode": settings.dirMode = try mode(e, .top, example: "0755")
            case "log-level":
                settings.logLevel = try choice(e, .top, ["trace", "debug", "info", "notice", "warning", "error", "critical"])
            case "metrics-address": settings.metricsAddress = try string(e, .top, example: "127.0.0.1:9464")
            case "events-address": settings.eventsAddress = try string(e, .top, example: "0.0.0.0:8089")
            case "events-token-file": settings.eventsTokenFile = try string(e, .top, example: "/etc/lakecache/events.token")
            case "events-sns-verify": settings.eventsSNSVerify = try choice(e, .top, ["required", "when-reachable", "off"])
            case "pin-budget": settings.pinBudget = try size(e, .top, example: "50G")
            case "close-durability": settings.closeDurability = try choice(e, .top, ["device", "kernel"])
            case "links": links = e
            // An extension key holds anchors for the links to merge or alias, as in docker-compose files.
            case _ where e.key.hasPrefix("x-"): continue
            default:
                throw unknownKey(e, .top, known: mountKeys + LinkFields.keys + ["links"], elsewhere: linkOnlyKeys)
            }
        }
        settings.apply(defaults)
        guard let links else {
            throw error(mapping.mark?.line ?? 1, .top, "there is no 'links' list", "add 'links:' with at least one '- path: DIR' and 'url: s3://BUCKET[/PREFIX]'")
        }
        let specs = try self.links(links, defaults: defaults)
        try checkPaths(of: specs)
        return MountConfig(file: file, settings: settings, links: specs)
    }
}

extension MountSettings {
    /// Records the file's link defaults, which are part of what the file says.
    fileprivate mutating func apply(_ p: LinkFields) {
        endpoint = p.endpoint
        region = p.region
        profile = p.profile
        noSignRequest = p.noSignRequest
        addressingStyle = p.addressingStyle
        readOnly = p.readOnly
        writeMode = p.writeMode
        metadataTTL = p.metadataTTL
        negativeTTL = p.negativeTTL
        metadata = p.metadata
        importMode = p.importMode
        syncInterval = p.syncInterval
    }
}
