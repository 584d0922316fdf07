import ObjectStore
import Platform
import ReadCache

/// Whole-link listings (`import: preload`, listing snapshots) and filling the disk tier with a link's data.
extension Filesystem {
    /// Makes `files` (a whole listing of `link`) the cached listing of every directory in it: lookups and
    /// readdir below the link then need no LIST until the TTL ends (never, for `metadata-ttl: indefinite`).
    func installListing(_ link: Link, _ files: some Sequence<(key: String, value: ListedFile)>) {
        var directories: [String: Listing] = ["": Listing()]
        let now = monotonicSeconds()
        for (rel, f) in files {
            var (dir, name) = Namespace.split(rel)
            let isNew = directories[dir] == nil
            directories[dir, default: Listing()].upsert(ListingEntry(name: name, kind: .file, size: f.size, mtime: f.mtime, etag: f.etag))
            // Each ancestor lists the directory below it; a directory seen before already has its ancestors.
            guard isNew else { continue }
            while !dir.isEmpty {
                let (parent, child) = Namespace.split(dir)
                if directories[parent]?.position(of: child) != nil { break }
                directories[parent, default: Listing()].upsert(ListingEntry(name: child, kind: .directory, size: 0, mtime: mountTime, etag: "", posix: .plain))
                dir = parent
                name = child
            }
        }
        let staged = overlay.withLock { $0.descendants(of: link.path) }
        listings.withLock { s in
            for (dir, var listing) in directories {
                listing.complete = true
                listing.fetched = now
                let path = link.namespacePath(dir)
                for (stagedPath, _) in staged where Namespace.split(stagedPath).parent == path { listing.remove(Namespace.split(stagedPath).name) }
                s.store(path, listing)
            }
        }
    }

    /// Lists the whole link once and installs it; for a link whose metadata never expires the listing is
    /// saved too, so the next mount needs no LIST. Returns the number of objects.
    @discardableResult
    package func listWhole(_ link: Link) async throws -> Int {
        let files = try await fullListing(link, below: "")
        installListing(link, files)
        saveSnapshot(link, files)
        return files.count
    }

    /// Installs the link's saved listing if there is one; returns the number of objects, or nil.
    package func loadSnapshot(_ link: Link) -> Int? {
        guard link.policy.metadataTTL == nil, let directory = options.snapshotDirectory,
            let files = ListingSnapshot.load(link: link, directory: directory)
        else { return nil }
        installListing(link, files)
        return files.count
    }

    func saveSnapshot(_ link: Link, _ files: [String: ListedFile]) {
        guard link.policy.metadataTTL == nil, let directory = options.snapshotDirectory else { return }
        if case .failure(let e) = ListingSnapshot.save(files, link: link, directory: directory) {
            logger.warning("cannot save the listing snapshot; the next mount lists the link again", metadata: ["link": "/\(link.path)", "error": "\(e)"])
        }
    }

    /// What `preloadData` did.
    package struct PreloadReport: Sendable {
        package var objects = 0
        package var bytes: Int64 = 0
        /// Stopped because the disk tier was nearly full.
        package var stoppedFull = false
    }

    /// Fills the disk tier with the link's data, below every application read: a block at a time per
    /// object, `concurrency` objects at once, pausing while `busy()` says applications are reading, and
    /// stopping once the disk tier is within a tenth of its capacity.
    package func preloadData(_ link: Link, concurrency: Int = 2, busy: @escaping @Sendable () -> Bool) async -> PreloadReport {
        guard let disk = cache.disk else { return PreloadReport() }
        let files = known(link, below: "")
        var report = PreloadReport()
        let blockSize = Int64(cache.blockSize)
        var queue = files.sorted { $0.key < $1.key }[...]
        await withTaskGroup(of: Int64?.self) { group in
            func next() -> Bool {
                guard let (rel, f) = queue.popFirst() else { return false }
                let version = link.version(key: link.key(rel), etag: f.etag, size: f.size)
                group.addTask { [cache] in
                    var index: Int64 = 0
                    while index * blockSize < f.size {
                        if Task.isCancelled { return nil }
                        while busy() { try? await Task.sleep(nanoseconds: 50_000_000) }
                        if disk.usage.bytes + blockSize > disk.capacity - disk.capacity / 10 { return nil }
                        let outcome = await withCheckedContinuation { c in cache.fill(version, block: index, memory: false) { c.resume(returning: $0) } }
                        switch outcome {
                        case .held: index += 1
                        case .busy: try? await Task.sleep(nanoseconds: 20_000_000)
                        case .failed: return nil  // a preload is best effort: the next read fetches it
                        }
                    }
                    return f.size
                }
                return true
            }
            for _ in 0..<max(1, concurrency) where next() {}
            for await done in group {
                if let done {
                    report.objects += 1
                    report.bytes += done
                } else {
                    report.stoppedFull = true
                }
                if !report.stoppedFull { _ = next() }
            }
        }
        return report
    }
}
