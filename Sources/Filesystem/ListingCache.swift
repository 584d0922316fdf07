import ObjectStore
import Platform
import Synchronization

/// Directory listings by namespace path, names known not to exist, and small-file read-ahead progress.
///
/// By path, not inode: a directory renamed here keeps its inode (the kernel's), and a new directory may later
/// take the old path. The entries are bounded; beyond the budget the least recently used listings go.
final class ListingCache: Sendable {
    struct State {
        var listings: [String: Listing] = [:]
        var entries = 0
        var clock: UInt64 = 0
        /// Names known not to exist, by directory path: name → until when.
        var negative: [String: [String: Double]] = [:]
        /// Small-file reads and read-ahead progress, by directory path.
        var directoryReads: [String: DirectoryReadAhead] = [:]
        /// Counts the changes this mount made to cached listings (an entry inserted or removed, a listing
        /// dropped or moved), so that a listing fetched in the background is kept only if none happened
        /// while its LIST was out: else it could bring back a name just removed, or miss one just made.
        var changes: UInt64 = 0
        let budget: Int
    }

    private let state: Locked<State>

    init(budget: Int) { state = Locked(State(budget: budget)) }

    func withLock<R>(_ body: (inout State) -> R) -> R { state.withLock { body(&$0) } }

    var entryCount: Int { state.withLock { $0.entries } }
}

extension ListingCache.State {
    /// The listing of `dir` if fetched less than `ttl` ago (nil ttl: indefinite); counts as a use.
    mutating func fresh(_ dir: String, ttl: Double?, now: Double) -> Listing? {
        guard let l = listings[dir], l.fetched + (ttl ?? .infinity) > now else { return nil }
        clock += 1
        // In place: a copy of a 10,000-entry listing per lookup made `ls -l` CPU-bound.
        listings[dir]!.lastUse = clock
        return l
    }

    /// The entry `name` of the cached listing of `dir`.
    func entry(_ dir: String, _ name: String) -> ListingEntry? {
        guard let i = listings[dir]?.position(of: name) else { return nil }
        return listings[dir]!.entries[i]
    }

    /// Keeps a listing for lookups, within the entry budget (least recently used go first).
    mutating func store(_ dir: String, _ listing: Listing) {
        clock += 1
        var l = listing
        l.lastUse = clock
        if let old = listings[dir] { entries -= old.entries.count }
        listings[dir] = l
        entries += l.entries.count
        if l.complete { negative.removeValue(forKey: dir) }
        guard entries > budget else { return }
        for (victim, old) in listings.sorted(by: { $0.value.lastUse < $1.value.lastUse }) where victim != dir {
            listings.removeValue(forKey: victim)
            entries -= old.entries.count
            if entries <= budget { break }
        }
    }

    /// Changes the cached listing of `dir`, if there is one, in place.
    mutating func update(_ dir: String, _ body: (inout Listing) -> Void) {
        changes &+= 1
        guard let before = listings[dir]?.entries.count else { return }
        body(&listings[dir]!)
        entries += listings[dir]!.entries.count - before
    }

    /// Shows a new or changed child in its parent's cached listing and forgets any negative entry for it.
    mutating func insert(_ path: String, _ entry: ListingEntry) {
        let (dir, _) = Namespace.split(path)
        negative[dir]?.removeValue(forKey: entry.name)
        update(dir) { $0.upsert(entry) }
    }

    mutating func remove(_ path: String) {
        let (dir, name) = Namespace.split(path)
        update(dir) { $0.remove(name) }
    }

    /// Forgets the listing of `dir` and its negative entries.
    mutating func drop(_ dir: String) {
        changes &+= 1
        if let old = listings.removeValue(forKey: dir) { entries -= old.entries.count }
        negative.removeValue(forKey: dir)
    }

    /// Records the metadata of `path` at `etag`; an entry of another ETag (changed since) is left unknown.
    mutating func learn(_ path: String, etag: String, posix: PosixMetadata) {
        let (dir, name) = Namespace.split(path)
        guard let i = listings[dir]?.position(of: name), listings[dir]!.entries[i].etag == etag, listings[dir]!.entries[i].kind != .directory else { return }
        listings[dir]!.setPosix(posix, at: i)
    }

    func isNegative(_ dir: String, _ name: String, now: Double) -> Bool {
        (negative[dir]?[name]).map { $0 > now } ?? false
    }

    mutating func setNegative(_ path: String, until: Double) {
        let (dir, name) = Namespace.split(path)
        negative[dir, default: [:]][name] = until
    }

    /// Moves the listings and negative entries at and below `src` to `dst`, dropping what was below `dst`.
    mutating func move(from src: String, to dst: String) {
        changes &+= 1
        let inside = { (path: String, root: String) in path == root || path.hasPrefix(root + "/") }
        for path in listings.keys where inside(path, dst) { drop(path) }
        for path in negative.keys where inside(path, dst) { negative.removeValue(forKey: path) }
        for path in listings.keys where inside(path, src) {
            listings[dst + path.dropFirst(src.count)] = listings.removeValue(forKey: path)
        }
        for path in negative.keys where inside(path, src) {
            negative[dst + path.dropFirst(src.count)] = negative.removeValue(forKey: path)
        }
    }

    /// Forgets everything at or below `root` (a link that left the namespace, a sync of a subtree).
    mutating func forget(below root: String) {
        changes &+= 1
        let inside = { (path: String) in root.isEmpty || path == root || path.hasPrefix(root + "/") }
        for path in listings.keys where inside(path) { drop(path) }
        for path in negative.keys where inside(path) { negative.removeValue(forKey: path) }
        for path in directoryReads.keys where inside(path) { directoryReads.removeValue(forKey: path) }
    }
}
