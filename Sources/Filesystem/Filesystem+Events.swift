import ObjectStore
import Platform

/// What an object-store event changed in one link that shows its key.
package struct EventEffect: Sendable {
    package enum Change: Sendable, Equatable {
        /// The mount did not know the object; it shows it now.
        case appeared
        /// The mount knew another version: its blocks, pages and entry are gone.
        case changed
        /// The bucket no longer has it: the name vanished.
        case vanished
        /// The mount already agreed with the bucket (a duplicate or stale event).
        case unchanged
        /// Nothing was done, and why (a file written here and not uploaded yet, a HEAD that failed).
        case skipped(String)
    }

    package var link: String
    /// The file's path in the namespace.
    package var path: String
    package var change: Change
    /// The file to fill into the disk tier: the link says `on-create: preload` and the bucket has it.
    package var preload: WarmTarget?
}

extension Filesystem {
    /// Whether some link shows `key` of `bucket` (after its naming rules and globs).
    package func shows(bucket: String, key: String) -> Bool { !linksShowing(bucket: bucket, key: key).isEmpty }

    private func linksShowing(bucket: String, key: String) -> [(Link, String)] {
        links.links(showing: bucket, key: key).filter { link, rel in
            !rel.hasSuffix("/")
                && rel.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { Namespace.isValidName(String($0)) }
                && link.policy.filter.admits(file: rel)
        }
    }

    /// Makes the mount agree with the bucket about one key an event named: a HEAD says what the bucket has
    /// now (the event is only a hint), then the old version loses its blocks in both tiers and the kernel's
    /// pages and entry, a new object appears, a deleted one vanishes. One effect per link showing the key.
    package func objectChanged(bucket: String, key: String) async -> [EventEffect] {
        var effects: [EventEffect] = []
        for (link, rel) in linksShowing(bucket: bucket, key: key) {
            let path = link.namespacePath(rel)
            var effect = EventEffect(link: link.path, path: path, change: .unchanged)
            if overlay[path] != nil {
                effect.change = .skipped("written here and not uploaded yet: the local file wins")
                effects.append(effect)
                continue
            }
            let now: ListedFile?
            do {
                let info = try await link.store.client.headObject(bucket: bucket, key: key)
                now = ListedFile(etag: info.etag, size: info.size, mtime: info.lastModified)
            } catch let e as ObjectStoreError where e.kind == .noSuchKey {
                now = nil
            } catch {
                effect.change = .skipped("HEAD failed: \(Self.reason(error))")
                effects.append(effect)
                continue
            }
            let old = knownFile(link, rel, path)
            switch (old, now) {
            case (nil, nil):
                effect.change = .unchanged
                notifyEntry(path)
            case (nil, let n?):
                appeared(path, n)
                effect.change = .appeared
            case (let o?, nil):
                replaced(link, rel, path, o, by: nil)
                effect.change = .vanished
            case (let o?, let n?):
                if o.etag == n.etag && o.size == n.size {
                    effect.change = .unchanged
                } else {
                    replaced(link, rel, path, o, by: n)
                    effect.change = .changed
                }
            }
            if let n = now, link.policy.preloadOnCreate {
                effect.preload = WarmTarget(path: path, link: link, relative: rel, etag: n.etag, size: n.size, staged: false)
            }
            link.counters.events.add(1, ordering: .relaxed)
            effects.append(effect)
        }
        return effects
    }

    /// What the mount knows of one file: its entry in the parent's cached listing, or its node.
    private func knownFile(_ link: Link, _ rel: String, _ path: String) -> ListedFile? {
        let (dir, name) = Namespace.split(path)
        if let e = listings.withLock({ $0.entry(dir, name) }), e.kind != .directory, !e.etag.isEmpty {
            return ListedFile(etag: e.etag, size: e.size, mtime: e.mtime)
        }
        return nodes.withLock { s in
            guard let ino = s.ino(at: path), let n = s.nodes[ino], n.attributes.kind != .directory, !n.etag.isEmpty else { return nil }
            return ListedFile(etag: n.etag, size: n.attributes.size, mtime: n.attributes.mtime)
        }
    }
}
