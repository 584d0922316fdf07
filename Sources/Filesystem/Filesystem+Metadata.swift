import Platform
import ObjectStore

/// How what a HEAD or a write taught reaches the listings, so that a listed path shows what a looked-up one
/// shows.
extension Filesystem {
    /// A listed entry's POSIX metadata if known: the entry's own, or that of a node of the same ETag that a
    /// HEAD or a write here described.
    func knownPosix(_ s: State, path: String, entry e: ListingEntry) -> PosixMetadata? {
        if let p = e.posix { return p }
        guard let n = s.nodes[inode(s, of: path)], n.etag == e.etag, let metadata = n.metadata else { return nil }
        return PosixMetadata(metadata)
    }

    /// Records the metadata of `path` at `etag` in its parent's cached listing and in the open handles of
    /// that directory; an entry of another ETag (changed since) is left unknown.
    func learned(_ s: inout State, path: String, etag: String, posix: PosixMetadata) {
        let (dir, name) = Self.split(path)
        if let i = s.listings[dir]?.byName[name], s.listings[dir]!.entries[i].etag == etag, s.listings[dir]!.entries[i].kind != .directory {
            s.listings[dir]!.entries[i].posix = posix
        }
        // Handle ids first, in an array of their own: a loop over the dictionary (or its keys) would hold its
        // storage, and the write below would then copy the handle's whole listing.
        let handles = s.directories.compactMap { $0.value.path == dir ? $0.key : nil }
        for handle in handles {
            guard let i = s.directories[handle]!.listing.byName[name] else { continue }
            let e = s.directories[handle]!.listing.entries[i]
            guard e.etag == etag, e.kind != .directory else { continue }
            s.directories[handle]!.listing.entries[i].posix = posix
        }
    }

    /// A HEAD answered for the object of node `ino`: the node takes its attributes, the listings its
    /// metadata; nil when the node is gone.
    func headed(_ s: inout State, ino: UInt64, _ info: ObjectInfo) -> FileAttributes? {
        guard var n = s.nodes[ino] else { return nil }
        n.attributes = attributes(ino: ino, kind: .file, size: info.size, mtime: info.lastModified, metadata: info.metadata)
        n.etag = info.etag
        n.metadata = info.metadata
        n.expires = expiry
        s.nodes[ino] = n
        learned(&s, path: n.path, etag: info.etag, posix: PosixMetadata(info.metadata))
        return n.attributes
    }

    /// The metadata fetcher's hook: any HEAD that succeeded fills in the listings.
    func learnedFromHead(bucket: String, key: String, info: ObjectInfo) {
        guard bucket == options.bucket.bucket, let path = path(forKey: key) else { return }
        state.withLock { s in learned(&s, path: path, etag: info.etag, posix: PosixMetadata(info.metadata)) }
    }

    /// Starts the HEADs of the files of a listing page whose metadata is unknown (policy `exact`).
    func readAheadMetadata(directory: String, entries: [ListingEntry]) {
        guard options.metadata == .exact, options.metadataReadAhead > 0 else { return }
        let bucket = options.bucket.bucket
        metadataFetcher.prefetch(entries.compactMap { e in
            guard e.kind == .file, e.posix == nil else { return nil }
            return MetadataFetcher.Item(bucket: bucket, key: key(for: Namespace.join(directory, e.name)), etag: e.etag, size: e.size)
        })
    }
}
