/// The positions of a listing's entries by name, in 4 bytes a bucket.
///
/// A `[String: Int]` per directory held a 24-byte bucket (the name's string and the position) at up to four
/// buckets for every three entries: about 49 bytes per listed entry, for names the entries hold already.
/// Here a bucket is a position alone, the table at most half full (8 to 16 bytes per entry), and a probe
/// compares the name with the entry the bucket points at. Names hash and compare as `String`s do, so two
/// names a dictionary took for one are one here too.
struct NameIndex {
    private var buckets: [Int32] = []
    private var count = 0
    private static let empty: Int32 = -1

    /// The position in `entries` of the entry named `name`.
    func position(of name: String, in entries: [ListingEntry]) -> Int? {
        guard !buckets.isEmpty else { return nil }
        let mask = buckets.count - 1
        var b = name.hashValue & mask
        while true {
            let p = buckets[b]
            if p == Self.empty { return nil }
            if entries[Int(p)].name == name { return Int(p) }
            b = (b + 1) & mask
        }
    }

    /// Records that `entries[position]` holds a name the index does not have yet.
    mutating func insert(_ position: Int, in entries: [ListingEntry]) {
        if (count + 1) * 2 > buckets.count {
            rebuild(entries, upTo: position, capacity: max(8, buckets.count * 2))
        }
        place(Int32(position), name: entries[position].name)
        count += 1
    }

    /// Forgets `entries[position]`, which the caller then removes, moving every later entry down by one.
    ///
    /// No name is hashed again but those of the few buckets after it that shift back to close the gap
    /// (linear probing needs no tombstones): a removal costs one pass over the buckets' integers.
    mutating func remove(_ position: Int, in entries: [ListingEntry]) {
        guard !buckets.isEmpty else { return }
        let mask = buckets.count - 1
        var hole = entries[position].name.hashValue & mask
        while buckets[hole] != Int32(position) {
            if buckets[hole] == Self.empty { return }
            hole = (hole + 1) & mask
        }
        var next = (hole + 1) & mask
        while buckets[next] != Self.empty {
            let home = entries[Int(buckets[next])].name.hashValue & mask
            // The entry at `next` may fill the hole unless its home lies after the hole, up to `next`.
            let homeAfterHole = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
            if !homeAfterHole {
                buckets[hole] = buckets[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        buckets[hole] = Self.empty
        count -= 1
        let moved = Int32(position)
        for b in buckets.indices where buckets[b] > moved { buckets[b] -= 1 }
    }

    private mutating func rebuild(_ entries: [ListingEntry], upTo end: Int, capacity: Int) {
        buckets = [Int32](repeating: Self.empty, count: capacity)
        count = 0
        for p in 0..<end {
            place(Int32(p), name: entries[p].name)
            count += 1
        }
    }

    private mutating func place(_ position: Int32, name: String) {
        let mask = buckets.count - 1
        var b = name.hashValue & mask
        while buckets[b] != Self.empty { b = (b + 1) & mask }
        buckets[b] = position
    }
}
