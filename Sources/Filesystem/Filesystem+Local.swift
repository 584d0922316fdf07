import Platform
import ObjectStore
import ReadCache
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// The overlay of files written through this mount, and how it stays in step with listings and nodes.
extension Filesystem {
    /// Attributes of a staged file: its size and times as the application left them, modes from metadata.
    func localAttributes(ino: UInt64, file: StagedFile) -> FileAttributes {
        let (size, mtime, metadata, _) = writeBack!.attributes(file)
        var a = attributes(ino: ino, kind: .file, size: size, mtime: mtime, metadata: metadata)
        a.mtime = mtime
        return a
    }

    /// Records a node for a staged file and counts a lookup; caller holds the lock.
    func rememberLocal(_ s: inout State, parent: UInt64, name: String, file: StagedFile, countLookup: Bool = true) -> FileAttributes {
        let (size, mtime, metadata, _) = writeBack!.attributes(file)
        var attrs = remember(&s, parent: parent, name: name, kind: .file, size: size, mtime: mtime, etag: "", metadata: metadata, countLookup: countLookup)
        attrs = localAttributes(ino: attrs.ino, file: file)
        s.nodes[attrs.ino]?.attributes = attrs
        return attrs
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

    /// The path below the mount root for a key of this mount, or nil if the key is elsewhere.
    func path(forKey key: String) -> String? {
        let prefix = options.bucket.prefix
        guard key.hasPrefix(prefix) else { return nil }
        return String(key.dropFirst(prefix.count))
    }

    /// Splits a path into its parent directory path and name.
    static func split(_ path: String) -> (parent: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[..<slash]), String(path[path.index(after: slash)...]))
    }

    /// The inode number a path gets (or has): the hash of the path, probing past numbers held by nodes of
    /// other paths, as `remember` assigns them.
    ///
    /// A node renamed here keeps its number, so after `mv a b` and a new `a`, the new file's number is not
    /// the hash of "a": answering with that hash would point the kernel at the moved file.
    func inode(_ s: State, of path: String) -> UInt64 {
        if let ino = s.byPath[path] { return ino }
        var ino = Namespace.inode(for: path)
        while let n = s.nodes[ino], n.path != path { ino &+= 1 }
        return ino
    }

    /// Forgets a node.
    func drop(_ s: inout State, _ ino: UInt64) {
        guard let n = s.nodes.removeValue(forKey: ino) else { return }
        if s.byPath[n.path] == ino { s.byPath.removeValue(forKey: n.path) }
    }

    /// The node of `path` no longer names anything (unlinked, removed, replaced by a rename). It stays until
    /// the kernel forgets it, so that its number is not given to a new file the kernel could mistake for it
    /// (and serve the old file's cached pages); open handles keep working.
    func detach(_ s: inout State, path: String) {
        guard let ino = s.byPath.removeValue(forKey: path), var n = s.nodes[ino] else { return }
        n.path = Self.detachedPrefix + String(ino)
        n.expires = 0
        s.nodes[ino] = n
    }

    /// Paths of detached nodes: no real path starts with NUL.
    static let detachedPrefix = "\u{0}detached/"

    /// Updates the cached listing of a directory path, if there is one.
    func withListing(_ s: inout State, directory: String, _ body: (inout Listing) -> Void) {
        guard let before = s.listings[directory]?.entries.count else { return }
        // In place: copying the listing out and back is O(entries) per change.
        body(&s.listings[directory]!)
        s.listingEntries += s.listings[directory]!.entries.count - before
    }

    /// Shows a new or changed child in its parent's cached listing and forgets any negative entry for it.
    ///
    /// `posix` is the entry's metadata when known (a directory's marker, a file written or changed here).
    func listingInsert(_ s: inout State, path: String, kind: FileAttributes.Kind, size: Int64, mtime: Timestamp, etag: String, posix: PosixMetadata?) {
        let (dir, name) = Self.split(path)
        s.negative[dir]?.removeValue(forKey: name)
        withListing(&s, directory: dir) { $0.upsert(ListingEntry(name: name, kind: kind, size: size, mtime: mtime, etag: etag, posix: kind == .directory ? posix ?? .plain : posix)) }
    }

    func listingRemove(_ s: inout State, path: String) {
        let (dir, name) = Self.split(path)
        withListing(&s, directory: dir) { $0.remove(name) }
    }

    /// Staged files inside directory `dir` (direct children), for merging into a fresh listing.
    func localChildren(_ s: State, of dir: String) -> [(String, StagedFile)] {
        s.local.compactMap { path, f in
            let (parent, name) = Self.split(path)
            return parent == dir ? (name, f) : nil
        }
    }

    /// Staged files anywhere below `dir`.
    func localDescendants(_ s: State, of dir: String) -> [(String, StagedFile)] {
        let prefix = dir.isEmpty ? "" : dir + "/"
        return s.local.filter { $0.key.hasPrefix(prefix) }.map { ($0.key, $0.value) }
    }

    /// The upload of a staged file finished: the node and listing learn the new ETag, so the block cache
    /// serves it correctly once the staged image is evicted.
    func uploaded(_ f: StagedFile, key: String, etag: String, size: Int64) {
        guard let path = path(forKey: key) else { return }
        state.withLock { s in
            // Unlinked or renamed since: the path is no longer this file's.
            guard s.local[path] === f else { return }
            let ino = inode(s, of: path)
            if var n = s.nodes[ino] {
                n.etag = etag
                n.kernelCachedETag = etag
                s.nodes[ino] = n
            }
            listingInsert(&s, path: path, kind: .file, size: size, mtime: Self.now(), etag: etag, posix: PosixMetadata(writeBack!.attributes(f).metadata))
        }
    }

    /// A clean staged file was dropped to make room: reads of its path go to the bucket again.
    func evicted(_ f: StagedFile, key: String) {
        guard let path = path(forKey: key) else { return }
        state.withLock { s in
            // Unlinked or renamed since: the path is no longer this file's.
            if s.local[path] === f { s.local.removeValue(forKey: path) }
        }
    }

    /// Files the journal replay resumed: until uploaded, their paths show the staged bytes.
    package func adoptReplayed(_ files: [StagedFile]) {
        state.withLock { s in
            for f in files {
                if let path = path(forKey: writeBack!.attributes(f).key) { s.local[path] = f }
            }
        }
    }
}

extension Listing {
    mutating func upsert(_ e: ListingEntry) {
        if let i = byName[e.name] {
            entries[i] = e
        } else {
            byName[e.name] = entries.count
            entries.append(e)
        }
    }

    mutating func remove(_ name: String) {
        guard let i = byName.removeValue(forKey: name) else { return }
        entries.remove(at: i)
        for j in i..<entries.count { byName[entries[j].name] = j }
    }
}
