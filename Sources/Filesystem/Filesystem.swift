import Logging
import Platform
import ObjectStore
import ReadCache
import Synchronization
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// The POSIX view of a bucket prefix: inodes, attributes, listings, handles. Knows nothing of FUSE or HTTP.
///
/// Every operation answers through a callback, possibly on another thread: metadata misses run as tasks,
/// reads complete on the thread that delivered their blocks. Nothing here blocks the caller on the network.
package final class Filesystem: @unchecked Sendable {
    package let options: FilesystemOptions
    package let store: any ObjectStore
    package let cache: BlockCache
    /// The write path; nil on a read-only mount.
    package let writeBack: WriteBack?
    let logger: Logger
    let mountTime: Timestamp

    struct FileHandle {
        var ino: UInt64
        var version: ObjectVersion
        var readAhead: ReadAhead
        /// Set when the file's bytes come from a staging file (written here) rather than the block cache.
        var staged: StagedFile?
        var writable = false
        var append = false
        /// The thread that last wrote through this handle, and its process (Tgid), learned when the thread
        /// changes: a flush from another process is not the writer's close. The process is kept because
        /// the thread may be gone by the time a child's flush arrives (a writer thread that exited).
        var writerPid: Int32?
        var writerProcess: Int32?
    }

    struct DirectoryHandle {
        var ino: UInt64
        /// The directory's path when it was opened (listings are cached by path).
        var path: String
        var prefix: String
        var listing: Listing
    }

    struct State {
        var nodes: [UInt64: Node] = [:]
        /// The inode of every node by its path. A node keeps its number across a rename (the kernel's inode
        /// does), so the number of a path is not always its hash.
        var byPath: [String: UInt64] = ["": 1]
        /// Complete listings by directory path. By path, not inode: a directory renamed here keeps its inode
        /// (the kernel's), and a new directory may later take the old path.
        var listings: [String: Listing] = [:]
        var listingEntries = 0
        /// Names known not to exist, by directory path: name → until when.
        var negative: [String: [String: Double]] = [:]
        var files: [UInt64: FileHandle] = [:]
        var directories: [UInt64: DirectoryHandle] = [:]
        var nextHandle: UInt64 = 1
        var clock: UInt64 = 0
        var counters = NamespaceCounters()
        /// Files written through this mount, by path: their staged image is the truth until evicted.
        var local: [String: StagedFile] = [:]
        /// Unlinked while open for reading: the object is deleted at the last release (POSIX keeps it readable).
        var deferredDeletes: [UInt64: String] = [:]
        /// Small-file reads and read-ahead progress, by directory path.
        var directoryReads: [String: DirectoryReadAhead] = [:]
    }

    let state = Mutex(State())
    let metadataFetcher: MetadataFetcher
    /// In a struct: a `Mutex` holding a bare closure re-wraps it in a reabstraction thunk at every
    /// `withLock { $0 }`, so each call got slower than the one before (measured: 20,000 calls took 6 s, the
    /// next 20,000 17 s).
    private struct Invalidator { var run: (@Sendable (UInt64) -> Void)? }
    private let invalidator = Mutex(Invalidator())

    package init(
        store: any ObjectStore, cache: BlockCache, writeBack: WriteBack? = nil, options: FilesystemOptions,
        logger: Logger = Logger(label: "lakecache.fs")
    ) {
        self.store = store
        self.cache = cache
        self.writeBack = options.readOnly ? nil : writeBack
        self.options = options
        self.logger = logger
        // Whole small objects come with their metadata unless fetching data ahead is turned off.
        var smallFetch: MetadataFetcher.SmallFetch?
        if options.directoryReadAhead > 0 {
            smallFetch = { [cache] version, sink in cache.prefetchSmallObject(version, metadata: sink) }
        }
        metadataFetcher = MetadataFetcher(store: store, backgroundLimit: options.metadataReadAhead, smallFetch: smallFetch)
        mountTime = Timestamp(seconds: wallClock().seconds)
        let root = Node(
            ino: 1, parent: 1, name: "", path: "",
            attributes: FileAttributes(ino: 1, kind: .directory, size: 0, mtime: mountTime, mode: options.dirMode, uid: options.uid, gid: options.gid),
            expires: .infinity, lookups: 1, etag: "", metadata: [:])
        state.withLock { $0.nodes[1] = root }
        metadataFetcher.onLearned { [weak self] bucket, key, info in self?.learnedFromHead(bucket: bucket, key: key, info: info) }
        self.writeBack?.setHooks(
            durable: { [weak self] f, key, etag, size in self?.uploaded(f, key: key, etag: etag, size: size) },
            evicted: { [weak self] f, key in self?.evicted(f, key: key) })
    }

    /// Sets the hook that drops the kernel's cached pages of an inode when its object changed.
    package func setInvalidator(_ hook: @escaping @Sendable (UInt64) -> Void) {
        invalidator.withLock { $0.run = hook }
    }

    func invalidateKernelCache(_ ino: UInt64) {
        invalidator.withLock { $0.run }?(ino)
    }

    /// Namespace anomaly counters.
    package var counters: NamespaceCounters { state.withLock { $0.counters } }

    /// Inodes the kernel holds, listings cached (entries), open files.
    package var sizes: (nodes: Int, listingEntries: Int, openFiles: Int) {
        state.withLock { ($0.nodes.count, $0.listingEntries, $0.files.count) }
    }

    // MARK: - Keys and attributes

    /// The object key of a path ("" is the mount root's prefix itself).
    func key(for path: String) -> String { options.bucket.prefix + path }

    /// The listing prefix of a directory path.
    func prefix(for path: String) -> String { path.isEmpty ? options.bucket.prefix : options.bucket.prefix + path + "/" }

    var expiry: Double { options.metadataTTL.map { monotonicSeconds() + $0 } ?? .infinity }

    /// Attributes of an object or prefix; `kind` is what its key says (file or directory), the type bits of
    /// its mode metadata may make a file a symlink. Under the `listing` policy a file's metadata is ignored,
    /// so a path shows the same whether a listing or a HEAD described it.
    func attributes(ino: UInt64, kind: FileAttributes.Kind, size: Int64, mtime: Timestamp, posix: PosixMetadata?) -> FileAttributes {
        let p = kind != .directory && options.metadata == .listing ? .plain : (posix ?? .plain)
        var mode = kind == .directory ? options.dirMode : options.fileMode
        var resolvedKind = kind
        if let m = p.mode {
            mode = m & 0o7777
            if kind == .file { resolvedKind = p.objectKind }
        }
        return FileAttributes(
            ino: ino, kind: resolvedKind, size: kind == .directory ? 0 : size, mtime: p.mtime ?? mtime, mode: mode,
            uid: p.uid ?? options.uid, gid: p.gid ?? options.gid)
    }

    func attributes(ino: UInt64, kind: FileAttributes.Kind, size: Int64, mtime: Timestamp, metadata: [String: String]) -> FileAttributes {
        attributes(ino: ino, kind: kind, size: size, mtime: mtime, posix: PosixMetadata(metadata))
    }

    /// Records a node for `path` (new or refreshed) and counts a lookup; caller holds the lock.
    ///
    /// `metadata` is the object's own (a HEAD, a write here); without it, `posix` (a listing entry's) gives
    /// the attributes, and what a node already knew of the same ETag is kept.
    func remember(
        _ s: inout State, parent: UInt64, name: String, kind: FileAttributes.Kind, size: Int64, mtime: Timestamp,
        etag: String, metadata: [String: String]?, posix: PosixMetadata? = nil, countLookup: Bool
    ) -> FileAttributes {
        let parentPath = s.nodes[parent]?.path ?? ""
        let path = Namespace.join(parentPath, name)
        // Probe past numbers held by other paths: a 64-bit hash collision is vanishingly rare, but a node
        // renamed here keeps its number (see `inode(_:of:)`).
        let ino = inode(s, of: path)
        let old = s.nodes[ino]
        var known = metadata
        if known == nil, let old, old.etag == etag, old.attributes.kind != .directory || kind == .directory { known = old.metadata }
        let attrs = attributes(ino: ino, kind: kind, size: size, mtime: mtime, posix: known.map(PosixMetadata.init) ?? posix)
        var node = old ?? Node(ino: ino, parent: parent, name: name, path: path, attributes: attrs, expires: 0, lookups: 0, etag: etag, metadata: known)
        node.attributes = attrs
        node.etag = etag
        node.metadata = known
        node.expires = expiry
        if countLookup { node.lookups += 1 }
        s.nodes[ino] = node
        s.byPath[path] = ino
        if let metadata, kind != .directory { learned(&s, path: path, etag: etag, posix: PosixMetadata(metadata)) }
        return attrs
    }

    // MARK: - Lookup, forget, getattr

    package func lookup(parent: UInt64, name: String, reply: @escaping @Sendable (Result<EntryReply, FilesystemError>) -> Void) {
        guard Namespace.isValidName(name) else {
            reply(.failure(FilesystemError(ENOENT, "not a valid name")))
            return
        }
        enum Step { case answer(Result<EntryReply, FilesystemError>), fetch(path: String), head(path: String, etag: String) }
        let ttl = options.kernelTTL
        let now = monotonicSeconds()
        let step = state.withLock { s -> Step in
            guard let dir = s.nodes[parent] else { return .answer(.failure(FilesystemError(ESTALE, "unknown parent inode \(parent)"))) }
            guard dir.attributes.kind == .directory else { return .answer(.failure(FilesystemError(ENOTDIR, "not a directory"))) }
            let path = Namespace.join(dir.path, name)
            if let f = s.local[path] {
                let attrs = rememberLocal(&s, parent: parent, name: name, file: f)
                return .answer(.success(EntryReply(attributes: attrs, ttl: ttl)))
            }
            // Read in place: a copy of a 10,000-entry listing per lookup made `ls -l` CPU-bound.
            if let listing = s.listings[dir.path], listing.fetched + (options.metadataTTL ?? .infinity) > now {
                s.clock += 1
                s.listings[dir.path]!.lastUse = s.clock
                if let i = listing.byName[name] {
                    let e = listing.entries[i]
                    let posix = knownPosix(s, path: path, entry: e)
                    // A file the listing showed but whose metadata is unknown: its HEAD (perhaps already in
                    // flight from the listing's read-ahead) decides whether it is a symlink, and its mode.
                    if posix == nil && e.kind == .file && options.metadata == .exact { return .head(path: path, etag: e.etag) }
                    let attrs = remember(&s, parent: parent, name: name, kind: e.kind, size: e.size, mtime: e.mtime, etag: e.etag, metadata: nil, posix: posix, countLookup: true)
                    return .answer(.success(EntryReply(attributes: attrs, ttl: ttl)))
                }
                if listing.complete { return .answer(.failure(FilesystemError(ENOENT, "no such entry"))) }
            }
            if let until = s.negative[dir.path]?[name], until > now {
                return .answer(.failure(FilesystemError(ENOENT, "no such entry (cached)")))
            }
            if var node = s.nodes[inode(s, of: path)], node.expires > now {
                node.lookups += 1
                s.nodes[node.ino] = node
                return .answer(.success(EntryReply(attributes: node.attributes, ttl: ttl)))
            }
            return .fetch(path: path)
        }
        switch step {
        case .answer(let r): reply(r)
        case .fetch(let path):
            Task { reply(await self.resolve(parent: parent, name: name, path: path)) }
        case .head(let path, let etag):
            Task { reply(await self.resolveListedFile(parent: parent, name: name, path: path, etag: etag)) }
        }
    }

    /// A file a fresh listing showed: one HEAD (joined with the listing's metadata read-ahead) gives its
    /// type and mode. If it vanished or changed kind since the listing, the full lookup decides.
    func resolveListedFile(parent: UInt64, name: String, path: String, etag: String) async -> Result<EntryReply, FilesystemError> {
        do {
            let learnedMeanwhile = { [self] in
                state.withLock { s in s.listings[Self.split(path).parent].flatMap { l in l.byName[name].map { l.entries[$0] } }?.posix != nil }
            }
            guard let info = try await metadataFetcher.head(bucket: options.bucket.bucket, key: key(for: path), unless: learnedMeanwhile) else {
                // The listing's read-ahead answered just now: the lookup finds it there.
                return await withCheckedContinuation { c in lookup(parent: parent, name: name) { c.resume(returning: $0) } }
            }
            return state.withLock { s in
                let attrs = remember(&s, parent: parent, name: name, kind: .file, size: info.size, mtime: info.lastModified, etag: info.etag, metadata: info.metadata, countLookup: true)
                return .success(EntryReply(attributes: attrs, ttl: options.kernelTTL))
            }
        } catch let e as ObjectStoreError where e.kind == .noSuchKey {
            return await resolve(parent: parent, name: name, path: path)
        } catch {
            return .failure(FilesystemError.from(error))
        }
    }

    /// HEAD `key` and LIST `key/` in parallel: a directory wins over a file of the same name.
    func resolve(parent: UInt64, name: String, path: String) async -> Result<EntryReply, FilesystemError> {
        let bucket = options.bucket.bucket
        let key = key(for: path)
        async let head: ObjectInfo? = try? await store.headObject(bucket: bucket, key: key)
        async let probe: ListObjectsPage = store.listObjects(ListObjectsRequest(bucket: bucket, prefix: key + "/", delimiter: "/", maxKeys: 1))
        let listed: ListObjectsPage
        do {
            listed = try await probe
        } catch {
            _ = await head
            return .failure(FilesystemError.from(error))
        }
        let info = await head
        // A marker object (listed first, as "key/" sorts before its children) carries the directory's mode
        // and owner: one more round trip, only for directories that have one.
        var markerInfo: ObjectInfo?
        if listed.objects.first?.key == key + "/" {
            markerInfo = try? await store.headObject(bucket: bucket, key: key + "/")
        }
        return state.withLock { s in
            if !listed.objects.isEmpty || !listed.commonPrefixes.isEmpty {
                if info != nil { s.counters.shadowedFiles += 1 }
                let attrs = remember(&s, parent: parent, name: name, kind: .directory, size: 0, mtime: mountTime, etag: "", metadata: markerInfo?.metadata ?? [:], countLookup: true)
                return .success(EntryReply(attributes: attrs, ttl: options.kernelTTL))
            }
            if let info {
                let attrs = remember(&s, parent: parent, name: name, kind: .file, size: info.size, mtime: info.lastModified, etag: info.etag, metadata: info.metadata, countLookup: true)
                return .success(EntryReply(attributes: attrs, ttl: options.kernelTTL))
            }
            s.negative[Self.split(path).parent, default: [:]][name] = options.metadataTTL.map { monotonicSeconds() + $0 } ?? .infinity
            return .failure(FilesystemError(ENOENT, "no such object or prefix"))
        }
    }

    /// The kernel dropped `count` references to `ino`; at zero the node is forgotten (its number stays stable).
    package func forget(_ ino: UInt64, count: UInt64) {
        guard ino != 1 else { return }
        state.withLock { s in
            guard var node = s.nodes[ino] else { return }
            node.lookups = node.lookups > count ? node.lookups - count : 0
            if node.lookups == 0 && !s.files.values.contains(where: { $0.ino == ino }) {
                drop(&s, ino)
                if node.attributes.kind == .directory { s.negative.removeValue(forKey: node.path) }
                // The listing stays (bounded by the entry budget and the TTL): the inode number is a hash of
                // the path, so when the kernel looks the directory up again (after dropping its dentries, say)
                // the listing is found again without a LIST.
            } else {
                s.nodes[ino] = node
            }
        }
    }

    package func getattr(_ ino: UInt64, reply: @escaping @Sendable (Result<EntryReply, FilesystemError>) -> Void) {
        let now = monotonicSeconds()
        let cached = state.withLock { s -> (Node?, Bool) in
            guard var n = s.nodes[ino] else { return (nil, false) }
            if let f = s.local[n.path] {
                n.attributes = localAttributes(ino: ino, file: f)
                return (n, true)
            }
            // A detached node (unlinked while open) has no key to ask about: what it last showed stands.
            return (n, n.expires > now || n.attributes.kind == .directory || n.path.hasPrefix(Self.detachedPrefix))
        }
        guard let node = cached.0 else {
            reply(.failure(FilesystemError(ESTALE, "unknown inode \(ino)")))
            return
        }
        if cached.1 {
            reply(.success(EntryReply(attributes: node.attributes, ttl: options.kernelTTL)))
            return
        }
        Task {
            do {
                let info = try await metadataFetcher.head(bucket: options.bucket.bucket, key: key(for: node.path))
                let attrs = state.withLock { s in
                    headed(&s, ino: ino, info) ?? attributes(ino: ino, kind: .file, size: info.size, mtime: info.lastModified, metadata: info.metadata)
                }
                reply(.success(EntryReply(attributes: attrs, ttl: options.kernelTTL)))
            } catch {
                reply(.failure(FilesystemError.from(error)))
            }
        }
    }

    /// statfs: a large, mostly free filesystem (object stores have no fixed size).
    package func statfs() -> (blockSize: UInt64, blocks: UInt64, free: UInt64, files: UInt64, freeFiles: UInt64, nameMax: UInt64) {
        (4096, 1 << 38, 1 << 37, 1 << 32, 1 << 31, 255)
    }
}
