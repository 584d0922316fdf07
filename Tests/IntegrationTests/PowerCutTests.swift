import Foundation
import Testing

import Platform
@testable import ObjectStore
import WriteBack

/// `kernel` close durability across a simulated reboot: the next mount runs with another boot id
/// (`LAKECACHE_BOOT_ID`), as after a power cut. A record the daemon marked synced is uploaded; one it never
/// marked synced is reported lost and the bucket keeps what it had.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason), .serialized)
struct PowerCutTests {
    init() throws { try Servers.requireServers() }

    /// kill -9 cycles at `kernel` durability: close() returned with the bytes in the page cache only, and a
    /// daemon killed then loses nothing (the kernel keeps the pages; the next mount syncs and uploads them).
    /// Here rather than in `CrashTests`, so the two serialized suites run side by side.
    @Test func killCyclesLoseNothing() async throws {
        try await CrashTests().cycles(Servers.bench, endpoint: try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT"), count: 6, big: 12 << 20, extra: ["--close-durability", "kernel"])
    }

    @Test func aRebootLosesOnlyWhatWasNeverSynced() async throws {
        let s3 = Servers.bench
        let bucket = try await freshBucket(s3, "powercut")
        let old = patternBytes(50_000, seed: 3)
        _ = try await s3.putObject(bucket: bucket, key: "unsynced.bin", body: .bytes(old), options: PutOptions())
        // Uploads fail until the reboot, so both records are still in the journal when the daemon dies.
        try await BenchControl.setFaults(bucket: bucket, [
            ["action": "503", "op": "PutObject"], ["action": "503", "op": "CreateMultipartUpload"],
        ])
        let mount = TestMount(bucket: bucket, endpoint: try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT"), extra: ["--part-size", "5M", "--close-durability", "kernel"])
        var before = ProcessInfo.processInfo.environment
        before["LAKECACHE_BOOT_ID"] = "boot-before-the-power-cut"
        mount.environment = before
        let synced = patternBytes(7 << 20, seed: 4)
        let unsynced = patternBytes(300_000, seed: 5)
        try mount.start()
        #expect(try mount.status()["close_durability"] as? String == "kernel")
        try writeFile(mount.path("synced.bin"), synced)
        try writeFile(mount.path("unsynced.bin"), unsynced)
        // The background sync marks both records synced within moments, but in a loaded test run each of its
        // fdatasyncs and record writes waits for ext4's journal commit behind every other test's writes (a
        // full local run beside the backlog test once took over a minute): three minutes, returning as soon
        // as both are marked.
        let journal = Journal(directory: mount.cacheDir + "/journal")
        var records: [JournalRecord] = []
        let started = monotonicSeconds()
        _ = try await until(180, every: .milliseconds(25)) {
            records = journal.load().records
            return records.count == 2 && records.allSatisfy { $0.state == .committed && $0.unsyncedBoot == nil }
        }
        #expect(
            records.count == 2 && records.allSatisfy { $0.unsyncedBoot == nil },
            "after \(Int(monotonicSeconds() - started)) s, records: \(records.map { ($0.key, $0.unsyncedBoot ?? "synced") })")
        try crash(mount)
        // The power went before one file's sync: its record is as the daemon wrote it at close().
        var lost = try #require(records.first { $0.key == "unsynced.bin" })
        lost.unsyncedBoot = "boot-before-the-power-cut"
        try journal.write { lost }.get()
        try await BenchControl.setFaults(bucket: bucket, [])

        var after = ProcessInfo.processInfo.environment
        after["LAKECACHE_BOOT_ID"] = "boot-after-the-power-cut"
        mount.environment = after
        try await withMount(mount) { m throws in
            let f = flush(m.mountpoint)
            #expect(f.status == 0, "flush: \(f.output)")
            let uploads = try #require(try m.status()["uploads"] as? [String: Any])
            let reported = try #require(uploads["lost_in_power_cut"] as? [[String: Any]])
            #expect(reported.map { $0["key"] as? String } == ["unsynced.bin"])
            #expect(TestMount.run(["status", m.mountpoint]).output.contains("LOST IN A POWER CUT"))
            #expect(try readFile(m.path("synced.bin")) == synced)
            #expect(try readFile(m.path("unsynced.bin")) == old, "the mount shows what the bucket has")
        }
        #expect(try await objectBytes(s3, bucket, "synced.bin") == synced)
        #expect(try await objectBytes(s3, bucket, "unsynced.bin") == old, "a record never synced was uploaded after a reboot")
        #expect(FileManager.default.fileExists(atPath: journal.directory + "/\(lost.id).rec.lost"))
        #expect(try await openUploads(s3, bucket).map(\.key) == [])
    }

    /// A clean unmount syncs what is still unsynced: a reboot right after it loses nothing.
    @Test func aRebootAfterACleanUnmountLosesNothing() async throws {
        let s3 = Servers.bench
        let bucket = try await freshBucket(s3, "powercut2")
        try await BenchControl.setFaults(bucket: bucket, [["action": "503", "op": "PutObject"]])
        let mount = TestMount(bucket: bucket, endpoint: try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT"), extra: ["--close-durability", "kernel"])
        var env = ProcessInfo.processInfo.environment
        env["LAKECACHE_BOOT_ID"] = "boot-one"
        mount.environment = env
        let data = patternBytes(200_000, seed: 6)
        try mount.start()
        try writeFile(mount.path("a.bin"), data)
        // The upload cannot finish (PUTs fail), so the unmount is forced; it is still a clean exit.
        let r = TestMount.run(["unmount", "--force", mount.mountpoint])
        #expect(r.status == 0, "unmount --force: \(r.output)")
        if r.status != 0 { mount.stop() }
        let records = Journal(directory: mount.cacheDir + "/journal").load().records
        #expect(records.map(\.key) == ["a.bin"] && records.allSatisfy { $0.unsyncedBoot == nil })
        try await BenchControl.setFaults(bucket: bucket, [])
        env["LAKECACHE_BOOT_ID"] = "boot-two"
        mount.environment = env
        try await withMount(mount) { m in #expect(flush(m.mountpoint).status == 0) }
        #expect(try await objectBytes(s3, bucket, "a.bin") == data)
    }
}
