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
        var byPath: [String: UInt64] = ["": 1]
    }

    private let state: Mutex<State>

    init(root: Node) {
        var s = State()
        s.nodes[1] = root
        state = Mutex(s)
    }

    func withLock<R>(_ body: (inout State) -> R) -> R { state.withLock { body(&$0) } }

    subscript(ino: UInt64) -> Node? { state.withLock { $0.nodes[ino] } }

    var count: Int { state.withLock { $0.nodes.count } }

    /// The node of a path, if the kernel holds one.
    func node(at path: String) -> Node? { state.withLock { s in s.byPath[path].flatMap { s.nodes[$0] } } }
}

extension NodeTable.State {
    /// The inode number a path gets (or has): the hash of the path, probing past numbers held by nodes of
    /// other paths.
    ///
    /// After `mv a b` and a new `a`, the new file's number is not the hash of "a": answering with that hash
    /// would point the kernel at the moved file.
    func inode(of path: String) -> UInt64 {
        if let ino = byPath[path] { return ino }
        var ino = Namespace.inode(for: path)
        while let n = nodes[ino], n.path != path { ino &+= 1 }
        return ino
    }

    /// Forgets a node.
    mutating func drop(_ ino: UInt64) {
        guard let n = nodes.removeValue(forKey: ino) else { return }
        if byPath[n.path] == ino { byPath.removeValue(forKey: n.path) }
    }

    /// The node of `path` no longer names anything (unlinked, removed, replaced by a rename). It stays until
    /// the kernel forgets it, so that its number is not given to a new file the kernel could mistake for it
    /// (and serve the old file's cached pages); open handles keep working.
    mutating func detach(path: String) {
        guard let ino = byPath.removeValue(forKey: path), var n = nodes[ino] else { return }
        n.path = Namespace.detachedPrefix + String(ino)
        n.expires = 0
        nodes[ino] = n
    }

    /// Moves every node at or below `src` to the same place below `dst`; the moved root takes `newParent`
    /// (its name is its path's last part). What was at or below `dst` is detached first.
    mutating func move(from src: String, to dst: String, newParent: UInt64) {
        let inside = { (path: String, root: String) in path == root || path.hasPrefix(root + "/") }
        for n in nodes.values where inside(n.path, dst) { detach(path: n.path) }
        for (ino, var n) in nodes where inside(n.path, src) {
            if byPath[n.path] == ino { byPath.removeValue(forKey: n.path) }
            n.path = dst + n.path.dropFirst(src.count)
            byPath[n.path] = ino
            if n.path == dst { n.parent = newParent }
            n.expires = 0
            nodes[ino] = n
        }
    }
}
