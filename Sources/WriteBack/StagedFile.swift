import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

/// A file being written, or written recently: a full local image on the NVMe tier, and its upload state.
///
/// The descriptor stays open as long as anything (an upload, a reader) holds the object, so unlinking the
/// staging file never pulls bytes from under a request. All mutable state is guarded by `WriteBack`'s lock.
package final class StagedFile: @unchecked Sendable {
    package let id: String
    /// Where it uploads to: a file never moves between stores (a rename across links is EXDEV).
    package let store: Store
    /// Read it with `pread`; writes go through `WriteBack.write` so uploads see them.
    package let descriptor: Int32
    /// The same file opened with `O_DIRECT` (-1 where the filesystem has no direct I/O), for page-aligned
    /// writes: they reach the device without filling the page cache, so the fdatasync at close has almost
    /// nothing left to write and the writer is never throttled behind dirty-page writeback.
    let directDescriptor: Int32
    let path: String
    var s: FileState
    /// Queued writes; guarded by `StagingWriter`'s lock.
    var q = StagingQueue()
    /// Copies of whole parts just written in order, for their upload.
    let capture: PartCapture

    init(id: String, store: Store, descriptor: Int32, path: String, state: FileState, capture: PartCapture) {
        self.id = id
        self.store = store
        self.descriptor = descriptor
        self.path = path
        self.s = state
        self.capture = capture
        directDescriptor = (try? Syscall.open(path, O_RDWR | Syscall.directIOFlag).get()) ?? -1
    }

    deinit {
        Syscall.close(descriptor)
        if directDescriptor >= 0 { Syscall.close(directDescriptor) }
    }
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
    var finishing = false
    var journaled = false
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
    /// Nothing left to do: the file can be kept for reads or dropped.
    var clean: Bool { writers == 0 && !pending && generation == durable }

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
