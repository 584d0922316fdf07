import Logging
import ObjectStore
import Platform
import ReadCache
import Synchronization
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// The POSIX view of a namespace of links: inodes, attributes, listings, handles. Knows nothing of FUSE or
/// HTTP.
///
/// Every operation answers through a callback, possibly on another thread: metadata misses run as tasks,
/// reads complete on the thread that delivered their blocks. Nothing here blocks the caller on the network.
/// Its state is in four parts, each with its own lock and never two held at once: the node table, the
/// listing cache, the handle table and the overlay of staged files. The kernel serializes namespace changes
/// per directory, so a change made as several steps is not seen half done by another lookup of the same
/// name.
package final class Filesystem: @unchecked Sendable {
    package let options: FilesystemOptions
    package let links: LinkTable
    package let cache: BlockCache
    /// The write path; nil on a mount where every link is read-only.
    package let writeBack: WriteBack?
    let logger: Logger
    let mountTime: Timestamp

    let nodes: NodeTable
    let listings: ListingCache
    let handles: HandleTable
    let overlay: StagedOverlay
    /// Listings being fetched ahead of a walk.
    let listingFlights = ListingFlights()
    private let fetchers = Locked<[String: MetadataFetcher]>([:])
    /// Directories whose metadata summaries (`summary` policy) this mount has yet to rewrite.
    let summaries = SummaryQueue()
    /// In a struct: a lock holding a bare closure re-wraps it in a reabstraction thunk at every
    /// `withLock { $0 }`, so each call got slower than the one before (measured: 20,000 calls took 6 s,
    /// the next 20,000 17 s).
    private let notifier = Locked(KernelNotifier())
    /// Rate limit of the warnings `failed(_:_:_:)` logs.
    let failures = FailureLog()

    package init(
        links: LinkTable, cache: BlockCache, writeBack: WriteBack?, options: FilesystemOptions,
        logger: Logger = Logger(label: "lakecache.fs")
    ) {
        self.links = links
        self.cache = cache
        self.writeBack = writeBack
        self.options = options
        self.logger = logger
        mountTime = Timestamp(seconds: wallClock().seconds)
        let root = Node(
            ino: 1, parent: 1, path: "",
            attributes: FileAttributes(ino: 1, kind: .directory, size: 0, mtime: mountTime, mode: options.dirMode, uid: options.uid, gid: options.gid),
            expires: .infinity, lookups: 1, etag: "", metadata: [:])
        nodes = NodeTable(root: root)
        listings = ListingCache(budget: options.maxCachedListingEntries)
        handles = HandleTable()
        overlay = StagedOverlay()
        self.writeBack?.setHooks(
            durable: { [weak self] f, key, etag, size in self?.uploaded(f, key: key, etag: etag, size: size) },
            evicted: { [weak self] f, key in self?.evicted(f, key: key) })
    }

    /// A namespace of one link at the root: `lakecache mount s3://bucket/prefix`.
    package convenience init(
        store: any ObjectStore, cache: BlockCache, writeBack: WriteBack? = nil, bucket: BucketURL,
        policy: LinkPolicy = LinkPolicy(), options: FilesystemOptions, logger: Logger = Logger(label: "lakecache.fs")
    ) {
        let link = Link(path: "", bucket: bucket, store: Store(name: "", client: store), policy: policy)
        self.init(links: LinkTable(root: link), cache: cache, writeBack: writeBack, options: options, logger: logger)
    }

    /// Sets the hooks that tell the kernel a file's pages or a directory entry are stale.
    package func setNotifier(_ n: KernelNotifier) { notifier.withLock { $0 = n } }

    func invalidateKernelCache(_ ino: UInt64) { notifier.withLock { $0.inode }?(ino) }

    func invalidateKernelEntry(parent: UInt64, name: String) { notifier.withLock { $0.entry }?(parent, name) }

    /// The metadata fetcher of a link's store: single-flight per store, shared by its links.
    func fetcher(_ link: Link) -> MetadataFetcher {
        fetchers.withLock { f in
            if let existing = f[link.store.name] { return existing }
            var smallFetch: MetadataFetcher.SmallFetch?
            if options.directoryReadAhead > 0 {
                smallFetch = { [cache] version, sink in cache.prefetchSmallObject(version, metadata: sink) }
            }
            let made = MetadataFetcher(store: link.store.client, backgroundLimit: options.metadataReadAhead, smallFetch: smallFetch)
            made.onLearned { [weak self] bucket, key, info in self?.learnedFromFetch(store: link.store.name, bucket: bucket, key: key, info: info) }
            f[link.store.name] = made
            return made
        }
    }

    /// Inodes the kernel holds, listings cached (entries), open files.
    package var sizes: (nodes: Int, listingEntries: Int, openFiles: Int) {
        (nodes.count, listings.entryCount, handles.openFiles)
    }

    /// Background HEADs of listed files, waiting or running, over every store's fetcher.
    package var backgroundHeads: Int { fetchers.withLock { $0.values.reduce(0) { $0 + $1.backlog } } }

    // MARK: - Places and attributes

    /// A namespace path inside a link: the link and the path relative to it.
    struct Place {
        let link: Link
        let relative: String
        var key: String { link.key(relative) }
        var prefix: String { link.listPrefix(relative) }
        var bucket: String { link.bucket.bucket }
        var store: any ObjectStore { link.store.client }
        var policy: LinkPolicy { link.policy }
    }

    /// Waits until no stale upload to `place`'s key is still in flight (`WriteBack.settle(store:bucket:key:)`):
    /// a delete of the key, or a server-side copy onto it, must land after it.
    func settleKey(_ place: Place) async {
        await writeBack?.settle(store: place.link.store.name, bucket: place.bucket, key: place.key)
    }

    func place(_ path: String) -> Place? {
        links.link(for: path).map { Place(link: $0.0, relative: $0.1) }
    }

    func expiry(_ policy: LinkPolicy) -> Double { policy.metadataTTL.map { monotonicSeconds() + $0 } ?? .infinity }

    func negativeExpiry(_ policy: LinkPolicy) -> Double { policy.negativeTTL.map { monotonicSeconds() + $0 } ?? .infinity }

    /// How long the kernel may keep what it learns of `path` (synthetic directories: until a reload says).
    func kernelTTL(_ path: String) -> Double { place(path)?.policy.kernelTTL ?? 365 * 86400 }

    /// Attributes of an object or prefix; `kind` is what its key says (file or directory), the type bits of
    /// its mode metadata may make a file a symlink. Under the `listing` policy a file's metadata is ignored,
    /// so a path shows the same whether a listing or a HEAD described it.
    func attributes(ino: UInt64, kind: FileAttributes.Kind, size: Int64, mtime: Timestamp, posix: PosixMetadata?, policy: LinkPolicy) -> FileAttributes {
        let p = kind != .directory && policy.metadata == .listing ? .plain : (posix ?? .plain)
        var mode = kind == .directory ? options.dirMode : options.fileMode
        var resolvedKind = kind
        if let m = p.mode {
            mode = m & 0o7777
            if kind == .file { resolvedKind = p.objectKind }
        }
        return FileAttributes(
            ino: ino, kind: resolvedKind, size: kind == .directory || resolvedKind.isSpecial ? 0 : size, mtime: p.mtime ?? mtime, mode: mode,
            uid: p.uid ?? options.uid, gid: p.gid ?? options.gid, rdev: resolvedKind.isSpecial ? p.rdev ?? 0 : 0, atime: p.atime)
    }

    func attributes(ino: UInt64, kind: FileAttributes.Kind, size: Int64, mtime: Timestamp, metadata: [String: String], policy: LinkPolicy) -> FileAttributes {
        attributes(ino: ino, kind: kind, size: size, mtime: mtime, posix: PosixMetadata(metadata), policy: policy)
    }

    /// A directory above links, or a link's own root: the mount's directory mode and owner.
    func directoryAttributes(ino: UInt64) -> FileAttributes {
        FileAttributes(ino: ino, kind: .directory, size: 0, mtime: mountTime, mode: options.dirMode, uid: options.uid, gid: options.gid)
    }

    /// Records a node for `path` (new or refreshed) and counts a lookup.
    ///
    /// `metadata` is the object's own (a HEAD, a write here); without it, `posix` (a listing entry's) gives
    /// the attributes, and what a node already knew of the same ETag is kept.
    @discardableResult
    func remember(
        parent: UInt64, name: String, kind: FileAttributes.Kind, size: Int64, mtime: Timestamp,
        etag: String, metadata: [String: String]?, posix: PosixMetadata? = nil, policy: LinkPolicy, countLookup: Bool
    ) -> FileAttributes {
        let expires = expiry(policy)
        let (attrs, path) = nodes.withLock { s -> (FileAttributes, String) in
            let directory = s.nodes[parent]?.path ?? ""
            let path = Namespace.join(directory, name)
            let ino = s.inode(of: path)
            let old = s.nodes[ino]
            var known = metadata
            if known == nil, let old, old.etag == etag, old.attributes.kind != .directory || kind == .directory { known = old.metadata }
            var attrs = attributes(ino: ino, kind: kind, size: size, mtime: mtime, posix: known.map(PosixMetadata.init) ?? posix, policy: policy)
            // The change time lives only here: a refresh keeps it unless the object changed after it.
            if let old, old.attributes.kind == attrs.kind { attrs.ctime = old.attributes.ctime }
            var node = old ?? Node(ino: ino, parent: parent, directory: directory, name: name, attributes: attrs, expires: 0, lookups: 0, etag: etag, metadata: known)
            node.attributes = attrs
            node.etag = etag
            node.metadata = known
            node.expires = expires
            if countLookup { node.lookups += 1 }
            s.nodes[ino] = node
            s.index(path, ino)
            return (attrs, path)
        }
        if let metadata, kind != .directory { learned(path: path, etag: etag, posix: PosixMetadata(metadata)) }
        return attrs
    }

    // MARK: - Lookup, forget, getattr

    package func lookup(parent: UInt64, name: String, reply: @escaping @Sendable (Result<EntryReply, FilesystemError>) -> Void) {
        guard Namespace.isValidName(name) else {
            let tooLong = name.utf8.count > 255
            return reply(.failure(FilesystemError(tooLong ? ENAMETOOLONG : ENOENT, tooLong ? "a name over 255 bytes" : "not a valid name")))
        }
        guard let dir = nodes[parent] else { return reply(.failure(FilesystemError(ESTALE, "unknown parent inode \(parent)"))) }
        guard dir.attributes.kind == .directory else { return reply(.failure(FilesystemError(ENOTDIR, "not a directory"))) }
        let path = Namespace.join(dir.path, name)
        let place: Place
        switch links.resolve(path) {
        case .none:
            return reply(.failure(FilesystemError(ENOENT, "no link or directory of links at /\(path)")))
        case .synthetic, .link(_, relative: ""):
            // A directory above links, or a link's root: directories whatever the bucket holds.
            let ino = nodes.withLock { s -> UInt64 in
                let ino = s.inode(of: path)
                var node = s.nodes[ino] ?? Node(ino: ino, parent: parent, directory: dir.path, name: name, attributes: directoryAttributes(ino: ino), expires: .infinity, lookups: 0, etag: "", metadata: [:])
                node.lookups += 1
                s.nodes[ino] = node
                s.index(path, ino)
                return ino
            }
            return reply(.success(EntryReply(attributes: directoryAttributes(ino: ino), ttl: kernelTTL(path))))
        case .link(let link, let relative):
            place = Place(link: link, relative: relative)
        }
        let policy = place.policy
        let filter = policy.filter
        if !filter.isEmpty && !filter.admits(file: place.relative) && !filter.admits(directory: place.relative) {
            return reply(.failure(FilesystemError(ENOENT, "excluded by the link's include/exclude globs")))
        }
        let ttl = policy.kernelTTL
        if let f = overlay[path] {
            return reply(.success(EntryReply(attributes: rememberLocal(parent: parent, name: name, file: f, policy: policy), ttl: ttl)))
        }
        let now = monotonicSeconds()
        enum Step { case answer(Result<EntryReply, FilesystemError>), fetch, head(etag: String), node }
        let step = listings.withLock { s -> Step in
            if let listing = s.fresh(dir.path, ttl: policy.metadataTTL, now: now) {
                if let i = listing.position(of: name) {
                    let e = listing.entries[i]
                    if e.kind == .file && !filter.admits(file: place.relative) { return .answer(.failure(FilesystemError(ENOENT, "excluded by the link's globs"))) }
                    return .node
                }
                if listing.complete { return .answer(.failure(FilesystemError(ENOENT, "no such entry"))) }
            }
            if s.isNegative(dir.path, name, now: now) { return .answer(.failure(FilesystemError(ENOENT, "no such entry (cached)"))) }
            return .fetch
        }
        switch step {
        case .answer(let r): return reply(r)
        case .node:
            // Listed: answer from the listing, unless a file's metadata is still unknown.
            guard let e = listings.withLock({ $0.entry(dir.path, name) }) else { break }
            let posix = knownPosix(path: path, entry: e)
            if posix == nil && e.kind == .file && policy.metadata != .listing {
                // Its fetch (perhaps already in flight from the listing's read-ahead) decides whether it is a
                // symlink, and its mode.
                Task { reply(await self.resolveListedFile(parent: parent, name: name, path: path, place: place)) }
                return
            }
            // The entry's own name string, when it is the same bytes, so that the node shares its storage.
            let shared = e.name.utf8.elementsEqual(name.utf8) ? e.name : name
            let attrs = remember(parent: parent, name: shared, kind: e.kind, size: e.size, mtime: e.mtime, etag: e.etag, metadata: nil, posix: posix, policy: policy, countLookup: true)
            return reply(.success(EntryReply(attributes: attrs, ttl: ttl)))
        case .fetch, .head:
            break
        }
        let fresh = nodes.withLock { s -> FileAttributes? in
            guard let ino = s.ino(at: path), var node = s.nodes[ino], node.expires > now else { return nil }
            node.lookups += 1
            s.nodes[ino] = node
            return node.attributes
        }
        if let fresh { return reply(.success(EntryReply(attributes: fresh, ttl: ttl))) }
        Task { reply(await self.resolve(parent: parent, name: name, path: path, place: place)) }
    }

    /// A file a fresh listing showed: one fetch (joined with the listing's metadata read-ahead) gives its
    /// type and mode. If it vanished or changed kind since the listing, the full lookup decides.
    func resolveListedFile(parent: UInt64, name: String, path: String, place: Place) async -> Result<EntryReply, FilesystemError> {
        do {
            let dir = Namespace.split(path).parent
            let learnedMeanwhile = { [self] in listings.withLock { $0.entry(dir, name) }?.posix != nil }
            guard let info = try await fetcher(place.link).head(bucket: place.bucket, key: place.key, unless: learnedMeanwhile) else {
                // The listing's read-ahead answered just now: the lookup finds it there.
                return await withCheckedContinuation { c in lookup(parent: parent, name: name) { c.resume(returning: $0) } }
            }
            let attrs = remember(parent: parent, name: name, kind: .file, size: info.size, mtime: info.lastModified, etag: info.etag, metadata: info.metadata, policy: place.policy, countLookup: true)
            return .success(EntryReply(attributes: attrs, ttl: place.policy.kernelTTL))
        } catch let e as ObjectStoreError where e.kind == .noSuchKey {
            return await resolve(parent: parent, name: name, path: path, place: place)
        } catch {
            return .failure(failed("lookup", path, error))
        }
    }

    /// HEAD `key` and LIST `key/` in parallel: a directory wins over a file of the same name.
    func resolve(parent: UInt64, name: String, path: String, place: Place) async -> Result<EntryReply, FilesystemError> {
        let (store, bucket, key, policy) = (place.store, place.bucket, place.key, place.policy)
        async let head: ObjectInfo? = try? await store.headObject(bucket: bucket, key: key)
        async let probe: ListObjectsPage = store.listObjects(ListObjectsRequest(bucket: bucket, prefix: key + "/", delimiter: "/", maxKeys: 1))
        let listed: ListObjectsPage
        do {
            listed = try await probe
        } catch {
            _ = await head
            return .failure(failed("lookup", path, error))
        }
        let info = await head
        let isDirectory = (!listed.objects.isEmpty || !listed.commonPrefixes.isEmpty) && policy.filter.admits(directory: place.relative)
        // A marker object (listed first, as "key/" sorts before its children) carries the directory's mode
        // and owner: one more round trip, only for directories that have one.
        var markerInfo: ObjectInfo?
        if isDirectory && listed.objects.first?.key == key + "/" {
            markerInfo = try? await store.headObject(bucket: bucket, key: key + "/")
        }
        if isDirectory {
            if info != nil { place.link.counters.shadowedFiles.add(1, ordering: .relaxed) }
            let attrs = remember(parent: parent, name: name, kind: .directory, size: 0, mtime: mountTime, etag: "", metadata: markerInfo?.metadata ?? [:], policy: policy, countLookup: true)
            return .success(EntryReply(attributes: attrs, ttl: policy.kernelTTL))
        }
        if let info, policy.filter.admits(file: place.relative) {
            let attrs = remember(parent: parent, name: name, kind: .file, size: info.size, mtime: info.lastModified, etag: info.etag, metadata: info.metadata, policy: policy, countLookup: true)
            return .success(EntryReply(attributes: attrs, ttl: policy.kernelTTL))
        }
        let until = negativeExpiry(policy)
        listings.withLock { $0.setNegative(path, until: until) }
        return .failure(FilesystemError(ENOENT, "no such object or prefix"))
    }

    /// The kernel dropped `count` references to `ino`; at zero the node is forgotten (its number stays stable).
    package func forget(_ ino: UInt64, count: UInt64) {
        guard ino != 1 else { return }
        // Open handles keep their node: checked first, under the handle table's lock alone.
        let open = handles.withLock { $0.isOpen(ino) }
        let forgotten = nodes.withLock { s -> Node? in
            guard var node = s.nodes[ino] else { return nil }
            node.lookups = node.lookups > count ? node.lookups - count : 0
            if node.lookups == 0 && !open {
                s.drop(ino)
                return node
            }
            s.nodes[ino] = node
            return nil
        }
        // The listing stays (bounded by the entry budget and the TTL): the inode number is a hash of the
        // path, so when the kernel looks the directory up again the listing is found without a LIST.
        if let forgotten, forgotten.attributes.kind == .directory {
            listings.withLock { _ = $0.negative.removeValue(forKey: forgotten.path) }
        }
    }

    package func getattr(_ ino: UInt64, reply: @escaping @Sendable (Result<EntryReply, FilesystemError>) -> Void) {
        guard var node = nodes[ino] else { return reply(.failure(FilesystemError(ESTALE, "unknown inode \(ino)"))) }
        let path = node.path
        let ttl = kernelTTL(path)
        if let f = overlay[path], let place = place(path) {
            node.attributes = localAttributes(ino: ino, file: f, policy: place.policy)
            return reply(.success(EntryReply(attributes: node.attributes, ttl: ttl)))
        }
        // A detached node (unlinked while open) has no key to ask about: a file written here still has its
        // staged image (what the open handles read and write), an object what it last showed.
        if path.hasPrefix(Namespace.detachedPrefix) {
            var attrs = node.attributes
            if let (f, link) = handles.withLock({ s in s.files.values.first { $0.ino == ino && $0.staged != nil }.map { ($0.staged!, $0.link) } }) {
                attrs = localAttributes(ino: ino, file: f, policy: link.policy)
            }
            attrs.nlink = 0
            return reply(.success(EntryReply(attributes: attrs, ttl: 0)))
        }
        if node.expires > monotonicSeconds() || node.attributes.kind == .directory {
            return reply(.success(EntryReply(attributes: node.attributes, ttl: ttl)))
        }
        guard let place = place(path) else { return reply(.failure(FilesystemError(ESTALE, "/\(path) is no longer in the namespace"))) }
        Task {
            do {
                let info = try await fetcher(place.link).head(bucket: place.bucket, key: place.key)
                let attrs = headed(ino: ino, info, policy: place.policy)
                    ?? attributes(ino: ino, kind: .file, size: info.size, mtime: info.lastModified, metadata: info.metadata, policy: place.policy)
                reply(.success(EntryReply(attributes: attrs, ttl: ttl)))
            } catch {
                reply(.failure(failed("getattr", path, error)))
            }
        }
    }

    /// statfs: a large, mostly free filesystem (object stores have no fixed size).
    package func statfs() -> (blockSize: UInt64, blocks: UInt64, free: UInt64, files: UInt64, freeFiles: UInt64, nameMax: UInt64) {
        (4096, 1 << 38, 1 << 37, 1 << 32, 1 << 31, 255)
    }
}

/// What the filesystem tells the kernel when something it cached went stale; set by the FUSE layer.
package struct KernelNotifier: Sendable {
    /// Drop the cached pages (and attributes) of an inode.
    package var inode: (@Sendable (UInt64) -> Void)?
    /// Drop the dentry `name` in directory `parent` (it appeared, vanished or changed).
    package var entry: (@Sendable (UInt64, String) -> Void)?

    package init(inode: (@Sendable (UInt64) -> Void)? = nil, entry: (@Sendable (UInt64, String) -> Void)? = nil) {
        self.inode = inode
        self.entry = entry
    }
}
