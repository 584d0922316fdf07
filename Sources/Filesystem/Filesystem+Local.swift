import ObjectStore
import Platform
import ReadCache
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// The overlay of files written through this mount, and how it stays in step with listings and nodes.
extension Filesystem {
    /// Attributes of a staged file: its size and times as the application left them, modes from metadata.
    func localAttributes(ino: UInt64, file: StagedFile, policy: LinkPolicy) -> FileAttributes {
        let (size, mtime, metadata, _) = writeBack!.attributes(file)
        var a = attributes(ino: ino, kind: .file, size: size, mtime: mtime, metadata: metadata, policy: policy)
        a.mtime = mtime
        a.ctime = nodes[ino]?.attributes.ctime
        return a
    }

    /// Records a node for a staged file and counts a lookup.
    func rememberLocal(parent: UInt64, name: String, file: StagedFile, policy: LinkPolicy, countLookup: Bool = true) -> FileAttributes {
        let (size, mtime, metadata, _) = writeBack!.attributes(file)
        let attrs = remember(parent: parent, name: name, kind: .file, size: size, mtime: mtime, etag: "", metadata: metadata, policy: policy, countLookup: countLookup)
        let local = localAttributes(ino: attrs.ino, file: file, policy: policy)
        nodes.withLock { $0.nodes[attrs.ino]?.attributes = local }
        return local
    }

    /// POSIX metadata as s3fs and rclone write it: decimal st_mode with the type bits, uid, gid, mtime.
    static func posixMetadata(mode: UInt32, uid: UInt32, gid: UInt32, mtime: Timestamp?, keeping old: [String: String] = [:]) -> [String: String] {
        var m = old
        m["mode"] = String(mode)
        m["uid"] = String(uid)
        m["gid"] = String(gid)
        if let mtime { m["mtime"] = formatTime(mtime) }
        return m
    }

    static func formatTime(_ t: Timestamp) -> String { MetadataTime.format(t) }
    static func parseTime(_ text: String) -> Timestamp? { MetadataTime.parse(text) }

    static func now() -> Timestamp { wallClock() }

    /// Shows a new or changed child in its parent's cached listing and forgets any negative entry for it.
    ///
    /// `posix` is the entry's metadata when known (a directory's marker, a file written or changed here).
    func listingInsert(path: String, kind: FileAttributes.Kind, size: Int64, mtime: Timestamp, etag: String, posix: PosixMetadata?) {
        let name = Namespace.split(path).name
        let entry = ListingEntry(name: name, kind: kind, size: size, mtime: mtime, etag: etag, posix: kind == .directory ? posix ?? .plain : posix)
        listings.withLock { $0.insert(path, entry) }
        if kind != .directory, !etag.isEmpty, let posix { summaryChanged(path, .set(DirectorySummary.Entry(etag: etag, size: size, posix: posix))) }
    }

    /// A directory's entries changed (a create, unlink, mkdir, rmdir or rename in it): its mtime and ctime
    /// move, in memory for the life of the mount (a directory's marker keeps only the mtime of its mkdir).
    func touchDirectory(of path: String) {
        let parent = Namespace.split(path).parent
        let now = Self.now()
        nodes.withLock { s in
            guard let ino = s.ino(at: parent), s.nodes[ino]?.attributes.kind == .directory else { return }
            s.nodes[ino]!.attributes.mtime = now
            s.nodes[ino]!.attributes.ctime = now
        }
    }

    /// The inode changed (chmod, chown, utimens, rename): its ctime moves.
    func touchInode(_ ino: UInt64) {
        let now = Self.now()
        nodes.withLock { $0.nodes[ino]?.attributes.ctime = now }
    }

    func listingRemove(path: String) {
        listings.withLock { $0.remove(path) }
    }

    /// The upload of a staged file finished: the node and listing learn the new ETag, so the block cache
    /// serves it correctly once the staged image is evicted.
    func uploaded(_ f: StagedFile, key: String, etag: String, size: Int64) {
        // Unlinked or renamed since, the path is no longer this file's: nothing to learn.
        guard let path = overlay.withLock({ $0.path(of: f) }) else { return }
        nodes.withLock { s in
            let ino = s.inode(of: path)
            if var n = s.nodes[ino] {
                n.etag = etag
                n.kernelCachedETag = etag
                s.nodes[ino] = n
            }
        }
        listingInsert(path: path, kind: .file, size: size, mtime: Self.now(), etag: etag, posix: PosixMetadata(writeBack!.uploadMetadata(f)))
    }

    /// A clean staged file was dropped to make room: reads of its path go to the bucket again.
    func evicted(_ f: StagedFile, key: String) {
        overlay.withLock { s in
            if let path = s.path(of: f) { s.remove(path) }
        }
    }

    /// Files the journal replay resumed: until uploaded, their paths show the staged bytes.
    package func adoptReplayed(_ files: [StagedFile]) {
        for f in files {
            let (_, _, _, key) = writeBack!.attributes(f)
            let target = writeBack!.target(f)
            guard let (_, path) = links.paths(store: f.store.name, bucket: target.bucket, key: key).first else { continue }
            _ = overlay.withLock { $0.put(path, f) }
        }
    }
}
