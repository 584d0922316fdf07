import Foundation
import Testing

import Platform
@testable import ObjectStore

/// kill -9 after close() returned (async mode): nothing acknowledged is lost, on moto and the bench store.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason), .serialized)
struct CrashTests {
    init() throws { try Servers.requireServers() }

    /// Writes files, kills the daemon at a random moment after the last close, remounts, flushes, verifies.
    func cycles(_ s3: S3Client, endpoint: String, count: Int, big: Int, extra: [String] = []) async throws {
        let bucket = try await freshBucket(s3, "crash")
        let mount = TestMount(bucket: bucket, endpoint: endpoint, extra: ["--part-size", "5M"] + extra)
        var expected: [String: [UInt8]] = [:]
        var rng = SystemRandomNumberGenerator()
        for cycle in 0..<count {
            try mount.start()
            for i in 0..<3 {
                let size = i == 0 ? big : Int.random(in: 0..<300_000, using: &rng)
                let bytes = patternBytes(size, seed: UInt64(cycle * 10 + i + 1))
                let name = "c\(cycle)-\(i)"
                try writeFile(mount.path(name), bytes)
                expected[name] = bytes
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0..<150, using: &rng)))
            try crash(mount)
            try mount.start()
            let f = flush(mount.mountpoint)
            #expect(f.status == 0, "flush after crash \(cycle): \(f.output)")
            for (name, bytes) in expected where name.hasPrefix("c\(cycle)-") {
                #expect(try readFile(mount.path(name)) == bytes, "read \(name) after crash")
            }
            mount.stop()
        }
        for (name, bytes) in expected {
            #expect(try await objectBytes(s3, bucket, name) == bytes, "object \(name)")
        }
        #expect(try await openUploads(s3, bucket).map(\.key) == [])
    }

    @Test func benchStoreCrashes() async throws {
        try await cycles(Servers.bench, endpoint: try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT"), count: 12, big: 12 << 20)
    }

    @Test func motoCrashes() async throws {
        try await cycles(Servers.moto, endpoint: try Servers.endpoint("LAKECACHE_TEST_MOTO_ENDPOINT"), count: 8, big: 11 << 20)
    }

    /// Writes a multipart `ckpt` while the store holds the first CompleteMultipartUpload back `holdMs` (later
    /// ones go straight through), waits until every part is in and the completion has been sent, checks the
    /// part count, then kills the daemon and lifts the faults. Returns the mount (to start again), the
    /// bucket, the bytes and the parts uploaded.
    func crashWhileCompleting(_ name: String, holdMs: Int, parts: Int, seed: UInt64) async throws -> (mount: TestMount, bucket: String, data: [UInt8], parts: Int) {
        let bucket = try await freshBucket(Servers.bench, name)
        try await BenchControl.setFaults(bucket: bucket, [["action": "delay", "op": "CompleteMultipartUpload", "delay_ms": holdMs, "times": 1]])
        let mount = TestMount(bucket: bucket, endpoint: try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT"), extra: ["--part-size", "5M"])
        let data = patternBytes((parts - 1) * (5 << 20) + 99, seed: seed)
        try mount.start()
        // The pid now: `crash` would spawn `status` to find it, seconds on a loaded machine, between the
        // completion being seen and the kill.
        let pid = try mount.daemonPID()
        try writeFile(mount.path("ckpt"), data)
        // Up to a minute: on a loaded machine the parts can take more than the few seconds they take alone.
        for _ in 0..<1200 where try await benchCount(bucket, "CompleteMultipartUpload") == 0 { try await Task.sleep(for: .milliseconds(50)) }
        let partsBefore = try await benchCount(bucket, "UploadPart")
        #expect(partsBefore == parts)
        try crash(mount, pid: pid)
        try await BenchControl.setFaults(bucket: bucket, [])
        return (mount, bucket, data, partsBefore)
    }

    /// A kill in the middle of a multipart upload: the parts already in the bucket are reused after restart.
    @Test func killMidUploadReusesParts() async throws {
        let s3 = Servers.bench
        // The killed daemon's completion is held back ten minutes, so the kill lands after every part is
        // uploaded but before the object exists, and the restarted daemon replays onto the open upload and
        // completes it itself (its completion is not held: the rule fires once). The held request wakes long
        // after, on an upload already completed, and the store answers it NoSuchUpload: it changes nothing.
        // (With holds of 3 s and then 10 s, a loaded machine restarted only after the held completion had
        // gone through: the test then exercised a completed upload, not a replay onto an open one.)
        let (mount, bucket, data, partsBefore) = try await crashWhileCompleting("midup", holdMs: 600_000, parts: 7, seed: 77)
        try await withMount(mount) { m in
            #expect(flush(m.mountpoint).status == 0)
        }
        #expect(try await benchCount(bucket, "UploadPart") == partsBefore, "parts were uploaded again")
        #expect(try await benchCount(bucket, "CompleteMultipartUpload") >= 2, "the restarted daemon did not complete the upload")
        #expect(try await objectBytes(s3, bucket, "ckpt") == data)
        #expect(try await openUploads(s3, bucket).map(\.key) == [])
    }

    /// kill -9 while CompleteMultipartUpload is in flight, and the store completes it anyway: the next mount
    /// finds the object in the bucket with the staged bytes' multipart ETag and sends nothing again.
    @Test func aCompletionThatWentThroughIsNotUploadedAgain() async throws {
        let s3 = Servers.bench
        // The store sits on the completion for 10 s, then completes it: the daemon that sent it was killed
        // as soon as it was seen arriving, by a pid taken before the write.
        let (mount, bucket, data, partsBefore) = try await crashWhileCompleting("donecomp", holdMs: 10_000, parts: 5, seed: 78)
        // Wait (up to a minute) for the store to finish the completion the dead daemon sent.
        var present = false
        for _ in 0..<1200 where !present {
            present = (try? await s3.headObject(bucket: bucket, key: "ckpt")) != nil
            if !present { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(present, "the held-back completion never went through")
        try await withMount(mount) { m throws in
            #expect(flush(m.mountpoint).status == 0)
            #expect(try readFile(m.path("ckpt")) == data)
        }
        #expect(try await benchCount(bucket, "UploadPart") == partsBefore, "parts were uploaded again")
        #expect(try await benchCount(bucket, "CreateMultipartUpload") == 1, "a second multipart upload was started")
        #expect(try await benchCount(bucket, "PutObject") == 0)
        #expect(try await objectBytes(s3, bucket, "ckpt") == data)
        #expect(try await openUploads(s3, bucket).map(\.key) == [])
    }
}
