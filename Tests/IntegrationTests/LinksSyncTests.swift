import Foundation
import Testing

import Platform
@testable import ObjectStore

/// Objects changed outside the mount, on a real mount: `lakecache sync` and a link's `sync-interval` drop
/// the cached blocks and the kernel's pages of a changed object, and show a new one, long before the
/// 300 s metadata TTL would.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct LinksSyncTests {
    let bench: String

    init() throws {
        try Servers.requireServers()
        bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
    }

    func namespace(_ bucket: String, _ policy: [String] = []) -> String {
        "metadata-ttl: 300\nnegative-ttl: 300\nlinks:\n  - path: data\n    url: s3://\(bucket)\n    endpoint: \(bench)\n"
            + policy.map { "    \($0)\n" }.joined()
    }

    /// Same size, other bytes: only the ETag tells the versions apart, and the kernel keeps pages of a file
    /// whose size did not change unless they are invalidated.
    static let old = patternBytes(300_000, seed: 41)
    static let new = patternBytes(300_000, seed: 42)

    /// Reads a.bin (blocks cached, kernel pages filled) and looks up fresh.bin (a negative entry), then
    /// changes both outside the mount and checks the mount still shows the old state: what follows must
    /// undo real caching.
    func primeThenChangeOutside(_ m: TestMount, _ bucket: String) async throws {
        #expect(try readFile(m.path("data/a.bin")) == Self.old)
        var st = stat()
        #expect(stat(m.path("data/fresh.bin"), &st) == -1 && errno == ENOENT)
        _ = try await Servers.bench.putObject(bucket: bucket, key: "a.bin", body: .bytes(Self.new), options: PutOptions())
        _ = try await Servers.bench.putObject(bucket: bucket, key: "fresh.bin", body: .bytes([7, 7, 7]), options: PutOptions())
    }

    @Test func syncDropsTheCachedBlocksAndPagesOfAChangedObject() async throws {
        let bucket = try await freshBucket(Servers.bench, "synev")
        _ = try await Servers.bench.putObject(bucket: bucket, key: "a.bin", body: .bytes(Self.old), options: PutOptions())
        let m = TestMount(config: namespace(bucket))
        try await withMount(m) { m throws in
            try await primeThenChangeOutside(m, bucket)
            // Cached, the old version is still served. A loaded run can lose the cached blocks first (the
            // read then fetches with If-Match, is refused, and learns the new version, never mixing the
            // two); then the sync has nothing left to change, and says so.
            let before = try readFile(m.path("data/a.bin"))
            #expect(before == Self.old || before == Self.new, "neither version: \(before.count) bytes")
            let stale = before == Self.old
            let r = TestMount.run(["sync", "--json", m.path("data")])
            #expect(r.status == 0, "sync: \(r.output)")
            let report = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any]
            #expect(report?["new"] as? Int == 1 && (stale ? [1] : [0, 1]).contains(report?["changed"] as? Int ?? -1), "counts (stale \(stale)): \(r.output)")
            #expect(try readFile(m.path("data/a.bin")) == Self.new, "stale blocks or kernel pages after sync")
            #expect(try readFile(m.path("data/fresh.bin")) == [7, 7, 7], "a new object after sync")
        }
    }

    /// `sync-interval: 1s`: the same diff runs by itself, with no `lakecache sync`.
    @Test func syncIntervalPicksUpOutsideChanges() async throws {
        let bucket = try await freshBucket(Servers.bench, "synin")
        _ = try await Servers.bench.putObject(bucket: bucket, key: "a.bin", body: .bytes(Self.old), options: PutOptions())
        let m = TestMount(config: namespace(bucket, ["sync-interval: 1s"]))
        try await withMount(m) { m throws in
            try await primeThenChangeOutside(m, bucket)
            var seen: [UInt8] = []
            var st = stat()
            var fresh = false
            // Up to a minute, well past the interval: a loaded machine may take many seconds to list.
            for _ in 0..<600 where seen != Self.new || !fresh {
                try await Task.sleep(nanoseconds: 100_000_000)
                seen = try readFile(m.path("data/a.bin"))
                fresh = stat(m.path("data/fresh.bin"), &st) == 0
            }
            #expect(seen == Self.new, "the outside overwrite never showed")
            #expect(fresh && st.st_size == 3, "the object created outside never appeared")
            #expect(try linkSync(m) != nil, "links shows no background sync")
        }
    }

    /// The `last_sync` figures `links --json` shows for /data.
    func linkSync(_ m: TestMount) throws -> [String: Any]? {
        let r = TestMount.run(["links", "--json", m.mountpoint])
        let json = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any]
        return (json?["links"] as? [[String: Any]])?.first { $0["path"] as? String == "/data" }?["last_sync"] as? [String: Any]
    }
}
