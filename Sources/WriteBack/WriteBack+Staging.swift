import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

extension WriteBack {
    /// The bounce buffer size: FUSE's largest write.
    static let bounceSize = 1 << 20

    /// Writes `data` at `offset` of the staging file; nil once it is staged (queued or written), else the errno.
    ///
    /// Page-aligned writes are queued for the staging threads (`StagingWriter`); the rest wait for the queue
    /// to settle, so they never overtake a queued write of the same pages, and are written at once.
    func stage(_ f: StagedFile, offset: Int64, _ data: UnsafeRawBufferPointer) -> Errno? {
        if let e = staging.error(f) { return e }
        let page = Int64(AlignedBuffers.alignment)
        let end = offset + Int64(data.count)
        if data.count > 0 && offset % page == 0 && Int64(data.count) % page == 0 && staging.queues(f) {
            if let e = staging.reserve(f, offset: offset, end: end) { return e }
            if staging.queues(f) {
                staging.enqueue(f, offset: offset, data)
                return nil
            }
        }
        if let e = staging.settle(f) { return e }
        return writeNow(f, offset: offset, data) ? nil : Errno(errno == 0 ? EIO : errno)
    }

    /// Writes at once: page-aligned runs through a bounce buffer to the `O_DIRECT` descriptor, unaligned heads
    /// and tails (and everything, without direct I/O) through the page cache. Linux keeps the two coherent:
    /// a direct write writes back and drops the cached pages it overlaps. False with `errno` set on failure.
    private func writeNow(_ f: StagedFile, offset: Int64, _ data: UnsafeRawBufferPointer) -> Bool {
        let page = Int64(AlignedBuffers.alignment)
        guard f.directDescriptor >= 0, data.count >= Int(page) else { return Syscall.pwriteFully(f.descriptor, data, offset) }
        // Split into [unaligned head][whole pages][unaligned tail].
        let alignedStart = (offset + page - 1) / page * page
        let end = offset + Int64(data.count)
        let alignedEnd = end / page * page
        guard alignedEnd > alignedStart else { return Syscall.pwriteFully(f.descriptor, data, offset) }
        let head = Int(alignedStart - offset)
        let tail = Int(end - alignedEnd)
        if head > 0, !Syscall.pwriteFully(f.descriptor, UnsafeRawBufferPointer(rebasing: data[0..<head]), offset) { return false }
        let bounce = buffers.take(Self.bounceSize)
        defer { buffers.give(bounce, Self.bounceSize) }
        var done = head
        while done < data.count - tail {
            let n = min(Self.bounceSize, data.count - tail - done)
            bounce.copyMemory(from: data.baseAddress! + done, byteCount: n)
            if !Syscall.pwriteFully(f.directDescriptor, UnsafeRawBufferPointer(start: bounce, count: n), offset + Int64(done)) {
                // EINVAL: this filesystem wants another alignment after all; the page cache takes the rest.
                guard errno == EINVAL else { return false }
                return Syscall.pwriteFully(f.descriptor, UnsafeRawBufferPointer(rebasing: data[done...]), offset + Int64(done))
            }
            done += n
        }
        if tail > 0, !Syscall.pwriteFully(f.descriptor, UnsafeRawBufferPointer(rebasing: data[(data.count - tail)...]), alignedEnd) { return false }
        return true
    }
}

extension WriteBack {
    /// Reads `range` of the staging file into `buffer` (`capacity` bytes, page-aligned), with `O_DIRECT` when
    /// the range starts on a page: one read from the device, no page-cache copy, no second pass for the MD5.
    func readStaged(_ f: StagedFile, _ range: Range<Int64>, into buffer: UnsafeMutableRawPointer, capacity: Int) -> Result<Void, Errno> {
        let count = range.count
        let ask = AlignedBuffers.roundUp(count)
        if f.directDescriptor >= 0, range.lowerBound % Int64(AlignedBuffers.alignment) == 0, ask <= capacity {
            switch Syscall.preadFully(f.directDescriptor, buffer, ask, range.lowerBound) {
            case .success(let n) where n >= count: return .success(())
            case .success: return .failure(Errno(EIO))  // the file is shorter than its state says
            case .failure(let e) where e.rawValue == EINVAL: break  // another alignment: the page cache does it
            case .failure(let e): return .failure(e)
            }
        }
        switch Syscall.preadFully(f.descriptor, buffer, count, range.lowerBound) {
        case .success(count): return .success(())
        case .success: return .failure(Errno(EIO))
        case .failure(let e): return .failure(e)
        }
    }

    /// Runs `body` with `range` of the staging file in a pooled buffer, its MD5 already computed; throws when
    /// it cannot be read.
    ///
    /// The read and the MD5 (the costliest step of an upload: about 600 MB/s per core) run on the low-priority
    /// digest threads, so an application writing the next checkpoint keeps the CPU it needs and uploads take
    /// what it leaves idle.
    func withStagedBytes<T>(_ f: StagedFile, _ range: Range<Int64>, _ body: (RequestBody) async throws -> T) async throws -> T {
        guard range.count > 0 else { return try await body(.empty) }
        let capacity = AlignedBuffers.roundUp(max(range.count, Int(geometry.base)))
        let buffer = BodyMemory(UnsafeRawBufferPointer(start: buffers.take(capacity), count: range.count))
        defer { buffers.give(UnsafeMutableRawPointer(mutating: buffer.bytes.baseAddress!), capacity) }
        let digest: Result<[UInt8], Errno> = await withCheckedContinuation { c in
            digestThreads.submit { [self] in
                if let e = staging.settle(f) { return c.resume(returning: .failure(e)) }
                let target = UnsafeMutableRawPointer(mutating: buffer.bytes.baseAddress!)
                c.resume(returning: readStaged(f, range, into: target, capacity: capacity).map { Digest.md5(buffer.bytes) })
            }
        }
        switch digest {
        case .success(let md5):
            return try await body(.memory(BodyMemory(buffer.bytes, md5: md5)))
        case .failure(let e):
            throw WriteBackError("cannot read staging file \(f.path) at \(range.lowerBound): \(e)", errno: e.rawValue)
        }
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
            let capacity = AlignedBuffers.roundUp(max(size, Self.bounceSize))
            let buffer = buffers.take(capacity)
            defer { buffers.give(buffer, capacity) }
            let result = Syscall.preadFully(f.descriptor, buffer, size, offset)
            switch result {
            case .success(let n): reply(.success(UnsafeRawBufferPointer(start: buffer, count: min(n, size))))
            case .failure(let e): reply(.failure(e))
            }
        }
    }
}
