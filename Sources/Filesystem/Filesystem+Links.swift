import ObjectStore
import Platform
import ReadCache
import WriteBack

/// Changing the links of a live mount, and what each link holds.
extension Filesystem {
    /// What a reload changed.
    package struct LinkChanges: Sendable {
        package var added: [String] = []
        package var removed: [String] = []
        package var changed: [String] = []
    }

    /// Replaces the namespace's links. Added links appear at once; a changed policy applies to new opens
    /// (open handles keep the link they were opened on); a removed link leaves the namespace once its pending
    /// uploads are durable and no file is open on it, until then it stays readable by the handles that have
    /// it. Throws, changing nothing, if the new links overlap.
    @discardableResult
    package func replaceLinks(_ new: [Link]) throws(LinkError) -> LinkChanges {
        let (added, removed, changed) = try links.replace(with: new)
        var report = LinkChanges()
        report.added = added.map(\.path)
        report.removed = removed.map(\.path)
        report.changed = changed.map(\.path)
        for link in added + removed { notifyEntry(link.path) }
        for link in changed {
            // What a listing showed under the old policy (globs, metadata) may not hold under the new one.
            listings.withLock { $0.forget(below: link.path) }
            notifyEntry(link.path)
        }
        for link in removed { drain(link) }
        return report
    }

    /// Waits, in the background, until a removed link has no pending upload and no open file, then drops it
    /// and everything the mount knew below it.
    private func drain(_ link: Link) {
        Task {
            while true {
                let pending = writeBack?.stats(matching: { self.belongs($0, to: link) }).pendingFiles ?? 0
                let open = handles.withLock { s in s.files.values.contains { $0.link.path == link.path && $0.link === link } }
                if pending == 0 && !open { break }
                try? await Task.sleep(nanoseconds: 200_000_000)
            }
            // A reload may have brought the path back meanwhile, with another link: then nothing to drop.
            if links.snapshot.draining[link.path] === link {
                links.finishDraining(link.path)
                if links.link(for: link.path) == nil {
                    listings.withLock { $0.forget(below: link.path) }
                    overlay.withLock { s in
                        for (path, _) in s.descendants(of: link.path) { s.remove(path) }
                    }
                }
                notifyEntry(link.path)
                logger.info("link removed", metadata: ["link": "/\(link.path)", "url": "\(link.bucket)"])
            }
        }
    }

    /// Whether an upload goes to an object of `link`.
    func belongs(_ t: UploadTarget, to link: Link) -> Bool {
        t.store == link.store.name && t.bucket == link.bucket.bucket && t.key.hasPrefix(link.bucket.prefix)
    }

    /// The link that shows `object`, for per-link figures; nil when none does.
    package func linkPath(of object: ObjectVersion?) -> String? {
        guard let object else { return nil }
        return links.paths(store: object.store?.name ?? "", bucket: object.bucket, key: object.key).first?.0.path
    }

    /// Per-link figures for `status`: cache bytes in memory and on disk, read hits and misses, uploads.
    package struct LinkUsage: Sendable {
        package var memoryBytes: Int64 = 0
        package var diskBytes: Int64 = 0
        package var reads = 0
        package var readHits = 0
        package var uploads = UploadStats()
        package init() {}
    }

    /// What each link holds now, by link path.
    package func usage() -> [String: LinkUsage] {
        let all = links.links
        var out: [String: LinkUsage] = [:]
        for link in all {
            var u = LinkUsage()
            u.reads = link.counters.reads.load(ordering: .relaxed)
            u.readHits = link.counters.readHits.load(ordering: .relaxed)
            u.uploads = writeBack?.stats(matching: { self.belongs($0, to: link) }) ?? UploadStats()
            out[link.path] = u
        }
        for (path, bytes) in cache.memoryUsage(by: { linkPath(of: $0) }) where out[path] != nil { out[path]!.memoryBytes = bytes }
        for (path, bytes) in cache.disk?.usage(by: { linkPath(of: $0) }) ?? [:] where out[path] != nil { out[path]!.diskBytes = bytes }
        return out
    }
}
