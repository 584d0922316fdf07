/// An open-addressed table with linear probing whose buckets hold 4-byte positions into an array the
/// caller owns: the keys live in that array, so the table keeps no copy of them.
///
/// Shared by `NameIndex` (listing entries by name) and `SlotIndex` (nodes by inode number). The caller
/// gives each key's hash; the table masks it to its size. Removal moves later entries back into the gap
/// (no tombstones), so a probe stops at the first empty bucket.
struct ProbeTable {
    /// A position, or `empty`; the count is a power of two (or zero before the first insert).
    private var buckets: [Int32] = []
    private(set) var count = 0
    static let empty: Int32 = -1

    /// Buckets held, used or not.
    var capacity: Int { buckets.count }

    /// The positions held, in table order.
    var positions: some Sequence<Int32> { buckets.lazy.filter { $0 >= 0 } }

    /// The bucket of the position `matches` accepts, probing from `hash`; else nil and the empty bucket
    /// where such a position would go (nil, nil before the first insert).
    func find(hash: Int, matches: (Int32) -> Bool) -> (position: Int32?, bucket: Int?) {
        guard !buckets.isEmpty else { return (nil, nil) }
        let mask = buckets.count - 1
        var b = hash & mask
        while true {
            let p = buckets[b]
            if p == Self.empty { return (nil, b) }
            if matches(p) { return (p, b) }
            b = (b + 1) & mask
        }
    }

    /// Puts `position` in the first empty bucket from `hash`.
    mutating func place(_ position: Int32, hash: Int) {
        let mask = buckets.count - 1
        var b = hash & mask
        while buckets[b] != Self.empty { b = (b + 1) & mask }
        buckets[b] = position
        count += 1
    }

    /// Empties `bucket`, moving back the entries after it that would no longer be found past the gap.
    mutating func remove(at bucket: Int, hash: (Int32) -> Int) {
        let mask = buckets.count - 1
        var gap = bucket
        var b = (bucket + 1) & mask
        while buckets[b] != Self.empty {
            let home = hash(buckets[b]) & mask
            // The entry at b may fill the gap only if its home is not cyclically within (gap, b].
            let homeAfterGap = gap <= b ? (home > gap && home <= b) : (home > gap || home <= b)
            if !homeAfterGap {
                buckets[gap] = buckets[b]
                gap = b
            }
            b = (b + 1) & mask
        }
        buckets[gap] = Self.empty
        count -= 1
    }

    /// Empties the table at `capacity` buckets (a power of two), for the caller to place its positions again.
    mutating func reset(capacity: Int) {
        buckets = [Int32](repeating: Self.empty, count: capacity)
        count = 0
    }

    /// Lowers by one every position above `position`: the caller removed that element from its array.
    mutating func closeUp(after position: Int32) {
        for b in buckets.indices where buckets[b] > position { buckets[b] -= 1 }
    }
}
