import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

/// What replay found, for the log and for the filesystem's view of pending paths.
package struct ReplayReport: Sendable {
    /// Acknowledged objects now uploading again; reads of these keys must see the staged bytes.
    package var resumed: [StagedFile] = []
    /// Parts already in the bucket that matched the staged bytes (MD5) and were kept.
    package var reusedParts = 0
    /// Multipart uploads no record owned, or that belonged to files never closed, now aborted.
    package var abortedUploads = 0
    /// Records that could not be used (damaged, or their staged bytes missing), kept aside for inspection.
    package var unusable: [String] = []
    /// Acknowledged uploads to a store no link of this mount uses (a link removed from the config): kept
    /// journaled, untouched, for a mount that has the store again.
    package var waitingForStore: [(store: String, key: String)] = []
    /// Acknowledged objects whose multipart upload the store completed after the daemon stopped (the
    /// completion was in flight at the crash): the bucket holds exactly the staged bytes, nothing is sent again.
    package var completedBeforeCrash = 0
    /// Acknowledged objects whose staged bytes were still only in the page cache (`kernel` durability) when
    /// the machine went down: not uploaded, their keys in the bucket left as they were, the record set aside.
    package var lostInPowerCut: [UploadTarget] = []
    package init() {}
}

extension WriteBack {
    /// Replays the journal before the mount serves writes: resumes every acknowledged upload, reusing parts
    /// ListParts shows with a matching MD5, and aborts uploads for keys we staged but never committed.
    package func replay() async -> ReplayReport {
        var report = ReplayReport()
        let (records, damaged) = journal.load()
        for name in damaged {
            _ = Syscall.rename(journal.directory + "/" + name, journal.directory + "/" + name + ".damaged")
            report.unusable.append(name)
            logger.error("journal record is damaged; moved aside", metadata: ["record": "\(name)"])
        }
        let owned = Set(records.compactMap(\.uploadID))
        var swept = Set<String>()
        var known = Set(records.map(\.id))
        for record in records {
            guard let store = stores(record.store) else {
                logger.error("the journal holds an upload to a store this mount does not use; it stays journaled for a mount that does", metadata: [
                    "store": "\(record.store)", "bucket": "\(record.bucket)", "key": "\(record.key)", "record": "\(record.id)",
                ])
                report.waitingForStore.append((record.store, record.key))
                continue
            }
            // Any upload for this key that no record owns was started by us before a crash.
            if swept.insert(record.store + "\u{0}" + record.bucket + "\u{0}" + record.key).inserted {
                report.abortedUploads += await abortOrphans(store.client, bucket: record.bucket, key: record.key, keep: owned)
            }
            let path = stagingDirectory + "/" + record.id + ".data"
            if record.state == .open {
                if let id = record.uploadID, (try? await store.client.abortMultipartUpload(bucket: record.bucket, key: record.key, uploadID: id)) != nil {
                    report.abortedUploads += 1
                }
                _ = Syscall.unlink(path)
                journal.remove(record.id)
                continue
            }
            if let boot = record.unsyncedBoot, boot != options.bootID {
                // Written at `kernel` durability, and the machine went down before the background sync: the
                // staged file may hold zeros or stale pages where the power cut took bytes. Uploading it
                // would put a torn object in the bucket.
                logger.error("an acknowledged object was lost in a power cut: its bytes were in the page cache, not yet on the device (close-durability kernel); the bucket keeps what it had, write the object again", metadata: [
                    "bucket": "\(record.bucket)", "key": "\(record.key)", "bytes": "\(record.size)", "record": "\(journal.path(record.id)).lost",
                ])
                if let id = record.uploadID { _ = try? await store.client.abortMultipartUpload(bucket: record.bucket, key: record.key, uploadID: id) }
                _ = Syscall.unlink(path)
                journal.setAside(record.id, suffix: ".lost")
                let target = UploadTarget(store: record.store, bucket: record.bucket, key: record.key)
                report.lostInPowerCut.append(target)
                lock.withLock { $0.lostInPowerCut.append(target) }
                continue
            }
            guard case .success(let fd) = Syscall.open(path, O_RDWR), case .success(let size) = Syscall.fileSize(fd), size == record.size else {
                logger.error("staged bytes of an acknowledged object are missing or the wrong size; record kept aside", metadata: ["key": "\(record.key)", "staging": "\(path)"])
                journal.setAside(record.id, suffix: ".damaged")
                report.unusable.append(record.id)
                continue
            }
            // One ListParts per upload: its parts are reused below, and NoSuchUpload asks whether the store
            // completed the upload after the crash.
            var listed: [PartInfo]?
            var gone = false
            if let id = record.uploadID {
                do {
                    listed = try await store.client.listParts(bucket: record.bucket, key: record.key, uploadID: id)
                } catch let e as ObjectStoreError where e.kind == .noSuchUpload {
                    gone = true
                } catch {
                    // Unanswered: the parts are uploaded again, as for an upload the store no longer has.
                }
            }
            if gone, await completedBeforeCrash(store.client, record, fd: fd, size: size) {
                logger.info("the store completed this upload after the daemon stopped; nothing is uploaded again", metadata: ["key": "\(record.key)", "bytes": "\(size)"])
                Syscall.close(fd)
                _ = Syscall.unlink(path)
                journal.remove(record.id)
                report.completedBeforeCrash += 1
                continue
            }
            var metadata = record.metadata
            let mtime = metadata.removeValue(forKey: "mtime").flatMap(MetadataTime.parse) ?? Timestamp(seconds: record.created)
            var state = FileState(bucket: record.bucket, key: record.key, size: size, mtime: mtime, metadata: metadata)
            state.committed = state.generation
            // Unsynced from this boot: the daemon died and the kernel kept the pages. They go to the device
            // now, so the record rewritten below can say so.
            var synced = record.unsyncedBoot == nil
            if !synced {
                switch Syscall.fdatasync(fd) {
                case .success: synced = true
                case .failure(let e): logger.error("cannot sync a replayed staging file; its record stays unsynced", metadata: ["key": "\(record.key)", "error": "\(e)"])
                }
            }
            if synced { state.syncedGeneration = state.generation }
            state.journaled = true
            state.committedAt = monotonicSeconds()
            state.created = record.created
            state.lastUse = monotonicSeconds()
            state.highWater = size
            let file = stagedFile(id: record.id, store: store, descriptor: fd, path: path, state: state)
            if let id = record.uploadID, let listed {
                report.reusedParts += adoptParts(file, uploadID: id, parts: listed)
            }
            if record.unsyncedBoot != nil && synced {
                _ = journal.write { lock.withLock { _ in makeRecord(file) } }
            }
            lock.withLock { r in
                r.files[file.id] = file
                r.active[file.id] = file
            }
            report.resumed.append(file)
        }
        // Staging files without a record were never acknowledged.
        known.formUnion(records.map(\.id))
        for name in Syscall.listDirectory(stagingDirectory) where !known.contains(String(name.prefix { $0 != "." })) {
            _ = Syscall.unlink(stagingDirectory + "/" + name)
        }
        pump()
        return report
    }

    /// Whether a multipart upload ListParts no longer knows (NoSuchUpload) is gone because the store completed
    /// it with exactly the staged bytes: the key's ETag is the multipart ETag of the staged file cut into its
    /// parts (the MD5 of the parts' MD5s, then `-N`). An upload aborted instead, or completed with other bytes,
    /// or overwritten since, does not match, and is uploaded again as before.
    private func completedBeforeCrash(_ store: any ObjectStore, _ record: JournalRecord, fd: Int32, size: Int64) async -> Bool {
        guard let head = try? await store.headObject(bucket: record.bucket, key: record.key), head.size == size else { return false }
        let parts = geometry.partCount(fileSize: size)
        var digests: [UInt8] = []
        for n in 1...max(1, parts) {
            let range = geometry.range(ofPart: n, fileSize: size)
            guard let md5 = Digest.md5(file: fd, offset: range.lowerBound, length: Int64(range.count)) else { return false }
            digests += md5
        }
        return Self.isUpload(head, size: size, partMD5s: digests, parts: parts)
    }

    /// Keeps the listed parts of `uploadID` whose ETag is the MD5 of the staged bytes; returns how many.
    private func adoptParts(_ f: StagedFile, uploadID: String, parts: [PartInfo]) -> Int {
        let size = f.s.size
        var kept = 0
        f.s.uploadID = uploadID
        f.s.uploadMetadata = f.s.metadata
        for part in parts where part.partNumber <= geometry.partCount(fileSize: size) {
            let range = geometry.range(ofPart: part.partNumber, fileSize: size)
            guard Int64(range.count) == part.size,
                let md5 = f.withDescriptor({ Digest.md5(file: $0, offset: range.lowerBound, length: Int64(range.count)) }),
                Digest.unquoted(part.etag) == Digest.hex(md5)
            else { continue }
            f.s.uploaded[part.partNumber] = UploadedPart(generation: f.s.generation, etag: part.etag, length: part.size)
            f.s.partGeneration[part.partNumber] = f.s.generation
            kept += 1
        }
        return kept
    }

    private func abortOrphans(_ store: any ObjectStore, bucket: String, key: String, keep: Set<String>) async -> Int {
        guard let uploads = try? await store.listMultipartUploads(bucket: bucket, prefix: key) else { return 0 }
        var aborted = 0
        for u in uploads where u.key == key && !keep.contains(u.uploadID) {
            if (try? await store.abortMultipartUpload(bucket: bucket, key: key, uploadID: u.uploadID)) != nil { aborted += 1 }
        }
        return aborted
    }
}
