/// An ETag as it is kept per node and per listing entry: an MD5-shaped ETag (32 lowercase hex digits,
/// quoted or not, with an optional `-N` part count, as S3 writes them) in 24 bytes inline, anything else as
/// the string itself.
///
/// A 34-character ETag string costs 80 bytes of heap besides its 16 inline, and a walk of a large tree
/// keeps one per entry; the packed form turns back into exactly the string it came from.
struct PackedETag: Sendable, Equatable {
    private enum Storage: Sendable, Equatable {
        /// The digest's two halves, the part count (0 when there is no `-N`) and whether it was quoted.
        case digest(UInt64, UInt64, parts: UInt32, quoted: Bool)
        case text(String)
    }

    private var storage: Storage

    init(_ etag: String) {
        storage = Self.pack(etag).map { .digest($0.0, $0.1, parts: $0.2, quoted: $0.3) } ?? .text(etag)
    }

    /// The ETag as it was given.
    var string: String {
        switch storage {
        case .text(let s):
            return s
        case .digest(let hi, let lo, let parts, let quoted):
            return String(unsafeUninitializedCapacity: 46) { out in
                var i = 0
                func put(_ b: UInt8) {
                    out[i] = b
                    i += 1
                }
                if quoted { put(UInt8(ascii: "\"")) }
                func digits(_ half: UInt64) {
                    for shift in stride(from: 60, through: 0, by: -4) {
                        let d = UInt8(truncatingIfNeeded: half >> UInt64(shift) & 0xF)
                        put(d < 10 ? UInt8(ascii: "0") + d : UInt8(ascii: "a") + d - 10)
                    }
                }
                digits(hi)
                digits(lo)
                if parts > 0 {
                    put(UInt8(ascii: "-"))
                    for b in String(parts).utf8 { put(b) }
                }
                if quoted { put(UInt8(ascii: "\"")) }
                return i
            }
        }
    }

    /// The packed fields when `etag` is in the one shape that round-trips exactly: lowercase hex, a part
    /// count without a leading zero, quotes on both ends or neither.
    private static func pack(_ etag: String) -> (UInt64, UInt64, UInt32, Bool)? {
        var etag = etag
        return etag.withUTF8 { pack(bytes: $0) }
    }

    private static func pack(bytes all: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64, UInt32, Bool)? {
        var lo = 0
        var hi = all.count
        let quoted = hi > 0 && all[0] == UInt8(ascii: "\"")
        if quoted {
            guard hi >= 2, all[hi - 1] == UInt8(ascii: "\"") else { return nil }
            lo += 1
            hi -= 1
        }
        guard hi - lo >= 32 else { return nil }
        var halves: (UInt64, UInt64) = (0, 0)
        for n in 0..<32 {
            let b = all[lo + n]
            let d: UInt64
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt64(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt64(b - UInt8(ascii: "a") + 10)
            default: return nil
            }
            if n < 16 { halves.0 = halves.0 << 4 | d } else { halves.1 = halves.1 << 4 | d }
        }
        let rest = lo + 32
        if rest == hi { return (halves.0, halves.1, 0, quoted) }
        let digits = (rest + 1)..<hi
        guard all[rest] == UInt8(ascii: "-"), (1...9).contains(digits.count), all[digits.lowerBound] != UInt8(ascii: "0") else { return nil }
        var count: UInt32 = 0
        for i in digits {
            let b = all[i]
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) else { return nil }
            count = count * 10 + UInt32(b - UInt8(ascii: "0"))
        }
        return (halves.0, halves.1, count, quoted)
    }
}
