/// Seconds and nanoseconds since the Unix epoch (UTC).
package struct Timestamp: Sendable, Hashable, Comparable {
    package var seconds: Int64
    package var nanoseconds: Int32
    package init(seconds: Int64, nanoseconds: Int32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }
    package static func < (a: Timestamp, b: Timestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

