import Logging
import ObjectStore
import Platform

/// Per-directory metadata summaries, under the `summary` metadata policy: written after this mount changes
/// a directory's files, read when a directory is listed.
extension Filesystem {
    /// The summary of the directory at listing prefix `prefix`: empty when it has none; nil when it cannot
    /// be read or is not one (the listing then learns each file's metadata by a HEAD, as under `exact`).
    func loadSummary(_ link: Link, prefix: String, path: String) async -> DirectorySummary? {
        do {
            return try await fetchSummary(link, prefix: prefix, path: path)
        } catch {
            summaryWarning("cannot read a directory's metadata summary; its files are HEADed instead", path, "\(error)")
            return nil
        }
    }

    /// `loadSummary`, with the backend's errors thrown: a rewrite must not replace a summary it could not read.
    ///
    /// The first GET asks for the first 256 KiB (a whole GET into a smaller buffer is an error, not a short
    /// read); a larger summary is fetched again whole, at the ETag the first answer named.
    private func fetchSummary(_ link: Link, prefix: String, path: String) async throws -> DirectorySummary? {
        let key = prefix + DirectorySummary.objectName
        var request = GetObjectRequest(bucket: link.bucket.bucket, key: key, range: ByteRange(first: 0, last: Int64(Self.summaryFirstRead) - 1))
        var limit = Self.summaryFirstRead
        do {
            while true {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: limit, alignment: 16)
                defer { buffer.deallocate() }
                let got = try await link.store.client.getObject(request, into: buffer)
                if got.objectSize > Int64(got.bytesWritten) {
                    guard got.objectSize <= Int64(DirectorySummary.sizeLimit), request.range != nil else {
                        summaryWarning("a directory's metadata summary is over the size limit; its files are HEADed instead", path, "\(got.objectSize) bytes")
                        return nil
                    }
                    limit = Int(got.objectSize)
                    request = GetObjectRequest(bucket: link.bucket.bucket, key: key, ifMatch: got.etag)
                    continue
                }
                guard let summary = DirectorySummary(parsing: Array(UnsafeRawBufferPointer(rebasing: buffer[0..<got.bytesWritten]))[...]) else {
                    summaryWarning("a directory's metadata summary is not one lakecache can read; its files are HEADed instead", path, "key \(key)")
                    return nil
                }
                return summary
            }
        } catch let e as ObjectStoreError where e.kind == .noSuchKey {
            return DirectorySummary()
        } catch let e as ObjectStoreError where e.kind == .invalidRange {
            // An empty object: not a summary.
            summaryWarning("a directory's metadata summary is empty; its files are HEADed instead", path, "key \(key)")
            return nil
        }
    }

    /// Bytes the first GET of a summary asks for: about 2,800 entries.
    static let summaryFirstRead = 256 << 10

    /// A file of `path` changed here (written, its metadata changed, created as a symlink or special file)
    /// or left: its directory's summary is rewritten soon.
    func summaryChanged(_ path: String, _ change: SummaryQueue.Change) {
        guard case .link(let link, let relative) = links.resolve(path), link.policy.metadata == .summary, !link.policy.readOnly,
            !relative.isEmpty
        else { return }
        let (dir, name) = Namespace.split(path)
        guard name != DirectorySummary.objectName else { return }
        if summaries.record(dir: dir, link: link, name: name, change, now: monotonicSeconds()) {
            Task { await runSummaryFlusher() }
        }
    }

    private func runSummaryFlusher() async {
        while true {
            try? await Task.sleep(for: .milliseconds(250))
            await rewriteDue(all: false)
            if summaries.idle(stopping: true) { return }
        }
    }

    /// Writes every pending summary now; for unmount, so that what this mount wrote is described in the
    /// bucket. Gives up after `timeout` seconds (the next change rewrites a directory whole again).
    package func flushSummaries(timeout: Double = 30) async {
        let deadline = monotonicSeconds() + timeout
        while !summaries.idle(stopping: false) && monotonicSeconds() < deadline {
            await rewriteDue(all: true)
            if !summaries.idle(stopping: false) { try? await Task.sleep(for: .milliseconds(100)) }
        }
    }

    private func rewriteDue(all: Bool) async {
        let due = summaries.takeDue(now: monotonicSeconds(), all: all)
        guard !due.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            var next = due.makeIterator()
            func add(_ item: (String, SummaryQueue.Pending)) {
                group.addTask { [self] in
                    let failed = await rewriteSummary(dir: item.0, item.1)
                    if !summaries.finished(item.0, requeue: failed ? item.1 : nil, now: monotonicSeconds()) {
                        summaryWarning("gave up writing a directory's metadata summary; its files are HEADed when listed until it is written again", item.0, "\(SummaryQueue.attempts) attempts failed")
                    }
                }
            }
            for _ in 0..<4 { if let d = next.next() { add(d) } }
            for await _ in group { if let d = next.next() { add(d) } }
        }
    }

    /// Rewrites one directory's summary: the summary in the bucket, with this mount's changes over it, kept
    /// only for the files the bucket lists at the same ETag and size now. True when it failed.
    private func rewriteSummary(dir: String, _ pending: SummaryQueue.Pending) async -> Bool {
        let link = pending.link
        guard let relative = link.relative(namespacePath: dir) else { return false }
        let prefix = link.listPrefix(relative)
        let key = prefix + DirectorySummary.objectName
        let (store, bucket) = (link.store.client, link.bucket.bucket)
        do {
            let old = try await fetchSummary(link, prefix: prefix, path: dir)
            var listed: [String: (etag: PackedETag, size: Int64)] = [:]
            var token: String?
            repeat {
                let page = try await store.listObjects(ListObjectsRequest(bucket: bucket, prefix: prefix, delimiter: "/", continuationToken: token))
                for o in page.objects {
                    let name = String(o.key.dropFirst(prefix.count))
                    if !name.isEmpty && name != DirectorySummary.objectName { listed[name] = (PackedETag(o.etag), o.size) }
                }
                token = page.nextContinuationToken
            } while token != nil
            var entries = old?.entries ?? [:]
            for (name, change) in pending.changes {
                switch change {
                case .set(let e): entries[name] = e
                case .removed: entries.removeValue(forKey: name)
                }
            }
            entries = entries.filter { name, e in listed[name].map { e.describes(etag: $0.etag, size: $0.size) } ?? false }
            // Files this mount learned the metadata of (a HEAD, a listing of the same version) are described too.
            for (name, l) in listed where entries[name] == nil {
                if let posix = knownPosix(path: Namespace.join(dir, name), etag: l.etag.string) { entries[name] = DirectorySummary.Entry(etag: l.etag, size: l.size, posix: posix) }
            }
            let summary = DirectorySummary(entries: entries)
            if entries.isEmpty {
                if old.map({ !$0.entries.isEmpty }) ?? true { try await store.deleteObject(bucket: bucket, key: key) }
            } else if summary != old {
                _ = try await store.putObject(bucket: bucket, key: key, body: .bytes(summary.encoded()), options: PutOptions(contentType: "text/plain"))
            }
            return false
        } catch let e as ObjectStoreError where e.kind == .noSuchKey {
            return false
        } catch {
            summaryWarning("cannot write a directory's metadata summary; it is retried, and until then its new files are HEADed when listed", dir, "\(error)")
            return true
        }
    }

    private func summaryWarning(_ message: Logger.Message, _ path: String, _ cause: String) {
        warnRateLimited(message, ["path": "/\(path)", "cause": "\(cause)"])
    }
}
