/// Nodes by inode number, kept in a dense chunked array behind a small index.
///
/// A `[UInt64: Node]` holds every bucket at the node's full size, and a dictionary keeps up to four buckets
/// for every three entries, so at 200,000 nodes most of its memory was empty buckets. Here the array holds
/// only live nodes plus the slots of forgotten ones, which new nodes reuse, and the index is an open-addressed
/// table of 4-byte slot numbers: the key is the node's own inode number, so the table does not keep a copy
/// (a `[UInt64: Int32]` took 31 bytes a node at 200,000).
struct NodeStore: Sequence {
    private var slots = NodeSlots()
    private var index = SlotIndex()
    /// Slots of forgotten nodes, reset to `vacant` so that they hold no strings.
    private var free: [Int32] = []

    /// Nodes held.
    var count: Int { index.count }

    subscript(ino: UInt64) -> Node? {
        get { slot(of: ino).map { slots[Int($0)] } }
        set {
            guard var newValue else {
                removeValue(forKey: ino)
                return
            }
            newValue.attributes.ino = ino
            switch index.find(ino, in: slots) {
            case .found(let i, _):
                slots[Int(i)] = newValue
            case .empty:
                let i: Int32
                if let f = free.popLast() {
                    i = f
                    slots[Int(i)] = newValue
                } else {
                    i = Int32(slots.count)
                    slots.append(newValue)
                }
                index.insert(i, in: slots)
            }
        }
    }

    private func slot(of ino: UInt64) -> Int32? {
        if case .found(let i, _) = index.find(ino, in: slots) { return i }
        return nil
    }

    /// Whether the node of `ino` is at `path`, without copying the node or building its path; nil when no
    /// node has that number.
    func node(_ ino: UInt64, isAt path: String) -> Bool? { slot(of: ino).map { slots[Int($0)].isAt(path) } }

    /// Forgets the node of `ino`, returning it.
    @discardableResult
    mutating func removeValue(forKey ino: UInt64) -> Node? {
        guard case .found(let i, let bucket) = index.find(ino, in: slots) else { return nil }
        index.remove(at: bucket, in: slots)
        let n = slots[Int(i)]
        if Int(i) == slots.count - 1 {
            slots.removeLast()
        } else {
            slots[Int(i)] = .vacant
            free.append(i)
        }
        if index.count == 0 {
            slots.removeAll()
            free.removeAll()
            index = SlotIndex()
        }
        return n
    }

    /// Every node held.
    var values: some Sequence<Node> { index.slots.lazy.map { [slots] in slots[Int($0)] } }

    /// Every node's path and number, without copying the nodes.
    var paths: some Sequence<(String, UInt64)> { index.slots.lazy.map { [slots] in (slots[Int($0)].path, slots[Int($0)].ino) } }

    func makeIterator() -> some IteratorProtocol<(key: UInt64, value: Node)> {
        index.slots.lazy.map { [slots] in (key: slots[Int($0)].ino, value: slots[Int($0)]) }.makeIterator()
    }
}

/// The index of `NodeStore`: slot numbers in a `ProbeTable`, found by the inode number of the node in the
/// slot.
///
/// Inode numbers are hashes of paths, except for the few probed past a taken number (`ino + 1`), so the
/// index mixes them before use to keep such runs apart.
struct SlotIndex {
    private var table = ProbeTable()

    var count: Int { table.count }

    enum Probe {
        /// The node is in `slot`, listed at `bucket`.
        case found(Int32, bucket: Int)
        /// Not held; `bucket` is where it would go (nil before the first insert).
        case empty(Int?)
    }

    /// The slot numbers held, in table order.
    var slots: some Sequence<Int32> { table.positions }

    private static func hash(_ ino: UInt64) -> Int { Int(truncatingIfNeeded: (ino &* 0x9E37_79B9_7F4A_7C15) >> 32) }

    func find(_ ino: UInt64, in slots: NodeSlots) -> Probe {
        let hit = table.find(hash: Self.hash(ino)) { slots[Int($0)].ino == ino }
        if let s = hit.position, let b = hit.bucket { return .found(s, bucket: b) }
        return .empty(hit.bucket)
    }

    /// Lists `slot`, which holds a node the index does not have yet, growing the table past three quarters
    /// full.
    mutating func insert(_ slot: Int32, in slots: NodeSlots) {
        if (table.count + 1) * 4 > table.capacity * 3 {
            let held = Array(table.positions)
            table.reset(capacity: max(16, table.capacity * 2))
            for s in held { table.place(s, hash: Self.hash(slots[Int(s)].ino)) }
        }
        table.place(slot, hash: Self.hash(slots[Int(slot)].ino))
    }

    /// Forgets the entry at `bucket`, as `find` returned it.
    mutating func remove(at bucket: Int, in slots: NodeSlots) {
        table.remove(at: bucket) { Self.hash(slots[Int($0)].ino) }
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
        // Yielded in place: the index's probes read one field of a node, and a copy retains all its strings.
        _read { yield chunks[i >> Self.shift][i & Self.mask] }
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
