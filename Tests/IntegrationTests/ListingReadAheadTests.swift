import Foundation
import Testing

import Platform
@testable import ObjectStore

/// Listings of sibling directories fetched ahead of a walk, on a real mount, counted by the bench store.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct ListingReadAheadTests {
    let s3 = Servers.bench
    var bench: String { try! Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT") }
    static let directories = 30
    /// Listings that outlive a loaded test run: one that expires is listed again, and the counts would show it.
    static let ttl = ["--metadata-ttl", "3600"]

    func dataset(_ tag: String) async throws -> String {
        let bucket = try await freshBucket(s3, tag)
        try await putMany(s3, bucket: bucket, count: Self.directories * 4) { i in
            ("walk/d\(String(format: "%02d", i / 4))/f\(i % 4)", patternBytes(1000 + i, seed: UInt64(i)))
        }
        return bucket
    }

    func listingsReadAhead(_ m: TestMount) -> Int {
        let r = TestMount.run(["status", "--json", m.mountpoint])
        let json = try? JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any]
        let links = json?["links"] as? [[String: Any]] ?? []
        return links.reduce(0) { $0 + (($1["listings_read_ahead"] as? Int) ?? 0) }
    }

    /// A walk in the order the listing gave (as `os.walk` and `find` go): every directory is listed once,
    /// all but the first two ahead of the walk, and every file shows its size and bytes.
    @Test(arguments: ["listing", "exact"]) func aWalkListsEachDirectoryOnce(metadata: String) async throws {
        let bucket = try await dataset("lra-\(metadata)")
        try await withMount(TestMount(bucket: bucket, endpoint: bench, extra: ["--metadata", metadata] + Self.ttl)) { m throws in
            let top = try FileManager.default.contentsOfDirectory(atPath: m.path("walk")).sorted()
            #expect(top.count == Self.directories)
            let before = try await benchCount(bucket, "ListObjectsV2")
            for (d, name) in top.enumerated() {
                let files = try FileManager.default.contentsOfDirectory(atPath: m.path("walk/" + name)).sorted()
                #expect(files == ["f0", "f1", "f2", "f3"], "\(name)")
                for (f, file) in files.enumerated() {
                    var st = stat()
                    #expect(lstat(m.path("walk/\(name)/\(file)"), &st) == 0 && st.st_size == off_t(1000 + d * 4 + f))
                }
            }
            #expect(try readFile(m.path("walk/d17/f2")) == patternBytes(1000 + 17 * 4 + 2, seed: UInt64(17 * 4 + 2)))
            #expect(try await until(30) { listingsReadAhead(m) == Self.directories - 2 }, "\(listingsReadAhead(m)) listings read ahead")
            let lists = try await benchCount(bucket, "ListObjectsV2") - before
            #expect(lists == Self.directories, "\(lists) LISTs for a walk of \(Self.directories) directories")
        }
    }

    /// `--listing-read-ahead 0` turns it off: the walk lists each directory when it gets there.
    @Test func zeroTurnsItOff() async throws {
        let bucket = try await dataset("lra0")
        try await withMount(TestMount(bucket: bucket, endpoint: bench, extra: ["--listing-read-ahead", "0", "--metadata", "listing"] + Self.ttl)) { m throws in
            let top = try FileManager.default.contentsOfDirectory(atPath: m.path("walk")).sorted()
            let before = try await benchCount(bucket, "ListObjectsV2")
            for name in top.prefix(6) { _ = try FileManager.default.contentsOfDirectory(atPath: m.path("walk/" + name)) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await benchCount(bucket, "ListObjectsV2") - before == 6)
            #expect(listingsReadAhead(m) == 0)
        }
    }
}
