import ObjectStore
import Platform

/// Read-ahead of sibling directories' listings during a walk.
///
/// `os.walk`, `find` and `du` list one directory after another, in the order their parent's listing gave
/// them, and stat what each holds: a LIST (and, under the `exact` policy, the fetches of the files'
/// metadata) per directory, one after the other, so the walk is paced by round trips. Once the application
/// has opened two adjacent subdirectories of a directory, the next `FilesystemOptions.listingReadAhead`
/// ones are listed ahead of it, each fetched listing kept as readdir would have kept it and its files'
/// metadata fetches started. An application that opens a directory whose read-ahead LIST is still out waits
/// for it instead of sending another. Only a directory's first page (1,000 keys) is read ahead; the
/// application's readdir goes on from there.
extension Filesystem {
    /// Notes that the application opened directory `path` of `link` and lists the next sibling directories
    /// ahead when this looks like a walk.
    func readAheadListings(link: Link, path: String) {
        let ahead = options.listingReadAhead
        guard ahead > 0, !path.isEmpty else { return }
        let (parent, name) = Namespace.split(path)
        let ttl = link.policy.metadataTTL
        let now = monotonicSeconds()
        // The directory before this one in the parent's listing must have been listed (by the application
        // or ahead of it): one directory opened alone is not a walk. The flights are asked after the
        // listings' lock is let go: no two of the filesystem's locks are held at once.
        let (candidates, changes, before) = listings.withLock { s -> ([String], UInt64, String?) in
            guard let p = s.listings[parent], p.fetched + (ttl ?? .infinity) > now, let i = p.position(of: name),
                let previous = p.entries[..<i].lastIndex(where: { $0.kind == .directory })
            else { return ([], 0, nil) }
            let before = Namespace.join(parent, p.entries[previous].name)
            // The next `ahead` directories, less those listed already: the walk is led by `ahead` at most.
            var out: [String] = []
            var seen = 0
            var j = i + 1
            while seen < ahead, j < p.entries.count {
                let e = p.entries[j]
                j += 1
                guard e.kind == .directory else { continue }
                seen += 1
                let child = Namespace.join(parent, e.name)
                if let l = s.listings[child], l.fetched + (ttl ?? .infinity) > now { continue }
                out.append(child)
            }
            return (out, s.changes, s.listings[before] == nil ? before : nil)
        }
        guard !candidates.isEmpty, before.map({ listingFlights.isInFlight($0) }) ?? true else { return }
        for child in listingFlights.begin(candidates, limit: 4 * ahead) {
            Task { await prefetchListing(child, changes: changes) }
        }
    }

    /// Lists the first page of directory `path` into the listing cache, as a readdir from its start would;
    /// keeps it only when this mount changed no cached listing since `changes` was read.
    private func prefetchListing(_ path: String, changes: UInt64) async {
        defer { listingFlights.finish(path) }
        guard case .link(let link, let relative) = links.resolve(path) else { return }
        let prefix = link.listPrefix(relative)
        let readSummary = link.policy.metadata == .summary
        async let summary = readSummary ? loadSummary(link, prefix: prefix, path: path) : nil
        let page: ListObjectsPage
        do {
            page = try await link.store.client.listObjects(ListObjectsRequest(bucket: link.bucket.bucket, prefix: prefix, delimiter: "/"))
        } catch {
            // A read-ahead only: the application's own readdir lists it again and reports what fails. (The
            // summary's fetch is cancelled and awaited as the scope ends.)
            return
        }
        let markers = await markerMetadata(link, page.commonPrefixes)
        let loadedSummary = await summary
        var listing = Listing()
        listing.complete = page.nextContinuationToken == nil
        listing.nextToken = page.nextContinuationToken
        merge(page, into: &listing, link: link, path: path, prefix: prefix, markers: markers, summary: loadedSummary, local: localChildren(of: path, link: link))
        for (i, e) in listing.entries.enumerated() where e.posix == nil {
            if let posix = knownPosix(path: Namespace.join(path, e.name), entry: e) { listing.setPosix(posix, at: i) }
        }
        listing.fetched = monotonicSeconds()
        let kept = listings.withLock { s -> Bool in
            // A first page never replaces a listing: the application's own paging is at least as far.
            guard s.changes == changes, listing.complete ? s.listings[path]?.complete != true : s.listings[path] == nil else { return false }
            s.store(path, listing)
            return true
        }
        guard kept else { return }
        link.counters.listingReadAheads.add(1, ordering: .relaxed)
        readAheadMetadata(link: link, directory: path, entries: listing.entries)
    }

    /// Waits for a read-ahead LIST of `path` still out, then hands a directory handle that has loaded nothing
    /// yet the listing it brought (or one that landed between the open and this first read); true when the
    /// handle has it.
    func joinListingReadAhead(_ handle: UInt64, path: String, link: Link) async -> Bool {
        guard options.listingReadAhead > 0 else { return false }
        await listingFlights.wait(path)
        let now = monotonicSeconds()
        // A first page only (more to come) is taken too: the handle's readdir goes on from its token.
        guard let listing = listings.withLock({ $0.fresh(path, ttl: link.policy.metadataTTL, now: now) }), listing.complete || listing.nextToken != nil else { return false }
        return handles.withLock { s -> Bool in
            guard var d = s.directories[handle], d.listing.entries.isEmpty, d.listing.nextToken == nil, !d.listing.complete else { return false }
            d.listing = listing
            // A complete listing holds what a summarised directory's summary said; further pages read it
            // beside the next page, as a readdir from the start would have.
            d.summaryRead = listing.complete
            s.directories[handle] = d
            return true
        }
    }
}
