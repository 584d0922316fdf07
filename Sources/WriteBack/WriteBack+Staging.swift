import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

extension WriteBack {
    /// Writes `data` at `offset` of the staging file; nil once it is staged (queued or written), else the errno.
    ///
    /// The whole pages of a write are queued for the staging threads (`StagingWriter`); the partial pages at
    /// its ends, and whole writes to files that take no queued writes, go through the page cache at once,
    /// after the queued writes they could overlap. Linux keeps the two coherent: a direct write writes back
    /// and drops the cached pages it covers.
    func stage(_ f: StagedFile, offset: Int64, _ data: UnsafeRawBufferPointer, copies: [PartCapture.Copy] = []) -> Errno? {
        let page = Int64(Syscall.directIOAlignment)
        let end = offset + Int64(data.count)
        let first = min(end, (offset + page - 1) / page * page)
        let last = max(first, end / page * page)
        var queue = false
        if last > first {
            switch staging.admit(f, offset: first, end: last) {
            case .success(let q): queue = q
            case .failure(let e): return e
            }
        }
        let head = Int(first - offset)
        let tail = Int(last - offset)
        /// Bytes `[from, to)` of `data` through the page cache.
        func put(_ from: Int, _ to: Int) -> Errno? {
            guard to > from else { return nil }
            let ok = f.withDescriptor { Syscall.pwriteFully($0, UnsafeRawBufferPointer(rebasing: data[from..<to]), offset + Int64(from)) }
            return ok ? nil : Errno(errno == 0 ? EIO : errno)
        }
        if !queue || head > 0 || tail < data.count {
            if let e = staging.settle(f) { return e }
            if !queue { return put(0, data.count) }
            if let e = put(0, head) ?? put(tail, data.count) { return e }
        }
        staging.enqueue(f, offset: first, UnsafeRawBufferPointer(rebasing: data[head..<tail]), copies: copies)
        return nil
    }
}

extension WriteBack {
    /// Reads `range` of the staging file into `buffer` (`capacity` bytes, page-aligned), with `O_DIRECT` when
    /// the range starts on a page: one read from the device, no page-cache copy, no second pass for the MD5.
    func readStaged(_ f: StagedFile, _ range: Range<Int64>, into buffer: UnsafeMutableRawPointer, capacity: Int) -> Result<Void, Errno> {
        let count = range.count
        let ask = Syscall.directIOPadded(count)
        if f.supportsDirect, range.lowerBound % Int64(Syscall.directIOAlignment) == 0, ask <= capacity {
            switch f.withDescriptor(direct: true, { Syscall.preadFully($0, buffer, ask, range.lowerBound) }) {
            case .success(let n) where n >= count: return .success(())
            case .success: return .failure(Errno(EIO))  // the file is shorter than its state says
            case .failure(let e) where e.rawValue == EINVAL: break  // another alignment: the page cache does it
            case .failure(let e): return .failure(e)
            }
        }
        switch f.withDescriptor({ Syscall.preadFully($0, buffer, count, range.lowerBound) }) {
        case .success(count): return .success(())
        case .success: return .failure(Errno(EIO))
        case .failure(let e): return .failure(e)
        }
    }

    /// `withStagedBytes` for an upload part, from the writer's copy of it when there is one (`PartCapture`).
    func withPartBytes<T>(_ f: StagedFile, _ job: PartJob, _ body: (RequestBody) async throws -> T) async throws -> T {
        guard let copy = f.capture.take(part: job.part, count: job.range.count) else { return try await withStagedBytes(f, job.range, body) }
        defer { withExtendedLifetime(copy) {} }
        // A queued write that failed fails the upload too, as it would a read of the file.
        if let e = staging.error(f) {
            throw WriteBackError("cannot write staging file \(f.path): \(e)", errno: e.rawValue)
        }
        return try await hashed(UnsafeRawBufferPointer(start: copy.pointer, count: job.range.count), body)
    }

    /// Runs `body` with `bytes` as the request body, its MD5 computed on the low-priority part hasher.
    private func hashed<T>(_ bytes: UnsafeRawBufferPointer, _ body: (RequestBody) async throws -> T) async throws -> T {
        let md5 = await partHasher.md5(bytes)
        return try await body(.memory(BodyMemory(bytes, md5: md5)))
    }

    /// The pooled buffer size for a body of `count` bytes: a part's size, or for a small file a power of two
    /// from 64 KiB, so a burst of small PUTs neither counts 16 MiB each against `partReadBudget` nor leaves
    /// a pool of buffers of every file size.
    func bodyCapacity(_ count: Int) -> Int {
        let base = Int(geometry.base)
        guard count <= base / 2 else { return Syscall.directIOPadded(max(count, base)) }
        var size = 64 << 10
        while size < count { size <<= 1 }
        return size
    }

    /// Runs `body` with `range` of the staging file in a pooled buffer, its MD5 already computed; throws when
    /// it cannot be read.
    ///
    /// The read runs on low-priority threads and the MD5 (the costliest step of an upload) on the
    /// low-priority `LaneHasher`, which hashes the parts in flight side by side. An application writing the
    /// next checkpoint keeps the CPU it needs and uploads take what it leaves idle.
    func withStagedBytes<T>(_ f: StagedFile, _ range: Range<Int64>, _ body: (RequestBody) async throws -> T) async throws -> T {
        guard range.count > 0 else { return try await body(.empty) }
        let capacity = bodyCapacity(range.count)
        await partReadBudget.acquire(capacity)
        defer { partReadBudget.release(capacity) }
        let buffer = BodyMemory(UnsafeRawBufferPointer(start: buffers.take(capacity), count: range.count))
        defer { buffers.give(UnsafeMutableRawPointer(mutating: buffer.bytes.baseAddress!), capacity) }
        let read: Result<Void, Errno> = await withCheckedContinuation { c in
            partReads.submit { [self] in
                if let e = staging.settle(f) { return c.resume(returning: .failure(e)) }
                let target = UnsafeMutableRawPointer(mutating: buffer.bytes.baseAddress!)
                c.resume(returning: readStaged(f, range, into: target, capacity: capacity))
            }
        }
        if case .failure(let e) = read {
            throw WriteBackError("cannot read staging file \(f.path) at \(range.lowerBound): \(e)", errno: e.rawValue)
        }
        return try await hashed(buffer.bytes, body)
    }
}

extension WriteBack {
    /// Reads `[offset, offset + size)` of a staged or resident file on a staged-read thread and passes the
    /// bytes (valid only during the call; fewer at the end of the file) or the errno to `reply`.
    ///
    /// The writes queued before the read land first. The read goes through the page cache into a pooled
    /// buffer: the staging file's own readahead keeps the device busy between the kernel's 1 MiB requests
    /// (a restore of 1 GiB ran at 1.17–1.38 GB/s this way and 1.06–1.15 GB/s with `O_DIRECT`, one request at
    /// a time). libfuse's own reply from a descriptor did the read on the FUSE worker, into a fresh buffer.
    package func read(_ f: StagedFile, offset: Int64, size: Int, reply: @escaping @Sendable (Result<UnsafeRawBufferPointer, Errno>) -> Void) {
        stagedReads.submit { [self] in
            if let e = staging.settle(f) { return reply(.failure(e)) }
            let capacity = Syscall.directIOPadded(max(size, StagingWriter.chunk))
            let buffer = buffers.take(capacity)
            defer { buffers.give(buffer, capacity) }
            let result = f.withDescriptor { Syscall.preadFully($0, buffer, size, offset) }
            switch result {
            case .success(let n): reply(.success(UnsafeRawBufferPointer(start: buffer, count: min(n, size))))
            case .failure(let e): reply(.failure(e))
            }
        }
    }
}
