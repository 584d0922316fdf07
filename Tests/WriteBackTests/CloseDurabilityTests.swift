import Foundation
import Platform
import ObjectStore
import Testing

@testable import WriteBack

/// `kernel` close durability: records of bytes still in the page cache carry the boot id, the background sync
/// marks them synced, and replay after a reboot reports an unsynced record lost instead of uploading it.
struct CloseDurabilityTests {
    func withDirectory(_ body: (String) async throws -> Void) async throws {
        let dir = NSTemporaryDirectory() + "wb-durability-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await body(dir)
    }

    func writeBack(_ dir: String, _ store: InMemoryObjectStore, durability: CloseDurability, boot: String) throws -> WriteBack {
        var options = WriteBackOptions(directory: dir)
        options.partSize = 5 << 20
        options.closeDurability = durability
        options.bootID = boot
        return try WriteBack(store: store, options: options)
    }

    /// A staged file and its committed record as a daemon of `boot` left them.
    func leaveRecord(_ dir: String, id: String, key: String, bytes: [UInt8], unsyncedBoot: String?) throws {
        try FileManager.default.createDirectory(atPath: dir + "/staging", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/journal", withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/staging/\(id).data"))
        var record = JournalRecord(id: id, bucket: "b", key: key, state: .committed, size: Int64(bytes.count), uploadID: nil, parts: [], metadata: [:], created: 1)
        record.unsyncedBoot = unsyncedBoot
        try Journal(directory: dir + "/journal").write { record }.get()
    }

    @Test func onlyUnsyncedRecordsCarryTheBootID() throws {
        var r = JournalRecord(id: "a", bucket: "b", key: "k", state: .committed, size: 1, uploadID: nil, parts: [], metadata: [:], created: 1)
        #expect(!Journal.encode(r).contains("unsynced"))
        r.unsyncedBoot = "5f1c-boot"
        #expect(Journal.decode(Journal.encode(r)) == r)
    }

    @Test func kernelCommitStagesThroughThePageCacheAndMarksTheRecordSynced() async throws {
        try await withDirectory { dir in
            // No such bucket: the upload keeps failing, so the record stays for the test to read.
            let store = InMemoryObjectStore(buckets: ["b"])
            let wb = try writeBack(dir, store, durability: .kernel, boot: "this-boot")
            defer { wb.shutdown() }
            let f = try wb.create(bucket: "missing", key: "ckpt", metadata: [:], mtime: Timestamp(seconds: 1))
            #expect(!f.supportsDirect && f.queuesWrites)
            let data = patterned(6 << 20)
            _ = data.withUnsafeBytes { wb.write(f, offset: 0, $0, mtime: Timestamp(seconds: 2)) }
            try await wb.commit(f, sync: false)
            // The write path's own journal: loads through it are serialized with its record writes (a second
            // `Journal` on the directory could delete a record write's temporary file mid-write).
            let journal = wb.journal
            #expect(journal.load().records.map(\.key) == ["ckpt"])
            // The staging-sync thread takes jobs in order: once a job queued now runs, the commit's sync is done
            // (polling the journal instead timed out in a loaded CI run, where this thread's fdatasync waits
            // behind every other test's writes).
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in wb.stagingSyncs.submit { c.resume() } }
            let r = journal.load().records.first
            let synced = r?.state == .committed && r?.unsyncedBoot == nil
            #expect(synced, "the background sync marks the record synced")
            #expect(wb.lock.withLock { _ in f.s.syncedGeneration >= f.s.committed })
        }
    }

    @Test func deviceCommitNeverWritesAnUnsyncedRecord() async throws {
        try await withDirectory { dir in
            let store = InMemoryObjectStore(buckets: ["b"])
            let wb = try writeBack(dir, store, durability: .device, boot: "this-boot")
            defer { wb.shutdown() }
            let f = try wb.create(bucket: "missing", key: "ckpt", metadata: [:], mtime: Timestamp(seconds: 1))
            _ = patterned(1 << 20).withUnsafeBytes { wb.write(f, offset: 0, $0, mtime: Timestamp(seconds: 2)) }
            try await wb.commit(f, sync: false)
            let records = Journal(directory: dir + "/journal").load().records
            #expect(records.count == 1 && records[0].unsyncedBoot == nil)
        }
    }

    @Test func anUnsyncedRecordFromAnotherBootIsReportedLostAndNotUploaded() async throws {
        try await withDirectory { dir in
            let store = InMemoryObjectStore(buckets: ["b"])
            let before = patterned(1000, seed: 9)
            store.set(bucket: "b", key: "ckpt", data: before)
            try leaveRecord(dir, id: "r1", key: "ckpt", bytes: patterned(3000), unsyncedBoot: "old-boot")
            let wb = try writeBack(dir, store, durability: .kernel, boot: "new-boot")
            defer { wb.shutdown() }
            let report = await wb.replay()
            #expect(report.lostInPowerCut == [UploadTarget(store: "", bucket: "b", key: "ckpt")])
            #expect(report.resumed.isEmpty)
            #expect(wb.stats().lostInPowerCut.map(\.key) == ["ckpt"])
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await fetch(store, "ckpt") == before, "the bucket keeps what it had")
            #expect(store.requests["PutObject", default: 0] == 0 && store.requests["CreateMultipartUpload", default: 0] == 0)
            #expect(FileManager.default.fileExists(atPath: dir + "/journal/r1.rec.lost"))
            #expect(!FileManager.default.fileExists(atPath: dir + "/journal/r1.rec"))
            #expect(!FileManager.default.fileExists(atPath: dir + "/staging/r1.data"))
            // The next mount does not report or upload it again.
            let again = await wb.replay()
            #expect(again.lostInPowerCut.isEmpty && again.resumed.isEmpty)
        }
    }

    /// Leaves a committed record as a daemon of another mount left it, replays it at `durability` on `boot`,
    /// and checks that the object is resumed and uploaded, not reported lost.
    func replaysAndUploads(size: Int, unsyncedBoot: String?, durability: CloseDurability, boot: String) async throws {
        try await withDirectory { dir in
            let store = InMemoryObjectStore(buckets: ["b"])
            let bytes = patterned(size)
            try leaveRecord(dir, id: "r2", key: "ckpt", bytes: bytes, unsyncedBoot: unsyncedBoot)
            let wb = try writeBack(dir, store, durability: durability, boot: boot)
            defer { wb.shutdown() }
            let report = await wb.replay()
            #expect(report.lostInPowerCut.isEmpty && report.resumed.count == 1)
            for f in report.resumed { try await wb.waitDurable(f) }
            #expect(try await fetch(store, "ckpt") == bytes)
        }
    }

    @Test func aSyncedRecordFromAnotherBootIsUploaded() async throws {
        try await replaysAndUploads(size: 3000, unsyncedBoot: nil, durability: .kernel, boot: "new-boot")
    }

    /// The daemon was killed, the machine kept running: the page cache still holds the bytes.
    @Test func anUnsyncedRecordOfThisBootIsSyncedAndUploaded() async throws {
        try await replaysAndUploads(size: 7 << 20, unsyncedBoot: "same-boot", durability: .device, boot: "same-boot")
    }

    @Test func shutdownSyncsWhatIsStillUnsynced() async throws {
        try await withDirectory { dir in
            let store = InMemoryObjectStore(buckets: ["b"])
            let wb = try writeBack(dir, store, durability: .kernel, boot: "this-boot")
            let f = try wb.create(bucket: "missing", key: "ckpt", metadata: [:], mtime: Timestamp(seconds: 1))
            _ = patterned(1 << 20).withUnsafeBytes { wb.write(f, offset: 0, $0, mtime: Timestamp(seconds: 2)) }
            try await wb.commit(f, sync: false)
            wb.shutdown()
            let records = Journal(directory: dir + "/journal").load().records
            #expect(records.count == 1 && records[0].unsyncedBoot == nil)
        }
    }
}

func patterned(_ count: Int, seed: UInt8 = 1) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &* 7) }
}
