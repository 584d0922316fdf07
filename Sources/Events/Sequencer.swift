import DequeModule

/// The `sequencer` of S3 event notifications: hexadecimal strings whose order is the order of the events of
/// one key. The S3 guide says to pad the shorter with zeros on the right, then compare lexicographically
/// (its older text said left; the current one, and the AWS SDKs' event types, say right: the leading digits
/// are the coarse part, and a longer sequencer only adds finer ones).
package enum Sequencer {
    /// -1, 0 or 1 as `a` is before, the same as, or after `b`.
    package static func compare(_ a: String, _ b: String) -> Int {
        let x = Array(a.uppercased().utf8)
        let y = Array(b.uppercased().utf8)
        let zero = UInt8(ascii: "0")
        for i in 0..<max(x.count, y.count) {
            let cx = i < x.count ? x[i] : zero
            let cy = i < y.count ? y[i] : zero
            if cx != cy { return cx < cy ? -1 : 1 }
        }
        return 0
    }
}

/// The newest sequencer seen per (bucket, key), so a duplicated or late, older event is recognised.
///
/// Bounded: past `limit` keys the oldest remembered are forgotten. Forgetting costs nothing in
/// correctness, only a HEAD: every event is checked against the bucket before it changes anything.
package struct EventOrder: Sendable {
    /// How an event compares with what was seen for its key.
    package enum Verdict: String, Sendable {
        /// Newer than anything seen for the key (or the key is new, or the event has no sequencer).
        case newer
        /// The same sequencer again: a redelivery.
        case duplicate
        /// Older than one already seen: it arrived late.
        case stale
    }

    private var newest: [String: String] = [:]
    private var order = Deque<String>()
    package let limit: Int

    package init(limit: Int = 100_000) { self.limit = max(1, limit) }

    /// How the event compares with the newest seen for its key, remembering nothing.
    package func peek(bucket: String, key: String, sequencer: String?) -> Verdict {
        guard let sequencer, !sequencer.isEmpty, let seen = newest[bucket + "\u{0}" + key] else { return .newer }
        switch Sequencer.compare(sequencer, seen) {
        case 0: return .duplicate
        case ..<0: return .stale
        default: return .newer
        }
    }

    /// Compares the event with the newest seen for its key and, when newer, remembers it.
    package mutating func admit(bucket: String, key: String, sequencer: String?) -> Verdict {
        guard let sequencer, !sequencer.isEmpty else { return .newer }
        let id = bucket + "\u{0}" + key
        if let seen = newest[id] {
            switch Sequencer.compare(sequencer, seen) {
            case 0: return .duplicate
            case ..<0: return .stale
            default:
                newest[id] = sequencer
                return .newer
            }
        }
        newest[id] = sequencer
        order.append(id)
        while order.count > limit, let old = order.popFirst() { newest.removeValue(forKey: old) }
        return .newer
    }

    package var count: Int { newest.count }
}
