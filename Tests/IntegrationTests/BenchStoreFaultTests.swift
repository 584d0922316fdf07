import Foundation
import Testing

import Platform
@testable import ObjectStore

/// The client against the bench object store with injected faults: correct bytes or a clean error, never wrong bytes.
@Suite struct BenchStoreFaultTests {
    let s3: S3Client

    init() throws {
        try Servers.requireServers()
        s3 = Servers.bench
    }

    func seed(_ bucket: String, size: Int, seed: UInt64) async throws -> (data: [UInt8], etag: String) {
        let data = patternBytes(size, seed: seed)
        let etag = try await s3.putObject(bucket: bucket, key: "obj", body: .bytes(data), options: PutOptions())
        return (data, etag)
    }

    @Test(arguments: ["500", "503", "reset", "truncate"])
    func readsRecoverFromTransientFaults(_ action: String) async throws {
        let bucket = try await freshBucket(s3, "rf")
        let (data, etag) = try await seed(bucket, size: 2 << 20, seed: 11)
        try await BenchControl.setFaults(bucket: bucket, [["action": action, "op": "GetObject", "nth": [1, 2, 4]]])
        let retriesBefore = s3.metrics.traffic(.getObject).retries
        for i in 0..<4 {
            let first = i * 300_000
            let (bytes, _) = try await get(s3, GetObjectRequest(bucket: bucket, key: "obj", range: ByteRange(offset: Int64(first), length: 500_000), ifMatch: etag), capacity: 500_000)
            #expect(bytes == Array(data[first..<(first + 500_000)]), "\(action) read \(i)")
        }
        // libcurl itself replays a request whose reused connection was reset before any answer, so only
        // the other faults are guaranteed to reach our retry loop.
        if action != "reset" { #expect(s3.metrics.traffic(.getObject).retries - retriesBefore >= 3) }
        #expect(try await BenchControl.requests(bucket: bucket)["GetObject"] == 7)
    }

    @Test func randomFaultsNeverYieldWrongBytes() async throws {
        let bucket = try await freshBucket(s3, "rand")
        let (data, etag) = try await seed(bucket, size: 4 << 20, seed: 12)
        try await BenchControl.setFaults(bucket: bucket, [
            ["action": "500", "op": "GetObject", "probability": 0.1],
            ["action": "truncate", "op": "GetObject", "probability": 0.1],
            ["action": "reset", "op": "GetObject", "probability": 0.1],
            ["action": "503", "op": "GetObject", "probability": 0.1],
        ])
        var failures = 0
        try await withThrowingTaskGroup(of: Bool?.self) { group in
            for i in 0..<64 {
                group.addTask {
                    let first = (i * 65_537) % (data.count - 100_000)
                    do {
                        let (bytes, _) = try await get(s3, GetObjectRequest(bucket: bucket, key: "obj", range: ByteRange(offset: Int64(first), length: 100_000), ifMatch: etag), capacity: 100_000)
                        return bytes == Array(data[first..<(first + 100_000)])
                    } catch let e as ObjectStoreError {
                        #expect(e.attempts == RetryPolicy().maxAttempts, "gave up early: \(e)")
                        return nil
                    }
                }
            }
            for try await outcome in group {
                if let ok = outcome { #expect(ok, "wrong bytes served") } else { failures += 1 }
            }
        }
        // With 40% of requests faulted and 6 attempts, giving up is possible but rare.
        #expect(failures <= 2)
    }

    @Test func persistentFaultGivesACleanErrorAfterBoundedAttempts() async throws {
        let bucket = try await freshBucket(s3, "perm")
        let (_, etag) = try await seed(bucket, size: 1000, seed: 13)
        try await BenchControl.setFaults(bucket: bucket, [["action": "503", "op": "GetObject"]])
        let e = await expectError(.slowDown) { _ = try await get(s3, GetObjectRequest(bucket: bucket, key: "obj", ifMatch: etag), capacity: 1000) }
        #expect(e?.attempts == RetryPolicy().maxAttempts)
        #expect(e?.errno == EIO)
        #expect(e?.description.contains("after 6 attempts") == true)
        #expect(try await BenchControl.requests(bucket: bucket)["GetObject"] == RetryPolicy().maxAttempts)
    }

    @Test func garbledListingIsRetriedNotBelieved() async throws {
        let bucket = try await freshBucket(s3, "garble")
        for i in 0..<20 { _ = try await s3.putObject(bucket: bucket, key: "k\(i)", body: .empty, options: PutOptions()) }
        try await BenchControl.setFaults(bucket: bucket, [["action": "garble", "op": "ListObjectsV2", "nth": [1]]])
        let page = try await s3.listObjects(ListObjectsRequest(bucket: bucket))
        #expect(page.objects.map(\.key).sorted() == (0..<20).map { "k\($0)" }.sorted())
        #expect(try await BenchControl.requests(bucket: bucket)["ListObjectsV2"] == 2)
        // A listing that is garbage every time fails cleanly.
        try await BenchControl.setFaults(bucket: bucket, [["action": "garble", "op": "ListObjectsV2"]])
        let e = await expectError(.malformedResponse) { _ = try await s3.listObjects(ListObjectsRequest(bucket: bucket)) }
        #expect(e?.attempts == RetryPolicy().maxAttempts)
    }

    @Test func uploadsCompleteThroughFaults() async throws {
        let bucket = try await freshBucket(s3, "upf")
        try await BenchControl.setFaults(bucket: bucket, [
            ["action": "500", "op": "UploadPart", "nth": [1, 3]],
            ["action": "503", "op": "UploadPart", "nth": [2]],
            ["action": "reset", "op": "UploadPart", "nth": [5]],
            ["action": "503", "op": "PutObject", "nth": [1]],
            ["action": "503", "op": "CompleteMultipartUpload", "nth": [1]],
            ["action": "503", "op": "CreateMultipartUpload", "nth": [1]],
        ])
        let small = patternBytes(1000, seed: 14)
        _ = try await s3.putObject(bucket: bucket, key: "small", body: .bytes(small), options: PutOptions())
        let part = 5 << 20
        let data = patternBytes(3 * part + 7, seed: 15)
        let id = try await s3.createMultipartUpload(bucket: bucket, key: "big", options: PutOptions())
        var parts: [CompletedPart] = []
        for n in 0..<4 {
            let slice = Array(data[(n * part)..<min(data.count, (n + 1) * part)])
            parts.append(CompletedPart(partNumber: n + 1, etag: try await s3.uploadPart(bucket: bucket, key: "big", uploadID: id, partNumber: n + 1, body: .bytes(slice))))
        }
        _ = try await s3.completeMultipartUpload(bucket: bucket, key: "big", uploadID: id, parts: parts)
        try await BenchControl.setFaults(bucket: bucket, [])
        #expect(try await get(s3, GetObjectRequest(bucket: bucket, key: "small"), capacity: 1000).bytes == small)
        #expect(try await get(s3, GetObjectRequest(bucket: bucket, key: "big"), capacity: data.count).bytes == data)
        let counts = try await BenchControl.requests(bucket: bucket)
        #expect(counts["UploadPart"] == 8)
        #expect(counts["CompleteMultipartUpload"] == 2)
    }

    @Test func corruptedPartIsRejectedByContentMD5() async throws {
        // The store verifies Content-MD5; a body altered in flight would fail with BadDigest, never land.
        let bucket = try await freshBucket(s3, "md5")
        var op = S3Operation(operation: .putObject, method: "PUT", bucket: bucket, key: "k", body: .bytes([1, 2, 3]))
        op.headers = [(name: "Content-MD5", value: Digest.base64(Digest.md5([9, 9, 9])))]
        await expectError(.clientError(code: "BadDigest")) { _ = try await s3.perform(op, sink: .discard) }
        await expectError(.noSuchKey) { _ = try await s3.headObject(bucket: bucket, key: "k") }
    }

    @Test func staleCopySourceIsRefused() async throws {
        let bucket = try await freshBucket(s3, "cpif")
        _ = try await seed(bucket, size: 100, seed: 16)
        await expectError(.preconditionFailed) {
            _ = try await s3.copyObject(source: ObjectLocation(bucket: bucket, key: "obj"), bucket: bucket, key: "dst", options: CopyOptions(sourceIfMatch: "\"0000\""))
        }
    }

    @Test func oneGetPerRequestAndCountersAddUp() async throws {
        let bucket = try await freshBucket(s3, "count")
        let (data, etag) = try await seed(bucket, size: 8 << 20, seed: 17)
        let block = 1 << 20
        for i in 0..<8 {
            let (bytes, _) = try await get(s3, GetObjectRequest(bucket: bucket, key: "obj", range: ByteRange(offset: Int64(i * block), length: Int64(block)), ifMatch: etag), capacity: block)
            #expect(bytes == Array(data[(i * block)..<((i + 1) * block)]))
        }
        let counts = try await BenchControl.requests(bucket: bucket)
        #expect(counts["GetObject"] == 8)
        #expect(counts["PutObject"] == 1)
    }

    @Test func delayedResponsesStillArrive() async throws {
        let bucket = try await freshBucket(s3, "delay")
        let (data, _) = try await seed(bucket, size: 10_000, seed: 18)
        try await BenchControl.setFaults(bucket: bucket, [["action": "delay", "delay_ms": 300, "op": "GetObject"]])
        let start = ContinuousClock.now
        #expect(try await get(s3, GetObjectRequest(bucket: bucket, key: "obj"), capacity: 10_000).bytes == data)
        #expect(ContinuousClock.now - start >= .milliseconds(290))
    }
}
