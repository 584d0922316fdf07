import Foundation
import Platform
import ObjectStore
import Synchronization
import Testing

@testable import ReadCache

func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    return (0..<count).map { _ in
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        return UInt8(truncatingIfNeeded: x)
    }
}

func read(_ cache: BlockCache, _ object: ObjectVersion, _ offset: Int64, _ length: Int) async throws -> [UInt8] {
    let range: PinnedRange = try await withCheckedThrowingContinuation { c in
        cache.read(object, offset: offset, length: length) { c.resume(with: $0) }
    }
    defer { cache.release(range) }
    return range.copyBytes()
}

func tempDir() -> String {
    let p = NSTemporaryDirectory() + "lakecache-rc-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}

/// A store that delays GET completions, so concurrent readers really overlap a fill; a `held` one keeps
/// each GET (counted in `gets` once it is held) until `open()`, so a test knows a fill is in flight.
final class SlowStore: ObjectStore, @unchecked Sendable {
    let inner: InMemoryObjectStore
    let gets = Atomic<Int>(0)
    /// Whether GETs wait for `open()`; and the GETs waiting.
    private let gate: Mutex<(held: Bool, waiting: [@Sendable () -> Void])>
    init(_ inner: InMemoryObjectStore, held: Bool = false) {
        self.inner = inner
        gate = Mutex((held: held, waiting: []))
    }
    func headBucket(_ bucket: String) async throws { try await inner.headBucket(bucket) }
    func headObject(bucket: String, key: String) async throws -> ObjectInfo { try await inner.headObject(bucket: bucket, key: key) }
    func getObject(_ request: GetObjectRequest, into buffer: UnsafeMutableRawBufferPointer, completion: @escaping @Sendable (Result<GetObjectResult, ObjectStoreError>) -> Void) {
        let box = UncheckedBuffer(buffer)
        let go: @Sendable () -> Void = { self.inner.getObject(request, into: box.buffer, completion: completion) }
        let parked = gate.withLock { g -> Bool in
            if g.held { g.waiting.append(go) }
            return g.held
        }
        gets.add(1, ordering: .relaxed)
        if !parked { DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(50), execute: go) }
    }
    /// Lets the held GETs go, and every later one after the usual 50 ms.
    func open() {
        let waiting = gate.withLock { g -> [@Sendable () -> Void] in
            g.held = false
            let w = g.waiting
            g.waiting = []
            return w
        }
        for go in waiting { DispatchQueue.global().async(execute: go) }
    }
    func listObjects(_ request: ListObjectsRequest) async throws -> ListObjectsPage { try await inner.listObjects(request) }
    func putObject(bucket: String, key: String, body: RequestBody, options: PutOptions) async throws -> String { try await inner.putObject(bucket: bucket, key: key, body: body, options: options) }
    func createMultipartUpload(bucket: String, key: String, options: PutOptions) async throws -> String { try await inner.createMultipartUpload(bucket: bucket, key: key, options: options) }
    func uploadPart(bucket: String, key: String, uploadID: String, partNumber: Int, body: RequestBody) async throws -> String { try await inner.uploadPart(bucket: bucket, key: key, uploadID: uploadID, partNumber: partNumber, body: body) }
    func uploadPartCopy(source: ObjectLocation, bucket: String, key: String, uploadID: String, partNumber: Int, range: ByteRange) async throws -> String { try await inner.uploadPartCopy(source: source, bucket: bucket, key: key, uploadID: uploadID, partNumber: partNumber, range: range) }
    func completeMultipartUpload(bucket: String, key: String, uploadID: String, parts: [CompletedPart]) async throws -> String { try await inner.completeMultipartUpload(bucket: bucket, key: key, uploadID: uploadID, parts: parts) }
    func abortMultipartUpload(bucket: String, key: String, uploadID: String) async throws { try await inner.abortMultipartUpload(bucket: bucket, key: key, uploadID: uploadID) }
    func listParts(bucket: String, key: String, uploadID: String) async throws -> [PartInfo] { try await inner.listParts(bucket: bucket, key: key, uploadID: uploadID) }
    func listMultipartUploads(bucket: String, prefix: String) async throws -> [MultipartUploadInfo] { try await inner.listMultipartUploads(bucket: bucket, prefix: prefix) }
    func deleteObject(bucket: String, key: String) async throws { try await inner.deleteObject(bucket: bucket, key: key) }
    func deleteObjects(bucket: String, keys: [String]) async throws -> [(key: String, error: ObjectStoreError)] { try await inner.deleteObjects(bucket: bucket, keys: keys) }
    func copyObject(source: ObjectLocation, bucket: String, key: String, options: CopyOptions) async throws -> String { try await inner.copyObject(source: source, bucket: bucket, key: key, options: options) }
}

struct UncheckedBuffer: @unchecked Sendable {
    let buffer: UnsafeMutableRawBufferPointer
    init(_ b: UnsafeMutableRawBufferPointer) { buffer = b }
}

@Suite struct BlockCacheTests {
    let bs = 64 << 10

    func setup(size: Int, memoryBlocks: Int = 32, disk: DiskTier? = nil) -> (InMemoryObjectStore, BlockCache, ObjectVersion, [UInt8]) {
        let store = InMemoryObjectStore(buckets: ["b"])
        let data = pattern(size, seed: UInt64(size))
        let etag = store.set(bucket: "b", key: "obj", data: data)
        var config = BlockCacheConfiguration()
        config.blockSize = bs
        config.memoryBytes = Int64(memoryBlocks * bs)
        let cache = BlockCache(store: store, configuration: config, disk: disk)
        return (store, cache, ObjectVersion(bucket: "b", key: "obj", etag: etag, size: Int64(size)), data)
    }

    /// A 16-block memory tier over a store whose GETs take 50 ms (or wait for `open()`, `held`), holding one
    /// object of `size` pattern bytes.
    func slowCache(size: Int, seed: UInt64, held: Bool = false) -> (SlowStore, BlockCache, ObjectVersion, [UInt8]) {
        let inner = InMemoryObjectStore(buckets: ["b"])
        let data = pattern(size, seed: seed)
        let etag = inner.set(bucket: "b", key: "obj", data: data)
        let store = SlowStore(inner, held: held)
        var config = BlockCacheConfiguration()
        config.blockSize = bs
        config.memoryBytes = Int64(16 * bs)
        let cache = BlockCache(store: store, configuration: config, disk: nil)
        return (store, cache, ObjectVersion(bucket: "b", key: "obj", etag: etag, size: Int64(size)), data)
    }

    /// A 64-block memory tier committed up front, over one object of `bytes` pattern bytes.
    func prefaultedCache(bytes: Int, seed: UInt64) -> (InMemoryObjectStore, [UInt8], BlockCache, ObjectVersion) {
        let store = InMemoryObjectStore(buckets: ["b"])
        let data = pattern(bytes, seed: seed)
        let etag = store.set(bucket: "b", key: "obj", data: data)
        var config = BlockCacheConfiguration()
        config.blockSize = bs
        config.memoryBytes = Int64(64 * bs)
        config.prefaultMemory = true
        let cache = BlockCache(store: store, configuration: config, disk: nil)
        return (store, data, cache, ObjectVersion(bucket: "b", key: "obj", etag: etag, size: Int64(data.count)))
    }

    /// Committing the memory tier up front changes no byte a read sees, pauses while reads fill slots, and
    /// covers the whole tier once they stop; a cache dropped midway stops it.
    @Test func prefaultedMemoryReadsTheSameAndCoversTheTier() async throws {
        let (store, data, cache, obj) = prefaultedCache(bytes: 12 * bs + 77, seed: 5)
        for round in 0..<3 {
            for off in stride(from: 0, to: data.count, by: bs / 2) {
                let got = try await read(cache, obj, Int64(off), bs / 2)
                #expect(got == Array(data[off..<min(off + bs / 2, data.count)]), "round \(round) at \(off)")
            }
        }
        let tier = Int(cache.memoryUsage.capacity)
        for _ in 0..<3000 where cache.prefaultedBytes < tier { try await Task.sleep(for: .milliseconds(20)) }
        #expect(cache.prefaultedBytes == tier)
        #expect(try await read(cache, obj, Int64(bs + 3), 1000) == Array(data[(bs + 3)..<(bs + 1003)]))

        var big = BlockCacheConfiguration()
        big.memoryBytes = 2 << 30
        big.prefaultMemory = true
        var dropped: BlockCache? = BlockCache(store: store, configuration: big, disk: nil)
        try await Task.sleep(for: .milliseconds(150))
        // Dropped while committing: deinit stops the thread before the mapping goes.
        withExtendedLifetime(dropped) {}
        dropped = nil
    }

    /// Committing waits for a second with no demand from the mount on, measured by the clock: hits every
    /// 20 ms hold it off however the looks fall, a look delayed past the second still sees the change, and a
    /// quiet second opens it.
    @Test func prefaultGateWaitsForAQuietSecond() {
        let t0 = ContinuousClock.now
        var gate = PrefaultGate(quiet: .seconds(1), demand: 0, start: t0)
        var open = gate.mayCommit(demand: 0, now: t0 + .milliseconds(999))
        #expect(!open, "the mount counts as demand")
        var demand = 0
        for step in 1...75 {
            demand += 1
            // Looks fall every 100 ms, and one much later (a starved thread); each sees a change.
            if step % 5 == 0 || step == 73 {
                let t = Duration.milliseconds(20 * step)
                open = gate.mayCommit(demand: demand, now: t0 + t)
                #expect(!open, "at \(t)")
            }
        }
        open = gate.mayCommit(demand: demand, now: t0 + .milliseconds(2490))
        #expect(!open)
        open = gate.mayCommit(demand: demand, now: t0 + .milliseconds(2500))
        #expect(open, "a second after the last change seen")
        open = gate.mayCommit(demand: demand + 1, now: t0 + .seconds(9))
        #expect(!open, "a change after a long gap closes it")
        open = gate.mayCommit(demand: demand + 1, now: t0 + .seconds(10))
        #expect(open)
    }

    /// Hits, fills, prefetches and a warmup's fills all count as demand, so each holds committing off; once
    /// they stop, the tier is covered.
    @Test func hitsFillsAndPrefetchesHoldThePrefaultOff() async throws {
        let (store, data, cache, obj) = prefaultedCache(bytes: 4 * bs, seed: 6)
        var before = cache.prefaultDemand
        _ = try await read(cache, obj, 0, bs)
        #expect(cache.prefaultDemand > before, "a fill")
        before = cache.prefaultDemand
        #expect(try await read(cache, obj, 100, 1000) == Array(data[100..<1100]))
        #expect(cache.prefaultDemand > before, "a hit")
        #expect(cache.hits.load(ordering: .relaxed) == 1)
        before = cache.prefaultDemand
        #expect(cache.prefetch(obj, blocks: 2..<4) == 2)
        #expect(cache.prefaultDemand > before, "a prefetch")
        before = cache.prefaultDemand
        let filled = await withCheckedContinuation { c in cache.fill(obj, block: 1, memory: true) { c.resume(returning: $0) } }
        guard case .held = filled else { Issue.record("the warmup's fill: \(filled)"); return }
        #expect(cache.prefaultDemand > before, "a warmup's fill")
        let tier = Int(cache.memoryUsage.capacity)
        for _ in 0..<3000 where cache.prefaultedBytes < tier { try await Task.sleep(for: .milliseconds(20)) }
        #expect(cache.prefaultedBytes == tier)
        #expect(try await read(cache, obj, Int64(3 * bs), bs) == Array(data[(3 * bs)...]))
        #expect(store.requests["GetObject"] == 4, "a read's fill, two prefetched blocks and a warmup's")
    }

    func fillRun(_ cache: BlockCache, _ obj: ObjectVersion, _ blocks: Range<Int64>, memory: Bool) async -> BlockCache.FillOutcome {
        await withCheckedContinuation { c in cache.fill(obj, blocks: blocks, memory: memory) { c.resume(returning: $0) } }
    }

    /// Adjacent blocks come in one GET into adjacent slots and land on disk like single fills, a run that
    /// ends in the object's short tail included; a run with a block in memory already takes a fill per block.
    @Test func aRunOfAdjacentBlocksIsOneGet() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let disk = try DiskTier(directory: dir, capacity: 1 << 30, freeSpaceFloor: 0)
        let (store, cache, obj, data) = setup(size: 6 * bs + 100, disk: disk)
        guard case .held = await fillRun(cache, obj, 0..<2, memory: false) else { Issue.record("run 0..<2 did not fill"); return }
        #expect(store.requests["GetObject"] == 1)
        // Past the end is clamped: blocks 5 and 6 (100 bytes).
        guard case .held = await fillRun(cache, obj, 5..<9, memory: false) else { Issue.record("run 5..<9 did not fill"); return }
        #expect(store.requests["GetObject"] == 2)
        for _ in 0..<3000 where ![0, 1, 5, 6].allSatisfy({ cache.holds(obj, block: $0, onDisk: true) }) { try await Task.sleep(for: .milliseconds(20)) }
        #expect([0, 1, 5, 6].allSatisfy { cache.holds(obj, block: $0, onDisk: true) }, "the run's blocks reached the disk tier")
        #expect(try await read(cache, obj, Int64(bs - 10), 20) == Array(data[(bs - 10)..<(bs + 10)]))
        #expect(try await read(cache, obj, Int64(6 * bs), 100) == Array(data[(6 * bs)...]))
        #expect(store.requests["GetObject"] == 2, "read back from the disk tier")

        _ = try await read(cache, obj, Int64(3 * bs), 10)
        #expect(store.requests["GetObject"] == 3)
        guard case .held = await fillRun(cache, obj, 2..<5, memory: true) else { Issue.record("run 2..<5 did not fill"); return }
        #expect(store.requests["GetObject"] == 5, "block 3 was in memory: blocks 2 and 4 came one by one")
        #expect((2..<5).allSatisfy { cache.inMemory(obj, block: $0) })
        #expect(try await read(cache, obj, Int64(2 * bs), bs) == Array(data[(2 * bs)..<(3 * bs)]))
        #expect(try await read(cache, obj, Int64(4 * bs) + 7, bs - 7) == Array(data[(4 * bs + 7)..<(5 * bs)]))
    }

    /// A read of a block that a run is fetching joins it: one GET for both.
    @Test func aReadJoinsARunInFlight() async throws {
        let (store, cache, obj, data) = slowCache(size: 4 * bs, seed: 77, held: true)
        async let run = fillRun(cache, obj, 0..<2, memory: true)
        // The run's GET is held from the moment it is sent until the read has joined it. A read that does
        // not join sends a GET of its own (held too, and let go with the first): the counts below say so.
        for _ in 0..<3000 where store.gets.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(20)) }
        async let got = read(cache, obj, Int64(bs) + 5, 100)
        for _ in 0..<3000 where cache.joinedFills.load(ordering: .relaxed) == 0 && store.gets.load(ordering: .relaxed) < 2 { try await Task.sleep(for: .milliseconds(20)) }
        store.open()
        #expect(try await got == Array(data[(bs + 5)..<(bs + 105)]))
        guard case .held = await run else { Issue.record("the run did not fill"); return }
        #expect(store.gets.load(ordering: .relaxed) == 1)
        #expect(cache.joinedFills.load(ordering: .relaxed) == 1)
    }

    /// A failed GET fails every block of the run, and none stays behind in memory.
    @Test func aFailedRunFailsEachBlock() async throws {
        let (store, cache, obj, _) = setup(size: 4 * bs)
        let stale = ObjectVersion(bucket: "b", key: "obj", etag: "\"0000\"", size: obj.size)
        guard case .failed = await fillRun(cache, stale, 0..<2, memory: true) else { Issue.record("a stale ETag filled"); return }
        #expect(!cache.inMemory(stale, block: 0) && !cache.inMemory(stale, block: 1))
        #expect(store.requests["GetObject"] == 1)
        guard case .held = await fillRun(cache, obj, 0..<2, memory: true) else { Issue.record("the slots were not given back"); return }
    }

    @Test func readsAreExactAcrossBlockBoundaries() async throws {
        let (_, cache, obj, data) = setup(size: 10 * bs + 123)
        for (off, len) in [(0, 100), (bs - 10, 20), (bs, bs), (3 * bs + 5, bs), (10 * bs, 500), (10 * bs + 100, 100)] {
            let got = try await read(cache, obj, Int64(off), len)
            let end = min(off + len, data.count)
            #expect(got == Array(data[off..<end]), "read \(off)+\(len)")
        }
        #expect(try await read(cache, obj, Int64(data.count), 10).isEmpty)
    }

    @Test func secondReadIsAHit() async throws {
        let (store, cache, obj, _) = setup(size: 3 * bs)
        _ = try await read(cache, obj, 0, bs)
        _ = try await read(cache, obj, 0, bs)
        _ = try await read(cache, obj, 100, 1000)
        #expect(store.requests["GetObject"] == 1)
        #expect(cache.hits.load(ordering: .relaxed) == 2)
    }

    @Test func smallObjectIsOneGet() async throws {
        let (store, cache, obj, data) = setup(size: 5000)
        #expect(try await read(cache, obj, 0, 4096) == Array(data[0..<4096]))
        #expect(try await read(cache, obj, 4096, 4096) == Array(data[4096...]))
        #expect(store.requests["GetObject"] == 1)
    }

    @Test func concurrentReadersShareOneFill() async throws {
        let (slow, cache, obj, data) = slowCache(size: bs, seed: 9)
        try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for i in 0..<10 { group.addTask { try await read(cache, obj, Int64(i * 100), 100) } }
            var n = 0
            for try await got in group {
                #expect(got.count == 100)
                n += 1
            }
            #expect(n == 10)
        }
        #expect(slow.gets.load(ordering: .relaxed) == 1)
    }

    @Test func memoryStaysBoundedUnderEviction() async throws {
        let (_, cache, obj, data) = setup(size: 100 * bs, memoryBlocks: 8)
        #expect(cache.evictions == 0)
        for round in 0..<2 {
            for b in 0..<100 {
                let got = try await read(cache, obj, Int64(b * bs + 7), 64)
                #expect(got == Array(data[(b * bs + 7)..<(b * bs + 71)]), "round \(round) block \(b)")
            }
        }
        #expect(cache.memoryUsage.bytes <= cache.memoryUsage.capacity)
        // Two hundred cold blocks through eight slots: every block after the eighth displaced one.
        #expect(cache.evictions >= 192, "\(cache.evictions) evictions")
        // Dropping an object's blocks is an invalidation, not an eviction.
        let counted = cache.evictions
        cache.evict(obj)
        #expect(cache.evictions == counted)
    }

    @Test func changedObjectFailsWithPreconditionAndInvalidates() async throws {
        let (store, cache, obj, _) = setup(size: 2 * bs)
        _ = try await read(cache, obj, 0, 10)
        store.set(bucket: "b", key: "obj", data: pattern(2 * bs, seed: 99))
        await #expect(throws: ObjectStoreError.self) { _ = try await read(cache, obj, Int64(bs), 10) }
        cache.invalidate(obj)
        #expect(!cache.isResident(BlockKey(object: obj, index: 0)))
    }

    @Test func diskTierSurvivesANewCacheAndCatchesCorruption() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let disk1 = try DiskTier(directory: dir, capacity: 1 << 30, freeSpaceFloor: 0)
        let (store, cache1, obj, data) = setup(size: 4 * bs, disk: disk1)
        for b in 0..<4 { _ = try await read(cache1, obj, Int64(b * bs), bs) }
        disk1.shutdown()  // drains the write-behind queue
        #expect(disk1.usage.blocks == 4)

        let disk2 = try DiskTier(directory: dir, capacity: 1 << 30, freeSpaceFloor: 0)
        var config = BlockCacheConfiguration()
        config.blockSize = bs
        config.memoryBytes = Int64(8 * bs)
        let cache2 = BlockCache(store: store, configuration: config, disk: disk2)
        let before = store.requests["GetObject"] ?? 0
        // Corrupt block 2 on disk: one flipped byte in the data.
        let path = disk2.path(DiskTier.DiskKey(object: obj.id, index: 2))
        let fd = open(path, O_RDWR)
        var byte: UInt8 = 0
        pread(fd, &byte, 1, off_t(DiskTier.headerSize + 10))
        byte ^= 0xFF
        pwrite(fd, &byte, 1, off_t(DiskTier.headerSize + 10))
        close(fd)
        for b in 0..<4 {
            #expect(try await read(cache2, obj, Int64(b * bs), bs) == Array(data[(b * bs)..<((b + 1) * bs)]))
        }
        #expect(store.requests["GetObject"]! - before == 1, "only the corrupted block is refetched")
        #expect(disk2.corrupt.load(ordering: .relaxed) == 1)
        #expect(disk2.hits.load(ordering: .relaxed) == 3)
        disk2.shutdown()
    }

    /// A small read of a block only the disk tier holds comes from its sub-blocks, with no GET and without
    /// loading the block into memory; the second such read of the block loads it in the background.
    @Test func aSmallReadOfADiskBlockReadsOnlyItsSubBlocks() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let block = 1 << 20
        let store = InMemoryObjectStore(buckets: ["b"])
        let data = pattern(4 * block, seed: 21)
        let obj = ObjectVersion(bucket: "b", key: "obj", etag: store.set(bucket: "b", key: "obj", data: data), size: Int64(data.count))
        var config = BlockCacheConfiguration()
        config.blockSize = block
        config.memoryBytes = Int64(16 * block)
        let disk1 = try DiskTier(directory: dir, capacity: 1 << 30, freeSpaceFloor: 0)
        let cache1 = BlockCache(store: store, configuration: config, disk: disk1)
        for b in 0..<4 { _ = try await read(cache1, obj, Int64(b * block), block) }
        disk1.shutdown()

        let disk2 = try DiskTier(directory: dir, capacity: 1 << 30, freeSpaceFloor: 0)
        defer { disk2.shutdown() }
        let cache2 = BlockCache(store: store, configuration: config, disk: disk2)
        let gets = store.requests["GetObject"] ?? 0
        let offset = block + 200_000
        #expect(try await read(cache2, obj, Int64(offset), 4096) == Array(data[offset..<(offset + 4096)]))
        #expect(cache2.diskRangeHits.load(ordering: .relaxed) == 1 && !cache2.inMemory(obj, block: 1))
        #expect(disk2.hits.load(ordering: .relaxed) == 0, "no whole-block read")
        // Across a sub-block edge, up to the largest range read (a quarter block).
        let wide = block + (64 << 10) - 3
        #expect(try await read(cache2, obj, Int64(wide), block / 4) == Array(data[wide..<(wide + block / 4)]))
        #expect(cache2.diskRangeHits.load(ordering: .relaxed) == 2)
        for _ in 0..<3000 where !cache2.inMemory(obj, block: 1) { try await Task.sleep(for: .milliseconds(20)) }
        #expect(cache2.inMemory(obj, block: 1), "read twice in part: loaded into memory")
        let hits = cache2.hits.load(ordering: .relaxed)
        #expect(try await read(cache2, obj, Int64(offset), 4096) == Array(data[offset..<(offset + 4096)]))
        #expect(cache2.hits.load(ordering: .relaxed) == hits + 1)
        // Larger than a quarter block: the whole block is loaded, as before.
        #expect(try await read(cache2, obj, Int64(2 * block), block / 2) == Array(data[(2 * block)..<(2 * block + block / 2)]))
        #expect(cache2.inMemory(obj, block: 2) && cache2.diskRangeHits.load(ordering: .relaxed) == 2)
        #expect((store.requests["GetObject"] ?? 0) == gets, "all from the disk tier")
    }

    @Test func diskTierStaysUnderCapacity() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let capacity = Int64(6 * (bs + DiskTier.headerSize))
        let disk = try DiskTier(directory: dir, capacity: capacity, freeSpaceFloor: 0)
        let (_, cache, obj, data) = setup(size: 20 * bs, memoryBlocks: 8, disk: disk)
        for b in 0..<20 { #expect(try await read(cache, obj, Int64(b * bs), 16) == Array(data[(b * bs)..<(b * bs + 16)])) }
        disk.shutdown()
        #expect(disk.usage.bytes <= capacity)
        #expect(disk.evictions.load(ordering: .relaxed) > 0)
    }

    @Test func aReadWaitsForASlotWhenAllArePinned() async throws {
        let (_, cache, obj, data) = setup(size: 12 * bs, memoryBlocks: 8)
        // Hold every whole-block slot pinned.
        var held: [PinnedRange] = []
        for b in 0..<cache.slotCount {
            held.append(try await withCheckedThrowingContinuation { c in cache.read(obj, offset: Int64(b * bs), length: 10) { c.resume(with: $0) } })
        }
        let done = Atomic<Bool>(false)
        let got = Mutex<[UInt8]>([])
        cache.read(obj, offset: Int64(10 * bs), length: 100) { result in
            if case .success(let r) = result {
                got.withLock { $0 = r.copyBytes() }
                cache.release(r)
            }
            done.store(true, ordering: .releasing)
        }
        try await Task.sleep(for: .milliseconds(100))
        let finishedEarly = done.load(ordering: .acquiring)
        #expect(!finishedEarly, "a read must wait, not fail or overwrite a pinned block")
        cache.release(held.removeFirst())
        for _ in 0..<3000 where !done.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(20)) }
        let finished = done.load(ordering: .acquiring)
        #expect(finished)
        #expect(got.withLock { $0 } == Array(data[(10 * bs)..<(10 * bs + 100)]))
        // The pinned blocks were never disturbed.
        for (i, r) in held.enumerated() { #expect(r.copyBytes() == Array(data[((i + 1) * bs)..<((i + 1) * bs + 10)])) }
        for r in held { cache.release(r) }
    }

    @Test func smallObjectsUseSmallSlots() async throws {
        let store = InMemoryObjectStore(buckets: ["b"])
        var config = BlockCacheConfiguration()
        config.blockSize = 4 << 20
        config.memoryBytes = 32 << 20  // 7 whole-block slots (8 minimum), 64 small slots
        let cache = BlockCache(store: store, configuration: config, disk: nil)
        var objects: [(ObjectVersion, [UInt8])] = []
        for i in 0..<60 {
            let data = pattern(16 << 10, seed: UInt64(i + 1))
            let etag = store.set(bucket: "b", key: "small/\(i)", data: data)
            objects.append((ObjectVersion(bucket: "b", key: "small/\(i)", etag: etag, size: Int64(data.count)), data))
        }
        for (o, d) in objects { #expect(try await read(cache, o, 0, 16 << 10) == d) }
        let gets = store.requests["GetObject"]
        for (o, d) in objects { #expect(try await read(cache, o, 0, 16 << 10) == d) }
        #expect(store.requests["GetObject"] == gets, "60 small files must all stay resident in 32 MiB")
        #expect(cache.memoryUsage.bytes == 60 * (16 << 10))
    }

    @Test func prefetchFillsAheadWithoutDemandGets() async throws {
        let (store, cache, obj, _) = setup(size: 16 * bs)
        cache.prefetch(obj, blocks: 0..<8)
        let before = store.requests["GetObject"] ?? 0
        #expect(before == 8)
        for b in 0..<8 { _ = try await read(cache, obj, Int64(b * bs), bs) }
        #expect(store.requests["GetObject"] == 8)
    }
}

@Suite struct ReadAheadTests {
    @Test func windowDoublesOnSequentialAndStopsOnRandom() {
        var ra = ReadAhead(initialWindow: 2 << 20, maximumWindow: 16 << 20)
        let bs = 1 << 20
        var windows: [Int64] = []
        var off: Int64 = 0
        for _ in 0..<6 {
            _ = ra.record(offset: off, length: 128 << 10, blockSize: bs, objectSize: 1 << 30)
            windows.append(ra.currentWindow)
            off += 128 << 10
        }
        let mib: Int64 = 1 << 20
        let expected: [Int64] = [2 * mib, 4 * mib, 8 * mib, 16 * mib, 16 * mib, 16 * mib]
        #expect(windows == expected)
        #expect(ra.record(offset: 500 << 20, length: 4096, blockSize: bs, objectSize: 1 << 30) == nil)
        #expect(ra.currentWindow == 0)
    }

    @Test func prefetchRangeIsTheWindowAheadOfTheRead() {
        var ra = ReadAhead(initialWindow: 4 << 20, maximumWindow: 64 << 20)
        let bs = 1 << 20
        let first = ra.record(offset: 0, length: 1 << 20, blockSize: bs, objectSize: 100 << 20)
        #expect(first == 1..<5)
        let second = ra.record(offset: 1 << 20, length: 1 << 20, blockSize: bs, objectSize: 100 << 20)
        #expect(second == 2..<10)
        // Never past the end of the object.
        #expect(ra.record(offset: 98 << 20, length: 1 << 20, blockSize: bs, objectSize: 100 << 20) == nil)
    }
}
