import Platform
import ObjectStore

/// The `mtime` user metadata: seconds since the epoch, with up to nine decimals (s3fs writes whole seconds,
/// rclone fractions; both parse).
package enum MetadataTime {
    package static func format(_ t: Timestamp) -> String {
        if t.nanoseconds == 0 { return String(t.seconds) }
        let ns = String(t.nanoseconds)
        return "\(t.seconds)." + String(repeating: "0", count: 9 - ns.count) + ns
    }

    package static func parse(_ text: String) -> Timestamp? {
        let parts = text.split(separator: ".", maxSplits: 1)
        guard let seconds = parts.first.flatMap({ Int64($0) }) else { return nil }
        var ns: Int32 = 0
        if parts.count == 2 {
            let digits = String(parts[1].prefix(9))
            guard let value = Int32(digits) else { return nil }
            ns = value
            for _ in digits.count..<9 { ns *= 10 }
        }
        return Timestamp(seconds: seconds, nanoseconds: ns)
    }
}
