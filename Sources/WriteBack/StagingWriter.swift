import DequeModule
import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

/// Queued writes of one staging file; guarded by `StagingWriter`'s lock.
struct StagingQueue {
    struct Job {
        var offset: Int64
        var buffer: UnsafeMutableRawPointer
        var count: Int
        /// The part copy `buffer` points into, held until the write is applied; nil for a pooled chunk,
        /// which goes back to the pool then.
        var copy: PartBuffer?
    }

    var jobs = Deque<Job>()
    /// A staging thread is applying this file's jobs.
    var running = false
    /// Tickets: jobs queued and applied so far.
    var enqueued: UInt64 = 0
    var applied: UInt64 = 0
    /// A queued write that could not be applied: the staging file lacks acknowledged bytes, so every later
    /// write, commit and upload of it fails with this until the file is truncated to nothing.
    var error: Errno?
    /// Disk blocks reserved (fallocate) from offset 0 up to here, so a queued write cannot meet ENOSPC.
    var reservedEnd: Int64 = 0
    /// Cleared when the filesystem cannot reserve blocks: writes then go straight to the file.
    var canQueue = true
    var waiters: [(ticket: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
}

/// Applies page-aligned writes to staging files on background threads, so `write(2)` returns once the bytes
/// are copied into a queue (as on a local disk, where they land in the page cache) and the device writes
/// overlap the application's next write.
///
/// Writes of one file apply in order, one thread at a time; different files apply in parallel. Space is
/// reserved before a write is queued, so a full disk is still ENOSPC from `write(2)`. Anything that reads the
/// staging file (a read, an upload, a truncate, a commit) first waits for the writes queued before it
/// (`settle`). The queue is bounded; a writer that outruns the device waits.
final class StagingWriter: @unchecked Sendable {
    static let chunk = 1 << 20
    /// Reservations grow in steps of this much, so most writes reserve nothing.
    static let reserveStep: Int64 = 64 << 20

    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private var queuedBytes = 0
    private let limit: Int
    private let threads: IOThreadPool
    private let buffers: AlignedBuffers

    init(limit: Int, threads: Int, buffers: AlignedBuffers) {
        self.limit = max(limit, Self.chunk)
        self.buffers = buffers
        self.threads = IOThreadPool(threads: threads, name: "staging-writer")
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
    }

    deinit {
        threads.shutdown()
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }

    /// The error of a queued write that failed, if any (sticky until the file is truncated to nothing).
    func error(_ f: StagedFile) -> Errno? { locked { f.q.error } }

    /// The file was truncated: to nothing, the missing bytes no longer matter; the reservation past the new
    /// end is gone.
    func truncated(_ f: StagedFile, to size: Int64) {
        let page = Int64(Syscall.directIOAlignment)
        locked {
            if size == 0 { f.q.error = nil }
            f.q.reservedEnd = min(f.q.reservedEnd, size / page * page)
        }
    }

    /// Gets the page-aligned `[offset, end)` ready to be queued: true once its disk blocks are reserved, false
    /// when `f` does not take queued writes (see `queuesWrites`, or a filesystem that cannot reserve blocks,
    /// which this call may find out). Fails with the file's sticky error, or ENOSPC.
    func admit(_ f: StagedFile, offset: Int64, end: Int64) -> Result<Bool, Errno> {
        guard f.queuesWrites else { return .success(false) }
        let (error, canQueue, reservedEnd) = locked { (f.q.error, f.q.canQueue, f.q.reservedEnd) }
        if let error { return .failure(error) }
        guard canQueue else { return .success(false) }
        guard end > reservedEnd else { return .success(true) }
        // Contiguous growth reserves a step ahead; a write far past the end reserves only itself.
        let from = offset <= reservedEnd + Self.reserveStep ? reservedEnd : offset
        let to = from == reservedEnd ? max(end, reservedEnd + Self.reserveStep) : end
        switch f.withDescriptor(direct: f.supportsDirect, { Syscall.reserve($0, offset: from, length: to - from) }) {
        case .success:
            if from == reservedEnd { locked { f.q.reservedEnd = max(f.q.reservedEnd, to) } }
            return .success(true)
        case .failure(let e) where e.rawValue == EOPNOTSUPP || e.rawValue == ENOSYS:
            locked { f.q.canQueue = false }
            return .success(false)
        case .failure(let e) where e.rawValue == ENOSPC && to > end:
            // Not room for the step ahead: reserve just this write.
            return f.withDescriptor(direct: f.supportsDirect) { Syscall.reserve($0, offset: offset, length: end - offset) }.map { true }
        case .failure(let e):
            return .failure(e)
        }
    }

    /// Queues page-aligned `data` for `offset`; returns once it is copied. Ranges the part copies in `copies`
    /// hold are written from there; the rest is copied into pooled chunks.
    func enqueue(_ f: StagedFile, offset: Int64, _ data: UnsafeRawBufferPointer, copies: [PartCapture.Copy] = []) {
        var done = 0
        while done < data.count {
            let at = offset + Int64(done)
            var n = min(Self.chunk, data.count - done)
            let job: StagingQueue.Job
            if let c = copies.first(where: { $0.range.contains(at) }) {
                n = min(n, Int(c.range.upperBound - at))
                job = StagingQueue.Job(offset: at, buffer: c.address(of: at), count: n, copy: c.buffer)
            } else {
                if let next = copies.lazy.map(\.range.lowerBound).filter({ $0 > at }).min() { n = min(n, Int(next - at)) }
                let buffer = buffers.take(Self.chunk)
                buffer.copyMemory(from: data.baseAddress! + done, byteCount: n)
                job = StagingQueue.Job(offset: at, buffer: buffer, count: n)
            }
            let start = locked { () -> Bool in
                while queuedBytes > 0 && queuedBytes + n > limit { pthread_cond_wait(&changed, &mutex) }
                queuedBytes += n
                f.q.jobs.append(job)
                f.q.enqueued += 1
                guard !f.q.running else { return false }
                f.q.running = true
                return true
            }
            if start { threads.submit { [self] in apply(f) } }
            done += n
        }
    }

    /// Applies `f`'s jobs in order until its queue is empty.
    private func apply(_ f: StagedFile) {
        while true {
            guard let job = locked({ () -> StagingQueue.Job? in
                if let j = f.q.jobs.popFirst() { return j }
                f.q.running = false
                return nil
            }) else { return }
            var failure: Errno?
            let bytes = UnsafeRawBufferPointer(start: job.buffer, count: job.count)
            if !f.withDescriptor(direct: f.supportsDirect, { Syscall.pwriteFully($0, bytes, job.offset) }) {
                // EINVAL: the device wants another alignment after all; the page cache takes the bytes.
                let e = Errno(errno)
                if e.rawValue != EINVAL || !f.withDescriptor({ Syscall.pwriteFully($0, bytes, job.offset) }) { failure = Errno(errno) }
            }
            if job.copy == nil { buffers.give(job.buffer, Self.chunk) }
            let wake = locked { () -> [CheckedContinuation<Void, Never>] in
                queuedBytes -= job.count
                f.q.applied += 1
                if let failure, f.q.error == nil { f.q.error = failure }
                let applied = f.q.applied
                var ready: [CheckedContinuation<Void, Never>] = []
                f.q.waiters.removeAll { w in
                    guard w.ticket <= applied else { return false }
                    ready.append(w.continuation)
                    return true
                }
                pthread_cond_broadcast(&changed)
                return ready
            }
            for c in wake { c.resume() }
        }
    }

    /// Blocks until every write queued for `f` before this call is applied; returns a failed write's error.
    func settle(_ f: StagedFile) -> Errno? {
        locked {
            let ticket = f.q.enqueued
            while f.q.applied < ticket { pthread_cond_wait(&changed, &mutex) }
            return f.q.error
        }
    }

    /// `settle` for async callers: suspends instead of blocking a thread.
    func settled(_ f: StagedFile) async -> Errno? {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = locked { () -> Bool in
                let ticket = f.q.enqueued
                if f.q.applied >= ticket { return true }
                f.q.waiters.append((ticket, c))
                return false
            }
            if ready { c.resume() }
        }
        return error(f)
    }
}

extension StagingWriter {
    /// Gives back blocks reserved past `size`, the file's size with its queue settled and no other writer.
    ///
    /// A truncate to the current size is what frees blocks reserved past the end: ext4 ignores a hole punched
    /// there. With another writer active the size could move under the truncate, so the caller checks that.
    func trim(_ f: StagedFile, size: Int64) {
        let start = Int64(Syscall.directIOPadded(Int(size)))
        let reserved = locked { () -> Bool in
            guard f.q.reservedEnd > start, f.q.jobs.isEmpty, !f.q.running else { return false }
            f.q.reservedEnd = start
            return true
        }
        if reserved { _ = f.withDescriptor { Syscall.ftruncate($0, size) } }
    }
}
