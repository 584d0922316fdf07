import Platform
import ObjectStore
import ReadCache

#if canImport(Glibc)
import Glibc
#endif

extension Filesystem {
    /// Opens a directory: a fresh cached listing is reused, otherwise paging starts at the first readdir.
    package func opendir(_ ino: UInt64, reply: @escaping @Sendable (Result<UInt64, FilesystemError>) -> Void) {
        let now = monotonicSeconds()
        let result = state.withLock { s -> Result<UInt64, FilesystemError> in
            guard let node = s.nodes[ino] else { return .failure(FilesystemError(ESTALE, "unknown inode \(ino)")) }
            guard node.attributes.kind == .directory else { return .failure(FilesystemError(ENOTDIR, "not a directory")) }
            var listing = Listing()
            if let cached = s.listings[node.path], cached.complete, cached.fetched + (options.metadataTTL ?? .infinity) > now {
                listing = cached
            }
            let handle = s.nextHandle
            s.nextHandle += 1
            s.directories[handle] = DirectoryHandle(ino: ino, path: node.path, prefix: prefix(for: node.path), listing: listing)
            return .success(handle)
        }
        reply(result)
    }

    /// Entries from `offset` on (0 is the start; "." and ".." come first), up to `limit`.
    ///
    /// Pages of ListObjectsV2 are fetched only as the reader advances past what is loaded.
    package func readdir(_ handle: UInt64, offset: Int, limit: Int = 1024, reply: @escaping @Sendable (Result<[DirectoryEntry], FilesystemError>) -> Void) {
        enum Step { case answer([DirectoryEntry]), fetch, fail(FilesystemError) }
        let step = state.withLock { s -> Step in
            guard let h = s.directories[handle] else { return .fail(FilesystemError(EBADF, "unknown directory handle")) }
            let available = h.listing.entries.count + 2
            if offset < available || h.listing.complete && h.listing.fetched > 0 {
                return .answer(entries(s, h, from: offset, limit: limit))
            }
            return .fetch
        }
        switch step {
        case .answer(let e): reply(.success(e))
        case .fail(let e): reply(.failure(e))
        case .fetch:
            Task {
                do {
                    try await loadPage(handle)
                    readdir(handle, offset: offset, limit: limit, reply: reply)
                } catch {
                    reply(.failure(FilesystemError.from(error)))
                }
            }
        }
    }

    private func entries(_ s: State, _ h: DirectoryHandle, from offset: Int, limit: Int) -> [DirectoryEntry] {
        var out: [DirectoryEntry] = []
        let dir = s.nodes[h.ino]
        let selfAttrs = dir?.attributes ?? FileAttributes(ino: h.ino, kind: .directory, size: 0, mtime: mountTime, mode: options.dirMode, uid: options.uid, gid: options.gid)
        var i = offset
        while out.count < limit {
            if i == 0 {
                out.append(DirectoryEntry(name: ".", attributes: selfAttrs, offset: 1))
            } else if i == 1 {
                let parentAttrs = dir.flatMap { s.nodes[$0.parent]?.attributes } ?? selfAttrs
                out.append(DirectoryEntry(name: "..", attributes: parentAttrs, offset: 2))
            } else if i - 2 < h.listing.entries.count {
                let e = h.listing.entries[i - 2]
                let path = Namespace.join(dir?.path ?? "", e.name)
                let ino = inode(s, of: path)
                if let f = s.local[path] {
                    out.append(DirectoryEntry(name: e.name, attributes: localAttributes(ino: ino, file: f), offset: i + 1))
                } else {
                    let posix = knownPosix(s, path: path, entry: e)
                    let exact = posix != nil || e.kind == .directory || options.metadata == .listing
                    out.append(DirectoryEntry(name: e.name, attributes: attributes(ino: ino, kind: e.kind, size: e.size, mtime: e.mtime, posix: posix), offset: i + 1, exact: exact))
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
        guard let (prefix, token) = state.withLock({ s -> (String, String?)? in
            guard let h = s.directories[handle] else { return nil }
            return (h.prefix, h.listing.nextToken)
        }) else { throw FilesystemError(EBADF, "unknown directory handle") }
        let page = try await store.listObjects(ListObjectsRequest(bucket: options.bucket.bucket, prefix: prefix, delimiter: "/", continuationToken: token))
        let markers = await markerMetadata(page.commonPrefixes)
        let added = state.withLock { s -> (String, ArraySlice<ListingEntry>)? in
            guard var h = s.directories[handle] else { return nil }
            let before = h.listing.entries.count
            let counts = h.listing.add(page: page, prefix: prefix, mountTime: mountTime, markers: markers)
            for i in before..<h.listing.entries.count where h.listing.entries[i].posix == nil {
                h.listing.entries[i].posix = knownPosix(s, path: Namespace.join(h.path, h.listing.entries[i].name), entry: h.listing.entries[i])
            }
            defer { s.directories[handle] = h }
            s.counters.skippedKeys += counts.skipped
            s.counters.shadowedFiles += counts.shadowed
            // Unlinked while open: the object is still in the bucket until the last release, not in the directory.
            let dir = s.nodes[h.ino]?.path ?? ""
            for key in s.deferredDeletes.values {
                if let p = path(forKey: key), Self.split(p).parent == dir { h.listing.remove(Self.split(p).name) }
            }
            if h.listing.complete {
                // Files written here but not yet uploaded are part of the directory too.
                for (name, f) in localChildren(s, of: dir) {
                    let (size, mtime, _, _) = writeBack!.attributes(f)
                    h.listing.upsert(ListingEntry(name: name, kind: .file, size: size, mtime: mtime, etag: ""))
                }
                h.listing.fetched = monotonicSeconds()
                cacheListing(&s, path: h.path, listing: h.listing)
            } else if s.listings[h.path].map({ !$0.complete || $0.fetched + (options.metadataTTL ?? .infinity) <= monotonicSeconds() }) ?? true {
                // Lookups during the paging (`ls -l` stats each name as readdir hands it out) find the entries
                // so far instead of asking the bucket for each; a fresh complete listing is not replaced.
                var partial = h.listing
                partial.fetched = monotonicSeconds()
                cacheListing(&s, path: h.path, listing: partial)
            }
            return (h.path, h.listing.entries[min(before, h.listing.entries.count)...])
        }
        if let (dir, entries) = added { readAheadMetadata(directory: dir, entries: Array(entries)) }
    }

    /// POSIX metadata of subdirectory markers (`dir/` objects), by common prefix; those without one are absent.
    ///
    /// A listing shows directories only as common prefixes, without the mode, owner and mtime that mkdir,
    /// chmod or s3fs stored on the marker. The HEADs run in parallel, so a page costs one round trip more
    /// only when it has subdirectories.
    func markerMetadata(_ prefixes: [String]) async -> [String: [String: String]] {
        guard !prefixes.isEmpty else { return [:] }
        let bucket = options.bucket.bucket
        return await withTaskGroup(of: (String, [String: String]?).self) { group in
            var out: [String: [String: String]] = [:]
            var next = prefixes.makeIterator()
            func add(_ key: String) {
                group.addTask { (key, (try? await self.store.headObject(bucket: bucket, key: key))?.metadata) }
            }
            for _ in 0..<32 { if let p = next.next() { add(p) } }
            for await (key, metadata) in group {
                if let metadata, !metadata.isEmpty { out[key] = metadata }
                if let p = next.next() { add(p) }
            }
            return out
        }
    }

    /// Keeps a complete listing for lookups, within the entry budget (least recently used go first).
    private func cacheListing(_ s: inout State, path: String, listing: Listing) {
        s.clock += 1
        var l = listing
        l.lastUse = s.clock
        if let old = s.listings[path] { s.listingEntries -= old.entries.count }
        s.listings[path] = l
        s.listingEntries += l.entries.count
        s.negative.removeValue(forKey: path)
        if s.listingEntries > options.maxCachedListingEntries {
            for (victim, old) in s.listings.sorted(by: { $0.value.lastUse < $1.value.lastUse }) where victim != path {
                s.listings.removeValue(forKey: victim)
                s.listingEntries -= old.entries.count
                if s.listingEntries <= options.maxCachedListingEntries { break }
            }
        }
    }

    /// readdirplus handed these entries to the kernel: each now holds a lookup reference.
    package func entriesReturned(_ handle: UInt64, _ returned: ArraySlice<DirectoryEntry>) {
        state.withLock { s in
            guard let h = s.directories[handle] else { return }
            // Entries listed without attributes took no reference.
            for e in returned where e.exact && e.name != "." && e.name != ".." {
                guard let i = h.listing.byName[e.name] else { continue }
                let le = h.listing.entries[i]
                let path = Namespace.join(s.nodes[h.ino]?.path ?? "", e.name)
                if let f = s.local[path] {
                    _ = rememberLocal(&s, parent: h.ino, name: e.name, file: f)
                    continue
                }
                _ = remember(&s, parent: h.ino, name: e.name, kind: le.kind, size: le.size, mtime: le.mtime, etag: le.etag, metadata: nil, posix: knownPosix(s, path: path, entry: le), countLookup: true)
            }
        }
    }

    package func releasedir(_ handle: UInt64) {
        state.withLock { _ = $0.directories.removeValue(forKey: handle) }
    }
}
