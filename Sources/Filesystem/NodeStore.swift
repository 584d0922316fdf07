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
            case .empty(let bucket):
                let i: Int32
                if let f = free.popLast() {
                    i = f
                    slots[Int(i)] = newValue
                } else {
                    i = Int32(slots.count)
                    slots.append(newValue)
                }
                index.insert(i, at: bucket, in: slots)
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

/// The index of `NodeStore`: slot numbers in an open-addressed table with linear probing, found by the
/// inode number of the node in the slot.
///
/// Inode numbers are hashes of paths, except for the few probed past a taken number (`ino + 1`), so the
/// table mixes them before use to keep such runs apart.
struct SlotIndex {
    /// A slot number, or -1 for an empty bucket; the count is a power of two.
    private var buckets: [Int32] = []
    private(set) var count = 0

    enum Probe {
        /// The node is in `slot`, listed at `bucket`.
        case found(Int32, bucket: Int)
        /// Not held; `bucket` is where it would go.
        case empty(Int)
    }

    /// The slot numbers held, in table order.
    var slots: some Sequence<Int32> { buckets.lazy.filter { $0 >= 0 } }

    private func home(_ ino: UInt64) -> Int {
        Int(truncatingIfNeeded: (ino &* 0x9E37_79B9_7F4A_7C15) >> 32) & (buckets.count - 1)
    }

    func find(_ ino: UInt64, in slots: NodeSlots) -> Probe {
        guard !buckets.isEmpty else { return .empty(0) }
        let mask = buckets.count - 1
        var b = home(ino)
        while true {
            let s = buckets[b]
            if s < 0 { return .empty(b) }
            if slots[Int(s)].ino == ino { return .found(s, bucket: b) }
            b = (b + 1) & mask
        }
    }

    /// Lists `slot` at the empty `bucket` that `find` returned, growing the table past three quarters full
    /// (which moves every entry, so the bucket is found again then).
    mutating func insert(_ slot: Int32, at bucket: Int, in slots: NodeSlots) {
        if (count + 1) * 4 > buckets.count * 3 {
            grow(in: slots)
            guard case .empty(let b) = find(slots[Int(slot)].ino, in: slots) else { preconditionFailure("a node listed twice") }
            buckets[b] = slot
        } else {
            buckets[bucket] = slot
        }
        count += 1
    }

    /// Empties `bucket`, moving back the entries after it that would no longer be found past the gap.
    mutating func remove(at bucket: Int, in slots: NodeSlots) {
        let mask = buckets.count - 1
        var gap = bucket
        var b = (bucket + 1) & mask
        while buckets[b] >= 0 {
            let want = home(slots[Int(buckets[b])].ino)
            // The entry at b may fill the gap only if its home is not cyclically within (gap, b].
            let between = gap <= b ? (want > gap && want <= b) : (want > gap || want <= b)
            if !between {
                buckets[gap] = buckets[b]
                gap = b
            }
            b = (b + 1) & mask
        }
        buckets[gap] = -1
        count -= 1
    }

    private mutating func grow(in slots: NodeSlots) {
        let old = buckets
        buckets = [Int32](repeating: -1, count: max(16, old.count * 2))
        let mask = buckets.count - 1
        for s in old where s >= 0 {
            var b = home(slots[Int(s)].ino)
            while buckets[b] >= 0 { b = (b + 1) & mask }
            buckets[b] = s
        }
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
