import ObjectStore
import Platform
import ReadCache
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

extension Filesystem {
    /// Opens a directory: a fresh cached listing is reused, otherwise paging starts at the first readdir. A
    /// directory above links lists the links and directories below it.
    package func opendir(_ ino: UInt64, reply: @escaping @Sendable (Result<UInt64, FilesystemError>) -> Void) {
        guard let node = nodes[ino] else { return reply(.failure(FilesystemError(ESTALE, "unknown inode \(ino)"))) }
        guard node.attributes.kind == .directory else { return reply(.failure(FilesystemError(ENOTDIR, "not a directory"))) }
        var handle: HandleTable.DirectoryHandle
        switch links.resolve(node.path) {
        case .none:
            return reply(.failure(FilesystemError(ESTALE, "/\(node.path) is no longer in the namespace")))
        case .synthetic(let children):
            var listing = Listing()
            for name in children {
                listing.upsert(ListingEntry(name: name, kind: .directory, size: 0, mtime: mountTime, etag: "", posix: .plain))
            }
            listing.complete = true
            listing.fetched = monotonicSeconds()
            handle = HandleTable.DirectoryHandle(ino: ino, path: node.path, link: nil, prefix: "", listing: listing)
        case .link(let link, let relative):
            var listing = Listing()
            let now = monotonicSeconds()
            if let cached = listings.withLock({ $0.fresh(node.path, ttl: link.policy.metadataTTL, now: now) }), cached.complete {
                listing = cached
            }
            handle = HandleTable.DirectoryHandle(ino: ino, path: node.path, link: link, prefix: link.listPrefix(relative), listing: listing)
            readAheadListings(link: link, path: node.path)
        }
        reply(.success(handles.withLock { $0.add(handle) }))
    }

    /// Entries from `offset` on (0 is the start; "." and ".." come first), up to `limit`.
    ///
    /// Pages of ListObjectsV2 are fetched only as the reader advances past what is loaded.
    package func readdir(_ handle: UInt64, offset: Int, limit: Int = 1024, reply: @escaping @Sendable (Result<[DirectoryEntry], FilesystemError>) -> Void) {
        guard let h = handles.withLock({ $0.directories[handle] }) else { return reply(.failure(FilesystemError(EBADF, "unknown directory handle"))) }
        let available = h.listing.entries.count + 2
        if offset < available || h.listing.complete && h.listing.fetched > 0 {
            return reply(.success(entries(h, from: offset, limit: limit)))
        }
        Task {
            do {
                // A read-ahead LIST of this directory still out brings the listing this page would.
                var joined = false
                if let link = h.link, offset <= 2, h.listing.entries.isEmpty, h.listing.nextToken == nil {
                    joined = await joinListingReadAhead(handle, path: h.path, link: link)
                }
                if !joined { try await loadPage(handle) }
                readdir(handle, offset: offset, limit: limit, reply: reply)
            } catch {
                reply(.failure(failed("readdir", h.path, error)))
            }
        }
    }

    private func entries(_ h: HandleTable.DirectoryHandle, from offset: Int, limit: Int) -> [DirectoryEntry] {
        var out: [DirectoryEntry] = []
        let dir = nodes[h.ino]
        let selfAttrs = dir?.attributes ?? directoryAttributes(ino: h.ino)
        let policy = h.link?.policy ?? LinkPolicy()
        let ttl = h.link == nil ? 365 * 86400 : policy.kernelTTL
        var i = offset
        defer { for j in out.indices { out[j].ttl = ttl } }
        while out.count < limit {
            if i == 0 {
                out.append(DirectoryEntry(name: ".", attributes: selfAttrs, offset: 1))
            } else if i == 1 {
                let parentAttrs = dir.flatMap { nodes[$0.parent]?.attributes } ?? selfAttrs
                out.append(DirectoryEntry(name: "..", attributes: parentAttrs, offset: 2))
            } else if i - 2 < h.listing.entries.count {
                let e = h.listing.entries[i - 2]
                let path = Namespace.join(h.path, e.name)
                let ino = nodes.withLock { $0.inode(of: path) }
                if h.link == nil {
                    out.append(DirectoryEntry(name: e.name, attributes: directoryAttributes(ino: ino), offset: i + 1))
                } else if let f = overlay[path] {
                    out.append(DirectoryEntry(name: e.name, attributes: localAttributes(ino: ino, file: f, policy: policy), offset: i + 1))
                } else {
                    let posix = knownPosix(path: path, entry: e)
                    let exact = posix != nil || e.kind == .directory || policy.metadata == .listing
                    out.append(DirectoryEntry(name: e.name, attributes: attributes(ino: ino, kind: e.kind, size: e.size, mtime: e.mtime, posix: posix, policy: policy), offset: i + 1, exact: exact))
                }
            } else {
                break
            }
            i += 1
        }
        return out
    }

    /// Fetches the next page of a directory handle's listing; a complete listing is shared with lookups.
    private func loadPage(_ handle: UInt64) async throws {
        guard let h = handles.withLock({ $0.directories[handle] }), let link = h.link else { throw FilesystemError(EBADF, "unknown directory handle") }
        // The summary is read beside the first page, so a summarised directory costs no extra round trip.
        let readSummary = link.policy.metadata == .summary && !h.summaryRead
        async let summary = readSummary ? loadSummary(link, prefix: h.prefix, path: h.path) : nil
        let page = try await link.store.client.listObjects(ListObjectsRequest(bucket: link.bucket.bucket, prefix: h.prefix, delimiter: "/", continuationToken: h.listing.nextToken))
        let markers = await markerMetadata(link, page.commonPrefixes)
        let loadedSummary = await summary
        let local = localChildren(of: h.path, link: link)
        let added = handles.withLock { s -> (HandleTable.DirectoryHandle, Int)? in
            guard var d = s.directories[handle] else { return nil }
            if readSummary {
                d.summary = loadedSummary
                d.summaryRead = true
            }
            let before = d.listing.entries.count
            merge(page, into: &d.listing, link: link, path: d.path, prefix: d.prefix, markers: markers, summary: d.summary, local: local)
            d.listing.fetched = monotonicSeconds()
            s.directories[handle] = d
            return (d, before)
        }
        guard let (d, before) = added else { return }
        // What the node table knew of the new entries (written or HEADed here) fills them in.
        let newEntries = Array(d.listing.entries[min(before, d.listing.entries.count)...])
        for e in newEntries where e.posix == nil {
            if let posix = knownPosix(path: Namespace.join(d.path, e.name), entry: e) { handles.withLock { $0.learn(Namespace.join(d.path, e.name), etag: e.etag, posix: posix) } }
        }
        let listing = handles.withLock { $0.directories[handle]?.listing } ?? d.listing
        listings.withLock { s in
            if listing.complete {
                s.store(d.path, listing)
            } else if s.listings[d.path].map({ !$0.complete || $0.fetched + (link.policy.metadataTTL ?? .infinity) <= monotonicSeconds() }) ?? true {
                // Lookups during the paging (`ls -l` stats each name as readdir hands it out) find the entries
                // so far instead of asking the bucket for each; a fresh complete listing is not replaced.
                s.store(d.path, listing)
            }
        }
        readAheadMetadata(link: link, directory: d.path, entries: newEntries)
    }

    /// Files staged under `path` (written here, not yet uploaded) and keys whose deletes wait for open handles.
    func localChildren(of path: String, link: Link) -> (staged: [(String, StagedFile)], deferred: [String]) {
        overlay.withLock { s in (s.children(of: path), s.deferredDeletes.values.filter { $0.link === link }.map(\.key)) }
    }

    /// Adds a listing page as readdir shows it: through the link's filter (counted), with a summary's
    /// metadata, without keys whose deletes wait for open handles, and, once the listing is complete, with
    /// the files staged here that are not uploaded yet.
    func merge(
        _ page: ListObjectsPage, into listing: inout Listing, link: Link, path: String, prefix: String,
        markers: [String: [String: String]], summary: DirectorySummary?, local: (staged: [(String, StagedFile)], deferred: [String])
    ) {
        let dirRelative = link.relative(namespacePath: path) ?? ""
        let filter = link.policy.filter
        let before = listing.entries.count
        let counts = listing.add(page: page, prefix: prefix, mountTime: mountTime, markers: markers) { name, isDirectory in
            let rel = Namespace.join(dirRelative, name)
            return isDirectory ? filter.admits(directory: rel) : filter.admits(file: rel)
        }
        if let summary {
            for i in before..<listing.entries.count where listing.entries[i].posix == nil && listing.entries[i].kind == .file {
                let e = listing.entries[i]
                if let p = summary.posix(name: e.name, etag: e.packedETag, size: e.size) { listing.setPosix(p, at: i) }
            }
        }
        link.counters.skippedKeys.add(counts.skipped, ordering: .relaxed)
        link.counters.shadowedFiles.add(counts.shadowed, ordering: .relaxed)
        link.counters.excludedKeys.add(counts.excluded, ordering: .relaxed)
        // Unlinked while open: the object is still in the bucket until the last release, not in the directory.
        for key in local.deferred {
            if let rel = link.relative(forKey: key), Namespace.split(rel).parent == dirRelative { listing.remove(Namespace.split(rel).name) }
        }
        if listing.complete {
            // Files written here but not yet uploaded are part of the directory too.
            for (name, f) in local.staged {
                let (size, mtime, _, _) = writeBack!.attributes(f)
                listing.upsert(ListingEntry(name: name, kind: .file, size: size, mtime: mtime, etag: ""))
            }
        }
    }

    /// POSIX metadata of subdirectory markers (`dir/` objects), by common prefix; those without one are absent.
    ///
    /// A listing shows directories only as common prefixes, without the mode, owner and mtime that mkdir,
    /// chmod or s3fs stored on the marker. The HEADs run in parallel, so a page costs one round trip more
    /// only when it has subdirectories.
    func markerMetadata(_ link: Link, _ prefixes: [String]) async -> [String: [String: String]] {
        guard !prefixes.isEmpty else { return [:] }
        let (store, bucket) = (link.store.client, link.bucket.bucket)
        return await withTaskGroup(of: (String, [String: String]?).self) { group in
            var out: [String: [String: String]] = [:]
            var next = prefixes.makeIterator()
            func add(_ key: String) {
                group.addTask { (key, (try? await store.headObject(bucket: bucket, key: key))?.metadata) }
            }
            for _ in 0..<32 { if let p = next.next() { add(p) } }
            for await (key, metadata) in group {
                if let metadata, !metadata.isEmpty { out[key] = metadata }
                if let p = next.next() { add(p) }
            }
            return out
        }
    }

    /// readdirplus handed these entries to the kernel: each now holds a lookup reference.
    package func entriesReturned(_ handle: UInt64, _ returned: ArraySlice<DirectoryEntry>) {
        guard let h = handles.withLock({ $0.directories[handle] }) else { return }
        let policy = h.link?.policy ?? LinkPolicy()
        // Entries listed without attributes took no reference.
        for e in returned where e.exact && e.name != "." && e.name != ".." {
            let path = Namespace.join(h.path, e.name)
            guard h.link != nil else {
                nodes.withLock { s in
                    let ino = s.inode(of: path)
                    var node = s.nodes[ino] ?? Node(ino: ino, parent: h.ino, directory: h.path, name: e.name, attributes: e.attributes, expires: .infinity, lookups: 0, etag: "", metadata: [:])
                    node.lookups += 1
                    s.nodes[ino] = node
                    s.index(path, ino)
                }
                continue
            }
            guard let i = h.listing.position(of: e.name) else { continue }
            let le = h.listing.entries[i]
            if let f = overlay[path] {
                _ = rememberLocal(parent: h.ino, name: e.name, file: f, policy: policy)
                continue
            }
            remember(parent: h.ino, name: e.name, kind: le.kind, size: le.size, mtime: le.mtime, etag: le.etag, metadata: nil, posix: knownPosix(path: path, entry: le), policy: policy, countLookup: true)
        }
    }

    package func releasedir(_ handle: UInt64) {
        handles.withLock { _ = $0.directories.removeValue(forKey: handle) }
    }
}
