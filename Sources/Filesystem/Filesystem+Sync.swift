import ObjectStore
import Platform
import ReadCache

#if canImport(Glibc)
import Glibc
#endif

/// What a sync found, compared by (key, ETag, size) with what the mount knew.
package struct SyncReport: Sendable, Equatable {
    package var new = 0
    package var changed = 0
    package var deleted = 0
    package var unchanged = 0
    /// Objects the mount lists now, below the synced path.
    package var objects = 0
    package var seconds = 0.0
    /// The links that were listed.
    package var links: [String] = []

    package init() {}

    /// Adds another link's counts.
    package mutating func add(_ o: SyncReport) {
        new += o.new
        changed += o.changed
        deleted += o.deleted
        unchanged += o.unchanged
        objects += o.objects
        links += o.links
    }
}

/// One object of a full (recursive) listing of a link, by its path relative to the link.
struct ListedFile: Sendable, Equatable {
    var etag: String
    var size: Int64
    var mtime: Timestamp
}

extension Filesystem {
    /// Re-lists the links under `path` and makes the mount agree with the bucket: changed objects lose their
    /// cached blocks (both tiers) and the kernel's pages and entry, new ones appear at once, deleted ones
    /// vanish. Files written here and not yet uploaded are left as they are.
    package func sync(path: String) async throws(FilesystemError) -> SyncReport {
        let started = monotonicSeconds()
        var targets: [(Link, String)] = []
        switch links.resolve(path) {
        case .none:
            throw FilesystemError(ENOENT, "/\(path) is not in the mount's namespace; lakecache links MOUNTPOINT lists it")
        case .link(let link, let relative):
            targets = [(link, relative)]
        case .synthetic:
            targets = links.links.filter { Namespace.inside($0.path, path) }.map { ($0, "") }
        }
        var report = SyncReport()
        for (link, relative) in targets {
            let fresh: [String: ListedFile]
            do {
                fresh = try await fullListing(link, below: relative)
            } catch {
                throw failed("sync", link.namespacePath(relative), error)
            }
            var one = apply(fresh, to: link, below: relative)
            one.links = [link.path]
            if relative.isEmpty { saveSnapshot(link, fresh) }
            report.add(one)
            link.counters.syncs.add(1, ordering: .relaxed)
        }
        report.seconds = monotonicSeconds() - started
        return report
    }

    /// Every object below `relative` (a directory of the link), by path relative to the link, after the
    /// naming rules and the link's globs; markers are left out (directories follow from their keys).
    func fullListing(_ link: Link, below relative: String) async throws -> [String: ListedFile] {
        let prefix = link.listPrefix(relative)
        var out: [String: ListedFile] = [:]
        var token: String?
        repeat {
            let page = try await link.store.client.listObjects(ListObjectsRequest(bucket: link.bucket.bucket, prefix: prefix, continuationToken: token))
            for o in page.objects {
                guard let rel = link.relative(forKey: o.key), !rel.isEmpty, !rel.hasSuffix("/") else { continue }
                guard rel.split(separator: "/", omittingEmptySubsequences: false).allSatisfy({ Namespace.isValidName(String($0)) }) else { continue }
                guard link.policy.filter.admits(file: rel) else { continue }
                out[rel] = ListedFile(etag: o.etag, size: o.size, mtime: o.lastModified)
            }
            token = page.nextContinuationToken
        } while token != nil
        return out
    }

    /// What the mount knows of files below `relative` in `link`: its cached listings and the nodes the kernel
    /// holds, by path relative to the link.
    func known(_ link: Link, below relative: String) -> [String: ListedFile] {
        let root = link.namespacePath(relative)
        var out: [String: ListedFile] = [:]
        listings.withLock { s in
            for (dir, listing) in s.listings where Namespace.inside(dir, root) {
                guard let dirRel = link.relative(namespacePath: dir) else { continue }
                for e in listing.entries where e.kind != .directory && !e.etag.isEmpty {
                    out[Namespace.join(dirRel, e.name)] = ListedFile(etag: e.etag, size: e.size, mtime: e.mtime)
                }
            }
        }
        nodes.withLock { s in
            // By path first: touching every node (and copying it) costs more than comparing paths.
            for (path, ino) in s.nodes.paths where Namespace.inside(path, root) && !path.hasPrefix(Namespace.detachedPrefix) {
                guard let n = s.nodes[ino], n.attributes.kind != .directory, !n.etag.isEmpty else { continue }
                guard let rel = link.relative(namespacePath: path), out[rel] == nil else { continue }
                out[rel] = ListedFile(etag: n.etag, size: n.attributes.size, mtime: n.attributes.mtime)
            }
        }
        return out
    }

    /// Makes the mount's view below `relative` equal to `fresh`, counting what changed.
    func apply(_ fresh: [String: ListedFile], to link: Link, below relative: String) -> SyncReport {
        var report = SyncReport()
        let before = known(link, below: relative)
        let staged = overlay.withLock { s in Set(s.descendants(of: link.namespacePath(relative)).map(\.0)) }
        var touchedDirectories = Set<String>()
        for (rel, old) in before {
            let path = link.namespacePath(rel)
            if staged.contains(path) { continue }
            guard let now = fresh[rel] else {
                report.deleted += 1
                replaced(link, rel, path, old, by: nil)
                touchedDirectories.insert(Namespace.split(path).parent)
                continue
            }
            if now.etag == old.etag && now.size == old.size {
                report.unchanged += 1
            } else {
                report.changed += 1
                replaced(link, rel, path, old, by: now)
            }
        }
        for (rel, now) in fresh where before[rel] == nil {
            let path = link.namespacePath(rel)
            if staged.contains(path) { continue }
            report.new += 1
            appeared(path, now)
        }
        report.objects = fresh.count
        // A cached directory left without any key below it is gone too (unless a marker keeps it: the next
        // lookup decides).
        let live = Set(fresh.keys.flatMap { rel -> [String] in
            var dirs: [String] = []
            var d = Substring(link.namespacePath(rel))
            while let slash = d.lastIndex(of: "/") {
                d = d[..<slash]
                dirs.append(String(d))
            }
            return dirs
        })
        for dir in touchedDirectories where dir != link.path && !live.contains(dir) && Namespace.inside(dir, link.namespacePath(relative)) && dir != link.namespacePath(relative) {
            listings.withLock { s in
                s.drop(dir)
                s.remove(dir)
            }
            notifyEntry(dir)
        }
        return report
    }

    /// The bucket's object at `path` is gone (`now` nil) or another version: its old blocks leave both
    /// tiers, the listing shows what the bucket has, and the kernel drops the file's pages and entry.
    func replaced(_ link: Link, _ rel: String, _ path: String, _ old: ListedFile, by now: ListedFile?) {
        cache.evict(link.version(key: link.key(rel), etag: old.etag, size: old.size))
        if let now {
            listingInsert(path: path, kind: .file, size: now.size, mtime: now.mtime, etag: now.etag, posix: nil)
        } else {
            listings.withLock { $0.remove(path) }
        }
        let ino = nodes.withLock { s -> UInt64? in
            guard let ino = s.ino(at: path) else { return nil }
            // Expired: the next open or stat asks the bucket (a new version's mode may have changed too).
            s.nodes[ino]?.expires = 0
            return ino
        }
        if let ino { invalidateKernelCache(ino) }
        notifyEntry(path)
    }

    func appeared(_ path: String, _ now: ListedFile) {
        listingInsert(path: path, kind: .file, size: now.size, mtime: now.mtime, etag: now.etag, posix: nil)
        // Its directories too, where a cached listing of their parent lacks them.
        var child = Substring(path)
        while let slash = child.lastIndex(of: "/") {
            let dir = String(child[..<slash])
            let exists = listings.withLock { s in
                s.entry(Namespace.split(dir).parent, Namespace.split(dir).name) != nil || s.listings[Namespace.split(dir).parent] == nil
            }
            if !exists && links.link(for: dir) != nil {
                listingInsert(path: dir, kind: .directory, size: 0, mtime: mountTime, etag: "", posix: .plain)
                notifyEntry(dir)
            }
            listings.withLock { s in
                let (p, n) = Namespace.split(dir)
                _ = s.negative[p]?.removeValue(forKey: n)
            }
            child = child[..<slash]
        }
        notifyEntry(path)
    }

    /// Tells the kernel to drop its dentry of `path` (a negative one included), if it knows the parent.
    func notifyEntry(_ path: String) {
        let (parent, name) = Namespace.split(path)
        guard let ino = nodes.withLock({ s in s.ino(at: parent) }) else { return }
        invalidateKernelEntry(parent: ino, name: name)
    }
}
