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
        let src: String
        let dst: String
        do {
            src = try childPath(parent, name)
            dst = try childPath(newParent, newName)
        } catch { return reply(.failure(error)) }
        if flags & Self.renameExchange != 0 { return reply(.failure(FilesystemError(EINVAL, "RENAME_EXCHANGE is not supported on object storage"))) }
        if src == dst { return reply(.success(())) }
        if dst.hasPrefix(src + "/") { return reply(.failure(FilesystemError(EINVAL, "cannot move a directory into itself"))) }
        let srcNode = state.withLock { s in s.nodes.values.first { $0.path == src } }
        run(reply) { [self] in
            let kind = try await kindOf(parent: parent, name: name, node: srcNode)
            if flags & Self.renameNoReplace != 0, (try? await kindOf(parent: newParent, name: newName, node: nil)) != nil {
                throw FilesystemError(EEXIST, "destination exists")
            }
            if kind == .directory {
                try await renameDirectory(src, dst)
            } else {
                try await renameFile(src, dst, node: srcNode)
            }
            state.withLock { s in moved(&s, from: src, to: dst, kind: kind, newParent: newParent, newName: newName) }
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

    private func renameFile(_ src: String, _ dst: String, node: Node?) async throws {
        let bucket = options.bucket.bucket
        let (srcKey, dstKey) = (key(for: src), key(for: dst))
        let (f, replaced) = state.withLock { s in (s.local[src], s.local[dst]) }
        if let replaced, replaced !== f {
            writeBack?.cancel(replaced)
            await writeBack?.settle(replaced)
        }
        if let f, let writeBack {
            if let etag = writeBack.cleanETag(f) {
                let copied = try await copy(from: srcKey, etag: etag, to: dstKey, size: writeBack.attributes(f).size)
                writeBack.retarget(f, bucket: bucket, key: dstKey, copiedETag: copied)
            } else {
                writeBack.retarget(f, bucket: bucket, key: dstKey, copiedETag: nil)
            }
            // An upload to the old key already in flight lands before the delete, not after the rename.
            await writeBack.settle(f)
            try? await store.deleteObject(bucket: bucket, key: srcKey)
            return
        }
        let size: Int64
        let etag: String
        if let node, !node.etag.isEmpty {
            (size, etag) = (node.attributes.size, node.etag)
        } else {
            let info = try await store.headObject(bucket: bucket, key: srcKey)
            (size, etag) = (info.size, info.etag)
        }
        _ = try await copy(from: srcKey, etag: etag, to: dstKey, size: size)
        try await store.deleteObject(bucket: bucket, key: srcKey)
    }

    /// Copies every key below `src/` to `dst/`, then deletes the sources. Staged files move with it.
    private func renameDirectory(_ src: String, _ dst: String) async throws {
        let bucket = options.bucket.bucket
        let (srcPrefix, dstPrefix) = (prefix(for: src), prefix(for: dst))
        let probe = try await store.listObjects(ListObjectsRequest(bucket: bucket, prefix: dstPrefix, maxKeys: 2))
        if probe.objects.contains(where: { $0.key != dstPrefix }) || state.withLock({ !localDescendants($0, of: dst).isEmpty }) {
            throw FilesystemError(ENOTEMPTY, "destination directory is not empty")
        }
        var objects: [ListedObject] = []
        var token: String?
        repeat {
            let page = try await store.listObjects(ListObjectsRequest(bucket: bucket, prefix: srcPrefix, continuationToken: token))
            objects += page.objects
            token = page.nextContinuationToken
        } while token != nil
        let staged = state.withLock { localDescendants($0, of: src) }
        let stagedKeys = Set(staged.map { key(for: $0.0) })
        // Copies run 16 at a time; a failure stops before anything is deleted.
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            for o in objects where !stagedKeys.contains(o.key) {
                if running == 16 {
                    try await group.next()
                    running -= 1
                }
                group.addTask { _ = try await self.copy(from: o.key, etag: o.etag, to: dstPrefix + o.key.dropFirst(srcPrefix.count), size: o.size) }
                running += 1
            }
            try await group.waitForAll()
        }
        for (path, f) in staged {
            let newKey = dstPrefix + key(for: path).dropFirst(srcPrefix.count)
            writeBack?.retarget(f, bucket: bucket, key: newKey, copiedETag: nil)
        }
        // Uploads to the old keys already in flight land before the deletes below, so none outlives the
        // rename (a later rename of the old directory would copy it back into the namespace).
        for (_, f) in staged { await writeBack?.settle(f) }
        let listed = Set(objects.map(\.key))
        var keys = objects.map(\.key) + staged.map { key(for: $0.0) }.filter { !listed.contains($0) }
        if !keys.contains(srcPrefix) { keys.append(srcPrefix) }
        if !objects.contains(where: { $0.key == srcPrefix }) {
            // An implicit directory must not vanish when it had only staged files: keep it visible by a marker.
            _ = try await store.putObject(bucket: bucket, key: dstPrefix, body: .empty, options: PutOptions())
        }
        for start in stride(from: 0, to: keys.count, by: 1000) {
            let failed = try await store.deleteObjects(bucket: bucket, keys: Array(keys[start..<min(start + 1000, keys.count)]))
            if let first = failed.first { throw FilesystemError(first.error.errno, "could not delete \(first.key) after copying it: \(first.error)") }
        }
    }

    /// Server-side copy; objects over 5 GiB are copied part by part with UploadPartCopy.
    func copy(from srcKey: String, etag: String, to dstKey: String, size: Int64) async throws -> String {
        let bucket = options.bucket.bucket
        let source = ObjectLocation(bucket: bucket, key: srcKey)
        if size <= PartGeometry.maximumPartSize {
            return try await store.copyObject(source: source, bucket: bucket, key: dstKey, options: CopyOptions(sourceIfMatch: etag.isEmpty ? nil : etag))
        }
        let info = try await store.headObject(bucket: bucket, key: srcKey)
        let partSize = max(Int64(512 << 20), (size + 9_999) / 10_000)
        let id = try await store.createMultipartUpload(bucket: bucket, key: dstKey, options: PutOptions(metadata: info.metadata))
        do {
            var parts: [CompletedPart] = []
            var offset: Int64 = 0
            while offset < size {
                let length = min(partSize, size - offset)
                let n = parts.count + 1
                let e = try await store.uploadPartCopy(source: source, bucket: bucket, key: dstKey, uploadID: id, partNumber: n, range: ByteRange(offset: offset, length: length))
                parts.append(CompletedPart(partNumber: n, etag: e))
                offset += length
            }
            return try await store.completeMultipartUpload(bucket: bucket, key: dstKey, uploadID: id, parts: parts)
        } catch {
            try? await store.abortMultipartUpload(bucket: bucket, key: dstKey, uploadID: id)
            throw error
        }
    }

    /// Moves the in-memory view: nodes, staged overlay, listings and negative entries.
    private func moved(_ s: inout State, from src: String, to dst: String, kind: FileAttributes.Kind, newParent: UInt64, newName: String) {
        let (srcDir, srcName) = Self.split(src)
        let (dstDir, dstName) = Self.split(dst)
        let inside = { (path: String, root: String) in path == root || path.hasPrefix(root + "/") }
        // What the rename replaced (a file, or an empty directory) is gone: its nodes must not answer for the
        // destination path, which now belongs to the source's nodes.
        for n in s.nodes.values where inside(n.path, dst) {
            detach(&s, path: n.path)
        }
        for (ino, var n) in s.nodes where inside(n.path, src) {
            if s.byPath[n.path] == ino { s.byPath.removeValue(forKey: n.path) }
            n.path = dst + n.path.dropFirst(src.count)
            s.byPath[n.path] = ino
            if n.path == dst {
                n.parent = newParent
                n.name = dstName
            }
            n.expires = 0
            s.nodes[ino] = n
        }
        for (path, f) in s.local where inside(path, src) {
            s.local.removeValue(forKey: path)
            s.local[dst + path.dropFirst(src.count)] = f
        }
        if let f = s.local[dst], kind != .directory {
            let (size, mtime, _, _) = writeBack!.attributes(f)
            listingInsert(&s, path: dst, kind: .file, size: size, mtime: mtime, etag: "", posix: PosixMetadata(writeBack!.attributes(f).metadata))
        } else {
            let n = s.byPath[dst].flatMap { s.nodes[$0] }
            // Without a node (the kernel forgot it), the source's listing entry still has a directory's mode.
            let listed = s.listings[srcDir].flatMap { l in l.byName[srcName].map { l.entries[$0] } }
            listingInsert(&s, path: dst, kind: kind == .directory ? .directory : .file, size: n?.attributes.size ?? listed?.size ?? 0,
                          mtime: n?.attributes.mtime ?? listed?.mtime ?? mountTime, etag: n?.etag ?? listed?.etag ?? "",
                          posix: n.map { $0.metadata.map(PosixMetadata.init) ?? $0.posix } ?? listed?.posix)
        }
        listingRemove(&s, path: src)
        s.negative[srcDir, default: [:]][srcName] = options.metadataTTL.map { monotonicSeconds() + $0 } ?? .infinity
        s.negative[dstDir]?.removeValue(forKey: newName)
        if kind == .directory {
            // Cached listings and negative entries are by path: the replaced subtree's go, the moved ones follow.
            for path in s.listings.keys where inside(path, dst) {
                if let old = s.listings.removeValue(forKey: path) { s.listingEntries -= old.entries.count }
            }
            for path in s.negative.keys where inside(path, dst) { s.negative.removeValue(forKey: path) }
            for path in s.listings.keys where inside(path, src) {
                s.listings[dst + path.dropFirst(src.count)] = s.listings.removeValue(forKey: path)
            }
            for path in s.negative.keys where inside(path, src) {
                s.negative[dst + path.dropFirst(src.count)] = s.negative.removeValue(forKey: path)
            }
        }
    }
}
