import Logging
import Platform
import ObjectStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Settings of the write path.
package struct WriteBackOptions: Sendable {
    /// The cache directory; staging files go to `staging/`, journal records to `journal/`.
    package var directory: String
    package var partSize: Int64 = 16 << 20
    /// Parts in flight across all files.
    package var concurrency = 8
    /// Bytes of part copies (see `PartCapture`) all files may hold together, however many are pending.
    package var partCopyBytes: Int64 = 64 << 20
    /// Bytes of part bodies read back from staging files that uploads in flight may hold together.
    ///
    /// With the copies and the staging queue's 32 MiB this bounds the write path's memory at 160 MiB by
    /// default, beside the memory tier (`concurrency` parts of 16 MiB would be 128 MiB of bodies alone).
    package var partReadBytes: Int64 = 64 << 20
    /// Staged files that may have descriptors open at once (two each at most); others reopen on use.
    package var openStagingFiles = 32
    /// Parts in flight while an application is writing (nil: half the cores, at least 2, at most
    /// `concurrency`).
    ///
    /// Uploading costs CPU (MD5, copies, the HTTP stack). On a small machine a full set of parts in flight
    /// slows the writer down more than it speeds the upload up; after close the full bound applies.
    package var concurrencyWhileWriting: Int? = nil

    /// The in-flight bound in force: lower while some file is being written.
    func concurrency(whileWriting: Bool) -> Int {
        guard whileWriting else { return concurrency }
        return min(concurrency, concurrencyWhileWriting ?? max(2, Self.cores / 2))
    }

    /// Online CPUs, read once: glibc answers sysconf for this by reading a file in /sys.
    static let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    /// Uploaded files kept on disk for reads, in bytes (least recently used go first).
    package var residentBytes: Int64 = 8 << 30
    /// What an async commit secures before it returns (see `CloseDurability`).
    package var closeDurability = CloseDurability.device
    /// This boot's id, written into records whose bytes are not yet synced (see `BootID`).
    package var bootID = BootID.current() ?? ""
    /// The resident bound now, when it moves (the mount's pin budget less what `pin` holds); overrides
    /// `residentBytes`.
    package var residentBudget: (@Sendable () -> Int64)?

    package init(directory: String) {
        self.directory = directory
    }
}

/// What the write path is doing, for `status` and `flush`.
package struct UploadStats: Sendable {
    package var pendingFiles = 0
    package var pendingBytes: Int64 = 0
    /// Bytes of pending files already in the bucket as parts.
    package var uploadedBytes: Int64 = 0
    package var openForWriting = 0
    package var oldestPendingSeconds: Double?
    package var failures: [(key: String, failure: UploadFailure)] = []
    package var completedUploads = 0
    /// Acknowledged objects lost in a power cut before their bytes were synced (`kernel` durability).
    package var lostInPowerCut: [UploadTarget] = []
    package var residentFiles = 0
    package var residentBytes: Int64 = 0
    package init() {}
}

/// Staged writes and their uploads: streaming multipart, commits, the journal, residency.
///
/// Files are staged whole on the NVMe tier. Parts wholly written stream to the bucket while the application
/// writes; a commit (close, flush, fsync) uploads the rest and completes the object, either before returning
/// (sync) or in the background after fdatasync and a journal record (async). Nothing here blocks a caller on
/// the network except `waitDurable`.
package final class WriteBack: @unchecked Sendable {
    package let options: WriteBackOptions
    package let geometry: PartGeometry
    /// The store a journal record names, for replay; nil when no link of this mount uses it.
    let stores: @Sendable (String) -> Store?
    let journal: Journal
    let stagingDirectory: String
    let logger: Logger
    let lock = Locked(Registry())
    private let hooks = Locked(Hooks())
    /// Bounce buffers for direct writes and part buffers for uploads.
    let buffers: AlignedBuffers
    /// The part copies all files share.
    let captureBudget: PartCapture.Budget
    /// The staged files with open descriptors, bounded: a backlog of pending uploads holds no descriptor each.
    let descriptors: DescriptorCache
    /// Read upload parts at a low CPU priority (see `withStagedBytes`).
    let partReads: IOThreadPool
    /// Hashes upload parts side by side, at a low CPU priority.
    let partHasher: LaneHasher
    /// Applies page-aligned writes behind `write` (see `StagingWriter`).
    let staging: StagingWriter
    /// Serves reads of staged and resident files (see `read(_:offset:size:reply:)`).
    let stagedReads: IOThreadPool
    /// fdatasyncs files committed at `kernel` durability, in commit order, and marks their records synced.
    let stagingSyncs: IOThreadPool
    /// Bounds the part bodies in memory that are read back from staging files (`withStagedBytes`).
    let partReadBudget: ByteBudget

    struct Registry {
        var files: [String: StagedFile] = [:]
        /// Files that may have upload work; `pump` looks only at these.
        var active: [String: StagedFile] = [:]
        var inFlight = 0
        /// The file whose object-making request for a key is in flight, by key.
        var making: [UploadTarget: StagedFile] = [:]
        var completedUploads = 0
        var stopped = false
        /// Acknowledged objects replay found lost in a power cut (`kernel` durability), for `status`.
        var lostInPowerCut: [UploadTarget] = []
    }

    struct Hooks {
        var durable: (@Sendable (StagedFile, _ key: String, _ etag: String, _ size: Int64) -> Void)?
        var evicted: (@Sendable (StagedFile, _ key: String) -> Void)?
    }

    /// A write path over one unnamed store (a one-URL mount, tests).
    package convenience init(store: any ObjectStore, options: WriteBackOptions, logger: Logger = Logger(label: "lakecache.writeback")) throws(WriteBackError) {
        let only = Store(name: "", client: store)
        try self.init(stores: { $0.isEmpty ? only : nil }, options: options, logger: logger)
    }

    /// A write path whose files each name their store; `stores` resolves the names journal records carry.
    package init(stores: @escaping @Sendable (String) -> Store?, options: WriteBackOptions, logger: Logger = Logger(label: "lakecache.writeback")) throws(WriteBackError) {
        self.stores = stores
        self.options = options
        self.logger = logger
        guard options.partSize >= PartGeometry.minimumPartSize, options.partSize <= PartGeometry.maximumPartSize else {
            throw WriteBackError("part size \(options.partSize) is outside S3's 5 MiB…5 GiB; choose --part-size within it")
        }
        geometry = PartGeometry(base: options.partSize)
        // Per size: a part buffer for every part in flight, a bounce buffer for every concurrent writer.
        buffers = AlignedBuffers(keepPerSize: max(options.concurrency, 32) + 2)
        captureBudget = PartCapture.Budget(limit: Int(options.partCopyBytes / max(1, options.partSize)))
        // At least two parts, so that large parts (`--part-size` 64 MiB and up) still go two at a time.
        partReadBudget = ByteBudget(limit: Int(max(options.partReadBytes, 2 * options.partSize)))
        descriptors = DescriptorCache(limit: options.openStagingFiles)
        partReads = IOThreadPool(threads: WriteBackOptions.cores, name: "upload-read", niceness: 10)
        partHasher = LaneHasher(name: "upload-md5", niceness: 10)
        staging = StagingWriter(limit: 32 << 20, threads: 2, buffers: buffers)
        // Several, so the kernel's concurrent readahead requests reach the device together.
        stagedReads = IOThreadPool(threads: 4, name: "staged-read")
        stagingSyncs = IOThreadPool(threads: 1, name: "staging-sync")
        stagingDirectory = options.directory + "/staging"
        journal = Journal(directory: options.directory + "/journal")
        for dir in [stagingDirectory, journal.directory] where mkdir(dir, 0o700) != 0 && errno != EEXIST {
            throw WriteBackError("cannot create \(dir): \(Errno(errno)); check that the cache directory is writable")
        }
        startTicker()
    }

    /// Called after an object became durable (with its new ETag) and after a resident file was dropped.
    package func setHooks(
        durable: @escaping @Sendable (StagedFile, String, String, Int64) -> Void,
        evicted: @escaping @Sendable (StagedFile, String) -> Void
    ) {
        hooks.withLock { $0 = Hooks(durable: durable, evicted: evicted) }
    }

    func notifyDurable(_ f: StagedFile, key: String, etag: String, size: Int64) { hooks.withLock { $0.durable }?(f, key, etag, size) }
    func notifyEvicted(_ f: StagedFile, key: String) { hooks.withLock { $0.evicted }?(f, key) }

    /// Stops background work; pending uploads stay journaled, their staged bytes synced.
    package func shutdown() {
        lock.withLock { $0.stopped = true }
        syncAll()
    }

    // MARK: - Files

    static func newID() -> String {
        var g = SystemRandomNumberGenerator()
        let a = g.next() as UInt64
        let b = g.next() as UInt64
        return String(a, radix: 16) + String(b, radix: 16)
    }

    /// Creates an empty staged file for `key`; handles count themselves with `openWriter`.
    /// Stages a new empty file that will upload to `bucket`/`key` on `store` (the unnamed store when nil).
    package func create(store: Store? = nil, bucket: String, key: String, metadata: [String: String], mtime: Timestamp) throws(WriteBackError) -> StagedFile {
        guard let store = store ?? stores("") else {
            throw WriteBackError("no store to upload \(key) to; the mount has no unnamed store", errno: EIO)
        }
        let id = Self.newID()
        let path = stagingDirectory + "/" + id + ".data"
        let fd: Int32
        switch Syscall.open(path, O_RDWR | O_CREAT | O_EXCL, mode: 0o600) {
        case .success(let d): fd = d
        case .failure(let e): throw WriteBackError("cannot create staging file \(path): \(e)", errno: e.rawValue)
        }
        var clean = metadata
        clean.removeValue(forKey: "mtime")
        var state = FileState(bucket: bucket, key: key, size: 0, mtime: mtime, metadata: clean)
        state.lastUse = monotonicSeconds()
        state.created = wallClock().seconds
        let file = stagedFile(id: id, store: store, descriptor: fd, path: path, state: state)
        lock.withLock { $0.files[id] = file }
        return file
    }

    /// A staged file of this write path: its part copies share the budget, its descriptors the cache, and
    /// it stages with `O_DIRECT` only at `device` durability.
    func stagedFile(id: String, store: Store, descriptor: Int32, path: String, state: FileState) -> StagedFile {
        StagedFile(
            id: id, store: store, descriptor: descriptor, path: path, state: state,
            capture: PartCapture(geometry: geometry, buffers: buffers, budget: captureBudget), descriptors: descriptors,
            direct: options.closeDurability == .device)
    }

    /// Another writable handle on a staged file.
    package func openWriter(_ f: StagedFile) {
        lock.withLock { _ in
            f.s.writers += 1
            f.s.lastUse = monotonicSeconds()
        }
    }

    /// A writable handle went away (after its flush committed what it wrote).
    package func closeWriter(_ f: StagedFile) {
        lock.withLock { _ in f.s.writers = max(0, f.s.writers - 1) }
        enforceResidency()
    }

    /// The staged size (O_APPEND writes go there).
    package func size(_ f: StagedFile) -> Int64 {
        lock.withLock { _ in f.s.size }
    }

    /// Open writable handles on the file.
    /// Where the file uploads to now (a rename retargets it).
    package func target(_ f: StagedFile) -> UploadTarget {
        lock.withLock { _ in UploadTarget(store: f.store.name, bucket: f.s.bucket, key: f.s.key) }
    }

    package func writers(_ f: StagedFile) -> Int {
        lock.withLock { _ in f.s.writers }
    }

    /// The ETag of the object when the bucket holds the file exactly as staged, open writers or not (a file
    /// fsynced and then renamed before its close is copied, not uploaded again).
    package func uploadedETag(_ f: StagedFile) -> String? {
        lock.withLock { _ in f.s.inBucket ? f.s.etag : nil }
    }

    /// A read of a resident or staged file: keeps it from eviction a little longer.
    package func touch(_ f: StagedFile) {
        lock.withLock { _ in f.s.lastUse = monotonicSeconds() }
    }

    /// Size, modification time and metadata as the application last left them.
    package func attributes(_ f: StagedFile) -> (size: Int64, mtime: Timestamp, metadata: [String: String], key: String) {
        lock.withLock { _ in (f.s.size, f.s.mtime, f.s.metadata, f.s.key) }
    }

    /// The user metadata an upload of `f` sends: its metadata with its modification time.
    package func uploadMetadata(_ f: StagedFile) -> [String: String] {
        lock.withLock { _ in f.s.uploadHeaders }
    }

    /// Writes bytes into the staging file and lets full parts stream out. A full disk is ENOSPC, never a loss.
    package func write(_ f: StagedFile, offset: Int64, _ data: UnsafeRawBufferPointer, mtime: Timestamp) -> Result<Int, Errno> {
        let failure = f.capture.write(offset: offset, data) { copies -> Errno? in
            let failure = stage(f, offset: offset, data, copies: copies)
            guard failure?.rawValue == ENOSPC, evictResident(atLeast: max(Int64(data.count), StagingWriter.reserveStep)) > 0 else { return failure }
            return stage(f, offset: offset, data, copies: copies)
        }
        if let failure { return .failure(failure) }
        let end = offset + Int64(data.count)
        let completedPart = lock.withLock { r -> Range<Int64>? in
            r.active[f.id] = f
            f.s.generation += 1
            f.s.dataGeneration = f.s.generation
            if data.count > 0 {
                for p in geometry.part(containing: offset)...geometry.part(containing: end - 1) { f.s.partGeneration[p] = f.s.generation }
            }
            f.s.size = max(f.s.size, end)
            let before = f.s.highWater
            f.s.highWater = max(f.s.highWater, end)
            f.s.mtime = mtime
            f.s.lastUse = monotonicSeconds()
            // A part the writer moved past: stream it, and start its writeback so that the fdatasync at close
            // has little left to do. Other writes start nothing.
            let p = geometry.part(containing: before)
            let r = geometry.range(ofPart: p, fileSize: f.s.size)
            return f.s.highWater >= r.upperBound && before < r.upperBound && r.count == geometry.size(ofPart: p) ? r : nil
        }
        if let completedPart {
            // Direct writes are on the device already; page-cache ones start their writeback.
            if !f.supportsDirect { f.withDescriptor { Syscall.startWriteback($0, offset: completedPart.lowerBound, length: Int64(completedPart.count)) } }
            pump()
        }
        return .success(data.count)
    }

    /// Truncates or extends the staged image.
    package func truncate(_ f: StagedFile, to size: Int64, mtime: Timestamp) -> Result<Void, Errno> {
        let truncated = f.capture.reset { () -> Errno? in
            // Queued writes land first, or one could write past the new end after it.
            if let e = staging.settle(f), size > 0 { return e }
            if case .failure(let e) = f.withDescriptor({ Syscall.ftruncate($0, size) }) { return e }
            staging.truncated(f, to: size)
            return nil
        }
        if let truncated { return .failure(truncated) }
        lock.withLock { r in
            r.active[f.id] = f
            f.s.generation += 1
            f.s.dataGeneration = f.s.generation
            let old = f.s.size
            let low = min(old, size)
            let high = max(old, size)
            if high > low {
                for p in geometry.part(containing: low)...geometry.part(containing: high - 1) { f.s.partGeneration[p] = f.s.generation }
            }
            f.s.size = size
            f.s.highWater = min(f.s.highWater, size)
            f.s.mtime = mtime
        }
        return .success(())
    }

    /// Replaces the object metadata (modes, owner, times, user attributes) sent with the upload.
    package func setMetadata(_ f: StagedFile, _ metadata: [String: String]) {
        var metadata = metadata
        metadata.removeValue(forKey: "mtime")
        lock.withLock { r in
            guard f.s.metadata != metadata else { return }
            f.s.metadata = metadata
            f.s.generation += 1
            r.active[f.id] = f
        }
    }

    /// Sets the modification time (utimens); it is stored with the object at the next commit.
    package func setModificationTime(_ f: StagedFile, _ mtime: Timestamp) {
        lock.withLock { r in
            f.s.mtime = mtime
            f.s.mtimeExplicit = true
            f.s.generation += 1
            r.active[f.id] = f
        }
    }

    /// Nothing is pending and no upload request is in flight, not even a replaced file's: what the bucket
    /// holds now is final until the next write.
    package var isIdle: Bool {
        lock.withLock { r in
            // Every file with upload work is in `active`; a cancelled one's requests are in the two counts.
            r.inFlight == 0 && r.making.isEmpty && !r.active.values.contains { $0.s.pending || $0.s.creatingUpload || $0.s.finishing }
        }
    }

    /// Upload state of the files whose key passes `matching` (all by default).
    package func stats(matching: (UploadTarget) -> Bool = { _ in true }) -> UploadStats {
        let now = monotonicSeconds()
        return lock.withLock { r in
            var st = UploadStats()
            st.completedUploads = r.completedUploads
            st.lostInPowerCut = r.lostInPowerCut.filter(matching)
            for f in r.files.values where !f.s.cancelled && matching(UploadTarget(store: f.store.name, bucket: f.s.bucket, key: f.s.key)) {
                if f.s.writers > 0 { st.openForWriting += 1 }
                if f.s.pending {
                    st.pendingFiles += 1
                    st.pendingBytes += f.s.size
                    st.uploadedBytes += min(f.s.uploadedBytes, f.s.size)
                    let age = now - f.s.committedAt
                    st.oldestPendingSeconds = max(st.oldestPendingSeconds ?? 0, age)
                    if let failure = f.s.failure { st.failures.append((f.s.key, failure)) }
                } else if f.s.clean {
                    st.residentFiles += 1
                    st.residentBytes += f.s.size
                }
            }
            return st
        }
    }

    /// Someone started waiting (flush, unmount): retry failed uploads of matching files now, not after backoff.
    ///
    /// The failure is cleared until that attempt reports, so the waiter sees the outcome of the new attempt
    /// (a grant that fixed AccessDenied, say) rather than the old error.
    package func retryNow(matching: (UploadTarget) -> Bool) {
        lock.withLock { r in
            for f in r.active.values where f.s.failure != nil && matching(UploadTarget(store: f.store.name, bucket: f.s.bucket, key: f.s.key)) {
                f.s.retryAt = 0
                f.s.failure = nil
            }
        }
        pump()
    }
}

/// Where a staged file uploads to: the store's name, the bucket and the key.
package struct UploadTarget: Sendable, Hashable {
    package var store: String
    package var bucket: String
    package var key: String
}

/// A write-path failure with the thing that failed and what to do about it.
package struct WriteBackError: Error, Sendable, CustomStringConvertible {
    package var message: String
    package var errno: Int32
    package init(_ message: String, errno: Int32 = EIO) {
        self.message = message
        self.errno = errno
    }
    package var description: String { message }
}
