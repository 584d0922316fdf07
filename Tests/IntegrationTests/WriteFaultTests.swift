import Foundation
import Testing

import Platform
@testable import ObjectStore

/// The write path under backend faults and a full cache disk: retried, reported, never silently lost.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct WriteFaultTests {
    let s3 = Servers.bench
    let bench: String
    let part = 5 << 20

    init() throws {
        try Servers.requireServers()
        bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
    }

    func mount(_ bucket: String, mode: String = "async", cacheDir: String? = nil, extra: [String] = []) -> TestMount {
        TestMount(bucket: bucket, endpoint: bench, cacheDir: cacheDir, extra: ["--part-size", "5M", "--write-mode", mode] + extra)
    }

    @Test(arguments: ["500", "503", "reset"])
    func transientFaultsDuringPartsAreRetried(action: String) async throws {
        let bucket = try await freshBucket(s3, "wf")
        try await BenchControl.setFaults(bucket: bucket, [
            ["action": action, "op": "UploadPart", "nth": [1, 2, 4]],
            ["action": action, "op": "CreateMultipartUpload", "nth": [1]],
            ["action": action, "op": "CompleteMultipartUpload", "nth": [1]],
            ["action": action, "op": "PutObject", "nth": [1]],
        ])
        let big = patternBytes(3 * part + 99, seed: 41)
        let small = patternBytes(70_000, seed: 42)
        try await withMount(mount(bucket, mode: "sync")) { m in
            // sync close: returns only once the object is in the bucket, faults and all.
            try writeFile(m.path("big"), big)
            try writeFile(m.path("small"), small)
        }
        #expect(try await objectBytes(s3, bucket, "big") == big)
        #expect(try await objectBytes(s3, bucket, "small") == small)
        #expect(try await openUploads(s3, bucket).map(\.key) == [])
        let counts = try await BenchControl.requests(bucket: bucket)
        #expect((counts["UploadPart"] ?? 0) >= 4 + 3, "the three faulted parts were sent again: \(counts)")
    }

    @Test func slowDownOnEveryOtherPartStillCompletesAsyncUploads() async throws {
        let bucket = try await freshBucket(s3, "slow")
        try await BenchControl.setFaults(bucket: bucket, [["action": "503", "op": "UploadPart", "probability": 0.4]])
        let files = (0..<3).map { patternBytes(2 * part + $0 * 1000, seed: UInt64(50 + $0)) }
        try await withMount(mount(bucket)) { m in
            #expect(mkdir(m.path("ckpt"), 0o755) == 0)
            for (i, bytes) in files.enumerated() { try writeFile(m.path("ckpt/f\(i)"), bytes) }
            let f = flush(m.path("ckpt"))
            #expect(f.status == 0, "flush: \(f.output)")
        }
        for (i, bytes) in files.enumerated() { #expect(try await objectBytes(s3, bucket, "ckpt/f\(i)") == bytes) }
        #expect(try await openUploads(s3, bucket).map(\.key) == [])
    }

    @Test func accessDeniedStaysJournaledShowsInStatusAndRecovers() async throws {
        let bucket = try await freshBucket(s3, "denied")
        try await BenchControl.setFaults(bucket: bucket, [["action": "403", "op": "PutObject", "key_prefix": "locked/a"]])
        let bytes = patternBytes(100_000, seed: 60)
        let m = mount(bucket)
        try m.start()
        defer { m.stop() }
        // async close succeeds: the bytes are secured locally and journaled.
        #expect(mkdir(m.path("locked"), 0o755) == 0 && mkdir(m.path("open"), 0o755) == 0)
        try writeFile(m.path("locked/a"), bytes)
        try writeFile(m.path("open/b"), bytes)
        let f = flush(m.path("locked"), timeout: 20)
        #expect(f.status != 0)
        #expect(f.output.contains("locked/a") && f.output.contains("AccessDenied"), "flush names the file and the reason: \(f.output)")
        let uploads = try #require(try m.status()["uploads"] as? [String: Any])
        #expect(uploads["failed"] as? Int == 1)
        let failure = try #require((uploads["failures"] as? [[String: Any]])?.first)
        #expect(failure["key"] as? String == "locked/a")
        #expect((failure["error"] as? String)?.contains("AccessDenied") == true)
        #expect(failure["permanent"] as? Bool == true)
        // The rest of the mount is unaffected, and the file reads back from staging meanwhile.
        #expect(flush(m.path("open")).status == 0)
        #expect(try readFile(m.path("locked/a")) == bytes)
        // Once access is granted, the same journaled bytes go up.
        try await BenchControl.setFaults(bucket: bucket, [])
        let again = flush(m.path("locked"), timeout: 60)
        #expect(again.status == 0, "flush after the grant: \(again.output)")
        #expect(try await objectBytes(s3, bucket, "locked/a") == bytes)
    }

    @Test func syncCloseReportsAPermanentFailureAsEIO() async throws {
        let bucket = try await freshBucket(s3, "eio")
        try await BenchControl.setFaults(bucket: bucket, [["action": "403", "op": "PutObject"]])
        try await withMount(mount(bucket, mode: "sync")) { m in
            #expect(throws: POSIXError(.EIO)) { try writeFile(m.path("x"), patternBytes(1000, seed: 61)) }
            let uploads = try #require(try m.status()["uploads"] as? [String: Any])
            #expect(uploads["failed"] as? Int == 1, "the file stays journaled and listed as failed")
            try await BenchControl.setFaults(bucket: bucket, [])
            #expect(flush(m.mountpoint, timeout: 60).status == 0)
        }
        #expect(try await objectBytes(s3, bucket, "x") == patternBytes(1000, seed: 61))
    }

    @Test func unlinkDuringAPendingUploadLeavesNoOrphan() async throws {
        let bucket = try await freshBucket(s3, "orphan")
        // The short last part can only start at close, and it takes 8 s, so the unlink lands while it is in
        // flight however slowly a loaded machine runs.
        try await BenchControl.setFaults(bucket: bucket, [["action": "delay", "op": "UploadPart", "nth": [4], "delay_ms": 8000]])
        try await withMount(mount(bucket)) { m in
            // No suspension between close and unlink: on a loaded test run the cooperative pool can be busy for
            // seconds with other tests' blocking calls, and the unlink would come after the upload.
            let bytes = patternBytes(3 * part + 1000, seed: 70)
            try writeFile(m.path("doomed"), bytes)
            usleep(200_000)
            #expect(unlink(m.path("doomed")) == 0)
            #expect(access(m.path("doomed"), F_OK) != 0)
            #expect(flush(m.mountpoint).status == 0)
        }
        try await Task.sleep(for: .seconds(2))
        #expect(try await openUploads(s3, bucket).map(\.key) == [])
        #expect(try await objectBytes(s3, bucket, "doomed") == nil)
        let counts = try await BenchControl.requests(bucket: bucket)
        #expect(counts["CompleteMultipartUpload"] == nil, "an unlinked file must not be completed: \(counts)")
    }

    @Test func aFullCacheDiskGivesENOSPCAndLosesNothingAcknowledged() async throws {
        let bucket = try await freshBucket(s3, "full")
        let cache = NSTemporaryDirectory() + "lakecache-full-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        guard spawn("/bin/mount", ["-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", cache]).status == 0 else {
            Issue.record("cannot mount a tmpfs for the cache directory (needs root)")
            return
        }
        defer {
            _ = spawn("/bin/umount", [cache])
            try? FileManager.default.removeItem(atPath: cache)
        }
        let kept = patternBytes(3 << 20, seed: 80)
        try await withMount(mount(bucket, cacheDir: cache, extra: ["--cache-size", "8M"])) { m in
            try writeFile(m.path("kept"), kept)
            // 64 MiB into a 24 MiB disk: write(2) must fail with ENOSPC, not succeed and drop bytes.
            #expect(throws: POSIXError(.ENOSPC)) { try writeFile(m.path("huge"), patternBytes(64 << 20, seed: 81)) }
            _ = unlink(m.path("huge"))
            #expect(flush(m.mountpoint, timeout: 60).status == 0)
            // The daemon is alive and writes work again once there is room.
            #expect(try m.status()["uploads"] != nil)
            try writeFile(m.path("after"), patternBytes(1 << 20, seed: 82))
            #expect(flush(m.mountpoint, timeout: 60).status == 0)
        }
        #expect(try await objectBytes(s3, bucket, "kept") == kept)
        #expect(try await objectBytes(s3, bucket, "after") == patternBytes(1 << 20, seed: 82))
        #expect(try await openUploads(s3, bucket).map(\.key) == [])
    }
}
