import Foundation
import Platform
import ObjectStore
import Synchronization
import Testing

@testable import WriteBack

struct PartGeometryTests {
    let g = PartGeometry(base: 16 << 20)

    @Test func partsMapToFixedRanges() {
        #expect(g.start(ofPart: 1) == 0)
        #expect(g.size(ofPart: 1000) == 16 << 20)
        #expect(g.size(ofPart: 1001) == 32 << 20)
        #expect(g.start(ofPart: 1001) == 1000 * (16 << 20))
        for offset: Int64 in [0, 1, (16 << 20) - 1, 16 << 20, 1000 * (16 << 20), 1000 * (16 << 20) + (32 << 20) + 5] {
            let p = g.part(containing: offset)
            #expect(g.start(ofPart: p) <= offset && offset < g.start(ofPart: p) + g.size(ofPart: p))
        }
        #expect(g.partCount(fileSize: 0) == 1)
        #expect(g.partCount(fileSize: (16 << 20) + 1) == 2)
    }

    @Test func tenThousandPartsReachFiveTiB() {
        #expect(g.capacity >= 5 << 40)
        #expect(PartGeometry(base: 5 << 20).capacity >= 5 << 40)
        #expect((1...10_000).allSatisfy { g.size(ofPart: $0) <= PartGeometry.maximumPartSize })
    }
}

struct JournalTests {
    @Test func recordsRoundTripAndDamageIsDetected() throws {
        let dir = NSTemporaryDirectory() + "wb-journal-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let j = Journal(directory: dir)
        let r = JournalRecord(
            id: "abc", bucket: "b", key: "dir/odd key+%/é", state: .committed, size: 42, uploadID: "u/1=",
            parts: [CompletedPart(partNumber: 1, etag: "\"e1\"")], metadata: ["mode": "33188", "mtime": "1.5"], created: 7)
        #expect(throws: Never.self) { try j.write { r }.get() }
        #expect(j.load().records == [r])
        // Flip one byte: the checksum rejects the record.
        let path = dir + "/abc.rec"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[20] ^= 1
        try bytes.write(to: URL(fileURLWithPath: path))
        let loaded = j.load()
        #expect(loaded.records.isEmpty && loaded.damaged == ["abc.rec"])
    }
}

struct UploadTests {
    @Test func syncCommitUploadsMultipartAndAsyncJournals() async throws {
        try await withWriteBack { wb, store, dir in
            let data = (0..<(11 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let f = try wb.create(bucket: "b", key: "k", metadata: ["mode": "33188"], mtime: Timestamp(seconds: 1))
            _ = data.withUnsafeBytes { wb.write(f, offset: 0, $0, mtime: Timestamp(seconds: 2)) }
            try await wb.commit(f, sync: true)
            #expect(try await fetch(store, "k") == data)
            #expect(try await store.headObject(bucket: "b", key: "k").metadata["mtime"] == "2")
            #expect(try await store.listMultipartUploads(bucket: "b", prefix: "").isEmpty)

            // Async: the record exists when commit returns and is gone once the upload is done.
            let g = try wb.create(bucket: "b", key: "small", metadata: [:], mtime: Timestamp(seconds: 3))
            _ = ([1, 2, 3] as [UInt8]).withUnsafeBytes { wb.write(g, offset: 0, $0, mtime: Timestamp(seconds: 3)) }
            try await wb.commit(g, sync: false)
            let pendingOrDone = try await Journal(directory: dir + "/journal").load().records.map(\.key).contains("small") ? true : (try? await store.headObject(bucket: "b", key: "small")) != nil
            #expect(pendingOrDone)
            try await wb.waitDurable(g)
            #expect(try await fetch(store, "small") == [1, 2, 3])
            for _ in 0..<3000 where !Journal(directory: dir + "/journal").load().records.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            #expect(Journal(directory: dir + "/journal").load().records.isEmpty)
        }
    }
}

/// A file replaced by a new one of the same key (create over it, O_TRUNC, rename over it) while its upload
/// is in flight: the bucket ends with the new file, whatever order the requests finish in.
struct ReplacementOrderTests {
    func replaceDuringUpload(size: Int, slowOp: String) async throws {
        try await withWriteBack { wb, store, _ in
            let old = patterned(size, seed: 3)
            let new = patterned(size / 2 + 1, seed: 5)
            // The old file's object-making request is held long enough for the new file to upload first.
            store.delayNext(slowOp, by: .milliseconds(700))
            let a = try wb.create(bucket: "b", key: "k", metadata: [:], mtime: Timestamp(seconds: 1))
            _ = old.withUnsafeBytes { wb.write(a, offset: 0, $0, mtime: Timestamp(seconds: 1)) }
            try await wb.commit(a, sync: false)
            for _ in 0..<2000 where (store.requests[slowOp] ?? 0) == 0 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(store.requests[slowOp] == 1, "the old file's \(slowOp) is in flight")
            let b = try wb.create(bucket: "b", key: "k", metadata: [:], mtime: Timestamp(seconds: 2))
            wb.cancel(a)
            _ = new.withUnsafeBytes { wb.write(b, offset: 0, $0, mtime: Timestamp(seconds: 2)) }
            try await wb.commit(b, sync: true)
            await wb.settle(store: "", bucket: "b", key: "k")
            #expect(try await fetch(store, "k") == new, "the replacement is what the bucket keeps")
        }
    }

    @Test func aLatePutOfAReplacedFileDoesNotLandLast() async throws {
        try await replaceDuringUpload(size: 3000, slowOp: "PutObject")
    }

    @Test func aLateCompletionOfAReplacedFileDoesNotLandLast() async throws {
        try await replaceDuringUpload(size: 6 << 20, slowOp: "CompleteMultipartUpload")
    }
}

/// A file truncated between its upload taking the size and reading the staging file: the short read is
/// stale, not a failure. An fsync waiting for the truncated state returns, and the bucket gets that state.
struct TruncatedUnderUploadTests {
    @Test func aReadCutShortByATruncateDoesNotFailTheUpload() async throws {
        try await withWriteBack { wb, store, _ in
            let old = patterned(3000, seed: 3)
            // The whole read budget held: the PutObject takes its size, then waits for the budget to read.
            let budget = wb.partReadBudget
            await budget.acquire(budget.limit)
            let f = try wb.create(bucket: "b", key: "k", metadata: [:], mtime: Timestamp(seconds: 1))
            _ = old.withUnsafeBytes { wb.write(f, offset: 0, $0, mtime: Timestamp(seconds: 1)) }
            try await wb.commit(f, sync: false)
            for _ in 0..<2000 where budget.waiters == 0 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(budget.waiters == 1, "the upload took size 3000 and waits to read it")
            #expect((try? wb.truncate(f, to: 10, mtime: Timestamp(seconds: 2)).get()) != nil)
            let sync = Task { try await wb.fsync(f) }
            for _ in 0..<2000 where wb.lock.withLock({ _ in f.s.waiters.isEmpty }) { try await Task.sleep(for: .milliseconds(5)) }
            #expect(wb.lock.withLock { _ in f.s.waiters.count } == 1, "the fsync waits for the truncated state")
            budget.release(budget.limit)
            try await sync.value
            #expect(try await fetch(store, "k") == Array(old[0..<10]))
        }
    }
}

/// The whole object from the in-memory store.
func fetch(_ store: InMemoryObjectStore, _ key: String) async throws -> [UInt8] {
    let info = try await store.headObject(bucket: "b", key: key)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(Int(info.size), 1), alignment: 16)
    defer { buffer.deallocate() }
    let n = try await store.getObject(GetObjectRequest(bucket: "b", key: key), into: buffer).bytesWritten
    return Array(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
}

/// The bound on part bodies read back from staging files.
struct ByteBudgetTests {
    @Test func waitersStartInOrderAsBytesComeBack() async throws {
        let budget = ByteBudget(limit: 10)
        await budget.acquire(6)
        let order = OrderLog()
        let second = Task { await budget.acquire(6); order.append(2) }
        // Each task is queued before the next starts, however late the tasks run.
        for _ in 0..<3000 where budget.waiters == 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(budget.waiters == 1, "6 + 6 is over the limit")
        let third = Task { await budget.acquire(3); order.append(3) }
        for _ in 0..<3000 where budget.waiters < 2 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(budget.waiters == 2 && order.values.isEmpty, "6 + 6 is over the limit, and the 3 waits its turn behind it")
        budget.release(6)
        await second.value
        await third.value
        #expect(order.values == [2, 3] && budget.held == 9)
    }

    @Test func oneRequestOverTheLimitPassesAlone() async {
        let budget = ByteBudget(limit: 4)
        await budget.acquire(16)
        #expect(budget.held == 16)
        budget.release(16)
        #expect(budget.held == 0)
    }
}

/// The order tasks got somewhere in.
final class OrderLog: Sendable {
    private let log = Mutex<[Int]>([])
    func append(_ n: Int) { log.withLock { $0.append(n) } }
    var values: [Int] { log.withLock { $0 } }
}
