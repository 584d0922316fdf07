/// Nodes by inode number, kept in a dense chunked array behind a small index.
///
/// A `[UInt64: Node]` holds every bucket at the node's full size, and a dictionary keeps up to four buckets
/// for every three entries, so at 200,000 nodes most of its memory was empty buckets. Here the index holds
/// 12 bytes a bucket and the array only live nodes plus the slots of forgotten ones, which new nodes reuse.
struct NodeStore: Sequence {
    private var slots = NodeSlots()
    private var index: [UInt64: Int32] = [:]
    /// Slots of forgotten nodes, reset to `vacant` so that they hold no strings.
    private var free: [Int32] = []

    /// Nodes held.
    var count: Int { index.count }

    subscript(ino: UInt64) -> Node? {
        get { index[ino].map { slots[Int($0)] } }
        set {
            guard let newValue else {
                removeValue(forKey: ino)
                return
            }
            if let i = index[ino] {
                slots[Int(i)] = newValue
            } else if let i = free.popLast() {
                slots[Int(i)] = newValue
                index[ino] = i
            } else {
                index[ino] = Int32(slots.count)
                slots.append(newValue)
            }
        }
    }

    /// The path of the node of `ino`, without copying the node.
    func path(of ino: UInt64) -> String? { index[ino].map { slots[Int($0)].path } }

    /// Forgets the node of `ino`, returning it.
    @discardableResult
    mutating func removeValue(forKey ino: UInt64) -> Node? {
        guard let i = index.removeValue(forKey: ino) else { return nil }
        let n = slots[Int(i)]
        if Int(i) == slots.count - 1 {
            slots.removeLast()
        } else {
            slots[Int(i)] = .vacant
            free.append(i)
        }
        if index.isEmpty {
            slots.removeAll()
            free.removeAll()
        }
        return n
    }

    /// Every node held.
    var values: some Sequence<Node> { index.values.lazy.map { slots[Int($0)] } }

    /// Every node's path and number, without copying the nodes.
    var paths: some Sequence<(String, UInt64)> { index.lazy.map { (slots[Int($0.value)].path, $0.key) } }

    func makeIterator() -> some IteratorProtocol<(key: UInt64, value: Node)> {
        index.lazy.map { (key: $0.key, value: slots[Int($0.value)]) }.makeIterator()
    }
}

/// The node array of `NodeStore`, in chunks of 4,096 nodes that never grow past that.
///
/// One array that doubles holds up to twice its nodes' size, and both buffers while it copies: at 200,000
/// nodes its capacity was 262,144, 42 bytes of empty slot per node. Chunks leave at most one partly used.
struct NodeSlots {
    private static let shift = 12
    private static let mask = (1 << shift) - 1
    private var chunks: [ContiguousArray<Node>] = []
    /// Slots held, used or vacant.
    private(set) var count = 0

    subscript(i: Int) -> Node {
        get { chunks[i >> Self.shift][i & Self.mask] }
        set { chunks[i >> Self.shift][i & Self.mask] = newValue }
    }

    mutating func append(_ node: Node) {
        if count & Self.mask == 0 {
            var chunk = ContiguousArray<Node>()
            chunk.reserveCapacity(1 << Self.shift)
            chunks.append(chunk)
        }
        chunks[count >> Self.shift].append(node)
        count += 1
    }

    mutating func removeLast() {
        count -= 1
        chunks[count >> Self.shift].removeLast()
        if count & Self.mask == 0 { chunks.removeLast() }
    }

    mutating func removeAll() {
        chunks = []
        count = 0
    }
}
