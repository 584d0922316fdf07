import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

extension WriteBack {
    /// Makes the file's current state the one the bucket must get.
    ///
    /// `sync`: returns once the object is durable, or throws the upload's failure (EIO to the application).
    /// Async, at `device` durability: fdatasyncs the staged bytes and journals the object before returning, so
    /// that kill -9 or a power cut afterwards loses nothing. At `kernel` durability: journals the object and
    /// returns, with the bytes in the page cache (kill -9 loses nothing); the fdatasync follows in the
    /// background (`syncInBackground`). The upload finishes in the background.
    package func commit(_ f: StagedFile, sync: Bool) async throws {
        let generation = lock.withLock { r -> UInt64? in
            guard !f.s.cancelled, f.s.generation > f.s.durable else { return nil }
            if !f.s.pending { f.s.committedAt = monotonicSeconds() }
            f.s.committed = f.s.generation
            r.active[f.id] = f
            return f.s.generation
        }
        guard let generation else { return }
        if let e = await staging.settled(f) {
            throw WriteBackError("a write to staging file \(f.path) failed (\(e)); the file lacks bytes write(2) accepted, write it again", errno: e.rawValue)
        }
        // The committing handle is the only writer: the reservation ahead of the stream is no longer needed.
        lock.withLock { _ in
            if f.s.writers <= 1 { staging.trim(f, size: f.s.size) }
        }
        if sync {
            pump()
            try await waitDurable(f, generation: generation)
            return
        }
        let device = options.closeDurability == .device
        if device {
            if case .failure(let e) = f.withDescriptor({ Syscall.fdatasync($0) }) {
                throw WriteBackError("cannot sync staging file \(f.path): \(e)", errno: e.rawValue)
            }
            lock.withLock { _ in f.s.syncedGeneration = max(f.s.syncedGeneration, generation) }
        }
        if case .failure(let e) = journal.write({ lock.withLock { _ in makeRecord(f) } }) {
            throw WriteBackError("cannot write journal record in \(journal.directory): \(e); the cache disk may be full", errno: e.rawValue)
        }
        lock.withLock { _ in f.s.journaled = true }
        pump()
        if !device { syncInBackground(f, generation: generation) }
    }

    /// fdatasyncs `f`'s staged bytes on the staging-sync thread, then marks its record synced: from then on
    /// a power cut no longer loses the object. Syncs are taken in commit order, one at a time, so a burst of
    /// closes does not put a burst of flushes on the device.
    func syncInBackground(_ f: StagedFile, generation: UInt64) {
        stagingSyncs.submit { [self] in
            guard lock.withLock({ _ in !f.s.cancelled && f.s.syncedGeneration < generation }) else { return }
            markSynced(f, generation: generation)
        }
    }

    /// fdatasyncs `f` and, when its record still names unsynced bytes of `generation` or older, rewrites it.
    func markSynced(_ f: StagedFile, generation: UInt64) {
        lock.withLock { _ in f.s.syncsInFlight += 1 }
        defer { lock.withLock { _ in f.s.syncsInFlight -= 1 } }
        if case .failure(let e) = f.withDescriptor({ Syscall.fdatasync($0) }) {
            // The bytes stay in the page cache and still upload; only a power cut would now lose them.
            logger.error("cannot sync staging file; its record stays unsynced until the upload is done", metadata: [
                "key": "\(lock.withLock { _ in f.s.key })", "staging": "\(f.path)", "error": "\(e)",
            ])
            return
        }
        lock.withLock { _ in f.s.syncedGeneration = max(f.s.syncedGeneration, generation) }
        let result = journal.write {
            lock.withLock { _ in f.s.journaled && f.s.pending && !f.s.cancelled ? makeRecord(f) : nil }
        }
        if case .failure(let e) = result {
            logger.error("cannot mark a journal record synced", metadata: ["record": "\(f.id)", "error": "\(e)"])
        }
    }

    /// Syncs every file whose record still names unsynced bytes, as an unmount must: a reboot after a clean
    /// unmount loses nothing. A file whose background sync is between its fdatasync and its record is synced
    /// here too, so that the record says so before this returns.
    package func syncAll() {
        let files = lock.withLock { r in
            r.files.values.filter { $0.s.journaled && ($0.s.unsynced || $0.s.syncsInFlight > 0) }.map { ($0, $0.s.committed) }
        }
        for (f, generation) in files { markSynced(f, generation: generation) }
    }

    /// Commits if needed and waits until the bucket holds the file as it is now (fsync, in both modes).
    package func fsync(_ f: StagedFile) async throws {
        try await commit(f, sync: true)
    }

    /// Waits until `generation` (or a newer one) is durable; throws when an attempt fails meanwhile.
    package func waitDurable(_ f: StagedFile, generation: UInt64? = nil) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let ready = lock.withLock { _ -> Bool in
                let target = generation ?? f.s.committed
                if f.s.cancelled || f.s.durable >= target { return true }
                f.s.waiters.append((target, c))
                return false
            }
            if ready { c.resume() }
        }
    }

    /// The file was deleted: stop its upload, abort any multipart upload, drop the record and staged bytes.
    package func cancel(_ f: StagedFile) {
        let (upload, bucket, key, wake) = lock.withLock { r in
            f.s.cancelled = true
            r.files.removeValue(forKey: f.id)
            r.active.removeValue(forKey: f.id)
            let w = f.s.waiters.map(\.continuation)
            f.s.waiters = []
            let u = f.s.uploadID
            f.s.uploadID = nil
            return (u, f.s.bucket, f.s.key, w)
        }
        for c in wake { c.resume() }
        f.capture.clear()
        f.pin()
        _ = Syscall.unlink(f.path)
        guard let upload else {
            journal.remove(f.id)
            return
        }
        // Mark the record "open" first: if we crash before the abort, replay aborts it instead of uploading.
        _ = journal.write {
            var record = lock.withLock { _ in makeRecord(f) }
            record.state = .open
            record.uploadID = upload
            return record
        }
        Task {
            try? await f.store.client.abortMultipartUpload(bucket: bucket, key: key, uploadID: upload)
            journal.remove(f.id)
        }
    }

    /// Waits until no request of a cancelled file is still in flight: until then its staging file stays open
    /// (a part read holds the descriptor) and its space is not given back, so an unlink that returned
    /// earlier would leave a full cache disk full.
    package func settle(_ f: StagedFile) async {
        while lock.withLock({ _ in f.s.finishing || f.s.creatingUpload || !f.s.inFlight.isEmpty }) {
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    /// Waits until no stale object-making request for `key` is in flight: a file replaced at that key, or
    /// renamed away from it, may still have a PUT on its way, and a delete of the key must come after it.
    /// A live file's own request for the key (created there since) is not waited for: the delete is not
    /// meant for it.
    package func settle(store: String, bucket: String, key: String) async {
        let target = UploadTarget(store: store, bucket: bucket, key: key)
        while lock.withLock({ r in
            guard let holder = r.making[target] else { return false }
            return holder.s.cancelled || holder.s.key != key || holder.s.bucket != bucket
        }) {
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    /// The file was renamed. A clean file whose object was copied server-side keeps its ETag; otherwise the
    /// upload restarts under the new key (the old multipart upload is aborted, never completed twice).
    package func retarget(_ f: StagedFile, bucket: String, key: String, copiedETag: String?) {
        let (upload, oldBucket, oldKey, journaled) = lock.withLock { r in
            let u = f.s.uploadID
            let old = (f.s.bucket, f.s.key)
            f.s.bucket = bucket
            f.s.key = key
            f.s.forgetUpload()
            // Copied while nothing changed: the new key holds the file as it is.
            if let copiedETag, f.s.inBucket {
                f.s.etag = copiedETag
            } else if f.s.durable > 0 || f.s.pending {
                // The new key has nothing yet: everything acknowledged must go there.
                f.s.durable = 0
                f.s.durableData = 0
                f.s.etag = nil
                f.s.committed = max(f.s.committed, f.s.generation)
                if f.s.committedAt == 0 { f.s.committedAt = monotonicSeconds() }
            }
            r.active[f.id] = f
            return (u, old.0, old.1, f.s.journaled)
        }
        if journaled { _ = journal.write { lock.withLock { _ in makeRecord(f) } } }
        if let upload { Task { try? await f.store.client.abortMultipartUpload(bucket: oldBucket, key: oldKey, uploadID: upload) } }
        pump()
    }

    // MARK: - Residency

    /// Drops the least recently used clean files beyond the resident bound.
    func enforceResidency() {
        let bound = options.residentBudget?() ?? options.residentBytes
        _ = evict { total, _ in total > bound }
    }

    /// Drops clean files until `bytes` are freed (a full disk); returns the bytes freed.
    @discardableResult
    package func evictResident(atLeast bytes: Int64) -> Int64 {
        evict { _, freed in freed < bytes }
    }

    private func evict(while condition: (_ total: Int64, _ freed: Int64) -> Bool) -> Int64 {
        let victims = lock.withLock { r -> [(StagedFile, String)] in
            let candidates = r.files.values.filter { $0.s.clean && !$0.s.finishing && $0.s.inFlight.isEmpty }
            var total = candidates.reduce(Int64(0)) { $0 + $1.s.size }
            // Usually nothing is due: skip the sort.
            guard condition(total, 0) else { return [] }
            let clean = candidates.sorted { $0.s.lastUse < $1.s.lastUse }
            var freed: Int64 = 0
            var out: [(StagedFile, String)] = []
            for f in clean where condition(total, freed) {
                r.files.removeValue(forKey: f.id)
                r.active.removeValue(forKey: f.id)
                f.s.cancelled = true
                total -= f.s.size
                freed += f.s.size
                out.append((f, f.s.key))
            }
            return out
        }
        for (f, key) in victims {
            f.pin()
            _ = Syscall.unlink(f.path)
            notifyEvicted(f, key: key)
        }
        return victims.reduce(0) { $0 + $1.0.s.size }
    }

    /// Retries due uploads once a second (backoff timers) while the mount runs.
    func startTicker() {
        Task { [weak self] in
            while let self, !self.lock.withLock({ $0.stopped }) {
                try? await Task.sleep(nanoseconds: 500_000_000)
                self.pump()
            }
        }
    }
}
