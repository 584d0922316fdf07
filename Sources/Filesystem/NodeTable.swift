import ObjectStore
import Platform
import Synchronization

/// The inodes the kernel holds, by number and by namespace path.
///
/// A node keeps its number across a rename (the kernel's inode does), so the number of a path is not always
/// its hash; `inode(of:)` probes past numbers other paths hold.
final class NodeTable: Sendable {
    struct State {
        var nodes = NodeStore()
        /// Paths whose node's number is not the path's own hash: renamed nodes, and the rare number probed
        /// past one another path holds. Every other node is found at its hash, so a walk's nodes need no
        /// path index at all.
        var moved: [String: UInt64] = [:]
        /// The numbers of renamed files the kernel has forgotten, by path: looked up again, a renamed file
        /// gets back the number it had, not its new path's hash. Bounded by `rememberedLimit`.
        var remembered: [String: UInt64] = [:]
    }

    /// Forgotten renamed files whose numbers are kept; past it half of them (any half) are let go, and
    /// those files take their paths' hashes when looked up again.
    static let rememberedLimit = 100_000

    private let state: Locked<State>

    init(root: Node) {
        var s = State()
        s.nodes[1] = root
        state = Locked(s)
    }

    func withLock<R>(_ body: (inout State) -> R) -> R { state.withLock { body(&$0) } }

    subscript(ino: UInt64) -> Node? { state.withLock { $0.nodes[ino] } }

    var count: Int { state.withLock { $0.nodes.count } }

    /// The node of a path, if the kernel holds one.
    func node(at path: String) -> Node? { state.withLock { s in s.ino(at: path).flatMap { s.nodes[$0] } } }
}

extension NodeTable.State {
    /// The number of the node at `path`, if one is there.
    func ino(at path: String) -> UInt64? {
        if let ino = moved[path] { return ino }
        let ino = Namespace.inode(for: path)
        return nodes.node(ino, isAt: path) == true ? ino : nil
    }

    /// Records that the node `ino` is at `path`.
    mutating func index(_ path: String, _ ino: UInt64) {
        remembered.removeValue(forKey: path)
        if ino == Namespace.inode(for: path) {
            moved.removeValue(forKey: path)
        } else {
            moved[path] = ino
        }
    }

    /// Forgets that `path` leads to `ino` (nothing if it leads elsewhere).
    mutating func unindex(_ path: String, _ ino: UInt64) {
        if moved[path] == ino { moved.removeValue(forKey: path) }
    }

    /// The inode number a path gets (or has): the hash of the path, probing past numbers held by nodes of
    /// other paths.
    ///
    /// After `mv a b` and a new `a`, the new file's number is not the hash of "a": answering with that hash
    /// would point the kernel at the moved file.
    func inode(of path: String) -> UInt64 {
        if let ino = self.ino(at: path) { return ino }
        if let ino = remembered[path], nodes[ino] == nil { return ino }
        var ino = Namespace.inode(for: path)
        while nodes.node(ino, isAt: path) == false { ino &+= 1 }
        return ino
    }

    /// Forgets a node.
    mutating func drop(_ ino: UInt64) {
        guard let n = nodes.removeValue(forKey: ino) else { return }
        if moved[n.path] == ino && !n.path.hasPrefix(Namespace.detachedPrefix) {
            // Renamed here, then forgotten by the kernel: the file keeps its number when looked up again.
            if remembered.count >= NodeTable.rememberedLimit {
                remembered = Dictionary(uniqueKeysWithValues: remembered.dropFirst(NodeTable.rememberedLimit / 2).map { ($0.key, $0.value) })
            }
            remembered[n.path] = ino
        }
        unindex(n.path, ino)
    }

    /// The node of `path` no longer names anything (unlinked, removed, replaced by a rename). It stays until
    /// the kernel forgets it, so that its number is not given to a new file the kernel could mistake for it
    /// (and serve the old file's cached pages); open handles keep working.
    mutating func detach(path: String) {
        remembered.removeValue(forKey: path)
        guard let ino = self.ino(at: path), var n = nodes[ino] else { return }
        unindex(path, ino)
        n.path = Namespace.detachedPrefix + String(ino)
        n.expires = 0
        nodes[ino] = n
    }

    /// Moves every node at or below `src` to the same place below `dst`; the moved root takes `newParent`
    /// (its name is its path's last part). What was at or below `dst` is detached first.
    mutating func move(from src: String, to dst: String, newParent: UInt64) {
        let inside = { (path: String, root: String) in path == root || path.hasPrefix(root + "/") }
        for n in nodes.values where inside(n.path, dst) { detach(path: n.path) }
        if !remembered.isEmpty {
            for path in remembered.keys where inside(path, dst) { remembered.removeValue(forKey: path) }
            for (path, ino) in remembered where inside(path, src) {
                remembered.removeValue(forKey: path)
                remembered[dst + path.dropFirst(src.count)] = ino
            }
        }
        for (ino, var n) in nodes where inside(n.path, src) {
            unindex(n.path, ino)
            n.path = dst + n.path.dropFirst(src.count)
            index(n.path, ino)
            if n.path == dst { n.parent = newParent }
            n.expires = 0
            nodes[ino] = n
        }
    }
}
