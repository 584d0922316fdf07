import Foundation
import Testing

import Platform
@testable import ObjectStore

/// SeaweedFS (`weed mini`), a second real S3 implementation: the client's operations, then a mount used as an
/// application would, with kill -9 replay. What differs from moto and the bench store is in docs/compatibility.md.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["LAKECACHE_TEST_SEAWEED_ENDPOINT"] != nil, "SeaweedFS is not running (scripts/with-test-servers.py starts it when weed is installed)"))
struct SeaweedTests {
    let s3: S3Client
    let endpoint: String

    init() throws {
        endpoint = try Servers.endpoint("LAKECACHE_TEST_SEAWEED_ENDPOINT")
        s3 = Servers.seaweed
    }

    @Test func objectsMetadataRangesAndConditions() async throws {
        let bucket = try await freshBucket(s3, "swo")
        let data = patternBytes(3 << 20, seed: 1)
        let etag = try await s3.putObject(bucket: bucket, key: "dir/file one.bin", body: .bytes(data), options: PutOptions(metadata: ["mode": "33152", "uid": "7"]))
        let info = try await s3.headObject(bucket: bucket, key: "dir/file one.bin")
        #expect(info.etag == etag && info.size == Int64(data.count))
        #expect(info.metadata["mode"] == "33152" && info.metadata["uid"] == "7")
        for (first, length) in [(0, 1), (1_000_000, 65_536), (data.count - 10, 10)] {
            let (bytes, _) = try await get(s3, GetObjectRequest(bucket: bucket, key: "dir/file one.bin", range: ByteRange(offset: Int64(first), length: Int64(length)), ifMatch: etag), capacity: length)
            #expect(bytes == Array(data[first..<(first + length)]))
        }
        await expectError(.preconditionFailed) {
            _ = try await get(s3, GetObjectRequest(bucket: bucket, key: "dir/file one.bin", ifMatch: "\"0123456789abcdef0123456789abcdef\""), capacity: data.count)
        }
        await expectError(.noSuchKey) { _ = try await s3.headObject(bucket: bucket, key: "missing") }
        // Copy with replaced metadata, then delete in a batch.
        _ = try await s3.copyObject(source: ObjectLocation(bucket: bucket, key: "dir/file one.bin"), bucket: bucket, key: "copy", options: CopyOptions(replaceMetadata: ["mode": "33188"]))
        #expect(try await s3.headObject(bucket: bucket, key: "copy").metadata["mode"] == "33188")
        #expect(try await s3.deleteObjects(bucket: bucket, keys: ["copy", "dir/file one.bin"]).isEmpty)
        await expectError(.noSuchKey) { _ = try await s3.headObject(bucket: bucket, key: "copy") }
    }

    @Test func pagedListingWithDelimiterAndMultipart() async throws {
        let bucket = try await freshBucket(s3, "swl")
        try await putMany(s3, bucket: bucket, count: 1200, workers: 8) { i in ("p/d\(i % 3)/k\(String(format: "%04d", i))", [UInt8(i & 0xff)]) }
        var keys: [String] = []
        var token: String?
        repeat {
            let page = try await s3.listObjects(ListObjectsRequest(bucket: bucket, prefix: "p/", continuationToken: token, maxKeys: 500))
            keys += page.objects.map(\.key)
            token = page.nextContinuationToken
        } while token != nil
        #expect(keys.count == 1200 && keys == keys.sorted())
        let top = try await s3.listObjects(ListObjectsRequest(bucket: bucket, prefix: "p/", delimiter: "/"))
        #expect(top.commonPrefixes == ["p/d0/", "p/d1/", "p/d2/"] && top.objects.isEmpty)

        let parts = [patternBytes(5 << 20, seed: 2), patternBytes(5 << 20, seed: 3), patternBytes(12_345, seed: 4)]
        let id = try await s3.createMultipartUpload(bucket: bucket, key: "big", options: PutOptions(metadata: ["mode": "33188"]))
        var done: [CompletedPart] = []
        for (i, p) in parts.enumerated() {
            done.append(CompletedPart(partNumber: i + 1, etag: try await s3.uploadPart(bucket: bucket, key: "big", uploadID: id, partNumber: i + 1, body: .bytes(p))))
        }
        _ = try await s3.completeMultipartUpload(bucket: bucket, key: "big", uploadID: id, parts: done)
        let whole = parts.flatMap { $0 }
        #expect(try await objectBytes(s3, bucket, "big") == whole)
    }

    func mount(_ bucket: String, cacheDir: String? = nil, extra: [String] = []) -> TestMount {
        TestMount(bucket: bucket, endpoint: endpoint, cacheDir: cacheDir, extra: extra)
    }

    @Test func aMountReadsWritesRenamesAndKeepsMetadata() async throws {
        let bucket = try await freshBucket(s3, "swm")
        let seeded = patternBytes(9 << 20, seed: 5)
        _ = try await s3.putObject(bucket: bucket, key: "data/seeded.bin", body: .bytes(seeded), options: PutOptions())
        let written = patternBytes(3 * (5 << 20) + 77, seed: 6)
        try await withMount(mount(bucket, extra: ["--part-size", "5M"])) { m throws in
            #expect(try readFile(m.path("data/seeded.bin")) == seeded)
            #expect(mkdir(m.path("out"), 0o755) == 0)
            #expect(mkdir(m.path("private"), 0o700) == 0)
            try writeFile(m.path("out/ckpt.bin"), written)
            try "small".write(toFile: m.path("out/small.txt"), atomically: false, encoding: .utf8)
            #expect(symlink("ckpt.bin", m.path("out/latest")) == 0)
            #expect(mkdir(m.path("out/sub"), 0o755) == 0)
            try "in sub".write(toFile: m.path("out/sub/x"), atomically: false, encoding: .utf8)
            #expect(flush(m.mountpoint).status == 0)
            #expect(chmod(m.path("out/small.txt"), 0o600) == 0, "chmod after the upload")
            #expect(rename(m.path("out/small.txt"), m.path("out/renamed.txt")) == 0)
            // A directory rename copies every key and recreates the markers.
            #expect(rename(m.path("out"), m.path("moved")) == 0, "mv dir: \(String(cString: strerror(errno)))")
            #expect(flush(m.mountpoint).status == 0)
        }
        #expect(try await objectBytes(s3, bucket, "moved/ckpt.bin") == written)
        // A fresh cache: everything comes from the bucket, as another node would see it.
        try await withMount(mount(bucket)) { m throws in
            let top = try FileManager.default.contentsOfDirectory(atPath: m.mountpoint).sorted()
            #expect(top == ["data", "moved", "private"], "\(top)")
            // SeaweedFS keeps no x-amz-meta-* on a `private/` marker (MotoObjectTests.directoryMarkerCopyAndRewrite):
            // a directory's mode is not stored there, so another node shows the default 0755.
            var dir = stat()
            #expect(stat(m.path("private"), &dir) == 0 && dir.st_mode & 0o7777 == 0o755, "mode \(String(dir.st_mode & 0o7777, radix: 8))")
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.path("moved")).sorted() == ["ckpt.bin", "latest", "renamed.txt", "sub"])
            #expect(try readFile(m.path("moved/ckpt.bin")) == written)
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: m.path("moved/latest")) == "ckpt.bin")
            var st = stat()
            #expect(stat(m.path("moved/renamed.txt"), &st) == 0 && st.st_mode & 0o7777 == 0o600)
            #expect(try String(contentsOfFile: m.path("moved/sub/x"), encoding: .utf8) == "in sub")
        }
    }

    @Test func acknowledgedWritesSurviveKillDashNine() async throws {
        let bucket = try await freshBucket(s3, "swk")
        let m = mount(bucket, extra: ["--part-size", "5M"])
        try m.start()
        var files: [(String, [UInt8])] = []
        for i in 0..<3 {
            let data = patternBytes((i + 1) * (4 << 20) + i, seed: UInt64(10 + i))
            try writeFile(m.path("ckpt-\(i).bin"), data)
            files.append(("ckpt-\(i).bin", data))
        }
        // close() returned for each (async mode): kill the daemon before the uploads finish.
        try crash(m)
        try await withMount(m) { m throws in
            #expect(flush(m.mountpoint).status == 0)
            for (name, data) in files { #expect(try readFile(m.path(name)) == data) }
        }
        for (name, data) in files { #expect(try await objectBytes(s3, bucket, name) == data, "\(name)") }
        #expect(try await s3.listMultipartUploads(bucket: bucket, prefix: "").isEmpty)
    }
}
