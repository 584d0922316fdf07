import Platform
import ObjectStore
import ReadCache
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// Namespace changes: mkdir, unlink, rmdir, symlink, readlink, setattr and user xattrs.
extension Filesystem {
    package typealias Reply<T> = @Sendable (Result<T, FilesystemError>) -> Void

    /// Resolves a parent inode and a child name to the child's path; fails on a bad name or parent.
    func childPath(_ parent: UInt64, _ name: String) throws(FilesystemError) -> String {
        guard writeBack != nil else { throw readOnlyError }
        guard Namespace.isValidName(name) else { throw FilesystemError(EINVAL, "not a valid name") }
        guard let dir = state.withLock({ $0.nodes[parent] }) else { throw FilesystemError(ESTALE, "unknown parent inode \(parent)") }
        guard dir.attributes.kind == .directory else { throw FilesystemError(ENOTDIR, "parent is not a directory") }
        return Namespace.join(dir.path, name)
    }

    /// A change that the `listing` metadata policy could not show afterwards.
    func listingPolicyError(_ what: String) -> FilesystemError {
        FilesystemError(EPERM, "\(what) of files are not kept under the 'listing' metadata policy (files show the default mode and owner); mount with --metadata exact to keep them")
    }

    /// Runs `body` as a task and replies with its result or its error as an errno.
    func run<T: Sendable>(_ reply: @escaping Reply<T>, _ body: @escaping @Sendable () async throws -> T) {
        Task {
            do { reply(.success(try await body())) } catch { reply(.failure(FilesystemError.from(error))) }
        }
    }

    /// mkdir: a `dir/` marker object carries the directory (and its mode) even while empty.
    package func mkdir(parent: UInt64, name: String, mode: UInt32, caller: Caller, reply: @escaping Reply<EntryReply>) {
        let path: String
        do { path = try childPath(parent, name) } catch { return reply(.failure(error)) }
        let metadata = Self.posixMetadata(mode: UInt32(S_IFDIR) | (mode & 0o7777), uid: caller.uid, gid: caller.gid, mtime: Self.now())
        run(reply) { [self] in
            _ = try await store.putObject(bucket: options.bucket.bucket, key: prefix(for: path), body: .empty, options: PutOptions(metadata: metadata))
            return state.withLock { s in
                let attrs = remember(&s, parent: parent, name: name, kind: .directory, size: 0, mtime: Self.now(), etag: "", metadata: metadata, countLookup: true)
                // A new directory is empty: a complete, fresh listing saves the LIST of the first readdir.
                var empty = Listing()
                empty.complete = true
                empty.fetched = monotonicSeconds()
                if let old = s.listings.updateValue(empty, forKey: path) { s.listingEntries -= old.entries.count }
                listingInsert(&s, path: path, kind: .directory, size: 0, mtime: attrs.mtime, etag: "", posix: PosixMetadata(metadata))
                return EntryReply(attributes: attrs, ttl: options.kernelTTL)
            }
        }
    }

    /// symlink: a small object holding the target, marked as a link by its mode metadata.
    package func symlink(target: String, parent: UInt64, name: String, caller: Caller, reply: @escaping Reply<EntryReply>) {
        let path: String
        do { path = try childPath(parent, name) } catch { return reply(.failure(error)) }
        if options.metadata == .listing { return reply(.failure(listingPolicyError("symbolic links"))) }
        let now = Self.now()
        let metadata = Self.posixMetadata(mode: UInt32(S_IFLNK) | 0o777, uid: caller.uid, gid: caller.gid, mtime: now)
        run(reply) { [self] in
            let bytes = Array(target.utf8)
            let etag = try await store.putObject(bucket: options.bucket.bucket, key: key(for: path), body: .bytes(bytes), options: PutOptions(metadata: metadata))
            return state.withLock { s in
                if let old = s.local.removeValue(forKey: path) { writeBack?.cancel(old) }
                let attrs = remember(&s, parent: parent, name: name, kind: .file, size: Int64(bytes.count), mtime: now, etag: etag, metadata: metadata, countLookup: true)
                s.nodes[attrs.ino]?.symlinkTarget = target
                listingInsert(&s, path: path, kind: .file, size: Int64(bytes.count), mtime: now, etag: etag, posix: PosixMetadata(metadata))
                return EntryReply(attributes: attrs, ttl: options.kernelTTL)
            }
        }
    }

    package func readlink(_ ino: UInt64, reply: @escaping Reply<String>) {
        guard let node = state.withLock({ $0.nodes[ino] }) else { return reply(.failure(FilesystemError(ESTALE, "unknown inode \(ino)"))) }
        guard node.attributes.kind == .symlink else { return reply(.failure(FilesystemError(EINVAL, "not a symbolic link"))) }
        if let target = node.symlinkTarget { return reply(.success(target)) }
        run(reply) { [self] in
            let bytes = try await fetchSmallObject(key: key(for: node.path), etag: node.etag, limit: 4096)
            let target = String(decoding: bytes, as: UTF8.self)
            state.withLock { $0.nodes[ino]?.symlinkTarget = target }
            return target
        }
    }

    func fetchSmallObject(key: String, etag: String, limit: Int) async throws -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: limit, alignment: 16)
        defer { buffer.deallocate() }
        let request = GetObjectRequest(bucket: options.bucket.bucket, key: key, range: nil, ifMatch: etag.isEmpty ? nil : etag)
        let n = try await store.getObject(request, into: buffer).bytesWritten
        return Array(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
    }

    /// unlink: cancels a pending upload and deletes the object. A file still open for reading keeps its bytes
    /// until the last release (the staged image, or the object, whose delete waits for that release).
    package func unlink(parent: UInt64, name: String, reply: @escaping Reply<Void>) {
        let path: String
        do { path = try childPath(parent, name) } catch { return reply(.failure(error)) }
        let key = key(for: path)
        let (deferred, cancelled) = state.withLock { s -> (Bool, StagedFile?) in
            let cancelled = s.local.removeValue(forKey: path)
            if let cancelled { writeBack?.cancel(cancelled) }
            listingRemove(&s, path: path)
            let ino = inode(s, of: path)
            s.negative[Self.split(path).parent, default: [:]][name] = options.metadataTTL.map { monotonicSeconds() + $0 } ?? .infinity
            let readers = s.files.values.filter { $0.ino == ino && $0.staged == nil }
            if !readers.isEmpty { s.deferredDeletes[ino] = key }
            detach(&s, path: path)
            return (!readers.isEmpty, cancelled)
        }
        if deferred { return reply(.success(())) }
        run(reply) { [self] in
            if let cancelled { await writeBack?.settle(cancelled) }
            try await store.deleteObject(bucket: options.bucket.bucket, key: key)
        }
    }

    /// rmdir: ENOTEMPTY if any key (listed or not) or staged file lies below; then the marker goes.
    package func rmdir(parent: UInt64, name: String, reply: @escaping Reply<Void>) {
        let path: String
        do { path = try childPath(parent, name) } catch { return reply(.failure(error)) }
        if state.withLock({ !localDescendants($0, of: path).isEmpty }) {
            return reply(.failure(FilesystemError(ENOTEMPTY, "directory has files still being written")))
        }
        let marker = prefix(for: path)
        run(reply) { [self] in
            let page = try await store.listObjects(ListObjectsRequest(bucket: options.bucket.bucket, prefix: marker, maxKeys: 2))
            if page.objects.contains(where: { $0.key != marker }) { throw FilesystemError(ENOTEMPTY, "directory not empty") }
            try await store.deleteObject(bucket: options.bucket.bucket, key: marker)
            state.withLock { s in
                listingRemove(&s, path: path)
                if let old = s.listings.removeValue(forKey: path) { s.listingEntries -= old.entries.count }
                s.negative.removeValue(forKey: path)
                detach(&s, path: path)
                s.negative[Self.split(path).parent, default: [:]][name] = options.metadataTTL.map { monotonicSeconds() + $0 } ?? .infinity
            }
        }
    }
}
