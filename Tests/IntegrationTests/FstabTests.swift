import Foundation
import Testing

import Platform
@testable import ObjectStore

/// fstab: `mount -T FILE MOUNTPOINT` (mount(8) with a temporary fstab) runs the mount.lakecache helper,
/// with a URL line and with a config-file line.
@Suite(.enabled(if: fuseAvailable && getuid() == 0, "needs /dev/fuse and root (mount(8) runs /sbin/mount.lakecache)"), .serialized)
struct FstabTests {
    static let helper = "/sbin/mount.lakecache"
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/mount.lakecache").path

    /// Installs the helper for the test unless one is installed already; removes what it installed.
    func withHelper(_ body: () async throws -> Void) async throws {
        let installed = !FileManager.default.fileExists(atPath: Self.helper)
        if installed { try FileManager.default.copyItem(atPath: Self.source, toPath: Self.helper) }
        defer { if installed { unlink(Self.helper) } }
        try await body()
    }

    func mountWithFstab(_ line: String, _ m: TestMount) throws -> (status: Int32, output: String) {
        let fstab = m.cacheDir + "-fstab"
        try (line + "\n").write(toFile: fstab, atomically: true, encoding: .utf8)
        defer { unlink(fstab) }
        var env = ProcessInfo.processInfo.environment
        env["LAKECACHE_BIN"] = CLITests.binary
        let r = spawn("/bin/mount", ["-T", fstab, m.mountpoint], mergeOutput: true, environment: env)
        return (r.status, r.stdout)
    }

    @Test func aURLLineAndAConfigLineMount() async throws {
        try Servers.requireServers()
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let bucket = try await freshBucket(Servers.bench, "fstab")
        _ = try await Servers.bench.putObject(bucket: bucket, key: "data/a.txt", body: .bytes(Array("via fstab".utf8)), options: PutOptions())
        try await withHelper {
            let m = TestMount(bucket: bucket, endpoint: bench)
            let r = try mountWithFstab("s3://\(bucket)/data \(m.mountpoint) lakecache _netdev,nofail,endpoint=\(bench),cache-dir=\(m.cacheDir),memory-cache=64M,ro 0 0", m)
            #expect(r.status == 0, "mount -T: \(r.output)")
            defer { m.stop() }
            #expect(isMounted(m.mountpoint))
            #expect(try String(contentsOfFile: m.path("a.txt"), encoding: .utf8) == "via fstab")
            #expect(FileManager.default.createFile(atPath: m.path("new"), contents: Data()) == false, "ro is honoured")
            m.stop()

            let c = TestMount(config: "endpoint: \(bench)\nlinks:\n  - path: d\n    url: s3://\(bucket)/data\n")
            let r2 = try mountWithFstab("none \(c.mountpoint) lakecache _netdev,config=\(c.config!),cache-dir=\(c.cacheDir) 0 0", c)
            #expect(r2.status == 0, "mount -T with config=: \(r2.output)")
            defer { c.stop() }
            #expect(try String(contentsOfFile: c.path("d/a.txt"), encoding: .utf8) == "via fstab")
        }
    }

    @Test func aBadOptionIsRefusedWithItsName() async throws {
        try Servers.requireServers()
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        try await withHelper {
            let m = TestMount(bucket: "nobucket", endpoint: bench)
            let r = try mountWithFstab("s3://nobucket \(m.mountpoint) lakecache cache-size=lots 0 0", m)
            #expect(r.status != 0 && r.output.contains("lots"), "\(r.output)")
            #expect(!isMounted(m.mountpoint))
        }
    }
}
