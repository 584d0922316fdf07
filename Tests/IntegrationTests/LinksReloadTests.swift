import Foundation
import Testing

import Platform
@testable import ObjectStore

/// Reloads of a live namespace: a link removed with uploads pending, a policy changed under open files,
/// SIGHUP, and the reload that is refused (a writable link on a mount that started read-only).
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct LinksReloadTests {
    let bench: String

    init() throws {
        try Servers.requireServers()
        bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
    }

    /// One link on the bench store; `policy` lines are indented under it.
    func link(_ path: String, _ bucket: String, _ policy: [String] = []) -> String {
        "  - path: \(path)\n    url: s3://\(bucket)\n    endpoint: \(bench)\n" + policy.map { "    \($0)\n" }.joined()
    }

    func namespace(_ links: String...) -> String { "metadata-ttl: 300\nlinks:\n" + links.joined() }

    /// The `links --json` entry of `path` (with its leading slash), nil when the mount no longer has it.
    func linkEntry(_ m: TestMount, _ path: String) throws -> [String: Any]? {
        let r = TestMount.run(["links", "--json", m.mountpoint])
        try #require(r.status == 0, "links: \(r.output)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any])
        return (json["links"] as? [[String: Any]])?.first { $0["path"] as? String == path }
    }

    func rootNames(_ m: TestMount) throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: m.mountpoint).sorted() }

    /// The bench store holds PUTs to the removed link's bucket for 4 s: the link stays `removing` until both
    /// the closed file's upload and the one of a file still open for writing (written after the reload) are
    /// in the bucket byte-exact, and never leaves `links` while one is missing.
    @Test func aRemovedLinkWaitsForItsUploadsAndOpenFiles() async throws {
        let keep = try await freshBucket(Servers.bench, "rmk")
        let gone = try await freshBucket(Servers.bench, "rmg")
        try await BenchControl.setFaults(bucket: gone, [["action": "delay", "op": "PutObject", "delay_ms": 4000, "probability": 1.0]])
        let m = TestMount(config: namespace(link("keep", keep), link("gone", gone, ["write-mode: async"])))
        let closed = patternBytes(150_000, seed: 21)
        let open = patternBytes(200_000, seed: 22)
        try await withMount(m) { m throws in
            try writeFile(m.path("gone/closed.bin"), closed)
            let fd = Glibc.open(m.path("gone/open.bin"), O_RDWR | O_CREAT | O_TRUNC, 0o644)
            try #require(fd >= 0, "open for write: errno \(errno)")
            var released = false
            defer { if !released { close(fd) } }
            #expect(pwriteAll(fd, Array(open[..<100_000]), at: 0))

            try m.rewrite(namespace(link("keep", keep)))
            let r = TestMount.run(["reload", m.mountpoint])
            #expect(r.status == 0 && r.output.contains("/gone"), "reload: \(r.output)")
            #expect(try rootNames(m) == ["keep"], "a removed link is no longer listed")
            let state = try linkEntry(m, "/gone")?["state"] as? String
            #expect(state?.hasPrefix("removing") == true, "the link left before its uploads were durable: \(state ?? "gone")")

            // The handle opened before the reload keeps writing, and its close uploads it.
            // Past the end, then ftruncate back: a setattr through the handle, not only writes.
            #expect(pwriteAll(fd, Array(open[100_000...]) + [1, 2, 3], at: 100_000))
            #expect(ftruncate(fd, off_t(open.count)) == 0, "ftruncate through the handle: errno \(errno)")
            #expect(close(fd) == 0)
            released = true

            var landed = false
            var leftEarly = false
            for _ in 0..<300 {
                // Whether the link is listed first: it may only leave after the bucket has both.
                let listed = try linkEntry(m, "/gone") != nil
                let a = try await objectBytes(Servers.bench, gone, "closed.bin")
                let b = try await objectBytes(Servers.bench, gone, "open.bin")
                landed = a == closed && b == open
                if !listed && !landed { leftEarly = true }
                if !listed { break }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            #expect(!leftEarly, "the link left `links` before its uploads were in the bucket")
            for _ in 0..<300 where !landed {
                try await Task.sleep(nanoseconds: 100_000_000)
                let a = try await objectBytes(Servers.bench, gone, "closed.bin")
                let b = try await objectBytes(Servers.bench, gone, "open.bin")
                landed = a == closed && b == open
            }
            #expect(landed, "the uploads of the removed link did not land byte-exact in 30 s")
            #expect(try linkEntry(m, "/gone") == nil, "the removed link stayed `removing` after its uploads landed")
        }
    }

    /// read-only false → true and write-mode async → sync on reload: a new open for write (or a truncate by
    /// path) is EROFS while a handle opened before keeps writing, truncating and uploading; a sync-mode close then returns after the bucket has the
    /// object (PUTs are held 3 s, so an async close would return before).
    @Test func aChangedPolicyAppliesToNewOpens() async throws {
        let ro = try await freshBucket(Servers.bench, "plro")
        let wm = try await freshBucket(Servers.bench, "plwm")
        try await BenchControl.setFaults(bucket: wm, [["action": "delay", "op": "PutObject", "delay_ms": 3000, "probability": 1.0]])
        let before = namespace(link("ro", ro), link("wm", wm, ["write-mode: async"]))
        let m = TestMount(config: before)
        let data = patternBytes(120_000, seed: 31)
        try await withMount(m) { m throws in
            let fd = Glibc.open(m.path("ro/early.bin"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            try #require(fd >= 0, "open for write: errno \(errno)")
            var released = false
            defer { if !released { close(fd) } }
            try writeFile(m.path("wm/async.bin"), data)
            #expect(try await objectBytes(Servers.bench, wm, "async.bin") == nil, "an async close waited for the upload")

            try m.rewrite(namespace(link("ro", ro, ["read-only: true"]), link("wm", wm, ["write-mode: sync"])))
            let r = TestMount.run(["reload", m.mountpoint])
            #expect(r.status == 0 && r.output.contains("/ro") && r.output.contains("/wm"), "reload: \(r.output)")
            #expect(try linkEntry(m, "/ro")?["read_only"] as? Bool == true)
            #expect(try linkEntry(m, "/wm")?["write_mode"] as? String == "sync")

            #expect(Glibc.open(m.path("ro/late.bin"), O_WRONLY | O_CREAT, 0o644) == -1 && errno == EROFS, "a new open for write on a now read-only link")
            #expect(pwriteAll(fd, data + [1, 2, 3], at: 0), "the handle opened writable before the reload")
            #expect(ftruncate(fd, off_t(data.count)) == 0, "ftruncate through the handle opened writable: errno \(errno)")
            #expect(truncate(m.path("ro/early.bin"), 10) == -1 && errno == EROFS, "a truncate by path is a new change")
            #expect(close(fd) == 0)
            released = true
            var landed = false
            for _ in 0..<600 where !landed {
                landed = try await objectBytes(Servers.bench, ro, "early.bin") == data
                if !landed { try await Task.sleep(nanoseconds: 100_000_000) }
            }
            #expect(landed, "the file written through the old handle did not land byte-exact")

            try writeFile(m.path("wm/sync.bin"), data)
            #expect(try await objectBytes(Servers.bench, wm, "sync.bin") == data, "close() on a link changed to sync returned before the bucket had the object")
        }
    }

    /// SIGHUP to the daemon rereads the file, as `lakecache reload` does.
    @Test func sighupRereadsTheConfigFile() async throws {
        let first = try await freshBucket(Servers.bench, "hup1")
        let added = try await freshBucket(Servers.bench, "hup2")
        _ = try await Servers.bench.putObject(bucket: added, key: "hello.txt", body: .bytes(Array("hello".utf8)), options: PutOptions())
        let m = TestMount(config: namespace(link("first", first)))
        try await withMount(m) { m throws in
            #expect(try rootNames(m) == ["first"])
            try m.rewrite(namespace(link("first", first), link("added", added, ["read-only: true"])))
            #expect(kill(try m.daemonPID(), SIGHUP) == 0)
            var names: [String] = []
            for _ in 0..<600 where names != ["added", "first"] {
                try await Task.sleep(nanoseconds: 100_000_000)
                names = try rootNames(m)
            }
            #expect(names == ["added", "first"], "SIGHUP did not add the link")
            #expect(try String(contentsOfFile: m.path("added/hello.txt"), encoding: .utf8) == "hello")
            #expect(isMounted(m.mountpoint), "SIGHUP must not unmount")
        }
    }

    /// A mount whose links all started read-only has no write path (no journal was replayed before it
    /// served): a reload adding a writable link is refused with the fix, and changes nothing.
    @Test func aWritableLinkOnAReadOnlyMountIsRefused() async throws {
        let data = try await freshBucket(Servers.bench, "rorl")
        let other = try await freshBucket(Servers.bench, "rorw")
        let m = TestMount(config: namespace(link("data", data, ["read-only: true"])))
        try await withMount(m) { m throws in
            try m.rewrite(namespace(link("data", data, ["read-only: true"]), link("out", other)))
            let r = TestMount.run(["reload", m.mountpoint])
            #expect(r.status != 0 && r.output.contains("nothing changed") && r.output.contains("remount"), "\(r.output)")
            #expect(try rootNames(m) == ["data"])
        }
    }
}
