import ObjectStore
import Platform
import Synchronization

/// The one place a namespace path becomes (link, key), and a (store, bucket, key) becomes paths.
///
/// Directories above the links (the root, unless a link sits there, and every ancestor of a link's path)
/// are synthetic: they list the links and synthetic directories below them, and refuse writes.
package final class LinkTable: Sendable {
    /// What a namespace path is.
    package enum Resolved {
        /// Inside a link (or its root directory, with `relative` empty).
        case link(Link, relative: String)
        /// A directory above links, with its children's names.
        case synthetic(children: [String])
        /// Not part of the namespace: below a synthetic directory but neither a link nor above one.
        case none
    }

    package struct Snapshot: Sendable {
        package var links: [String: Link] = [:]
        /// Synthetic directory path → its children (links and synthetic directories), sorted.
        package var synthetic: [String: [String]] = [:]
        /// Links whose removal waits for their pending uploads: still resolvable, no longer listed.
        package var draining: [String: Link] = [:]
    }

    private let current: Locked<Snapshot>

    /// A table of `links`; throws when two paths overlap.
    package init(_ links: [Link]) throws(LinkError) {
        current = Locked(try Self.build(links, draining: [:]))
    }

    /// The one-link table of `lakecache mount s3://…` at the mount's root.
    package convenience init(root: Link) {
        try! self.init([root])
    }

    package var snapshot: Snapshot { current.withLock { $0 } }

    /// Every link, in path order (draining ones excluded).
    package var links: [Link] { current.withLock { $0.links.values.sorted { $0.path < $1.path } } }

    /// Resolves a namespace path (no leading or trailing slash; "" is the root).
    package func resolve(_ path: String) -> Resolved {
        current.withLock { Self.resolve(path, in: $0) }
    }

    static func resolve(_ path: String, in s: Snapshot) -> Resolved {
        if let children = s.synthetic[path] { return .synthetic(children: children) }
        var probe = Substring(path)
        while true {
            if let link = s.links[String(probe)] ?? s.draining[String(probe)] {
                let relative = probe.count == path.count ? "" : String(path.dropFirst(probe.count + (probe.isEmpty ? 0 : 1)))
                return .link(link, relative: relative)
            }
            if probe.isEmpty { return .none }
            guard let slash = probe.lastIndex(of: "/") else {
                probe = ""
                continue
            }
            probe = probe[..<slash]
        }
    }

    /// The link a namespace path lies in, with the path relative to it; nil for synthetic and unknown paths.
    package func link(for path: String) -> (Link, String)? {
        if case .link(let l, let r) = resolve(path) { return (l, r) }
        return nil
    }

    /// Every namespace path that shows `key` of `bucket` on the store named `store`.
    package func paths(store: String, bucket: String, key: String) -> [(Link, String)] {
        current.withLock { s in
            (Array(s.links.values) + Array(s.draining.values)).compactMap { link in
                guard link.store.name == store, link.bucket.bucket == bucket, let r = link.relative(forKey: key) else { return nil }
                return (link, link.namespacePath(r))
            }
        }
    }

    /// Every live link that shows `key` of `bucket`, on any store (an event names a bucket, not a store),
    /// with the key's path relative to the link.
    package func links(showing bucket: String, key: String) -> [(Link, String)] {
        current.withLock { s in
            s.links.values.sorted { $0.path < $1.path }.compactMap { link in
                guard link.bucket.bucket == bucket, let r = link.relative(forKey: key), !r.isEmpty else { return nil }
                return (link, r)
            }
        }
    }

    /// Replaces the links; links no longer present move to `draining` (see `finishDraining`). Throws, and
    /// changes nothing, when the new set overlaps.
    @discardableResult
    package func replace(with links: [Link]) throws(LinkError) -> (added: [Link], removed: [Link], changed: [Link]) {
        try current.withLock { s throws(LinkError) in
            let old = s.links
            var draining = s.draining
            let newPaths = Set(links.map(\.path))
            for (path, link) in old where !newPaths.contains(path) { draining[path] = link }
            for path in newPaths { draining.removeValue(forKey: path) }
            let next = try Self.build(links, draining: draining)
            s = next
            let added = links.filter { old[$0.path] == nil }
            let removed = old.values.filter { !newPaths.contains($0.path) }
            let changed = links.filter { l in old[l.path].map { $0 !== l } ?? false }
            return (added, removed, changed)
        }
    }

    /// A draining link has no pending uploads or open files left: it leaves the namespace.
    package func finishDraining(_ path: String) {
        current.withLock { _ = $0.draining.removeValue(forKey: path) }
    }

    static func build(_ links: [Link], draining: [String: Link]) throws(LinkError) -> Snapshot {
        var s = Snapshot()
        let sorted = links.sorted { $0.path < $1.path }
        for (i, link) in sorted.enumerated() {
            if let clash = s.links[link.path] { throw LinkError.overlap(clash.path, link.path) }
            // Sorted, so a link nested in another comes right after it or after its own siblings.
            for other in sorted[..<i] where Self.nests(other.path, in: link.path) || Self.nests(link.path, in: other.path) {
                throw LinkError.overlap(other.path, link.path)
            }
            s.links[link.path] = link
        }
        s.draining = draining
        var children: [String: Set<String>] = [:]
        for path in Set(s.links.keys).union(draining.keys) where !path.isEmpty {
            var child = Substring(path)
            while let slash = child.lastIndex(of: "/") {
                let parent = String(child[..<slash])
                children[parent, default: []].insert(String(child[child.index(after: slash)...]))
                child = child[..<slash]
            }
            children["", default: []].insert(String(child))
        }
        // Draining links stay resolvable but are not listed, so they vanish from directories at once.
        for (dir, names) in children where s.links[dir] == nil && draining[dir] == nil {
            s.synthetic[dir] = names.filter { name in
                let full = dir.isEmpty ? name : dir + "/" + name
                return draining[full] == nil || s.links.keys.contains { $0 == full || $0.hasPrefix(full + "/") }
            }.sorted()
        }
        if s.links[""] == nil && s.synthetic[""] == nil { s.synthetic[""] = [] }
        return s
    }

    /// Whether `inner` is `outer` or lies below it (the root contains everything).
    static func nests(_ inner: String, in outer: String) -> Bool {
        outer.isEmpty || inner == outer || inner.hasPrefix(outer + "/")
    }
}

/// A set of links that cannot form one namespace.
package enum LinkError: Error, Sendable, CustomStringConvertible {
    case overlap(String, String)

    package var description: String {
        switch self {
        case .overlap(let a, let b):
            return "links '/\(a)' and '/\(b)' overlap: link paths may not be equal or nest; give each link its own directory"
        }
    }
}
