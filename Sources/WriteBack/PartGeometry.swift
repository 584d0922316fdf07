/// How a file maps onto multipart parts: sizes grow with the part number, so 10,000 parts reach past 5 TiB.
///
/// Parts 1–1,000 have the base size, the next thousand twice that, and so on, capped at S3's 5 GiB; parts
/// 9,001–10,000 are 5 GiB.
/// With an 8 MiB base the 10,000 parts cover about 8 TiB; with 16 MiB, 16 TiB. The mapping is fixed for a
/// base size, so a part number always names the same byte range and can be re-uploaded in place.
package struct PartGeometry: Sendable, Equatable {
    package static let minimumPartSize: Int64 = 5 << 20
    package static let maximumPartSize: Int64 = 5 << 30
    package static let maximumParts = 10_000
    static let group = 1_000

    package let base: Int64

    /// `base` must be within S3's part limits (5 MiB … 5 GiB).
    package init(base: Int64) {
        precondition(base >= Self.minimumPartSize && base <= Self.maximumPartSize, "part size out of range")
        self.base = base
    }

    /// The last thousand parts are always 5 GiB, so even a 5 MiB base reaches past 5 TiB.
    private func size(group g: Int) -> Int64 { g >= 9 ? Self.maximumPartSize : min(base << Int64(g), Self.maximumPartSize) }

    /// The nominal size of part `n` (1-based); the last part of a file may be shorter.
    package func size(ofPart n: Int) -> Int64 { size(group: (n - 1) / Self.group) }

    /// The file offset where part `n` starts.
    package func start(ofPart n: Int) -> Int64 {
        let g = (n - 1) / Self.group
        var offset: Int64 = 0
        for i in 0..<g { offset += Int64(Self.group) * size(group: i) }
        return offset + Int64((n - 1) % Self.group) * size(group: g)
    }

    /// The byte range of part `n` within a file of `fileSize` bytes (empty past the end).
    package func range(ofPart n: Int, fileSize: Int64) -> Range<Int64> {
        let s = start(ofPart: n)
        return min(s, fileSize)..<min(s + size(ofPart: n), fileSize)
    }

    /// The part holding byte `offset`.
    package func part(containing offset: Int64) -> Int {
        var remaining = offset
        var g = 0
        while remaining >= Int64(Self.group) * size(group: g) {
            remaining -= Int64(Self.group) * size(group: g)
            g += 1
        }
        return g * Self.group + Int(remaining / size(group: g)) + 1
    }

    /// How many parts a file of `fileSize` bytes needs (at least one).
    package func partCount(fileSize: Int64) -> Int {
        fileSize <= 0 ? 1 : part(containing: fileSize - 1)
    }

    /// The largest file these parts can hold.
    package var capacity: Int64 { start(ofPart: Self.maximumParts) + size(ofPart: Self.maximumParts) }
}
