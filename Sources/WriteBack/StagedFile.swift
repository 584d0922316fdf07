import Platform
import ObjectStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A file being written, or written recently: a full local image on the NVMe tier, and its upload state.
///
/// Its descriptors are opened on demand and closed when the write path's `DescriptorCache` needs room, so
/// that a backlog of hundreds of pending uploads does not hold hundreds of descriptors. Before its staging
/// file is unlinked the file pins a descriptor, so whoever still holds the object (an upload, a reader) never
/// has the bytes pulled from under it. All mutable upload state is guarded by `WriteBack`'s lock.
package final class StagedFile: @unchecked Sendable {
    package let id: String
    /// Where it uploads to: a file never moves between stores (a rename across links is EXDEV).
    package let store: Store
    let path: String
    var s: FileState
    /// Queued writes; guarded by `StagingWriter`'s lock.
    var q = StagingQueue()
    /// Copies of whole parts just written in order, for their upload.
    let capture: PartCapture
    /// Whether the staging filesystem takes `O_DIRECT` (probed when the file was made): page-aligned writes
    /// then reach the device without filling the page cache, so the fdatasync at close has almost nothing
    /// left to write and the writer is never throttled behind dirty-page writeback.
    let supportsDirect: Bool
    /// Whether `write` queues whole pages for the staging threads (`StagingWriter`): with `O_DIRECT`, or at
    /// `kernel` durability, where the threads write them into the page cache. Either way `write(2)` returns
    /// after one copy into a pooled chunk, and the FUSE thread goes back for the next request.
    let queuesWrites: Bool
    private let descriptors: DescriptorCache

    private struct Open {
        var plain: Int32 = -1
        var direct: Int32 = -1
        var users = 0
        /// The staging file is unlinked: the descriptor is all there is, it stays until the object goes.
        var pinned = false
    }

    private let open: Locked<Open>

    /// `direct`: stage page-aligned writes with `O_DIRECT` when the filesystem takes it (at `device`
    /// durability); otherwise every write goes through the page cache.
    init(id: String, store: Store, descriptor: Int32, path: String, state: FileState, capture: PartCapture, descriptors: DescriptorCache, direct useDirect: Bool) {
        self.id = id
        self.store = store
        self.path = path
        self.s = state
        self.capture = capture
        self.descriptors = descriptors
        let direct = useDirect ? ((try? Syscall.open(path, O_RDWR | Syscall.directIOFlag).get()) ?? -1) : -1
        supportsDirect = direct >= 0
        queuesWrites = supportsDirect || !useDirect
        open = Locked(Open(plain: descriptor, direct: direct))
        descriptors.opened(self)
    }

    deinit {
        let o = open.withLock { $0 }
        if o.plain >= 0 { Syscall.close(o.plain) }
        if o.direct >= 0 { Syscall.close(o.direct) }
        descriptors.closed(self)
    }

    /// Runs `body` with an open descriptor of the staging file (`O_DIRECT` when `direct`), opening it if the
    /// cache closed it; -1 when it cannot be opened (the body's syscall then fails with EBADF).
    func withDescriptor<T>(direct: Bool = false, _ body: (Int32) -> T) -> T {
        var reopened = false
        let fd = open.withLock { o -> Int32 in
            o.users += 1
            if direct {
                guard supportsDirect else { return -1 }
                if o.direct < 0 {
                    o.direct = (try? Syscall.open(path, O_RDWR | Syscall.directIOFlag).get()) ?? -1
                    reopened = o.direct >= 0
                }
                return o.direct
            }
            if o.plain < 0 {
                o.plain = (try? Syscall.open(path, O_RDWR).get()) ?? -1
                reopened = o.plain >= 0
            }
            return o.plain
        }
        if reopened { descriptors.opened(self) } else { descriptors.used(self) }
        defer { open.withLock { $0.users -= 1 } }
        return body(fd)
    }

    /// Keeps a descriptor open until the object goes: call before unlinking the staging file.
    func pin() {
        withDescriptor { _ in }
        open.withLock { $0.pinned = true }
    }

    /// Closes the descriptors if nothing uses them now; false if something does (or they are pinned).
    func closeIfIdle() -> Bool {
        let closing = open.withLock { o -> (Int32, Int32)? in
            guard o.users == 0, !o.pinned, o.plain >= 0 || o.direct >= 0 else { return nil }
            defer {
                o.plain = -1
                o.direct = -1
            }
            return (o.plain, o.direct)
        }
        guard let (a, b) = closing else { return false }
        if a >= 0 { Syscall.close(a) }
        if b >= 0 { Syscall.close(b) }
        return true
    }

    /// Descriptors this file holds open now (for tests and status).
    var openDescriptors: Int { open.withLock { ($0.plain >= 0 ? 1 : 0) + ($0.direct >= 0 ? 1 : 0) } }
}

/// The staged files with open descriptors, least recently used first; beyond `limit` files the least
/// recently used idle ones are closed (they reopen on their next use).
final class DescriptorCache: @unchecked Sendable {
    let limit: Int
    private struct State {
        var clock: UInt64 = 0
        var files: [ObjectIdentifier: (file: Weak, lastUse: UInt64)] = [:]
    }

    /// A reference that does not keep a file alive (a file leaves the cache in its deinit; until then a weak
    /// reference to one being deinitialized is nil, never a dangling pointer).
    struct Weak: @unchecked Sendable { weak var file: StagedFile? }

    private let state = Locked(State())

    init(limit: Int) { self.limit = max(1, limit) }

    /// Staged files with open descriptors.
    var count: Int { state.withLock { $0.files.count } }

    func opened(_ f: StagedFile) {
        let victims = state.withLock { s -> [StagedFile] in
            s.clock += 1
            s.files[ObjectIdentifier(f)] = (Weak(file: f), s.clock)
            guard s.files.count > limit else { return [] }
            // Oldest first; more than one in case the oldest are busy.
            return s.files.filter { $0.key != ObjectIdentifier(f) }.sorted { $0.value.lastUse < $1.value.lastUse }
                .prefix(s.files.count - limit + 4).compactMap(\.value.file.file)
        }
        var over = victims.count
        for v in victims where over > 0 {
            // Not under the cache's lock: a file's own lock is never taken inside it.
            if v.closeIfIdle() {
                closed(v)
                over -= 1
            }
        }
    }

    func used(_ f: StagedFile) {
        state.withLock { s in
            s.clock += 1
            if s.files[ObjectIdentifier(f)] != nil { s.files[ObjectIdentifier(f)]!.lastUse = s.clock }
        }
    }

    func closed(_ f: StagedFile) { state.withLock { _ = $0.files.removeValue(forKey: ObjectIdentifier(f)) } }
}

/// An uploaded part: which generation of the file it holds, and its length then.
struct UploadedPart {
    var generation: UInt64
    var etag: String
    var length: Int64
}

/// Why the last upload attempt failed, for `status` and for waiters.
package struct UploadFailure: Sendable, Equatable {
    package var message: String
    /// AccessDenied, NoSuchBucket and the like: retried slowly, until someone fixes the cause.
    package var permanent: Bool
    package var errno: Int32
}

struct FileState {
    var bucket: String
    var key: String
    var size: Int64
    var mtime: Timestamp
    var metadata: [String: String]

    /// Bumped by every change of bytes or metadata; the upload machinery compares against it.
    var generation: UInt64 = 1
    /// The generation of the last change to the bytes (a metadata-only change does not move it).
    var dataGeneration: UInt64 = 1
    /// The generation that last wrote into each part.
    var partGeneration: [Int: UInt64] = [:]
    var uploaded: [Int: UploadedPart] = [:]
    var inFlight: Set<Int> = []
    var uploadID: String?
    /// The metadata CreateMultipartUpload fixed (without `mtime`).
    var uploadMetadata: [String: String] = [:]
    /// utimens set the time: it must reach the object even if the bytes went up earlier.
    var mtimeExplicit = false
    var creatingUpload = false
    /// The end of the furthest write since the file was staged: parts wholly below it stream early.
    var highWater: Int64 = 0

    var writers = 0
    /// The newest generation `close()`/`flush()` acknowledged; it must reach the bucket.
    var committed: UInt64 = 0
    /// The newest generation known to be in the bucket, with its ETag and data generation.
    var durable: UInt64 = 0
    var durableData: UInt64 = 0
    var etag: String?
    /// A request that makes the object (PutObject, CompleteMultipartUpload, a copy onto itself) is in flight.
    var finishing = false
    /// The key that request claimed (`WriteBack.claimKey`).
    var making: UploadTarget?
    var journaled = false
    /// The newest generation whose staged bytes were fdatasynced; a record of a newer committed one says
    /// its bytes may be only in the page cache (`kernel` durability).
    var syncedGeneration: UInt64 = 0
    /// Syncs (`markSynced`) between their fdatasync and their journal write: `syncedGeneration` may say
    /// synced while the record does not yet.
    var syncsInFlight = 0
    var cancelled = false
    var failure: UploadFailure?
    var attempts = 0
    var retryAt: Double = 0
    var committedAt: Double = 0
    var lastUse: Double = 0
    var created: Int64 = 0
    var waiters: [(generation: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []

    /// Whether the newest acknowledged state still has to reach the bucket.
    var pending: Bool { committed > durable }
    /// Pending, and the acknowledged bytes may be only in the page cache (`kernel` durability).
    var unsynced: Bool { pending && syncedGeneration < committed }
    /// Nothing left to do: the file can be kept for reads or dropped.
    var clean: Bool { writers == 0 && !pending && generation == durable }
    /// The bucket holds the file's newest state, though a writer may still have it open (after an fsync).
    var inBucket: Bool { !pending && generation == durable }

    /// The metadata sent with an upload: the file's, plus its modification time as other S3 filesystems store it.
    var uploadHeaders: [String: String] {
        var m = metadata
        m["mtime"] = MetadataTime.format(mtime)
        return m
    }

    /// The multipart upload is over (completed, aborted, or gone): the next parts start a new one.
    mutating func forgetUpload() {
        uploadID = nil
        uploaded = [:]
    }

    /// Bytes of the file already in the bucket as uploaded parts of the current upload (for progress).
    var uploadedBytes: Int64 { uploaded.values.reduce(0) { $0 + $1.length } }
}
