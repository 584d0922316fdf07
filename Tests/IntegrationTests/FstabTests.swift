import Foundation
import Testing

import Platform
@testable import ObjectStore

/// fstab: `mount -T FILE MOUNTPOINT` and `mount -a -T FILE` (mount(8) with a temporary fstab) run the
/// mount.lakecache helper, with URL lines and with a config-file line.
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

    /// `mount -a -t lakecache -T FILE`, as a boot mounts the lines of /etc/fstab: every lakecache line
    /// mounts (URL lines and a config line), a `noauto` one and a line of another type do not.
    @Test func mountAllMountsEveryLakecacheLine() async throws {
        try Servers.requireServers()
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let bucket = try await freshBucket(Servers.bench, "fstab-all")
        for (key, text) in [("one/a.txt", "first"), ("two/a.txt", "second"), ("three/a.txt", "third")] {
            _ = try await Servers.bench.putObject(bucket: bucket, key: key, body: .bytes(Array(text.utf8)), options: PutOptions())
        }
        try await withHelper {
            let one = TestMount(bucket: bucket, prefix: "one", endpoint: bench)
            let two = TestMount(bucket: bucket, prefix: "two", endpoint: bench)
            let three = TestMount(config: "endpoint: \(bench)\nlinks:\n  - path: t\n    url: s3://\(bucket)/three\n")
            let manual = TestMount(bucket: bucket, prefix: "one", endpoint: bench)
            let other = manual.cacheDir + "-tmpfs"
            try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
            let all = [one, two, three, manual]
            defer {
                for m in all where isMounted(m.mountpoint) { m.stop() }
                if isMounted(other) { umount2(other, Int32(MNT_DETACH)) }
                try? FileManager.default.removeItem(atPath: other)
            }
            let fstab = one.cacheDir + "-fstab"
            try """
                # a test fstab: three lakecache lines to mount, one noauto, one of another type
                s3://\(bucket)/one \(one.mountpoint) lakecache _netdev,endpoint=\(bench),cache-dir=\(one.cacheDir),memory-cache=64M 0 0
                s3://\(bucket)/two \(two.mountpoint) lakecache _netdev,nofail,endpoint=\(bench),cache-dir=\(two.cacheDir),memory-cache=64M,ro 0 0
                none \(three.mountpoint) lakecache _netdev,config=\(three.config!),cache-dir=\(three.cacheDir) 0 0
                s3://\(bucket)/one \(manual.mountpoint) lakecache _netdev,noauto,endpoint=\(bench),cache-dir=\(manual.cacheDir) 0 0
                tmpfs \(other) tmpfs size=1M 0 0

                """.write(toFile: fstab, atomically: true, encoding: .utf8)
            defer { unlink(fstab) }
            var env = ProcessInfo.processInfo.environment
            env["LAKECACHE_BIN"] = CLITests.binary
            let r = spawn("/bin/mount", ["-a", "-t", "lakecache", "-T", fstab], mergeOutput: true, environment: env)
            #expect(r.status == 0, "mount -a: \(r.stdout)")

            #expect(isMounted(one.mountpoint) && isMounted(two.mountpoint) && isMounted(three.mountpoint), "\(r.stdout)")
            #expect(try String(contentsOfFile: one.path("a.txt"), encoding: .utf8) == "first")
            #expect(try String(contentsOfFile: two.path("a.txt"), encoding: .utf8) == "second")
            #expect(try String(contentsOfFile: three.path("t/a.txt"), encoding: .utf8) == "third")
            #expect(FileManager.default.createFile(atPath: two.path("new"), contents: Data()) == false, "ro of one line is honoured")
            #expect(!isMounted(manual.mountpoint), "a noauto line stays unmounted")
            #expect(!isMounted(other), "-t lakecache leaves lines of other types alone")

            // Each comes down with `lakecache unmount`, its daemon gone.
            for m in [one, two, three] {
                let pid = try m.daemonPID()
                m.stop()
                #expect(!isMounted(m.mountpoint))
                #expect(kill(pid, 0) != 0, "the daemon of \(m.mountpoint) exited")
            }
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
