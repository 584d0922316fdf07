import Foundation
import Synchronization
import Testing

import Platform
@testable import ObjectStore

/// Small-file read-ahead across a directory, counted by the bench store.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct DirectoryReadAheadTests {
    let s3 = Servers.bench
    /// The read-ahead counted alone: under the `exact` policy the listing's metadata fetches bring small
    /// files in too (`exactPolicyFetchesEachSmallFileOnce`).
    static let listing = ["--metadata", "listing"]
    var bench: String { try! Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT") }

    func dataset(_ tag: String, files: Int) async throws -> (String, [String: [UInt8]]) {
        let bucket = try await freshBucket(s3, tag)
        try await putMany(s3, bucket: bucket, count: files) { i in ("d/f\(String(format: "%03d", i))", patternBytes(4096 + i * 37, seed: UInt64(i))) }
        // A big object and a file in another directory must never be fetched ahead.
        _ = try await s3.putObject(bucket: bucket, key: "d/zz-big.bin", body: .bytes(patternBytes(1 << 20, seed: 9)), options: PutOptions())
        _ = try await s3.putObject(bucket: bucket, key: "other/x", body: .bytes([1, 2, 3]), options: PutOptions())
        var expected: [String: [UInt8]] = [:]
        for i in 0..<files { expected["d/f\(String(format: "%03d", i))"] = patternBytes(4096 + i * 37, seed: UInt64(i)) }
        return (bucket, expected)
    }

    /// A shuffled read of a listed directory: after a few files the rest arrive ahead of the reader, each
    /// fetched once, and every byte matches.
    @Test func siblingsOfAListedDirectoryAreFetchedAheadOnce() async throws {
        let (bucket, expected) = try await dataset("dra", files: 120)
        try await withMount(TestMount(bucket: bucket, endpoint: bench, extra: Self.listing)) { m throws in
            let names = try FileManager.default.contentsOfDirectory(atPath: m.path("d")).filter { $0.hasPrefix("f") }
            #expect(names.count == 120)
            let before = try await benchCount(bucket, "GetObject")
            var order = names.sorted()
            var rng = SystemRandomNumberGenerator()
            order.shuffle(using: &rng)
            for name in order.prefix(5) { #expect(try readFile(m.path("d/" + name)) == expected["d/" + name]) }
            // The read-ahead runs behind the reads; give it up to a minute to land (a loaded machine delays it).
            var ahead = 0
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                ahead = try await benchCount(bucket, "GetObject") - before
                if ahead >= 60 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(ahead > 5 + 30, "only \(ahead) GETs after 5 reads: nothing was fetched ahead")
            #expect(ahead <= 5 + 64 + 4, "\(ahead) GETs after 5 reads: more than the read-ahead bound")
            for name in order.dropFirst(5) { #expect(try readFile(m.path("d/" + name)) == expected["d/" + name]) }
            let total = try await benchCount(bucket, "GetObject") - before
            #expect(total == 120, "120 small files cost \(total) GETs")
        }
    }

    /// `--dir-read-ahead 0` turns it off: one GET per file read, none ahead.
    @Test func zeroTurnsItOff() async throws {
        let (bucket, expected) = try await dataset("dra0", files: 40)
        try await withMount(TestMount(bucket: bucket, endpoint: bench, extra: ["--dir-read-ahead", "0"])) { m throws in
            let names = try FileManager.default.contentsOfDirectory(atPath: m.path("d")).filter { $0.hasPrefix("f") }.sorted()
            let before = try await benchCount(bucket, "GetObject")
            for name in names.prefix(10) { #expect(try readFile(m.path("d/" + name)) == expected["d/" + name]) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await benchCount(bucket, "GetObject") - before == 10)
        }
    }

    /// Under the `exact` policy a listing fetches its small files whole (their GET says what a HEAD would):
    /// a shuffled read afterwards makes no request, and each file was fetched once.
    @Test func exactPolicyFetchesEachSmallFileOnce() async throws {
        let (bucket, expected) = try await dataset("drx", files: 120)
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            let names = try FileManager.default.contentsOfDirectory(atPath: m.path("d")).filter { $0.hasPrefix("f") }
            for name in names {
                var st = stat()
                #expect(lstat(m.path("d/" + name), &st) == 0 && st.st_size == off_t(expected["d/" + name]!.count))
            }
            let listed = try await BenchControl.requests(bucket: bucket)
            for name in names.shuffled() { #expect(try readFile(m.path("d/" + name)) == expected["d/" + name]) }
            let after = try await BenchControl.requests(bucket: bucket)
            #expect((listed["GetObject"] ?? 0) == 120, "each small file once, with its metadata")
            #expect(after["GetObject"] == listed["GetObject"], "the reads were hits")
            #expect((after["HeadObject"] ?? 0) <= 3, "HEADs only for what is not small (the 1 MiB file, the directory)")
        }
    }

    /// Files the directory was never listed for are not guessed at.
    @Test func anUnlistedDirectoryIsNotReadAhead() async throws {
        let (bucket, expected) = try await dataset("dra-nl", files: 40)
        try await withMount(TestMount(bucket: bucket, endpoint: bench, extra: Self.listing)) { m throws in
            let before = try await benchCount(bucket, "GetObject")
            for i in 0..<10 {
                let name = "d/f\(String(format: "%03d", i))"
                #expect(try readFile(m.path(name)) == expected[name])
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await benchCount(bucket, "GetObject") - before == 10)
        }
    }
}
