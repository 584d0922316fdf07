import DequeModule
import Logging
import Platform
import ObjectStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Settings of the block cache.
package struct BlockCacheConfiguration: Sendable {
    /// The cache unit; a read never spans more than two blocks.
    package var blockSize = 4 << 20
    /// Bound of the memory tier; prefetched blocks count against it.
    package var memoryBytes: Int64 = 1 << 30
    package var policy: EvictionPolicyKind = .s3fifo
    /// Prefetched blocks allowed in flight at once (32 × 4 MiB keeps a 100 MB/s-per-connection store busy
    /// at over 2 GB/s).
    package var maxPrefetchInFlight = 32
    /// Commit the memory tier's pages in the background at start (`MemoryPrefault`), so cold reads do not
    /// pay for first touches.
    package var prefaultMemory = false
    /// Serve a read of at most a quarter block, whose block only the disk tier holds, from the sub-blocks it
    /// touches (`DiskTier.readRange`) instead of loading the whole block into memory first. A block read
    /// this way twice is loaded into memory in the background.
    package var diskRangeReads = true

    package init() {}
}

/// The read cache: memory tier of fixed slots, optional disk tier, single-flight fills from the object store.
///
/// Lookup order: memory, then an in-flight fill (joined), then disk, then the network. All state sits under
/// one lock (`Locked`); buffers are one anonymous mapping carved into `blockSize` slots, so a hit copies nothing and
/// allocates nothing. Completions run on the thread that finished the fill (network or disk thread).
package final class BlockCache: @unchecked Sendable {
    package typealias Completion = (Result<PinnedRange, ObjectStoreError>) -> Void

    private enum SlotState: UInt8 { case free, filling, ready }

    /// Closures that cross threads through the state lock; each runs exactly once.
    private struct Waiter: @unchecked Sendable { let run: (Result<Int32, ObjectStoreError>) -> Void }
    private struct Retry: @unchecked Sendable { let run: () -> Void }

    private struct Slot {
        var key: BlockKey?
        var state: SlotState = .free
        var length = 0
        var pins: Int32 = 0
        /// Invalidated while pinned: freed when the last pin goes.
        var orphan = false
        /// Started by prefetch: its completion returns a prefetch credit.
        var prefetched = false
        /// Fetched for the disk tier only (a warmup without `--memory`): leaves memory once written there,
        /// unless a read wanted it meanwhile.
        var transient = false
        var waiters: [Waiter] = []
    }

    /// Slots of one size with their own free list and eviction policy (which sees local indexes).
    private struct Pool {
        var free: [Int32]
        var policy: any EvictionPolicy
        let base: Int32
        let count: Int
        let slotBytes: Int
    }

    private struct State {
        var slots: [Slot]
        var index: [BlockKey: Int32] = [:]
        /// Pool 0 holds whole blocks; pool 1 (if any) small slots for objects far smaller than a block, so a
        /// 16 KiB file does not occupy a 4 MiB buffer.
        var pools: [Pool]
        var starved = Deque<Retry>()
        var prefetchInFlight = 0
        var readyBytes: Int64 = 0
        /// Ready blocks displaced to make room (not invalidations or transient blocks leaving).
        var evictions = 0

        func pool(of slot: Int32) -> Int { pools.count > 1 && slot >= pools[1].base ? 1 : 0 }

        mutating func accessed(_ slot: Int32) {
            let p = pool(of: slot)
            pools[p].policy.accessed(slot - pools[p].base)
        }

        mutating func inserted(_ slot: Int32, key: BlockKey) {
            let p = pool(of: slot)
            pools[p].policy.inserted(slot - pools[p].base, key: key)
        }

        mutating func removedByInvalidation(_ slot: Int32) {
            let p = pool(of: slot)
            pools[p].policy.removed(slot - pools[p].base)
        }

        mutating func recycle(_ slot: Int32) {
            slots[Int(slot)] = Slot()
            pools[pool(of: slot)].free.append(slot)
        }

        /// `count` adjacent free slots of the whole-block pool (below `limit`), taken off its free list; the
        /// first of them, or nil when no such run is free. Searched from the top of the free stack, where
        /// `take` pops: slots are handed out from the start of the region, whose pages the prefault commits
        /// first, and a slot freed recently is committed already.
        mutating func takeAdjacent(_ count: Int, below limit: Int32) -> Int32? {
            let n = Int32(count)
            guard let first = pools[0].free.last(where: { f in
                f + n <= limit && (1..<n).allSatisfy { slots[Int(f + $0)].state == .free && slots[Int(f + $0)].key == nil }
            }) else { return nil }
            pools[0].free.removeAll { $0 >= first && $0 < first + n }
            return first
        }

        /// A free or evicted slot able to hold `length` bytes; nil when every candidate is pinned or filling.
        mutating func take(length: Int) -> Int32? {
            let p = pools.count > 1 && length <= pools[1].slotBytes ? 1 : 0
            if let slot = pools[p].free.popLast() { return slot }
            let base = pools[p].base
            guard let local = pools[p].policy.victim(canEvict: { l in
                let x = slots[Int(base + l)]
                return x.state == .ready && x.pins == 0
            }) else { return nil }
            let slot = base + local
            evictions += 1
            if let old = slots[Int(slot)].key { index.removeValue(forKey: old) }
            readyBytes -= Int64(slots[Int(slot)].length)
            slots[Int(slot)] = Slot()
            return slot
        }
    }

    package let blockSize: Int
    package let slotCount: Int
    private let largeSlots: Int
    private let smallSlots: Int
    private let mappedBytes: Int
    package let store: any ObjectStore
    package let disk: DiskTier?
    private let configuration: BlockCacheConfiguration
    private let memory: UnsafeMutableRawPointer
    private let prefault: MemoryPrefault?
    private let state: Locked<State>
    private let logger: Logger

    package let hits = Atomic<Int>(0)
    package let misses = Atomic<Int>(0)
    package let joinedFills = Atomic<Int>(0)
    package let networkFills = Atomic<Int>(0)
    package let diskFills = Atomic<Int>(0)
    package let prefetches = Atomic<Int>(0)
    package let bypassReads = Atomic<Int>(0)
    /// Reads served from part of a disk-tier block (`BlockCacheConfiguration.diskRangeReads`).
    package let diskRangeHits = Atomic<Int>(0)

    /// The longest read served from a disk-tier block's sub-blocks, and the buffers such reads use: room for
    /// the read and a sub-block on either side, page-aligned for direct I/O.
    private let rangeLimit: Int
    private let rangeCapacity: Int
    private let rangeBuffers = Locked<[UInt]>([])
    /// Blocks read in part recently, oldest first (bounded): a second such read loads the block into memory.
    private let rangeTouched = Locked<(keys: Set<BlockKey>, order: Deque<BlockKey>)>(([], []))

    package init(store: any ObjectStore, configuration: BlockCacheConfiguration, disk: DiskTier?, logger: Logger = Logger(label: "lakecache.cache")) {
        self.store = store
        self.disk = disk
        self.configuration = configuration
        self.logger = logger
        blockSize = configuration.blockSize
        rangeLimit = disk != nil && configuration.diskRangeReads ? configuration.blockSize / 4 : 0
        rangeCapacity = Syscall.directIOPadded(configuration.blockSize / 4 + 2 * DiskTier.subBlockSize(forBlock: configuration.blockSize))
        let small = configuration.blockSize > Self.smallSlotBytes
        // An eighth of the memory tier goes to small slots, the rest to whole blocks.
        let smallBudget = small ? configuration.memoryBytes / 8 : 0
        largeSlots = max(8, Int((configuration.memoryBytes - smallBudget) / Int64(configuration.blockSize)))
        smallSlots = small ? max(64, Int(smallBudget / Int64(Self.smallSlotBytes))) : 0
        slotCount = largeSlots + smallSlots
        // Anonymous memory: committed page by page as slots are first used, so RSS follows real use.
        mappedBytes = largeSlots * blockSize + smallSlots * Self.smallSlotBytes
        guard let m = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED else {
            fatalError("cannot reserve \(mappedBytes) bytes for the memory tier: \(Errno(errno))")
        }
        memory = m
        // Slots are handed out from the start of each region.
        let largeBytes = largeSlots * configuration.blockSize
        prefault = configuration.prefaultMemory
            ? MemoryPrefault(regions: [(m, largeBytes), (m + largeBytes, smallSlots * Self.smallSlotBytes)].filter { $0.1 > 0 })
            : nil
        func policy(_ n: Int) -> any EvictionPolicy {
            configuration.policy == .s3fifo ? S3FIFOPolicy(capacity: n) : ClockPolicy(capacity: n)
        }
        var pools = [Pool(free: (0..<Int32(largeSlots)).reversed(), policy: policy(largeSlots), base: 0, count: largeSlots, slotBytes: blockSize)]
        if smallSlots > 0 {
            let base = Int32(largeSlots)
            pools.append(Pool(free: (base..<(base + Int32(smallSlots))).reversed(), policy: policy(smallSlots), base: base, count: smallSlots, slotBytes: Self.smallSlotBytes))
        }
        state = Locked(State(slots: Array(repeating: Slot(), count: slotCount), pools: pools))
    }

    deinit {
        prefault?.cancel()
        munmap(memory, mappedBytes)
        rangeBuffers.withLock { for a in $0 { UnsafeMutableRawPointer(bitPattern: a)!.deallocate() } }
    }

    /// Size of the small slots that hold objects (or tails) far smaller than a block.
    package static let smallSlotBytes = 64 << 10

    @inline(__always) private func buffer(_ slot: Int32) -> UnsafeMutableRawPointer {
        let i = Int(slot)
        return i < largeSlots ? memory + i * blockSize : memory + largeSlots * blockSize + (i - largeSlots) * Self.smallSlotBytes
    }

    /// The size of a slot's buffer, which the disk tier may pad a transfer to for direct I/O.
    private func readableBytes(_ slot: Int32) -> Int {
        Int(slot) < largeSlots ? blockSize : Self.smallSlotBytes
    }

    /// Bytes of the memory tier committed up front so far (0 unless `prefaultMemory`).
    package var prefaultedBytes: Int { prefault?.committed.load(ordering: .relaxed) ?? 0 }

    /// Reads, fills and prefetches that held committing off so far (0 unless `prefaultMemory`).
    package var prefaultDemand: Int { prefault?.demandCount ?? 0 }

    /// Blocks the memory tier evicted to make room, since it was built.
    package var evictions: Int { state.withLock { $0.evictions } }

    /// Memory tier use: bytes in ready blocks, capacity, blocks in flight.
    package var memoryUsage: (bytes: Int64, capacity: Int64) {
        (state.withLock { $0.readyBytes }, Int64(mappedBytes))
    }

    // MARK: - Reads

    /// Pins `[offset, offset + length)` of `object` (clipped to its size) and passes it to `completion`.
    ///
    /// On a hit `completion` runs before `read` returns; on a miss it runs when the fill lands. The caller
    /// must pass the range to `release` once it has used the bytes.
    /// Returns whether it was a hit in memory (the completion has then run).
    @discardableResult
    package func read(_ object: ObjectVersion, offset: Int64, length: Int, completion: @escaping Completion) -> Bool {
        precondition(length <= blockSize, "a read spans at most one block's length")
        let end = min(offset + Int64(length), object.size)
        guard offset < end else {
            completion(.success(PinnedRange()))
            return true
        }
        let firstBlock = offset / Int64(blockSize)
        let lastBlock = (end - 1) / Int64(blockSize)
        let keys = (BlockKey(object: object, index: firstBlock), lastBlock != firstBlock ? BlockKey(object: object, index: lastBlock) : nil)
        // Hits count too: committing pages beside a warm read takes CPU from it.
        prefault?.noteDemand()
        // Fast path: every block ready; pin and answer without allocating.
        let hit = state.withLock { s -> (Int32, Int32)? in
            guard let a = s.index[keys.0], s.slots[Int(a)].state == .ready else { return nil }
            var b: Int32 = -1
            if let k1 = keys.1 {
                guard let found = s.index[k1], s.slots[Int(found)].state == .ready else { return nil }
                b = found
                s.slots[Int(b)].pins += 1
                s.slots[Int(b)].transient = false
                s.accessed(b)
            }
            s.slots[Int(a)].pins += 1
            s.slots[Int(a)].transient = false
            s.accessed(a)
            return (a, b)
        }
        if let (a, b) = hit {
            hits.add(1, ordering: .relaxed)
            completion(.success(makeRange(offset: offset, end: end, slots: (a, b))))
            return true
        }
        misses.add(1, ordering: .relaxed)
        if keys.1 == nil, Int(end - offset) <= rangeLimit, let disk, state.withLock({ $0.index[keys.0] == nil }), disk.contains(keys.0) {
            readRange(keys.0, offset: offset, end: end, completion: completion)
            return false
        }
        let join = ReadJoin(cache: self, offset: offset, end: end, blocks: keys.1 == nil ? 1 : 2, completion: completion)
        acquire(keys.0, position: 0, join: join, allowStarve: true)
        if let k1 = keys.1 { acquire(k1, position: 1, join: join, allowStarve: true) }
        return false
    }

    /// Serves `[offset, end)` of block `key` from the disk tier's sub-blocks into a range buffer; falls back
    /// to a whole-block fill when the block cannot be read in part (first format, damaged, gone).
    private func readRange(_ key: BlockKey, offset: Int64, end: Int64, completion: @escaping Completion) {
        let buffer = rangeBuffers.withLock { $0.popLast() }.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }
            ?? UnsafeMutableRawPointer.allocate(byteCount: rangeCapacity, alignment: Syscall.directIOAlignment)
        let count = Int(end - offset)
        let inBlock = Int(offset - key.index * Int64(blockSize))
        disk!.readRange(key, offset: inBlock, count: count, into: buffer, capacity: rangeCapacity) { [self] start in
            guard let start else {
                giveRangeBuffer(buffer)
                let join = ReadJoin(cache: self, offset: offset, end: end, blocks: 1, completion: completion)
                acquire(key, position: 0, join: join, allowStarve: true)
                return
            }
            diskRangeHits.add(1, ordering: .relaxed)
            var r = PinnedRange()
            r.first = UnsafeRawBufferPointer(start: buffer + start, count: count)
            r.segmentCount = 1
            r.privateBuffer = UnsafeMutableRawBufferPointer(start: buffer, count: rangeCapacity)
            completion(.success(r))
            if touchedBefore(key) { prefetch(key.object, blocks: key.index..<(key.index + 1)) }
        }
    }

    private func giveRangeBuffer(_ buffer: UnsafeMutableRawPointer) {
        let kept = rangeBuffers.withLock { list -> Bool in
            guard list.count < 16 else { return false }
            list.append(UInt(bitPattern: buffer))
            return true
        }
        if !kept { buffer.deallocate() }
    }

    /// Whether `key` was read in part since it was last forgotten; remembers it if not, forgetting the oldest
    /// of 8,192 (an entry of a key that was since read again may go early: the block simply loads later).
    private func touchedBefore(_ key: BlockKey) -> Bool {
        rangeTouched.withLock { t in
            if t.keys.remove(key) != nil { return true }
            t.keys.insert(key)
            t.order.append(key)
            if t.order.count > 8192, let old = t.order.popFirst() { t.keys.remove(old) }
            return false
        }
    }

    /// Gets one block for a join: pins a ready slot, joins a fill, or starts one.
    private func acquire(_ key: BlockKey, position: Int, join: ReadJoin, allowStarve: Bool) {
        enum Step { case ready(Int32), joined, start(Int32), starved }
        let waiter = Waiter { join.arrived(position: position, $0) }
        let step = state.withLock { s -> Step in
            if let slot = s.index[key] {
                s.slots[Int(slot)].transient = false
                if s.slots[Int(slot)].state == .ready {
                    s.slots[Int(slot)].pins += 1
                    s.accessed(slot)
                    return .ready(slot)
                }
                s.slots[Int(slot)].waiters.append(waiter)
                return .joined
            }
            guard let slot = s.take(length: length(key)) else {
                s.starved.append(Retry { [self] in acquire(key, position: position, join: join, allowStarve: true) })
                return .starved
            }
            s.slots[Int(slot)] = Slot(key: key, state: .filling, waiters: [waiter])
            s.index[key] = slot
            return .start(slot)
        }
        switch step {
        case .ready(let slot): join.arrived(position: position, .success(slot))
        case .joined: joinedFills.add(1, ordering: .relaxed)
        case .start(let slot): fill(slot, key: key, writeBehind: true)
        case .starved: bypassReads.add(1, ordering: .relaxed)
        }
    }

    /// Bytes of block `key`: a whole block, or the object's tail.
    private func length(_ key: BlockKey) -> Int {
        Int(min(Int64(blockSize), key.object.size - key.index * Int64(blockSize)))
    }

    /// What a GET's headers told of its object, for a fill that asked (`prefetchSmallObject`): nil when the
    /// block came from the disk tier, which keeps no headers.
    package typealias MetadataSink = @Sendable (Result<GetObjectResult?, ObjectStoreError>) -> Void

    private func fill(_ slot: Int32, key: BlockKey, writeBehind: Bool, metadata: MetadataSink? = nil) {
        // Every fill holds the prefault off, whoever started it (a read, a prefetch, a warmup: committing the
        // tier beside a 1 GiB warmup took a sixth of the daemon's CPU, for slots the warmup never needed).
        prefault?.noteDemand()
        let want = length(key)
        let target = UnsafeMutableRawBufferPointer(start: buffer(slot), count: want)
        if let disk, disk.contains(key) {
            disk.read(key, into: target, readable: readableBytes(slot)) { [self] n in
                if let n, n == want {
                    diskFills.add(1, ordering: .relaxed)
                    metadata?(.success(nil))
                    finish(slot, key: key, .success(n), writeBehind: false)
                } else {
                    fetch(key.object, blocks: key.index..<key.index + 1, first: slot, writeBehind: writeBehind, metadata: metadata)
                }
            }
            return
        }
        fetch(key.object, blocks: key.index..<key.index + 1, first: slot, writeBehind: writeBehind, metadata: metadata)
    }

    private func finish(_ slot: Int32, key: BlockKey, _ result: Result<Int, ObjectStoreError>, writeBehind: Bool) {
        var waiters: [Waiter] = []
        var wake: Retry?
        var persist = false
        state.withLock { s in
            var x = s.slots[Int(slot)]
            waiters = x.waiters
            x.waiters = []
            if x.key == nil || x.key! != key { return }  // cannot happen: filling slots are never reassigned
            if x.prefetched { s.prefetchInFlight = max(0, s.prefetchInFlight - 1) }
            switch result {
            case .success(let n) where !x.orphan:
                x.state = .ready
                x.length = n
                persist = writeBehind && disk != nil
                x.pins += Int32(waiters.count) + (persist ? 1 : 0)
                s.readyBytes += Int64(n)
                s.slots[Int(slot)] = x
                s.inserted(slot, key: key)
                if x.pins == 0 { wake = s.starved.popFirst() }
            default:
                s.index.removeValue(forKey: key)
                s.recycle(slot)
                wake = s.starved.popFirst()
            }
        }
        switch result {
        case .success:
            for w in waiters { w.run(.success(slot)) }
        case .failure(let e):
            for w in waiters { w.run(.failure(e)) }
        }
        if persist, let disk {
            let n = (try? result.get()) ?? 0
            disk.write(key, from: UnsafeRawBufferPointer(start: buffer(slot), count: n), readable: readableBytes(slot)) { [self] _ in
                unpin(slot)
                dropIfTransient(slot, key: key)
            }
        }
        wake?.run()
    }

    fileprivate func makeRange(offset: Int64, end: Int64, slots: (Int32, Int32)) -> PinnedRange {
        var r = PinnedRange()
        r.slots = slots
        let bs = Int64(blockSize)
        let startInBlock = Int(offset % bs)
        if slots.1 < 0 {
            r.first = UnsafeRawBufferPointer(start: buffer(slots.0) + startInBlock, count: Int(end - offset))
            r.segmentCount = 1
        } else {
            let firstLength = blockSize - startInBlock
            r.first = UnsafeRawBufferPointer(start: buffer(slots.0) + startInBlock, count: firstLength)
            r.second = UnsafeRawBufferPointer(start: buffer(slots.1), count: Int(end - offset) - firstLength)
            r.segmentCount = 2
        }
        return r
    }

    /// Unpins the blocks of a range handed out by `read`.
    package func release(_ range: PinnedRange) {
        if range.slots.0 >= 0 { unpin(range.slots.0) }
        if range.slots.1 >= 0 { unpin(range.slots.1) }
        if let p = range.privateBuffer { giveRangeBuffer(p.baseAddress!) }
    }

    /// Frees a warmup's block from memory once it is on disk, if no read has wanted it.
    private func dropIfTransient(_ slot: Int32, key: BlockKey) {
        guard disk?.contains(key) == true else { return }
        let wake = state.withLock { s -> Retry? in
            let x = s.slots[Int(slot)]
            guard x.transient, x.key == key, x.state == .ready, x.pins == 0, s.index[key] == slot else { return nil }
            s.index.removeValue(forKey: key)
            s.removedByInvalidation(slot)
            s.readyBytes -= Int64(x.length)
            s.recycle(slot)
            return s.starved.popFirst()
        }
        wake?.run()
    }

    fileprivate func unpin(_ slot: Int32) {
        let wake = state.withLock { s -> Retry? in
            s.slots[Int(slot)].pins -= 1
            guard s.slots[Int(slot)].pins == 0 else { return nil }
            if s.slots[Int(slot)].orphan {
                s.readyBytes -= Int64(s.slots[Int(slot)].length)
                s.recycle(slot)
            }
            return s.starved.popFirst()
        }
        wake?.run()
    }

    // MARK: - Prefetch and invalidation

    /// Starts fills for blocks of `object` that are neither cached nor in flight, within the prefetch budget.
    ///
    /// Only slots that can be had without waiting are used: prefetch never delays a demand read. Returns how
    /// many blocks from the start of the range are now in memory or on their way; the rest did not fit.
    @discardableResult
    package func prefetch(_ object: ObjectVersion, blocks: Range<Int64>) -> Int {
        let lastBlock = (object.size - 1) / Int64(blockSize)
        var started: [(Int32, BlockKey)] = []
        var covered = 0
        state.withLock { s in
            for index in blocks where index <= lastBlock && index >= 0 {
                let key = BlockKey(object: object, index: index)
                if s.index[key] == nil {
                    // Nearest blocks first; what does not fit the budget now is asked for again on the next read.
                    guard s.prefetchInFlight < configuration.maxPrefetchInFlight, let slot = s.take(length: length(key)) else { break }
                    s.slots[Int(slot)] = Slot(key: key, state: .filling, prefetched: true)
                    s.index[key] = slot
                    s.prefetchInFlight += 1
                    started.append((slot, key))
                }
                covered += 1
            }
        }
        prefetches.add(started.count, ordering: .relaxed)
        for (slot, key) in started { fill(slot, key: key, writeBehind: true) }
        return covered
    }

    /// Fetches a small object whole into a small slot, as a prefetch, and hands `metadata` what its GET said.
    ///
    /// A listing says nothing of a file's mode or type, and a GET's headers say what a HEAD's would: for an
    /// object this small one request brings both, and the read that usually follows is a hit. Returns false,
    /// without calling `metadata`, when nothing started: the object is not small, is in memory already, or no
    /// small slot is free. The caller bounds how many run at once.
    package func prefetchSmallObject(_ object: ObjectVersion, metadata: @escaping MetadataSink) -> Bool {
        guard smallSlots > 0, object.size > 0, object.size <= Int64(Self.smallSlotBytes), !object.etag.isEmpty else { return false }
        let key = BlockKey(object: object, index: 0)
        let slot = state.withLock { s -> Int32? in
            // Not against the prefetch budget: the caller bounds these, and read-ahead of files being read
            // must not wait behind a listing's.
            guard s.index[key] == nil, let slot = s.take(length: length(key)) else { return nil }
            s.slots[Int(slot)] = Slot(key: key, state: .filling)
            s.index[key] = slot
            return slot
        }
        guard let slot else { return false }
        prefetches.add(1, ordering: .relaxed)
        fill(slot, key: key, writeBehind: true, metadata: metadata)
        return true
    }

    /// Bytes of ready blocks in memory, by the group `classify` puts each block's object in.
    package func memoryUsage(by classify: (ObjectVersion) -> String?) -> [String: Int64] {
        let objects = state.withLock { s in s.slots.compactMap { slot -> (ObjectVersion, Int)? in
            guard slot.state == .ready, let key = slot.key else { return nil }
            return (key.object, slot.length)
        } }
        var out: [String: Int64] = [:]
        for (object, bytes) in objects { out[classify(object) ?? "\u{0}", default: 0] += Int64(bytes) }
        return out
    }

    /// What `fill` did with a block.
    package enum FillOutcome: Sendable {
        /// On the disk tier already, in memory, or fetched now (and on its way to the disk tier).
        case held
        /// No slot could be had without waiting: try again later.
        case busy
        /// The fetch failed (after the client's retries).
        case failed(ObjectStoreError)
    }

    /// Brings one block into the cache for later: joins a fill in flight, or starts one with write-behind to
    /// the disk tier, using only a slot that can be had without waiting (so it never delays a demand read).
    /// With `memory` the block ends up in memory too (read from the disk tier if it is there); without, a
    /// block this starts leaves memory once written to disk, unless a read wants it first.
    package func fill(_ object: ObjectVersion, block index: Int64, memory: Bool, done: @escaping @Sendable (FillOutcome) -> Void) {
        let key = BlockKey(object: object, index: index)
        if !memory, disk?.contains(key) == true { return done(.held) }
        enum Step { case held, joined, start(Int32), busy }
        let waiter = Waiter { [self] result in
            switch result {
            case .success(let slot):
                unpin(slot)
                done(.held)
            case .failure(let e): done(.failed(e))
            }
        }
        let step = state.withLock { s -> Step in
            if let slot = s.index[key] {
                if s.slots[Int(slot)].state == .ready { return .held }
                s.slots[Int(slot)].waiters.append(waiter)
                return .joined
            }
            guard let slot = s.take(length: length(key)) else { return .busy }
            s.slots[Int(slot)] = Slot(key: key, state: .filling, transient: !memory, waiters: [waiter])
            s.index[key] = slot
            return .start(slot)
        }
        switch step {
        case .held: done(.held)
        case .joined: break
        case .start(let slot): fill(slot, key: key, writeBehind: true)
        case .busy: done(.busy)
        }
    }

    /// Brings adjacent `blocks` of `object` into the cache as `fill` does, with one GET for them all when
    /// adjacent free slots can take them: a GET's wait for its first byte is paid once per run, not per block.
    ///
    /// Falls back to a fill per block when one of them is cached or in flight, or no run of free slots is
    /// there (a memory tier full of ready blocks evicts one at a time, by its policy). `done` runs once, with
    /// the worst outcome: failed, then busy, then held.
    package func fill(_ object: ObjectVersion, blocks: Range<Int64>, memory: Bool, done: @escaping @Sendable (FillOutcome) -> Void) {
        let blocks = blocks.clamped(to: 0..<(object.size > 0 ? (object.size - 1) / Int64(blockSize) + 1 : 0))
        guard !blocks.isEmpty else { return done(.held) }
        let join = FillJoin(count: blocks.count, done: done)
        let waiter = Waiter { [self] result in
            switch result {
            case .success(let slot):
                unpin(slot)
                join.arrived(.held)
            case .failure(let e): join.arrived(.failed(e))
            }
        }
        let keys = blocks.map { BlockKey(object: object, index: $0) }
        // Checked before the state lock, as `fill` does: a block that lands on disk meanwhile is fetched again.
        let run = blocks.count > 1 && !keys.contains(where: { disk?.contains($0) == true })
            ? state.withLock { s -> Int32? in
                guard !keys.contains(where: { s.index[$0] != nil }), let first = s.takeAdjacent(keys.count, below: Int32(largeSlots)) else { return nil }
                for (j, key) in keys.enumerated() {
                    s.slots[Int(first) + j] = Slot(key: key, state: .filling, transient: !memory, waiters: [waiter])
                    s.index[key] = first + Int32(j)
                }
                return first
            }
            : nil
        guard let run else {
            for index in blocks { fill(object, block: index, memory: memory) { join.arrived($0) } }
            return
        }
        prefault?.noteDemand()
        fetch(object, blocks: blocks, first: run, writeBehind: true)
    }

    /// One GET for the adjacent `blocks` of `object` into the adjacent slots from `first`, each block then
    /// finished on its own; a fill of one block is a run of one.
    private func fetch(_ object: ObjectVersion, blocks: Range<Int64>, first: Int32, writeBehind: Bool, metadata: MetadataSink? = nil) {
        networkFills.add(blocks.count, ordering: .relaxed)
        let offset = blocks.lowerBound * Int64(blockSize)
        let total = Int(min(object.size, blocks.upperBound * Int64(blockSize)) - offset)
        let request = GetObjectRequest(
            bucket: object.bucket, key: object.key, range: ByteRange(offset: offset, length: Int64(total)), ifMatch: object.etag)
        let target = UnsafeMutableRawBufferPointer(start: buffer(first), count: total)
        (object.store?.client ?? store).getObject(request, into: target) { [self] result in
            var failure: ObjectStoreError?
            switch result {
            case .success(let r) where r.bytesWritten == total: metadata?(.success(r))
            case .success(let r):
                failure = ObjectStoreError(
                    .malformedResponse, "short read of blocks \(blocks.lowerBound)..<\(blocks.upperBound): \(r.bytesWritten) of \(total) bytes (object size changed?)",
                    operation: "GetObject", bucket: object.bucket, key: object.key)
            case .failure(let e): failure = e
            }
            if let failure { metadata?(.failure(failure)) }
            for (j, index) in blocks.enumerated() {
                let key = BlockKey(object: object, index: index)
                let outcome: Result<Int, ObjectStoreError> = failure.map { .failure($0) } ?? .success(length(key))
                finish(first + Int32(j), key: key, outcome, writeBehind: writeBehind && failure == nil)
            }
        }
    }

    /// Whether block `index` of `object` is held: on the disk tier, or ready in memory.
    package func holds(_ object: ObjectVersion, block index: Int64, onDisk: Bool = false) -> Bool {
        let key = BlockKey(object: object, index: index)
        if disk?.contains(key) == true { return true }
        if onDisk { return false }
        return state.withLock { s in s.index[key].map { s.slots[Int($0)].state == .ready } ?? false }
    }

    /// Whether block `index` of `object` is ready in memory.
    package func inMemory(_ object: ObjectVersion, block index: Int64) -> Bool {
        let key = BlockKey(object: object, index: index)
        return state.withLock { s in s.index[key].map { s.slots[Int($0)].state == .ready } ?? false }
    }

    /// Whether a block is in memory (ready or filling).
    package func isResident(_ key: BlockKey) -> Bool {
        state.withLock { $0.index[key] != nil }
    }

    /// Drops every block of `object` from memory and from the disk tier (it changed or vanished in the bucket).
    package func evict(_ object: ObjectVersion) {
        invalidate(object)
        disk?.remove(object, blockSize: blockSize)
    }

    /// Drops every memory block of `object` (its ETag changed). Pinned blocks go when released.
    package func invalidate(_ object: ObjectVersion) {
        guard object.size > 0 else { return }
        let count = (object.size - 1) / Int64(blockSize) + 1
        state.withLock { s in
            for i in 0..<count {
                let key = BlockKey(object: object, index: i)
                guard let slot = s.index[key], s.slots[Int(slot)].state == .ready else { continue }
                s.index.removeValue(forKey: key)
                s.removedByInvalidation(slot)
                if s.slots[Int(slot)].pins > 0 {
                    s.slots[Int(slot)].orphan = true
                } else {
                    s.readyBytes -= Int64(s.slots[Int(slot)].length)
                    s.recycle(slot)
                }
            }
        }
    }
}

/// Gathers the one or two blocks of a missed read and completes it once, on whichever thread lands last.
private final class ReadJoin: @unchecked Sendable {
    private let cache: BlockCache
    private let offset: Int64
    private let end: Int64
    private let completion: BlockCache.Completion
    /// Inline (`Mutex`, not `Locked`): one per missed read, met by two landings at most, so it costs no
    /// allocation of its own and its spin is never long.
    private let lock = Mutex<(pending: Int, slots: (Int32, Int32), error: ObjectStoreError?)>((0, (-1, -1), nil))

    init(cache: BlockCache, offset: Int64, end: Int64, blocks: Int, completion: @escaping BlockCache.Completion) {
        self.cache = cache
        self.offset = offset
        self.end = end
        self.completion = completion
        lock.withLock { $0.pending = blocks }
    }

    func arrived(position: Int, _ result: Result<Int32, ObjectStoreError>) {
        let done = lock.withLock { s -> (slots: (Int32, Int32), error: ObjectStoreError?)? in
            switch result {
            case .success(let slot): if position == 0 { s.slots.0 = slot } else { s.slots.1 = slot }
            case .failure(let e): s.error = s.error ?? e
            }
            s.pending -= 1
            return s.pending == 0 ? (s.slots, s.error) : nil
        }
        guard let done else { return }
        if let error = done.error {
            if done.slots.0 >= 0 { cache.unpin(done.slots.0) }
            if done.slots.1 >= 0 { cache.unpin(done.slots.1) }
            completion(.failure(error))
        } else {
            completion(.success(cache.makeRange(offset: offset, end: end, slots: done.slots)))
        }
    }
}

/// Gathers the outcomes of a run's fills and reports the worst, once, when the last lands.
private final class FillJoin: Sendable {
    private let done: @Sendable (BlockCache.FillOutcome) -> Void
    /// Inline, as `ReadJoin`'s: one per run of fills.
    private let state: Mutex<(pending: Int, worst: BlockCache.FillOutcome)>

    init(count: Int, done: @escaping @Sendable (BlockCache.FillOutcome) -> Void) {
        self.done = done
        state = Mutex((count, .held))
    }

    func arrived(_ outcome: BlockCache.FillOutcome) {
        let last = state.withLock { s -> BlockCache.FillOutcome? in
            switch (s.worst, outcome) {
            case (.failed, _), (_, .held): break
            case (.busy, .busy): break
            default: s.worst = outcome
            }
            s.pending -= 1
            return s.pending == 0 ? s.worst : nil
        }
        if let last { done(last) }
    }
}
