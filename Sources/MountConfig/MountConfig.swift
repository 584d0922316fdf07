import ObjectStore

/// How long cached metadata stays valid.
package enum TTL: Sendable, Equatable {
    /// Revalidated after this many seconds (0: every time).
    case seconds(Double)
    /// Never revalidated: for data that does not change under the mount.
    case indefinite
}

/// When a closed file reaches the object store.
package enum WriteMode: String, Sendable {
    /// Close returns at once; the upload happens in the background.
    case async
    /// Close returns once the object is stored.
    case sync
}

/// When a link's objects are fetched into the cache.
package enum ImportMode: String, Sendable {
    /// On first read.
    case lazy
    /// Ahead of reads, as soon as the mount starts.
    case preload
}

/// Mount-wide settings; nil means "not in the file" (the command line or the built-in default applies).
package struct MountSettings: Sendable, Equatable {
    /// Directory of the disk cache tier.
    package var cacheDir: String?
    /// Bound of the disk tier, in bytes.
    package var cacheSize: Int64?
    /// Bound of the memory tier, in bytes.
    package var memoryCache: Int64?
    /// Cache block size, in bytes (a power of two from 1 MiB to 16 MiB).
    package var blockSize: Int64?
    /// Multipart upload part size, in bytes (5 MiB to 5 GiB).
    package var partSize: Int64?
    /// Upload parts in flight across all files.
    package var uploadConcurrency: Int?
    /// Concurrent backend transfers.
    package var maxConcurrency: Int?
    /// FUSE worker threads.
    package var fuseThreads: Int?
    /// Small files of a directory fetched ahead (0: off).
    package var dirReadAhead: Int?
    /// Sibling directories listed ahead of a walk (0: off).
    package var listingReadAhead: Int?
    /// Metadata requests in flight ahead of lookups (0: off).
    package var metadataReadAhead: Int?
    /// Whether users other than the mounting one may access the mount.
    package var allowOther: Bool?
    /// Owner shown for objects without uid metadata.
    package var uid: UInt32?
    /// Group shown for objects without gid metadata.
    package var gid: UInt32?
    /// Mode of files without mode metadata.
    package var fileMode: UInt32?
    /// Mode of directories without mode metadata.
    package var dirMode: UInt32?
    /// trace, debug, info, notice, warning, error or critical.
    package var logLevel: String?
    /// Where metrics are served.
    package var metricsAddress: String?
    /// Where object-store events are received.
    package var eventsAddress: String?
    /// File holding the token that event senders must present.
    package var eventsTokenFile: String?
    /// Whether SNS signatures must be verified: `required`, `when-reachable` or `off`.
    package var eventsSNSVerify: String?
    /// Bytes of cache that pinned (preloaded) data may hold.
    package var pinBudget: Int64?
    /// device or kernel: how far a durable close must have got.
    package var closeDurability: String?

    // Defaults every link inherits unless it sets its own:

    /// S3 endpoint URL, validated with `Endpoint(parsing:)`.
    package var endpoint: String?
    /// S3 region.
    package var region: String?
    /// Profile in the shared credentials file.
    package var profile: String?
    /// Whether requests are anonymous.
    package var noSignRequest: Bool?
    /// auto, path or virtual.
    package var addressingStyle: String?
    /// Whether writes are refused.
    package var readOnly: Bool?
    /// When closed files are uploaded.
    package var writeMode: WriteMode?
    /// Lifetime of cached metadata.
    package var metadataTTL: TTL?
    /// Lifetime of cached "no such file" answers.
    package var negativeTTL: TTL?
    /// exact, summary or listing: where listed files' metadata comes from.
    package var metadata: String?
    /// When objects are fetched into the cache.
    package var importMode: ImportMode?
    /// Seconds between background syncs of each link: the same re-list and diff as `lakecache sync`.
    package var syncInterval: Double?

    /// Nothing set.
    package init() {}
}

/// One link as the file declares it, with the file's link defaults already applied (a field a link does not set and the file sets at top level takes the top-level value; otherwise nil).
package struct LinkSpec: Sendable, Equatable {
    /// Normalized directory in the mount: no leading or trailing `/`; "" is the mount root.
    package var path: String
    /// The bucket and prefix that appear at `path`.
    package var url: BucketURL
    /// S3 endpoint URL, validated with `Endpoint(parsing:)`.
    package var endpoint: String?
    /// S3 region.
    package var region: String?
    /// Profile in the shared credentials file.
    package var profile: String?
    /// Whether requests are anonymous.
    package var noSignRequest: Bool?
    /// auto, path or virtual.
    package var addressingStyle: String?
    /// Whether writes are refused.
    package var readOnly: Bool?
    /// When closed files are uploaded.
    package var writeMode: WriteMode?
    /// Lifetime of cached metadata.
    package var metadataTTL: TTL?
    /// Lifetime of cached "no such file" answers.
    package var negativeTTL: TTL?
    /// Keys shown (all when empty), relative to the URL's prefix.
    package var include: [KeyGlob] = []
    /// Keys hidden, relative to the URL's prefix.
    package var exclude: [KeyGlob] = []
    /// When objects are fetched into the cache.
    package var importMode: ImportMode?
    /// Seconds (> 0) between background syncs of the link: the same re-list and diff as `lakecache sync`.
    package var syncInterval: Double?
    /// exact, summary or listing: where listed files' metadata comes from.
    package var metadata: String?
    /// lazy or preload: what an object-store "created" event does.
    package var onCreate: String?
    /// The YAML line of the link entry, for messages.
    package var line: Int
    /// The keys the link sets itself, merged ones included: a command-line option overrides only the others.
    package var ownKeys: Set<String> = []

    /// A link with nothing but its place, target and line set.
    package init(path: String, url: BucketURL, line: Int) {
        self.path = path
        self.url = url
        self.line = line
    }
}

/// What a `lakecache mount --config FILE` file says.
package struct MountConfig: Sendable, Equatable {
    /// The file name used in messages.
    package var file: String
    /// Mount-wide settings and link defaults.
    package var settings: MountSettings
    /// The links, in file order, with the defaults applied.
    package var links: [LinkSpec]

    /// A config from its parts.
    package init(file: String, settings: MountSettings, links: [LinkSpec]) {
        self.file = file
        self.settings = settings
        self.links = links
    }
}
