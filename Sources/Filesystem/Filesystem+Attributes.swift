import Platform
import ObjectStore
import ReadCache
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// setattr and user xattrs: staged files change locally and travel with the next upload; objects that are
/// only in the bucket get their metadata replaced by a copy onto themselves.
extension Filesystem {
    /// Changes a node's attributes; `handle` is the file handle of an ftruncate or futimens, if any.
    package func setattr(_ ino: UInt64, _ changes: AttributeChanges, handle: UInt64? = nil, reply: @escaping Reply<EntryReply>) {
        guard let node = nodes[ino] else { return reply(.failure(FilesystemError(ESTALE, "unknown inode \(ino)"))) }
        guard let place = handlePlace(handle, ino: ino, path: node.path) ?? (isWritable(node.path) ? place(node.path) : nil) else {
            let e = readOnlyError(node.path)
            logger.notice("refused a change", metadata: ["operation": "setattr", "path": "/\(node.path)", "reason": "\(e.message)"])
            return reply(.failure(e))
        }
        if node.attributes.kind == .directory && changes.size != nil { return reply(.failure(FilesystemError(EISDIR, "is a directory"))) }
        if node.attributes.kind != .directory && place.policy.metadata == .listing && (changes.mode != nil || changes.uid != nil || changes.gid != nil) {
            return reply(.failure(listingPolicyError("modes and owners")))
        }
        run(reply, "setattr", node.path) { [self] in
            if node.attributes.kind == .directory {
                return try await setDirectoryAttributes(ino, node, place, changes)
            }
            if changes.mode != nil || changes.uid != nil || changes.gid != nil || changes.mtime != nil || changes.atime != nil || changes.size != nil { touchInode(ino) }
            if let f = overlay[node.path] {
                try await apply(changes, to: f, place: place, path: node.path)
                return EntryReply(attributes: localAttributes(ino: ino, file: f, policy: place.policy), ttl: place.policy.kernelTTL)
            }
            if let size = changes.size {
                let f = try await stage(ino: ino, node: node, place: place, truncate: size == 0)
                try await apply(changes, to: f, place: place, path: node.path)
                return EntryReply(attributes: localAttributes(ino: ino, file: f, policy: place.policy), ttl: place.policy.kernelTTL)
            }
            let metadata = merged(try await objectMetadata(ino, node), node.attributes, changes)
            let etag = try await replaceMetadata(place, etag: node.etag, size: node.attributes.size, metadata)
            let expires = expiry(place.policy)
            let attrs = nodes.withLock { s -> FileAttributes? in
                guard var n = s.nodes[ino] else { return nil }
                n.metadata = metadata
                n.etag = etag
                n.attributes = attributes(ino: ino, kind: n.attributes.kind == .directory ? .directory : .file, size: n.attributes.size, mtime: n.attributes.mtime, metadata: metadata, policy: place.policy)
                n.expires = expires
                n.attributes.ctime = Self.now()
                s.nodes[ino] = n
                return n.attributes
            }
            guard let attrs else { return EntryReply(attributes: node.attributes, ttl: 0) }
            listingInsert(path: node.path, kind: .file, size: attrs.size, mtime: attrs.mtime, etag: etag, posix: PosixMetadata(metadata))
            return EntryReply(attributes: attrs, ttl: place.policy.kernelTTL)
        }
    }

    /// Applies changes to a staged file; a file nobody has open is committed right away.
    /// The link as a writable handle on `ino` opened it: a reload that made the link read-only since
    /// applies to new opens, not to this handle's ftruncate.
    private func handlePlace(_ handle: UInt64?, ino: UInt64, path: String) -> Place? {
        guard let handle, let h = handles[file: handle], h.ino == ino, h.writable, h.staged != nil,
              let relative = h.link.relative(namespacePath: path) else { return nil }
        return Place(link: h.link, relative: relative)
    }

    private func apply(_ changes: AttributeChanges, to f: StagedFile, place: Place, path: String) async throws {
        let writeBack = writeBack!
        if let size = changes.size, case .failure(let e) = writeBack.truncate(f, to: size, mtime: changes.mtime ?? Self.now()) {
            throw FilesystemError(e.rawValue, "cannot truncate the staging file: \(e)")
        }
        let (_, mtime, metadata, _) = writeBack.attributes(f)
        let current = attributes(ino: 0, kind: .file, size: 0, mtime: mtime, metadata: metadata, policy: place.policy)
        var next = merged(metadata, current, changes)
        next.removeValue(forKey: "mtime")
        if metadata["mtime"] != nil { next["mtime"] = metadata["mtime"] }
        writeBack.setMetadata(f, next)
        if let t = changes.mtime { writeBack.setModificationTime(f, t) }
        if writeBack.writers(f) == 0, let error = await commitResult(f, sync: place.policy.syncClose, path: path) { throw error }
    }

    /// Metadata after a setattr, starting from what the object has (or the defaults it shows).
    func merged(_ metadata: [String: String], _ shown: FileAttributes, _ c: AttributeChanges) -> [String: String] {
        let mode = (shown.fullMode & ~0o7777) | ((c.mode ?? shown.mode) & 0o7777)
        var m = Self.posixMetadata(mode: mode, uid: c.uid ?? shown.uid, gid: c.gid ?? shown.gid, mtime: c.mtime ?? metadata["mtime"].flatMap(Self.parseTime), keeping: metadata)
        if let atime = c.atime { m["atime"] = Self.formatTime(atime) }
        return m
    }

    /// The object's whole user metadata, which a node made from a listing does not have: a HEAD then fetches
    /// it, so that a change of one field keeps the others.
    func objectMetadata(_ ino: UInt64, _ node: Node) async throws -> [String: String] {
        if let m = node.metadata { return m }
        guard let place = place(node.path) else { throw FilesystemError(ESTALE, "/\(node.path) is no longer in the namespace") }
        let info = try await place.store.headObject(bucket: place.bucket, key: place.key)
        guard info.etag == node.etag else { throw FilesystemError(ESTALE, "/\(node.path) changed in the bucket; look it up again") }
        headed(ino: ino, info, policy: place.policy)
        return info.metadata
    }

    /// CopyObject onto itself with new metadata, pinned to the ETag we know.
    func replaceMetadata(_ place: Place, etag: String, size: Int64, _ metadata: [String: String]) async throws -> String {
        guard size <= PartGeometry.maximumPartSize else {
            throw FilesystemError(EFBIG, "changing metadata of objects over 5 GiB needs a full copy; not supported")
        }
        let source = ObjectLocation(bucket: place.bucket, key: place.key)
        return try await place.store.copyObject(source: source, bucket: source.bucket, key: place.key, options: CopyOptions(replaceMetadata: metadata, sourceIfMatch: etag.isEmpty ? nil : etag))
    }

    /// A directory's mode and owner live on its marker object, created if the directory was implicit.
    private func setDirectoryAttributes(_ ino: UInt64, _ node: Node, _ place: Place, _ changes: AttributeChanges) async throws -> EntryReply {
        let metadata = merged(node.metadata ?? [:], node.attributes, changes)
        if !place.relative.isEmpty || !place.link.bucket.prefix.isEmpty {
            _ = try await place.store.putObject(bucket: place.bucket, key: place.prefix, body: .empty, options: PutOptions(metadata: metadata))
        }
        let attrs = nodes.withLock { s -> FileAttributes? in
            guard var n = s.nodes[ino] else { return nil }
            n.metadata = metadata
            n.attributes = attributes(ino: ino, kind: .directory, size: 0, mtime: changes.mtime ?? n.attributes.mtime, metadata: metadata, policy: place.policy)
            n.attributes.ctime = Self.now()
            s.nodes[ino] = n
            return n.attributes
        }
        guard let attrs else { return EntryReply(attributes: node.attributes, ttl: 0) }
        if !node.path.isEmpty {
            listingInsert(path: node.path, kind: .directory, size: 0, mtime: attrs.mtime, etag: "", posix: PosixMetadata(metadata))
        }
        return EntryReply(attributes: attrs, ttl: place.policy.kernelTTL)
    }

    /// setxattr/removexattr of `user.*` names, kept as object metadata (printable ASCII values).
    package func setxattr(_ ino: UInt64, name: String, value: String?, flags: Int32, reply: @escaping Reply<Void>) {
        guard name.hasPrefix("user."), name.count > 5 else {
            return reply(.failure(FilesystemError(ENOTSUP, "only user.* attributes are stored (as object metadata)")))
        }
        let field = String(name.dropFirst(5)).lowercased()
        if Self.posixFields.contains(field) {
            return reply(.failure(FilesystemError(EPERM, "user.\(field) is reserved for POSIX metadata")))
        }
        if let value, !value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) {
            return reply(.failure(FilesystemError(EINVAL, "attribute values must be printable ASCII to be stored as S3 metadata")))
        }
        guard let node = nodes[ino] else { return reply(.failure(FilesystemError(ESTALE, "unknown inode \(ino)"))) }
        guard isWritable(node.path), let place = place(node.path) else { return reply(.failure(readOnlyError(node.path))) }
        run(reply, "setxattr", node.path) { [self] in
            let existing = try await withCheckedThrowingContinuation { c in xattrs(ino) { c.resume(with: $0) } }[name]
            if value == nil && existing == nil { throw FilesystemError(ENODATA, "no such attribute") }
            if flags & 1 != 0 && existing != nil { throw FilesystemError(EEXIST, "attribute exists") }
            if flags & 2 != 0 && existing == nil { throw FilesystemError(ENODATA, "no such attribute") }
            if let f = overlay[node.path] {
                var metadata = writeBack!.attributes(f).metadata
                metadata[field] = value
                writeBack!.setMetadata(f, metadata)
                if writeBack!.writers(f) == 0 { try await apply(AttributeChanges(), to: f, place: place, path: node.path) }
                return
            }
            guard node.attributes.kind != .directory else { throw FilesystemError(ENOTSUP, "directory attributes are not stored") }
            var metadata = try await objectMetadata(ino, node)
            if metadata["mode"] == nil { metadata = merged(metadata, node.attributes, AttributeChanges()) }
            metadata[field] = value
            let etag = try await replaceMetadata(place, etag: node.etag, size: node.attributes.size, metadata)
            nodes.withLock { s in
                s.nodes[ino]?.metadata = metadata
                s.nodes[ino]?.etag = etag
            }
            listingInsert(path: node.path, kind: .file, size: node.attributes.size, mtime: node.attributes.mtime, etag: etag, posix: PosixMetadata(metadata))
        }
    }
}
