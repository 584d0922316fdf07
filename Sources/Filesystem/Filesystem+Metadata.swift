import ObjectStore
import Platform

/// How what a HEAD, a GET or a write taught reaches the listings, so that a listed path shows what a
/// looked-up one shows.
extension Filesystem {
    /// A listed entry's POSIX metadata if known: the entry's own, or that of a node of the same ETag that a
    /// HEAD or a write here described.
    func knownPosix(path: String, entry e: ListingEntry) -> PosixMetadata? {
        if let p = e.posix { return p }
        guard let n = nodes.node(at: path), n.packedETag == e.packedETag, let metadata = n.metadata else { return nil }
        return PosixMetadata(metadata)
    }

    /// What this mount knows of the POSIX metadata of the object at `path` in version `etag`, from its
    /// parent's cached listing or its node; nil when it knows nothing of that version.
    func knownPosix(path: String, etag: String) -> PosixMetadata? {
        let (dir, name) = Namespace.split(path)
        if let e = listings.withLock({ $0.entry(dir, name) }), e.kind != .directory, e.etag == etag, let p = e.posix { return p }
        guard let n = nodes.node(at: path), n.attributes.kind != .directory, n.etag == etag, let metadata = n.metadata else { return nil }
        return PosixMetadata(metadata)
    }

    /// Records the metadata of `path` at `etag` in its parent's cached listing and in the open handles of
    /// that directory; an entry of another ETag (changed since) is left unknown.
    func learned(path: String, etag: String, posix: PosixMetadata) {
        listings.withLock { $0.learn(path, etag: etag, posix: posix) }
        handles.withLock { $0.learn(path, etag: etag, posix: posix) }
    }

    /// A HEAD answered for the object of node `ino`: the node takes its attributes, the listings its
    /// metadata; nil when the node is gone.
    @discardableResult
    func headed(ino: UInt64, _ info: ObjectInfo, policy: LinkPolicy) -> FileAttributes? {
        let expires = expiry(policy)
        let updated = nodes.withLock { s -> (String, FileAttributes)? in
            guard var n = s.nodes[ino] else { return nil }
            n.attributes = attributes(ino: ino, kind: .file, size: info.size, mtime: info.lastModified, metadata: info.metadata, policy: policy)
            n.etag = info.etag
            n.metadata = info.metadata
            n.expires = expires
            s.nodes[ino] = n
            return (n.path, n.attributes)
        }
        guard let (path, attrs) = updated else { return nil }
        learned(path: path, etag: info.etag, posix: PosixMetadata(info.metadata))
        return attrs
    }

    /// A metadata fetcher's hook: any fetch that succeeded fills in the listings of every path showing it.
    func learnedFromFetch(store: String, bucket: String, key: String, info: ObjectInfo) {
        for (_, path) in links.paths(store: store, bucket: bucket, key: key) {
            learned(path: path, etag: info.etag, posix: PosixMetadata(info.metadata))
        }
    }

    /// Starts the fetches of the files of a listing page whose metadata is unknown (policies `exact` and `summary`).
    func readAheadMetadata(link: Link, directory: String, entries: [ListingEntry]) {
        guard link.policy.metadata != .listing, options.metadataReadAhead > 0 else { return }
        let bucket = link.bucket.bucket
        let dirRelative = link.relative(namespacePath: directory) ?? ""
        fetcher(link).prefetch(entries.compactMap { e in
            guard e.kind == .file, e.posix == nil else { return nil }
            return MetadataFetcher.Item(bucket: bucket, key: link.key(Namespace.join(dirRelative, e.name)), etag: e.etag, size: e.size)
        })
    }
}
