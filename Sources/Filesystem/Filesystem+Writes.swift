import Platform
import ObjectStore
import ReadCache
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// Who asked: the caller's ids, for the owner of new files.
package struct Caller: Sendable {
    package var uid: UInt32
    package var gid: UInt32
    package var umask: UInt32
    package init(uid: UInt32, gid: UInt32, umask: UInt32 = 0o022) {
        self.uid = uid
        self.gid = gid
        self.umask = umask
    }
}

/// Attribute changes of a setattr; nil fields stay as they are.
package struct AttributeChanges: Sendable {
    package var size: Int64?
    package var mode: UInt32?
    package var uid: UInt32?
    package var gid: UInt32?
    package var mtime: Timestamp?
    package var atime: Timestamp?
    package init() {}
}

extension Filesystem {
    /// Why a path cannot change: a read-only link, the directories above links, or a mount without a write path.
    func readOnlyError(_ path: String) -> FilesystemError {
        switch links.resolve(path) {
        case .link(let link, relative: let r) where !r.isEmpty:
            if writeBack == nil { return FilesystemError(EROFS, "the mount is read-only; remount without --read-only to write") }
            return FilesystemError(EROFS, "link /\(link.path) is read-only (its policy says read-only); write below a writable link")
        case .link(let link, _):
            return FilesystemError(EROFS, "/\(path) is the root of link /\(link.path) → \(link.bucket); change it in the bucket or the config, not here")
        default:
            return FilesystemError(EROFS, "/\(path) is above the mount's links and read-only; write inside a link (lakecache links MOUNTPOINT lists them)")
        }
    }

    /// Whether `path` can be changed: inside a writable link, on a mount with a write path.
    func isWritable(_ path: String) -> Bool {
        guard writeBack != nil, let place = place(path) else { return false }
        return !place.policy.readOnly
    }

    /// A read-only or writable handle on a file staged here; nil if the file is not staged.
    func openStaged(_ ino: UInt64, flags: Int32, writable: Bool) -> UInt64? {
        guard let n = nodes[ino], let f = overlay[n.path], let place = place(n.path) else { return nil }
        return addStagedHandle(ino: ino, place: place, file: f, writable: writable, flags: flags)
    }

    /// Registers a handle reading (and maybe writing) a staged file.
    func addStagedHandle(ino: UInt64, place: Place, file f: StagedFile, writable: Bool, flags: Int32) -> UInt64 {
        let version = place.link.version(key: place.key, etag: "", size: 0)
        let handle = handles.withLock {
            $0.add(HandleTable.FileHandle(
                ino: ino, link: place.link, version: version, readAhead: ReadAhead(initialWindow: 0, maximumWindow: 0), staged: f,
                writable: writable, append: flags & O_APPEND != 0))
        }
        if writable { writeBack?.openWriter(f) } else { writeBack?.touch(f) }
        return handle
    }

    /// The staged file behind a handle, when reads must come from it rather than the block cache.
    func staged(_ handle: UInt64) -> StagedFile? { handles[file: handle]?.staged }

    /// Opens for writing: a staged file is reused; otherwise the object is staged (downloaded whole unless
    /// O_TRUNC makes it empty). The write reaches the bucket at flush/close.
    func openForWriting(_ ino: UInt64, flags: Int32, reply: @escaping @Sendable (Result<OpenReply, FilesystemError>) -> Void) {
        guard let node = nodes[ino] else { return reply(.failure(FilesystemError(ESTALE, "unknown inode \(ino)"))) }
        guard let writeBack, isWritable(node.path), let place = place(node.path) else { return reply(.failure(readOnlyError(node.path))) }
        guard node.attributes.kind == .file else {
            return reply(.failure(FilesystemError(node.attributes.kind == .directory ? EISDIR : EINVAL, "not a regular file")))
        }
        if let handle = openStaged(ino, flags: flags, writable: true) {
            if flags & O_TRUNC != 0, let f = staged(handle), case .failure(let e) = writeBack.truncate(f, to: 0, mtime: Self.now()) {
                release(handle: handle)
                return reply(.failure(failed("open", node.path, FilesystemError(e.rawValue, "cannot truncate the staging file: \(e)"))))
            }
            return reply(.success(OpenReply(handle: handle, keepCache: false, flags: flags, writable: true)))
        }
        Task {
            do {
                _ = try await stage(ino: ino, node: node, place: place, truncate: flags & O_TRUNC != 0)
                guard let handle = openStaged(ino, flags: flags, writable: true) else { throw FilesystemError(ESTALE, "file vanished while opening") }
                reply(.success(OpenReply(handle: handle, keepCache: false, flags: flags, writable: true)))
            } catch {
                reply(.failure(failed("open", node.path, error)))
            }
        }
    }

    /// Creates the staged image of an existing object (empty when truncating) and puts it in the overlay.
    func stage(ino: UInt64, node: Node, place: Place, truncate: Bool) async throws -> StagedFile {
        let writeBack = writeBack!
        var metadata = try await objectMetadata(ino, node)
        if metadata["mode"] == nil {
            metadata = Self.posixMetadata(mode: node.attributes.fullMode, uid: node.attributes.uid, gid: node.attributes.gid, mtime: nil, keeping: metadata)
        }
        metadata.removeValue(forKey: "mtime")
        let f: StagedFile
        do {
            f = try writeBack.create(store: place.link.store, bucket: place.bucket, key: place.key, metadata: metadata, mtime: node.attributes.mtime)
        } catch {
            throw FilesystemError(error.errno, error.message)
        }
        if !truncate && node.attributes.size > 0 {
            do {
                try await download(place, etag: node.etag, size: node.attributes.size, into: f)
            } catch {
                writeBack.cancel(f)
                throw error
            }
        }
        let replaced = overlay.withLock { s -> StagedFile? in
            s.put(node.path, f)
        }
        if let replaced, replaced !== f { writeBack.cancel(replaced) }
        if truncate {
            // An O_TRUNC open is a change even if nothing is written: the object becomes empty at close.
            _ = writeBack.truncate(f, to: 0, mtime: Self.now())
        }
        return f
    }

    /// Copies an object into a staging file, 8 MiB at a time, pinned to one ETag.
    private func download(_ place: Place, etag: String, size: Int64, into f: StagedFile) async throws {
        let chunk = 8 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buffer.deallocate() }
        var offset: Int64 = 0
        while offset < size {
            let length = Int(min(Int64(chunk), size - offset))
            let request = GetObjectRequest(bucket: place.bucket, key: place.key, range: ByteRange(offset: offset, length: Int64(length)), ifMatch: etag.isEmpty ? nil : etag)
            let got = try await place.store.getObject(request, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length])).bytesWritten
            guard got == length else { throw FilesystemError(EIO, "short read of \(place.key) while staging it for writing") }
            if case .failure(let e) = writeBack!.write(f, offset: offset, UnsafeRawBufferPointer(rebasing: buffer[0..<length]), mtime: Self.now()) {
                throw FilesystemError(e.rawValue, "cannot stage \(place.key): \(e)")
            }
            offset += Int64(length)
        }
    }

    /// Creates and opens a new empty file owned by the caller.
    package func create(
        parent: UInt64, name: String, mode: UInt32, flags: Int32, caller: Caller,
        reply: @escaping @Sendable (Result<(EntryReply, OpenReply), FilesystemError>) -> Void
    ) {
        let path: String
        let place: Place
        do { (path, place) = try childPath(parent, name, "create") } catch { return reply(.failure(error)) }
        let writeBack = writeBack!
        let metadata = Self.posixMetadata(mode: UInt32(S_IFREG) | (mode & 0o7777), uid: caller.uid, gid: caller.gid, mtime: nil)
        let f: StagedFile
        do {
            f = try writeBack.create(store: place.link.store, bucket: place.bucket, key: place.key, metadata: metadata, mtime: Self.now())
        } catch {
            return reply(.failure(failed("create", path, FilesystemError(error.errno, error.message))))
        }
        // A new file is a change even if nothing is ever written: close makes an empty object.
        _ = writeBack.truncate(f, to: 0, mtime: Self.now())
        let old = overlay.withLock { s -> StagedFile? in
            s.put(path, f)
        }
        if let old { writeBack.cancel(old) }
        let attrs = rememberLocal(parent: parent, name: name, file: f, policy: place.policy)
        overlay.withLock { _ = $0.deferredDeletes.removeValue(forKey: attrs.ino) }
        listingInsert(path: path, kind: .file, size: 0, mtime: attrs.mtime, etag: "", posix: PosixMetadata(metadata))
        touchDirectory(of: path)
        let handle = addStagedHandle(ino: attrs.ino, place: place, file: f, writable: true, flags: flags)
        reply(.success((EntryReply(attributes: attrs, ttl: place.policy.kernelTTL), OpenReply(handle: handle, keepCache: false, flags: flags, writable: true))))
    }

    /// Writes into the staged image; the kernel's O_APPEND offset is replaced by the staged size.
    ///
    /// A write by an unprivileged process (`uid` not 0) clears the set-user-ID and set-group-ID bits, as a
    /// local filesystem does (the kernel does it for buffered writes, not for the direct-I/O handles
    /// write-only opens get).
    package func write(_ handle: UInt64, offset: Int64, data: UnsafeRawBufferPointer, pid: Int32 = 0, uid: UInt32 = 0) -> Result<Int, FilesystemError> {
        var handleState = handles[file: handle]
        if uid != 0, let h = handleState, !h.privilegesChecked, let f = h.staged, h.writable {
            handles.withLock { $0.files[handle]?.privilegesChecked = true }
            let metadata = writeBack!.attributes(f).metadata
            if let mode = metadata["mode"].flatMap({ UInt32($0) }), mode & UInt32(S_ISUID | S_ISGID) != 0 {
                var cleared = metadata
                cleared["mode"] = String(mode & ~UInt32(S_ISUID | S_ISGID))
                writeBack!.setMetadata(f, cleared)
                touchInode(h.ino)
            }
        }
        if let h = handleState, h.writerPid != pid {
            // A new writing thread: one read of /proc, not one per write.
            let process = Self.processID(ofThread: pid)
            handleState = handles.withLock { s in
                s.files[handle]?.writerPid = pid
                s.files[handle]?.writerProcess = process
                return s.files[handle]
            }
        }
        guard let h = handleState, let f = h.staged, h.writable else {
            return .failure(FilesystemError(EBADF, "handle is not open for writing"))
        }
        let at = h.append ? writeBack!.size(f) : offset
        return writeBack!.write(f, offset: at, data, mtime: Self.now()).mapError { e in
            failed("write", nodes[h.ino]?.path ?? writeBack!.attributes(f).key,
                FilesystemError(e.rawValue, e.rawValue == ENOSPC ? "the cache disk is full; free space in the cache directory" : "cannot write the staging file: \(e)"))
        }
    }

    /// close(): commits what this handle wrote, sync or async per the write mode of the link it was opened on.
    ///
    /// The kernel flushes at every close of a descriptor of the file, including the copies a fork hands to
    /// a child (a data-loader worker, a subprocess) that close at exec or exit. Such a flush is not the
    /// writer's close: committing there would upload a half-written file (in sync mode, once per fork).
    /// It commits when the flusher is the process that wrote last.
    package func flush(_ handle: UInt64, pid: Int32 = 0, reply: @escaping @Sendable (FilesystemError?) -> Void) {
        guard let h = handles[file: handle], let f = h.staged, h.writable else { return reply(nil) }
        if let writer = h.writerPid, writer != pid, let process = h.writerProcess,
            let flusher = Self.processID(ofThread: pid), flusher != process
        {
            return reply(nil)
        }
        let path = nodes[h.ino]?.path ?? ""
        Task { reply(await commitResult(f, sync: h.link.policy.syncClose, path: path)) }
    }

    /// The process (Tgid) a thread id belongs to; nil when it cannot be read, and a flush then commits: a
    /// doubt commits rather than skips. (A flushing thread is alive: it waits for the reply.)
    static func processID(ofThread tid: Int32) -> Int32? {
        guard tid > 0, let line = readTextFile("/proc/\(tid)/status")?.split(separator: "\n").first(where: { $0.hasPrefix("Tgid:") }) else {
            return nil
        }
        return Int32(line.dropFirst("Tgid:".count).drop { $0 == " " || $0 == "\t" })
    }

    /// fsync(): waits until the bucket holds the file, in either write mode.
    package func fsync(_ handle: UInt64, reply: @escaping @Sendable (FilesystemError?) -> Void) {
        guard let h = handles[file: handle], let f = h.staged else { return reply(nil) }
        let path = nodes[h.ino]?.path ?? ""
        Task { reply(await commitResult(f, sync: true, path: path)) }
    }

    /// Commits a staged file; nil when secured, else the error for the application (EIO for upload failures).
    func commitResult(_ f: StagedFile, sync: Bool, path: String) async -> FilesystemError? {
        do {
            try await writeBack!.commit(f, sync: sync)
            return nil
        } catch let e as WriteBackError {
            return failed("close", path, FilesystemError(EIO, e.message))
        } catch {
            return failed("close", path, error)
        }
    }
}
