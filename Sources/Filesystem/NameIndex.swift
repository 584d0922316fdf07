/// The positions of a listing's entries by name, in 4 bytes a bucket.
///
/// A `[String: Int]` per directory held a 24-byte bucket (the name's string and the position) at up to four
/// buckets for every three entries: about 49 bytes per listed entry, for names the entries hold already.
/// Here a bucket is a position alone, the table at most half full (8 to 16 bytes per entry), and a probe
/// compares the name with the entry the bucket points at. Names hash and compare as `String`s do, so two
/// names a dictionary took for one are one here too.
struct NameIndex {
    private var table = ProbeTable()

    /// The position in `entries` of the entry named `name`.
    func position(of name: String, in entries: [ListingEntry]) -> Int? {
        table.find(hash: name.hashValue) { entries[Int($0)].name == name }.position.map(Int.init)
    }

    /// Records that `entries[position]` holds a name the index does not have yet.
    mutating func insert(_ position: Int, in entries: [ListingEntry]) {
        if (table.count + 1) * 2 > table.capacity {
            table.reset(capacity: max(8, table.capacity * 2))
            for p in 0..<position { table.place(Int32(p), hash: entries[p].name.hashValue) }
        }
        table.place(Int32(position), hash: entries[position].name.hashValue)
    }

    /// Forgets `entries[position]`, which the caller then removes, moving every later entry down by one.
    ///
    /// No name is hashed again but those of the few buckets after it that shift back to close the gap
    /// (linear probing needs no tombstones): a removal costs one pass over the buckets' integers.
    mutating func remove(_ position: Int, in entries: [ListingEntry]) {
        let p = Int32(position)
        let hit = table.find(hash: entries[position].name.hashValue) { $0 == p }
        guard hit.position != nil, let bucket = hit.bucket else { return }
        table.remove(at: bucket) { entries[Int($0)].name.hashValue }
        table.closeUp(after: p)
    }
}
