import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

/// The upload engine: one pass (`pump`) decides what to start, tasks report back and pump again.
extension WriteBack {
    /// Starts whatever uploads are due, within the in-flight bound.
    func pump() {
        var starts: [@Sendable () async -> Void] = []
        lock.withLock { r in
            guard !r.stopped else { return }
            let now = monotonicSeconds()
            // A writer that wrote within the last second has priority over the uploads (see WriteBackOptions).
            let writing = r.active.values.contains { $0.s.writers > 0 && !$0.s.pending && now - $0.s.lastUse < 1 }
            let bound = options.concurrency(whileWriting: writing)
            for f in r.active.values.sorted(by: { $0.s.created < $1.s.created }) {
                if f.s.cancelled || (f.s.clean && f.s.inFlight.isEmpty && !f.s.finishing && !f.s.creatingUpload) {
                    r.active.removeValue(forKey: f.id)
                    continue
                }
                if f.s.finishing || f.s.creatingUpload || f.s.retryAt > now || f.s.clean { continue }
                let final = f.s.pending
                let size = f.s.size
                if final && f.s.inFlight.isEmpty && (size <= geometry.base || metadataOnly(f)) {
                    guard claimKey(f, &r) else { continue }
                    starts.append { await self.finishWithoutParts(f) }
                    continue
                }
                if size <= geometry.base { continue }
                let room = bound - r.inFlight
                let needed = neededParts(f, final: final, limit: max(room, 1), copies: writing && f.s.writers > 0 ? f.capture.waiting : [])
                // While the application writes, parts start in whole batches of the bound, so they are read and
                // hashed side by side (LaneHasher): two parts hashed together cost 0.7 of one hashed twice,
                // eight 0.2. A writer that pauses for a second gets every part started as it completes.
                if writing && !final && !needed.isEmpty && (room < bound || needed.count < bound) { continue }
                if needed.isEmpty {
                    if final && f.s.inFlight.isEmpty && f.s.uploadID != nil, claimKey(f, &r) {
                        starts.append { await self.complete(f) }
                    }
                    continue
                }
                guard let uploadID = f.s.uploadID else {
                    f.s.creatingUpload = true
                    starts.append { await self.createUpload(f) }
                    continue
                }
                for p in needed where r.inFlight < bound {
                    f.s.inFlight.insert(p)
                    r.inFlight += 1
                    let job = PartJob(part: p, generation: f.s.generation, uploadID: uploadID, bucket: f.s.bucket, key: f.s.key, range: geometry.range(ofPart: p, fileSize: size))
                    starts.append { await self.upload(f, job) }
                }
            }
        }
        for start in starts { Task { await start() } }
    }

    /// Claims the key `f` names for its object-making request: false while another file's such request for
    /// the same key is in flight, as when a file is replaced (created over, truncated, renamed over) during
    /// its upload. Without this the replaced file's late PUT could land after its replacement's, and the
    /// bucket would keep the old bytes. Sets `finishing`; caller holds the lock.
    func claimKey(_ f: StagedFile, _ r: inout Registry) -> Bool {
        let target = UploadTarget(store: f.store.name, bucket: f.s.bucket, key: f.s.key)
        if let holder = r.making[target], holder !== f { return false }
        if let held = f.s.making, held != target, r.making[held] === f { r.making.removeValue(forKey: held) }
        r.making[target] = f
        f.s.making = target
        f.s.finishing = true
        return true
    }

    /// The object-making request ended (done, failed or stale): clears `finishing` and frees the key.
    func releaseKey(_ f: StagedFile, _ r: inout Registry) {
        f.s.finishing = false
        if let held = f.s.making, r.making[held] === f { r.making.removeValue(forKey: held) }
        f.s.making = nil
    }

    /// Whether `f`'s claim still names the key it is at; a rename between `pump` and the request's start
    /// moves the claim, or gives it up when another file holds the new key. Caller holds the lock.
    func claimStillHolds(_ f: StagedFile, _ r: inout Registry) -> Bool {
        if f.s.making == UploadTarget(store: f.store.name, bucket: f.s.bucket, key: f.s.key) { return true }
        if claimKey(f, &r) { return true }
        releaseKey(f, &r)
        return false
    }

    struct PartJob: Sendable {
        var part: Int
        var generation: UInt64
        var uploadID: String
        var bucket: String
        var key: String
        var range: Range<Int64>
    }

    /// Only the metadata changed since the bucket got the bytes: a server-side copy replaces it.
    private func metadataOnly(_ f: StagedFile) -> Bool {
        f.s.etag != nil && f.s.dataGeneration == f.s.durableData && f.s.size <= PartGeometry.maximumPartSize
    }

    /// Parts to upload now. While writing, only whole parts below the furthest write stream out; at commit,
    /// every part that is missing, stale (written since its upload) or of the wrong length.
    ///
    /// `copies`: parts a sequential writer left as copies in memory (`PartCapture`) while it is ahead of the
    /// uploads. When there are any, only they stream, so no part is read back from the device the writer is
    /// writing to; the others go once the writer closes or pauses, or when no copy is left.
    private func neededParts(_ f: StagedFile, final: Bool, limit: Int, copies: Set<Int> = []) -> [Int] {
        var out: [Int] = []
        let size = f.s.size
        let count = geometry.partCount(fileSize: size)
        var p = 1
        while p <= count && out.count < limit {
            defer { p += 1 }
            if f.s.inFlight.contains(p) { continue }
            let range = geometry.range(ofPart: p, fileSize: size)
            if let u = f.s.uploaded[p] {
                if !final || (u.generation >= (f.s.partGeneration[p] ?? 0) && u.length == Int64(range.count)) { continue }
            } else if !final {
                // Streaming: whole parts the writer has reached the end of, changed since the bucket last got
                // the file. (Files of one part never get here: they are one PUT.)
                guard range.upperBound <= f.s.highWater, Int64(range.count) == geometry.size(ofPart: p) else { break }
                if (f.s.partGeneration[p] ?? 0) <= f.s.durableData { continue }
                if !copies.isEmpty && !copies.contains(p) { continue }
            }
            out.append(p)
        }
        return out
    }

    private func createUpload(_ f: StagedFile) async {
        let (bucket, key, metadata, headers) = lock.withLock { _ in (f.s.bucket, f.s.key, f.s.metadata, f.s.uploadHeaders) }
        // The record names the key before the upload exists, so a crash cannot leave an upload nobody owns.
        if case .failure(let e) = journal.write({ lock.withLock { _ in makeRecord(f) } }) {
            lock.withLock { _ in f.s.creatingUpload = false }
            fail(f, WriteBackError("cannot write journal record in \(journal.directory): \(e)", errno: e.rawValue), permanent: false)
            return
        }
        do {
            let id = try await f.store.client.createMultipartUpload(bucket: bucket, key: key, options: PutOptions(metadata: headers))
            let stale = lock.withLock { _ -> Bool in
                f.s.creatingUpload = false
                f.s.journaled = true
                guard !f.s.cancelled, f.s.key == key, f.s.bucket == bucket else { return true }
                f.s.forgetUpload()
                f.s.uploadID = id
                f.s.uploadMetadata = metadata
                return false
            }
            if stale {
                try? await f.store.client.abortMultipartUpload(bucket: bucket, key: key, uploadID: id)
            } else {
                _ = journal.write { lock.withLock { _ in makeRecord(f) } }
            }
        } catch {
            lock.withLock { _ in f.s.creatingUpload = false }
            fail(f, error)
        }
        pump()
    }

    private func upload(_ f: StagedFile, _ job: PartJob) async {
        do {
            let etag = try await withPartBytes(f, job) { body in
                try await f.store.client.uploadPart(bucket: job.bucket, key: job.key, uploadID: job.uploadID, partNumber: job.part, body: body)
            }
            lock.withLock { r in
                f.s.inFlight.remove(job.part)
                r.inFlight -= 1
                guard f.s.uploadID == job.uploadID else { return }
                f.s.uploaded[job.part] = UploadedPart(generation: job.generation, etag: etag, length: Int64(job.range.count))
            }
        } catch {
            let stale = lock.withLock { r -> Bool in
                f.s.inFlight.remove(job.part)
                r.inFlight -= 1
                forgetUploadIfGone(f, job.uploadID, error)
                return error is WriteBackError && (f.s.partGeneration[job.part] ?? 0) > job.generation
            }
            // A read of the staging file that came up short because the part changed under it (truncated): the
            // part goes again with the new bytes; no failure to back off from or to give fsync as EIO.
            if !stale { fail(f, error) }
        }
        pump()
    }

    /// The key's ETag when it is the object these parts complete (its size, and the multipart ETag of their
    /// ETags); nil otherwise, or when a part's ETag is not an MD5 (SSE-KMS), so the upload starts again.
    private func completedAlready(_ store: any ObjectStore, bucket: String, key: String, size: Int64, parts: [CompletedPart]) async -> String? {
        var digests: [UInt8] = []
        for part in parts {
            guard let md5 = Digest.bytes(hex: Digest.unquoted(part.etag)), md5.count == 16 else { return nil }
            digests += md5
        }
        guard let head = try? await store.headObject(bucket: bucket, key: key), Self.isUpload(head, size: size, partMD5s: digests, parts: parts.count) else { return nil }
        return head.etag
    }

    /// Whether `head` is an object of `size` bytes completed from parts with these MD5s (concatenated), by
    /// its multipart ETag.
    static func isUpload(_ head: ObjectInfo, size: Int64, partMD5s: [UInt8], parts: Int) -> Bool {
        head.size == size && Digest.unquoted(head.etag) == Digest.multipartETag(partMD5s: partMD5s, parts: parts)
    }

    /// The store says the multipart upload is gone (aborted under us by another client or a lifecycle rule,
    /// or a part it no longer has): unless the file moved on to another upload, start a new one. Caller holds
    /// the lock.
    private func forgetUploadIfGone(_ f: StagedFile, _ uploadID: String, _ error: any Error) {
        guard let kind = (error as? ObjectStoreError)?.kind, kind == .noSuchUpload || kind == .invalidPart,
            f.s.uploadID == uploadID
        else { return }
        f.s.forgetUpload()
    }

    private func complete(_ f: StagedFile) async {
        let snap = lock.withLock { r -> (UInt64, UInt64, String, String, String, Int64, [String: String], Bool, [CompletedPart])? in
            guard claimStillHolds(f, &r) else { return nil }
            guard let uploadID = f.s.uploadID else {
                // Cancelled or renamed since `pump` (the upload forgotten): the claim goes, nothing is sent.
                releaseKey(f, &r)
                return nil
            }
            return (f.s.generation, f.s.dataGeneration, uploadID, f.s.bucket, f.s.key, f.s.size, f.s.uploadHeaders,
                    f.s.metadata != f.s.uploadMetadata || f.s.mtimeExplicit,
                    (1...geometry.partCount(fileSize: f.s.size)).map { CompletedPart(partNumber: $0, etag: f.s.uploaded[$0]?.etag ?? "") })
        }
        guard let (generation, dataGeneration, uploadID, bucket, key, size, metadata, metadataChanged, parts) = snap else { return pump() }
        do {
            var etag: String
            do {
                etag = try await f.store.client.completeMultipartUpload(bucket: bucket, key: key, uploadID: uploadID, parts: parts)
            } catch let e as ObjectStoreError where e.kind == .noSuchUpload {
                // The completion may have gone through with its answer lost: a retry after a timeout, or the
                // request of a daemon killed mid-completion that the store finished after this one's replay
                // had listed the parts. Then the key holds exactly these parts, and nothing goes again.
                guard let done = await completedAlready(f.store.client, bucket: bucket, key: key, size: size, parts: parts) else { throw e }
                logger.info("the store had completed this upload already; its parts are not uploaded again", metadata: ["key": "\(key)", "bytes": "\(size)"])
                etag = done
            }
            if metadataChanged {
                // chmod or utimens after the upload began: CreateMultipartUpload fixed the old metadata.
                let source = ObjectLocation(bucket: bucket, key: key)
                etag = try await f.store.client.copyObject(source: source, bucket: bucket, key: key, options: CopyOptions(replaceMetadata: metadata, sourceIfMatch: etag))
            }
            finished(f, generation: generation, dataGeneration: dataGeneration, etag: etag, bucket: bucket, key: key, size: size)
        } catch {
            lock.withLock { r in
                releaseKey(f, &r)
                forgetUploadIfGone(f, uploadID, error)
            }
            fail(f, error)
        }
        pump()
    }

    /// A single PutObject for a file of one part or less, or a copy onto itself when only metadata changed.
    private func finishWithoutParts(_ f: StagedFile) async {
        let snap = lock.withLock { r in
            !claimStillHolds(f, &r) ? nil : (f.s.generation, f.s.dataGeneration, f.s.bucket, f.s.key, f.s.size, f.s.uploadHeaders, f.s.uploadID, metadataOnly(f) ? f.s.etag : nil)
        }
        guard let (generation, dataGeneration, bucket, key, size, metadata, staleUpload, copyOf) = snap else { return pump() }
        do {
            let etag: String
            if let copyOf {
                let source = ObjectLocation(bucket: bucket, key: key)
                etag = try await f.store.client.copyObject(source: source, bucket: bucket, key: key, options: CopyOptions(replaceMetadata: metadata, sourceIfMatch: copyOf))
            } else {
                etag = try await withStagedBytes(f, 0..<size) { body in
                    try await f.store.client.putObject(bucket: bucket, key: key, body: body, options: PutOptions(metadata: metadata))
                }
            }
            if let staleUpload {
                lock.withLock { _ in if f.s.uploadID == staleUpload { f.s.uploadID = nil } }
                try? await f.store.client.abortMultipartUpload(bucket: bucket, key: key, uploadID: staleUpload)
            }
            finished(f, generation: generation, dataGeneration: dataGeneration, etag: etag, bucket: bucket, key: key, size: size)
        } catch {
            let stale = lock.withLock { r -> Bool in
                releaseKey(f, &r)
                // The source changed or vanished: upload the bytes instead.
                if copyOf != nil { f.s.etag = nil }
                return copyOf == nil && error is WriteBackError && f.s.dataGeneration != dataGeneration
            }
            // The staging file was read short because the file changed since `size` was taken (a truncate or
            // O_TRUNC between the snapshot and the read): the new state uploads next. Failing would back off
            // and throw EIO to a waiting fsync or sync close, even one waiting for the new state.
            if !stale { fail(f, error) }
        }
        pump()
    }

    /// The bucket holds `generation`: wake its waiters, drop the journal record when nothing is left.
    private func finished(_ f: StagedFile, generation: UInt64, dataGeneration: UInt64, etag: String, bucket: String, key: String, size: Int64) {
        var wake: [CheckedContinuation<Void, any Error>] = []
        let (current, dropRecord) = lock.withLock { r -> (Bool, Bool) in
            releaseKey(f, &r)
            // Cancelled or renamed while uploading: the unlink or rename waits for this upload (`settle`) and
            // then deletes the key it wrote.
            guard !f.s.cancelled, f.s.key == key, f.s.bucket == bucket else { return (false, false) }
            r.completedUploads += 1
            f.s.durable = max(f.s.durable, generation)
            f.s.durableData = dataGeneration
            f.s.etag = etag
            f.s.forgetUpload()
            f.s.attempts = 0
            f.s.failure = nil
            f.s.retryAt = 0
            if generation == f.s.generation { f.s.mtimeExplicit = false }
            let durable = f.s.durable
            f.s.waiters.removeAll { w in
                guard w.generation <= durable else { return false }
                wake.append(w.continuation)
                return true
            }
            let drop = f.s.journaled && !f.s.pending
            if drop { f.s.journaled = false }
            return (generation == f.s.generation, drop)
        }
        // The filesystem learns the ETag before a sync close returns: the application may unlink or rename
        // the file next, and a later hook would put it back in the listing.
        if current {
            notifyDurable(f, key: key, etag: etag, size: size)
            // The bucket has every byte the copies hold (a PutObject, or a part a retry read from the file).
            f.capture.clear()
        }
        for c in wake { c.resume() }
        if dropRecord { journal.remove(f.id) }
        logger.debug("uploaded", metadata: ["key": "\(key)", "bytes": "\(size)"])
        enforceResidency()
    }

    /// Records a failed attempt, backs off, and fails the waiters (sync close, fsync, flush) with the reason.
    func fail(_ f: StagedFile, _ error: any Error, permanent: Bool? = nil) {
        let s3 = error as? ObjectStoreError
        let isPermanent = permanent ?? {
            guard let s3 else { return false }
            switch s3.kind {
            case .accessDenied, .invalidCredentials, .noSuchBucket, .entityTooLarge, .configuration: return true
            default: return false
            }
        }()
        let failure = UploadFailure(
            message: "\(error)", permanent: isPermanent,
            errno: s3?.errno ?? (error as? WriteBackError)?.errno ?? EIO)
        var wake: [CheckedContinuation<Void, any Error>] = []
        // A cancelled file's parts still in flight fail as their upload is aborted: nothing to retry or say.
        if lock.withLock({ _ in f.s.cancelled }) { return }
        let key = lock.withLock { _ -> String in
            f.s.attempts += 1
            f.s.failure = failure
            let backoff = isPermanent ? 30 : min(0.25 * Double(1 << min(f.s.attempts, 7)), 30)
            f.s.retryAt = monotonicSeconds() + backoff
            wake = f.s.waiters.map(\.continuation)
            f.s.waiters = []
            return f.s.key
        }
        logger.warning("upload attempt failed; will retry", metadata: ["key": "\(key)", "error": "\(failure.message)", "permanent": "\(isPermanent)"])
        for c in wake { c.resume(throwing: WriteBackError("upload of \(key) failed: \(failure.message)", errno: EIO)) }
    }

    /// The journal record for a file as it stands; caller holds the lock.
    func makeRecord(_ f: StagedFile) -> JournalRecord {
        JournalRecord(
            id: f.id, store: f.store.name, bucket: f.s.bucket, key: f.s.key, state: f.s.pending ? .committed : .open, size: f.s.size,
            uploadID: f.s.uploadID,
            parts: f.s.uploaded.keys.sorted().map { CompletedPart(partNumber: $0, etag: f.s.uploaded[$0]!.etag) },
            metadata: f.s.uploadHeaders, created: f.s.created,
            unsyncedBoot: f.s.unsynced ? options.bootID : nil)
    }
}
