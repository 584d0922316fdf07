import DequeModule

/// Chooses which memory slot to reuse. Slots are small integers; a policy never sees buffers.
package protocol EvictionPolicy {
    init(capacity: Int)
    /// A slot now holds `key` (after a fill).
    mutating func inserted(_ slot: Int32, key: BlockKey)
    /// A read hit the slot.
    mutating func accessed(_ slot: Int32)
    /// The slot was emptied by invalidation, not by the policy.
    mutating func removed(_ slot: Int32)
    /// A slot to empty, among those `canEvict` allows (not pinned, not filling); nil if none.
    mutating func victim(canEvict: (Int32) -> Bool) -> Int32?
}

/// S3-FIFO (Yang et al., SOSP 2023): a small probationary FIFO, a main FIFO with 2-bit frequencies, and a
/// ghost FIFO of recently evicted keys. One-hit blocks leave through the small queue without displacing
/// the main queue, which is what makes it resist scans.
package struct S3FIFOPolicy: EvictionPolicy {
    private var small = Deque<Int32>()
    private var main = Deque<Int32>()
    private var ghost = Deque<BlockKey>()
    private var ghostSet = Set<BlockKey>()
    private var freq: [UInt8]
    private var where_: [UInt8]  // 0 none, 1 small, 2 main
    private var keys: [BlockKey?]
    private let capacity: Int

    package init(capacity: Int) {
        self.capacity = max(capacity, 1)
        freq = Array(repeating: 0, count: capacity)
        where_ = Array(repeating: 0, count: capacity)
        keys = Array(repeating: nil, count: capacity)
    }

    package mutating func inserted(_ slot: Int32, key: BlockKey) {
        let s = Int(slot)
        freq[s] = 0
        keys[s] = key
        if ghostSet.remove(key) != nil {
            where_[s] = 2
            main.append(slot)
        } else {
            where_[s] = 1
            small.append(slot)
        }
    }

    package mutating func accessed(_ slot: Int32) {
        let s = Int(slot)
        if freq[s] < 3 { freq[s] += 1 }
    }

    package mutating func removed(_ slot: Int32) {
        // Lazy removal: the queues skip slots whose membership flag was cleared.
        where_[Int(slot)] = 0
        keys[Int(slot)] = nil
    }

    package mutating func victim(canEvict: (Int32) -> Bool) -> Int32? {
        // Every live slot is looked at a bounded number of times before giving up.
        var budget = (small.count + main.count) * 4 + 8
        while budget > 0 {
            budget -= 1
            let fromSmall = !small.isEmpty && (small.count * 10 >= capacity || main.isEmpty)
            if fromSmall {
                let slot = small.removeFirst()
                let s = Int(slot)
                guard where_[s] == 1 else { continue }
                if !canEvict(slot) {
                    small.append(slot)
                } else if freq[s] > 0 {
                    freq[s] = 0
                    where_[s] = 2
                    main.append(slot)
                } else {
                    remember(keys[s])
                    where_[s] = 0
                    keys[s] = nil
                    return slot
                }
            } else if !main.isEmpty {
                let slot = main.removeFirst()
                let s = Int(slot)
                guard where_[s] == 2 else { continue }
                if !canEvict(slot) {
                    main.append(slot)
                } else if freq[s] > 0 {
                    freq[s] -= 1
                    main.append(slot)
                } else {
                    where_[s] = 0
                    keys[s] = nil
                    return slot
                }
            } else {
                return nil
            }
        }
        return nil
    }

    private mutating func remember(_ key: BlockKey?) {
        guard let key else { return }
        ghost.append(key)
        ghostSet.insert(key)
        while ghost.count > capacity {
            ghostSet.remove(ghost.removeFirst())
        }
    }
}

/// CLOCK (second chance): the baseline S3-FIFO is measured against.
package struct ClockPolicy: EvictionPolicy {
    private var referenced: [Bool]
    private var live: [Bool]
    private var hand = 0

    package init(capacity: Int) {
        referenced = Array(repeating: false, count: max(capacity, 1))
        live = Array(repeating: false, count: max(capacity, 1))
    }

    package mutating func inserted(_ slot: Int32, key: BlockKey) {
        live[Int(slot)] = true
        referenced[Int(slot)] = false
    }

    package mutating func accessed(_ slot: Int32) { referenced[Int(slot)] = true }

    package mutating func removed(_ slot: Int32) {
        live[Int(slot)] = false
        referenced[Int(slot)] = false
    }

    package mutating func victim(canEvict: (Int32) -> Bool) -> Int32? {
        for _ in 0..<(live.count * 3) {
            let s = hand
            hand = (hand + 1) % live.count
            guard live[s], canEvict(Int32(s)) else { continue }
            if referenced[s] {
                referenced[s] = false
            } else {
                live[s] = false
                return Int32(s)
            }
        }
        return nil
    }
}

/// The eviction policies a cache can be built with.
package enum EvictionPolicyKind: String, Sendable, CaseIterable {
    case s3fifo
    case clock
}
