import Platform
import ObjectStore
import ReadCache
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// rename: a server-side copy and a delete per object. A directory rename moves every key below it and is
/// not atomic; a file with a pending upload is retargeted rather than uploaded twice.
extension Filesystem {
    /// renameat2 flags (linux/fs.h), which Glibc's module does not export.
    static let renameNoReplace: UInt32 = 1
    static let renameExchange: UInt32 = 2

    package func rename(parent: UInt64, name: String, newParent: UInt64, newName: String, flags: UInt32, reply: @escaping Reply<Void>) {
        // Across links first: EXDEV makes `mv` copy and delete, even when one side is read-only.
        if let a = nodes[parent], let b = nodes[newParent], let from = place(Namespace.join(a.path, name)), let to = place(Namespace.join(b.path, newName)),
            from.link.path != to.link.path
        {
            return reply(.failure(FilesystemError(EXDEV, "rename across links (/\(from.link.path) and /\(to.link.path)) is a copy and a delete; mv does that")))
        }
        let src: String
        let dst: String
        let place: Place
        let dstPlace: Place
        do {
            (src, place) = try childPath(parent, name, "rename")
            (dst, dstPlace) = try childPath(newParent, newName, "rename")
        } catch { return reply(.failure(error)) }
        if flags & Self.renameExchange != 0 { return reply(.failure(FilesystemError(EINVAL, "RENAME_EXCHANGE is not supported on object storage"))) }
        if src == dst { return reply(.success(())) }
        if dst.hasPrefix(src + "/") { return reply(.failure(FilesystemError(EINVAL, "cannot move a directory into itself"))) }
        let srcNode = nodes.node(at: src)
        run(reply, "rename", src) { [self] in
            let kind = try await kindOf(parent: parent, name: name, node: srcNode)
            if flags & Self.renameNoReplace != 0, (try? await kindOf(parent: newParent, name: newName, node: nil)) != nil {
                throw FilesystemError(EEXIST, "destination exists")
            }
            if kind == .directory {
                try await renameDirectory(src, dst, place, dstPlace)
            } else {
                try await renameFile(src, dst, place, dstPlace, node: srcNode)
            }
            moved(from: src, to: dst, kind: kind, newParent: newParent, newName: newName, policy: place.policy)
            touchDirectory(of: src)
            touchDirectory(of: dst)
            if let ino = nodes.node(at: dst)?.ino { touchInode(ino) }
        }
    }

    /// The kind of an existing child (the kernel looked it up before renaming, so the node is usually known).
    private func kindOf(parent: UInt64, name: String, node: Node?) async throws -> FileAttributes.Kind {
        if let node { return node.attributes.kind }
        return try await withCheckedThrowingContinuation { c in
            lookup(parent: parent, name: name) { r in
                switch r {
                case .success(let e):
                    self.forget(e.attributes.ino, count: 1)
                    c.resume(returning: e.attributes.kind)
                case .failure(let e): c.resume(throwing: e)
                }
            }
        }
    }

    private func renameFile(_ src: String, _ dst: String, _ from: Place, _ to: Place, node: Node?) async throws {
        let (f, replaced) = overlay.withLock { s in (s.files[src], s.files[dst]) }
        if let replaced, replaced !== f {
            writeBack?.cancel(replaced)
            await writeBack?.settle(replaced)
            await settleKey(to)
        }
        if let f, let writeBack {
            if let etag = writeBack.uploadedETag(f) {
                let copied = try await copy(from, etag: etag, to: to, size: writeBack.attributes(f).size)
                writeBack.retarget(f, bucket: to.bucket, key: to.key, copiedETag: copied)
            } else {
                writeBack.retarget(f, bucket: to.bucket, key: to.key, copiedETag: nil)
            }
            // An upload to the old key already in flight lands before the delete, not after the rename.
            await settleKey(from)
            try? await from.store.deleteObject(bucket: from.bucket, key: from.key)
            return
        }
        let size: Int64
        let etag: String
        if let node, !node.etag.isEmpty {
            (size, etag) = (node.attributes.size, node.etag)
        } else {
            let info = try await from.store.headObject(bucket: from.bucket, key: from.key)
            (size, etag) = (info.size, info.etag)
        }
        let copied = try await copy(from, etag: etag, to: to, size: size)
        // The destination is the copy: stores differ on whether a copy keeps the ETag (a multipart source
        // never does), and reads, sync and summaries compare the new object's.
        if !copied.isEmpty {
            nodes.withLock { s in
                if let ino = s.ino(at: src), s.nodes[ino]?.etag == etag { s.nodes[ino]!.etag = copied }
            }
        }
        await settleKey(from)
        try await from.store.deleteObject(bucket: from.bucket, key: from.key)
    }

    /// Copies every key below `src/` to `dst/`, then deletes the sources. Staged files move with it.
    private func renameDirectory(_ src: String, _ dst: String, _ from: Place, _ to: Place) async throws {
        let (store, bucket) = (from.store, from.bucket)
        let (srcPrefix, dstPrefix) = (from.prefix, to.prefix)
        // The destination's marker and metadata summary are its own, not entries: three keys tell.
        let dstSummary = dstPrefix + DirectorySummary.objectName
        let probe = try await store.listObjects(ListObjectsRequest(bucket: bucket, prefix: dstPrefix, maxKeys: 3))
        if probe.objects.contains(where: { $0.key != dstPrefix && $0.key != dstSummary }) || !overlay.withLock({ $0.descendants(of: dst) }).isEmpty {
            throw FilesystemError(ENOTEMPTY, "destination directory is not empty")
        }
        // A replaced empty directory's summary describes nothing that moves in.
        if probe.objects.contains(where: { $0.key == dstSummary }) { try await store.deleteObject(bucket: bucket, key: dstSummary) }
        var objects: [ListedObject] = []
        var token: String?
        repeat {
            let page = try await store.listObjects(ListObjectsRequest(bucket: bucket, prefix: srcPrefix, continuationToken: token))
            objects += page.objects
            token = page.nextContinuationToken
        } while token != nil
        let staged = overlay.withLock { $0.descendants(of: src) }
        let stagedKeys = Set(staged.map { from.link.key(from.link.relative(namespacePath: $0.0) ?? "") })
        // Markers are written anew (PutObject with their metadata), not copied: some stores (SeaweedFS)
        // answer CopyObject of a `dir/` marker with NoSuchKey though HEAD of it works.
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            for o in objects where !stagedKeys.contains(o.key) {
                if running == 16 {
                    try await group.next()
                    running -= 1
                }
                let target = dstPrefix + o.key.dropFirst(srcPrefix.count)
                group.addTask {
                    if o.key.hasSuffix("/") {
                        let info = try await store.headObject(bucket: bucket, key: o.key)
                        _ = try await store.putObject(bucket: bucket, key: target, body: .empty, options: PutOptions(metadata: info.metadata))
                    } else {
                        _ = try await self.copy(from, key: o.key, etag: o.etag, to: to, key: target, size: o.size)
                    }
                }
                running += 1
            }
            try await group.waitForAll()
        }
        for (path, f) in staged {
            let key = from.link.key(from.link.relative(namespacePath: path) ?? "")
            writeBack?.retarget(f, bucket: bucket, key: dstPrefix + key.dropFirst(srcPrefix.count), copiedETag: nil)
        }
        // Uploads to the old keys already in flight land before the deletes below, so none outlives the
        // rename (a later rename of the old directory would copy it back into the namespace).
        for key in stagedKeys { await writeBack?.settle(store: from.link.store.name, bucket: bucket, key: key) }
        let listed = Set(objects.map(\.key))
        var keys = objects.map(\.key) + stagedKeys.filter { !listed.contains($0) }
        if !keys.contains(srcPrefix) { keys.append(srcPrefix) }
        if !objects.contains(where: { $0.key == srcPrefix }) {
            // An implicit directory must not vanish when it had only staged files: keep it visible by a marker.
            _ = try await store.putObject(bucket: bucket, key: dstPrefix, body: .empty, options: PutOptions())
        }
        // Deepest first, so a marker goes after what is below it: SeaweedFS keeps a directory whose marker
        // is deleted while it still has entries, and lists it ever after.
        keys.sort { Self.depth($0) > Self.depth($1) }
        for start in stride(from: 0, to: keys.count, by: 1000) {
            let failed = try await store.deleteObjects(bucket: bucket, keys: Array(keys[start..<min(start + 1000, keys.count)]))
            if let first = failed.first {
                throw ObjectStoreError(first.error.kind, "could not delete \(first.key) after copying it: \(first.error)", operation: "DeleteObjects", bucket: bucket, key: first.key)
            }
        }
    }

    /// Slashes in a key, a marker's own trailing one not counted: `a/b/` is 1 deep, `a/b/c` 2.
    static func depth(_ key: String) -> Int {
        key.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: "/") ? 1 : 0) } - (key.hasSuffix("/") ? 1 : 0)
    }

    /// Server-side copy of a place's object; see `copy(_:key:etag:to:key:size:)`.
    func copy(_ from: Place, etag: String, to: Place, size: Int64) async throws -> String {
        try await copy(from, key: from.key, etag: etag, to: to, key: to.key, size: size)
    }

    /// Server-side copy within a link's store; objects over 5 GiB are copied part by part with UploadPartCopy.
    func copy(_ from: Place, key srcKey: String, etag: String, to: Place, key dstKey: String, size: Int64) async throws -> String {
        let (store, bucket) = (from.store, from.bucket)
        let source = ObjectLocation(bucket: bucket, key: srcKey)
        if size <= PartGeometry.maximumPartSize {
            return try await store.copyObject(source: source, bucket: to.bucket, key: dstKey, options: CopyOptions(sourceIfMatch: etag.isEmpty ? nil : etag))
        }
        let info = try await store.headObject(bucket: bucket, key: srcKey)
        let partSize = max(Int64(512 << 20), (size + 9_999) / 10_000)
        let id = try await store.createMultipartUpload(bucket: to.bucket, key: dstKey, options: PutOptions(metadata: info.metadata))
        do {
            var parts: [CompletedPart] = []
            var offset: Int64 = 0
            while offset < size {
                let length = min(partSize, size - offset)
                let n = parts.count + 1
                let e = try await store.uploadPartCopy(source: source, bucket: to.bucket, key: dstKey, uploadID: id, partNumber: n, range: ByteRange(offset: offset, length: length))
                parts.append(CompletedPart(partNumber: n, etag: e))
                offset += length
            }
            return try await store.completeMultipartUpload(bucket: to.bucket, key: dstKey, uploadID: id, parts: parts)
        } catch {
            try? await store.abortMultipartUpload(bucket: to.bucket, key: dstKey, uploadID: id)
            throw error
        }
    }

    /// Moves the in-memory view: nodes, staged overlay, listings and negative entries.
    private func moved(from src: String, to dst: String, kind: FileAttributes.Kind, newParent: UInt64, newName: String, policy: LinkPolicy) {
        let (srcDir, srcName) = Namespace.split(src)
        // The source's entry, before anything moves: without a node (the kernel forgot it), it still has a
        // directory's mode.
        let listed = listings.withLock { $0.entry(srcDir, srcName) }
        // What the rename replaced (a file, or an empty directory) is gone: its nodes must not answer for the
        // destination path, which now belongs to the source's nodes.
        nodes.withLock { $0.move(from: src, to: dst, newParent: newParent) }
        let staged = overlay.withLock { s -> StagedFile? in
            // What the rename replaced is gone (its upload was cancelled): only the source's files move in.
            for (path, _) in s.descendants(of: dst) { s.remove(path) }
            s.remove(dst)
            for (path, f) in s.descendants(of: src) + (s.files[src].map { [(src, $0)] } ?? []) {
                s.remove(path)
                s.put(dst + path.dropFirst(src.count), f)
            }
            return s.files[dst]
        }
        if let f = staged, kind != .directory {
            let (size, mtime, metadata, _) = writeBack!.attributes(f)
            listingInsert(path: dst, kind: .file, size: size, mtime: mtime, etag: "", posix: PosixMetadata(metadata))
        } else {
            let n = nodes.node(at: dst)
            listingInsert(
                path: dst, kind: kind == .directory ? .directory : .file, size: n?.attributes.size ?? listed?.size ?? 0,
                mtime: n?.attributes.mtime ?? listed?.mtime ?? mountTime, etag: n?.etag ?? listed?.etag ?? "",
                posix: n.map { $0.metadata.map(PosixMetadata.init) ?? $0.posix } ?? listed?.posix)
        }
        if kind != .directory { summaryChanged(src, .removed) }
        let until = negativeExpiry(policy)
        listings.withLock { s in
            s.remove(src)
            s.setNegative(src, until: until)
            let (dstDir, dstName) = Namespace.split(dst)
            s.negative[dstDir]?.removeValue(forKey: dstName)
            // Cached listings and negative entries are by path: the replaced subtree's go, the moved ones follow.
            if kind == .directory { s.move(from: src, to: dst) }
        }
    }
}
