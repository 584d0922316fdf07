import ObjectStore
import Platform
import ReadCache
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// Namespace changes: mkdir, unlink, rmdir, symlink, readlink.
extension Filesystem {
    package typealias Reply<T> = @Sendable (Result<T, FilesystemError>) -> Void

    /// Resolves a parent inode and a child name to the child's path and place; fails on a bad name, a bad
    /// parent, or a path that cannot change (read-only link, above the links), with a log line for the last.
    func childPath(_ parent: UInt64, _ name: String, _ operation: String) throws(FilesystemError) -> (String, Place) {
        guard Namespace.isValidName(name) else { throw FilesystemError(Namespace.invalidNameError(name), "not a valid name") }
        guard let dir = nodes[parent] else { throw FilesystemError(ESTALE, "unknown parent inode \(parent)") }
        guard dir.attributes.kind == .directory else { throw FilesystemError(ENOTDIR, "parent is not a directory") }
        let path = Namespace.join(dir.path, name)
        guard isWritable(path), let place = place(path), !place.relative.isEmpty else {
            let e = readOnlyError(path)
            logger.notice("refused a change", metadata: ["operation": "\(operation)", "path": "/\(path)", "reason": "\(e.message)"])
            throw e
        }
        if name == DirectorySummary.objectName {
            throw FilesystemError(EPERM, "the name \(name) is reserved for lakecache's directory metadata summaries; choose another name")
        }
        let filter = place.policy.filter
        if !filter.isEmpty && !filter.admits(file: place.relative) && !filter.admits(directory: place.relative) {
            // It could be made, but the link would never show or fetch it again.
            throw FilesystemError(EPERM, "/\(path) is excluded by link /\(place.link.path)'s include/exclude globs; it could not be seen after it was made")
        }
        return (path, place)
    }

    /// A change that the `listing` metadata policy could not show afterwards.
    func listingPolicyError(_ what: String) -> FilesystemError {
        FilesystemError(EPERM, "\(what) of files are not kept under the 'listing' metadata policy (files show the default mode and owner); use the 'exact' policy (--metadata exact) to keep them")
    }

    /// Runs `body` as a task and replies with its result or its error as an errno (logged as a failure of
    /// `operation` on `path`).
    func run<T: Sendable>(_ reply: @escaping Reply<T>, _ operation: String, _ path: String, _ body: @escaping @Sendable () async throws -> T) {
        Task {
            do {
                reply(.success(try await body()))
            } catch let e as FilesystemError where [EEXIST, ENOTEMPTY, ENOENT, ENODATA, EINVAL, EPERM, EROFS, EXDEV, ENOTDIR, EISDIR, EFBIG, ENAMETOOLONG].contains(e.errno) {
                // The application's own mistake or a refusal by design: not a failure to log.
                reply(.failure(e))
            } catch {
                reply(.failure(failed(operation, path, error)))
            }
        }
    }

    /// mkdir: a `dir/` marker object carries the directory (and its mode) even while empty.
    package func mkdir(parent: UInt64, name: String, mode: UInt32, caller: Caller, reply: @escaping Reply<EntryReply>) {
        let path: String
        let place: Place
        do { (path, place) = try childPath(parent, name, "mkdir") } catch { return reply(.failure(error)) }
        let metadata = Self.posixMetadata(mode: UInt32(S_IFDIR) | (mode & 0o7777), uid: caller.uid, gid: caller.gid, mtime: Self.now())
        run(reply, "mkdir", path) { [self] in
            _ = try await place.store.putObject(bucket: place.bucket, key: place.prefix, body: .empty, options: PutOptions(metadata: metadata))
            let attrs = remember(parent: parent, name: name, kind: .directory, size: 0, mtime: Self.now(), etag: "", metadata: metadata, policy: place.policy, countLookup: true)
            // A new directory is empty: a complete, fresh listing saves the LIST of the first readdir.
            var empty = Listing()
            empty.complete = true
            empty.fetched = monotonicSeconds()
            listings.withLock { $0.store(path, empty) }
            listingInsert(path: path, kind: .directory, size: 0, mtime: attrs.mtime, etag: "", posix: PosixMetadata(metadata))
            touchDirectory(of: path)
            return EntryReply(attributes: attrs, ttl: place.policy.kernelTTL)
        }
    }

    /// symlink: a small object holding the target, marked as a link by its mode metadata.
    package func symlink(target: String, parent: UInt64, name: String, caller: Caller, reply: @escaping Reply<EntryReply>) {
        let path: String
        let place: Place
        do { (path, place) = try childPath(parent, name, "symlink") } catch { return reply(.failure(error)) }
        if place.policy.metadata == .listing { return reply(.failure(listingPolicyError("symbolic links"))) }
        let now = Self.now()
        let metadata = Self.posixMetadata(mode: UInt32(S_IFLNK) | 0o777, uid: caller.uid, gid: caller.gid, mtime: now)
        run(reply, "symlink", path) { [self] in
            let bytes = Array(target.utf8)
            let etag = try await place.store.putObject(bucket: place.bucket, key: place.key, body: .bytes(bytes), options: PutOptions(metadata: metadata))
            if let old = overlay.withLock({ $0.remove(path) }) { writeBack?.cancel(old) }
            let attrs = remember(parent: parent, name: name, kind: .file, size: Int64(bytes.count), mtime: now, etag: etag, metadata: metadata, policy: place.policy, countLookup: true)
            nodes.withLock { $0.nodes[attrs.ino]?.symlinkTarget = target }
            listingInsert(path: path, kind: .file, size: Int64(bytes.count), mtime: now, etag: etag, posix: PosixMetadata(metadata))
            touchDirectory(of: path)
            return EntryReply(attributes: attrs, ttl: place.policy.kernelTTL)
        }
    }

    /// mknod, mkfifo and the node `bind(2)` makes for a unix socket: a zero-byte object whose mode metadata
    /// carries the type and whose `rdev` metadata the device number, as s3fs stores them. A regular file
    /// made with mknod is an empty object.
    package func mknod(parent: UInt64, name: String, mode: UInt32, rdev: UInt64, caller: Caller, reply: @escaping Reply<EntryReply>) {
        let path: String
        let place: Place
        do { (path, place) = try childPath(parent, name, "mknod") } catch { return reply(.failure(error)) }
        guard let kind = FileAttributes.Kind(mode: mode), kind != .directory, kind != .symlink else {
            return reply(.failure(FilesystemError(EINVAL, "mknod of an unknown file type \(String(mode & UInt32(S_IFMT), radix: 8))")))
        }
        if place.policy.metadata == .listing && kind != .file { return reply(.failure(listingPolicyError("special files"))) }
        let now = Self.now()
        var made = Self.posixMetadata(mode: kind.typeBits | (mode & 0o7777), uid: caller.uid, gid: caller.gid, mtime: now)
        if kind == .characterDevice || kind == .blockDevice { made["rdev"] = String(rdev) }
        let metadata = made
        run(reply, "mknod", path) { [self] in
            let etag = try await place.store.putObject(bucket: place.bucket, key: place.key, body: .empty, options: PutOptions(metadata: metadata))
            if let old = overlay.withLock({ $0.remove(path) }) { writeBack?.cancel(old) }
            let attrs = remember(parent: parent, name: name, kind: .file, size: 0, mtime: now, etag: etag, metadata: metadata, policy: place.policy, countLookup: true)
            listingInsert(path: path, kind: .file, size: 0, mtime: now, etag: etag, posix: PosixMetadata(metadata))
            touchDirectory(of: path)
            return EntryReply(attributes: attrs, ttl: place.policy.kernelTTL)
        }
    }

    package func readlink(_ ino: UInt64, reply: @escaping Reply<String>) {
        guard let node = nodes[ino] else { return reply(.failure(FilesystemError(ESTALE, "unknown inode \(ino)"))) }
        guard node.attributes.kind == .symlink else { return reply(.failure(FilesystemError(EINVAL, "not a symbolic link"))) }
        if let target = node.symlinkTarget { return reply(.success(target)) }
        guard let place = place(node.path) else { return reply(.failure(FilesystemError(ESTALE, "/\(node.path) is no longer in the namespace"))) }
        run(reply, "readlink", node.path) { [self] in
            let bytes = try await fetchSmallObject(place, etag: node.etag, limit: 4096)
            let target = String(decoding: bytes, as: UTF8.self)
            nodes.withLock { $0.nodes[ino]?.symlinkTarget = target }
            return target
        }
    }

    func fetchSmallObject(_ place: Place, etag: String, limit: Int) async throws -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: limit, alignment: 16)
        defer { buffer.deallocate() }
        let request = GetObjectRequest(bucket: place.bucket, key: place.key, range: nil, ifMatch: etag.isEmpty ? nil : etag)
        let n = try await place.store.getObject(request, into: buffer).bytesWritten
        return Array(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
    }

    /// unlink: cancels a pending upload and deletes the object. A file still open for reading keeps its bytes
    /// until the last release (the staged image, or the object, whose delete waits for that release).
    package func unlink(parent: UInt64, name: String, reply: @escaping Reply<Void>) {
        let path: String
        let place: Place
        do { (path, place) = try childPath(parent, name, "unlink") } catch { return reply(.failure(error)) }
        let cancelled = overlay.withLock { $0.remove(path) }
        if let cancelled { writeBack?.cancel(cancelled) }
        let until = negativeExpiry(place.policy)
        listings.withLock { s in
            s.remove(path)
            s.setNegative(path, until: until)
        }
        let ino = nodes.withLock { $0.inode(of: path) }
        let readers = handles.withLock { s in s.files.values.contains { $0.ino == ino && $0.staged == nil } }
        if readers { overlay.withLock { $0.deferredDeletes[ino] = (place.link, place.key) } }
        nodes.withLock { $0.detach(path: path) }
        touchDirectory(of: path)
        if readers { return reply(.success(())) }
        run(reply, "unlink", path) { [self] in
            // Its staging space comes back before unlink returns, and the cancelled file's upload, or an
            // earlier replaced one's, lands before the delete.
            if let cancelled { await writeBack?.settle(cancelled) }
            await settleKey(place)
            try await place.store.deleteObject(bucket: place.bucket, key: place.key)
            summaryChanged(path, .removed)
        }
    }

    /// rmdir: ENOTEMPTY if any key (listed or not) or staged file lies below; then the marker goes.
    package func rmdir(parent: UInt64, name: String, reply: @escaping Reply<Void>) {
        let path: String
        let place: Place
        do { (path, place) = try childPath(parent, name, "rmdir") } catch { return reply(.failure(error)) }
        if !overlay.withLock({ $0.descendants(of: path) }).isEmpty {
            return reply(.failure(FilesystemError(ENOTEMPTY, "directory has files still being written")))
        }
        let marker = place.prefix
        run(reply, "rmdir", path) { [self] in
            // The marker and a metadata summary are the directory's own, not entries: three keys tell.
            let summary = marker + DirectorySummary.objectName
            let page = try await place.store.listObjects(ListObjectsRequest(bucket: place.bucket, prefix: marker, maxKeys: 3))
            if page.objects.contains(where: { $0.key != marker && $0.key != summary }) { throw FilesystemError(ENOTEMPTY, "directory not empty") }
            if page.objects.contains(where: { $0.key == summary }) { try await place.store.deleteObject(bucket: place.bucket, key: summary) }
            try await place.store.deleteObject(bucket: place.bucket, key: marker)
            let until = negativeExpiry(place.policy)
            listings.withLock { s in
                s.remove(path)
                s.drop(path)
                s.setNegative(path, until: until)
            }
            nodes.withLock { $0.detach(path: path) }
            touchDirectory(of: path)
        }
    }
}
