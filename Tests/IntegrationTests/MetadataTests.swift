import Foundation
import Testing

import Platform
@testable import ObjectStore

/// POSIX metadata in object metadata: it survives a remount, and s3fs and lakecache read each other's.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct MetadataTests {
    let s3 = Servers.bench
    let bench: String

    init() throws {
        try Servers.requireServers()
        bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
    }

    struct Shown: Equatable, CustomStringConvertible {
        var kind: mode_t, mode: mode_t, uid: uid_t, gid: gid_t, mtime: Int
        var description: String { "kind \(String(kind, radix: 8)) mode \(String(mode, radix: 8)) \(uid):\(gid) mtime \(mtime)" }
    }

    func shown(_ path: String) -> Shown? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return Shown(kind: st.st_mode & S_IFMT, mode: st.st_mode & 0o7777, uid: st.st_uid, gid: st.st_gid, mtime: Int(st.st_mtim.tv_sec))
    }

    func setTimes(_ path: String, _ t: Int) -> Int32 {
        var times = [timespec(tv_sec: t, tv_nsec: 0), timespec(tv_sec: t, tv_nsec: 0)]
        return utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
    }

    @Test func chmodChownUtimensAndSymlinksSurviveARemount() async throws {
        let bucket = try await freshBucket(s3, "meta")
        let m = TestMount(bucket: bucket, endpoint: bench)
        try withMountSync(m) { m throws in
            try writeFile(m.path("f"), patternBytes(10_000, seed: 90))
            #expect(chmod(m.path("f"), 0o600) == 0)
            #expect(chown(m.path("f"), 1234, 5678) == 0)
            #expect(setTimes(m.path("f"), 1_700_000_000) == 0)
            #expect(mkdir(m.path("d"), 0o755) == 0)
            #expect(chmod(m.path("d"), 0o700) == 0)
            #expect(mkdir(m.path("d/e"), 0o750) == 0)
            #expect(symlink("f", m.path("l")) == 0)
            #expect(flush(m.mountpoint).status == 0)
        }
        // A fresh mount with an empty cache: everything below comes from the bucket.
        let again = TestMount(bucket: bucket, endpoint: bench)
        try withMountSync(again) { m throws in
            #expect(shown(m.path("f")) == Shown(kind: S_IFREG, mode: 0o600, uid: 1234, gid: 5678, mtime: 1_700_000_000))
            #expect(shown(m.path("d"))?.mode == 0o700)
            #expect(shown(m.path("d/e"))?.mode == 0o750)
            #expect(shown(m.path("l"))?.kind == S_IFLNK)
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: m.path("l"))) == "f")
            #expect(try readFile(m.path("l")) == patternBytes(10_000, seed: 90))
            // Directory modes also come through a listing (the markers are HEADed per page).
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.path("d")) == ["e"])
            #expect(shown(m.path("d/e"))?.mode == 0o750)
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/s3fs"), "s3fs is not installed (scripts/install-deps.sh installs it)"))
    func s3fsAndLakecacheReadEachOthersMetadata() async throws {
        let bucket = try await freshBucket(s3, "s3fs")
        let base = NSTemporaryDirectory() + "lakecache-s3fs-\(UUID().uuidString.prefix(8))"
        let s3fsMount = base + "/mnt"
        try FileManager.default.createDirectory(atPath: s3fsMount, withIntermediateDirectories: true)
        let passwd = base + "/passwd"
        try "test:test\n".write(toFile: passwd, atomically: true, encoding: .utf8)
        chmod(passwd, 0o600)
        defer { try? FileManager.default.removeItem(atPath: base) }
        func mountS3fs() throws {
            let r = spawn("/usr/bin/s3fs", [bucket, s3fsMount, "-o", "url=\(bench),use_path_request_style,passwd_file=\(passwd),stat_cache_expire=1"], mergeOutput: true)
            try #require(r.status == 0, "s3fs failed: \(r.stdout)")
        }
        func unmountS3fs() {
            if spawn("/bin/fusermount3", ["-u", s3fsMount]).status != 0 { umount2(s3fsMount, Int32(MNT_DETACH)) }
        }
        // s3fs writes; lakecache reads.
        try mountS3fs()
        do {
            try writeFile(s3fsMount + "/from-s3fs", patternBytes(20_000, seed: 91))
            #expect(chmod(s3fsMount + "/from-s3fs", 0o640) == 0)
            #expect(setTimes(s3fsMount + "/from-s3fs", 1_650_000_000) == 0)
            #expect(mkdir(s3fsMount + "/s3fs-dir", 0o710) == 0)
            #expect(symlink("from-s3fs", s3fsMount + "/s3fs-link") == 0)
            #expect(mkfifo(s3fsMount + "/s3fs-fifo", 0o620) == 0)
            #expect(mknod(s3fsMount + "/s3fs-dev", S_IFCHR | 0o600, makeDevice(1, 5)) == 0)
        }
        unmountS3fs()
        // s3fs may still be writing the chmod's and utimes' metadata copy as its daemon exits: what is being
        // tested is reading that metadata, so wait for it to be in the bucket.
        var landed = false
        for _ in 0..<100 where !landed {
            landed = (try? await s3.headObject(bucket: bucket, key: "from-s3fs"))?.metadata["mtime"]?.hasPrefix("1650000000") == true
            if !landed { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(landed, "s3fs never stored the chmod and utimes metadata")
        let m = TestMount(bucket: bucket, endpoint: bench)
        try withMountSync(m) { m throws in
            #expect(shown(m.path("from-s3fs")) == Shown(kind: S_IFREG, mode: 0o640, uid: 0, gid: 0, mtime: 1_650_000_000))
            #expect(shown(m.path("s3fs-dir"))?.kind == S_IFDIR)
            #expect(shown(m.path("s3fs-dir"))?.mode == 0o710)
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: m.path("s3fs-link"))) == "from-s3fs")
            // The kernel applied the umask (022) to the mkfifo's 0620.
            #expect(shown(m.path("s3fs-fifo"))?.kind == S_IFIFO && shown(m.path("s3fs-fifo"))?.mode == 0o600)
            // s3fs 1.91 keeps a device's type, not its number: it shows 0:0 itself.
            #expect(shown(m.path("s3fs-dev"))?.kind == S_IFCHR, "s3fs's device node")
            #expect(mkfifo(m.path("lc-fifo"), 0o604) == 0)
            #expect(mknod(m.path("lc-dev"), S_IFBLK | 0o600, makeDevice(7, 2)) == 0)
            // lakecache writes; s3fs reads.
            try writeFile(m.path("from-lakecache"), patternBytes(30_000, seed: 92))
            #expect(chmod(m.path("from-lakecache"), 0o604) == 0)
            #expect(setTimes(m.path("from-lakecache"), 1_600_000_000) == 0)
            #expect(mkdir(m.path("lc-dir"), 0o701) == 0)
            #expect(symlink("from-lakecache", m.path("lc-link")) == 0)
            #expect(flush(m.mountpoint).status == 0)
        }
        // What the bucket holds, for the message when s3fs shows something else (s3fs answering from its
        // listing, or lakecache's chmod missing from the object, look alike from here).
        let stored = try await s3.headObject(bucket: bucket, key: "from-lakecache").metadata
        #expect(stored["mode"].flatMap { UInt32($0) }.map { $0 & 0o7777 } == 0o604 && stored["mtime"]?.hasPrefix("1600000000") == true,
                "lakecache's chmod and utimes are in the object: \(stored)")
        try mountS3fs()
        defer { unmountS3fs() }
        #expect(shown(s3fsMount + "/from-lakecache")?.mode == 0o604, "the object's metadata: \(stored)")
        #expect(shown(s3fsMount + "/from-lakecache")?.mtime == 1_600_000_000, "the object's metadata: \(stored)")
        #expect(shown(s3fsMount + "/lc-dir")?.kind == S_IFDIR)
        #expect(shown(s3fsMount + "/lc-dir")?.mode == 0o701)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: s3fsMount + "/lc-link")) == "from-lakecache")
        #expect(try readFile(s3fsMount + "/from-lakecache") == patternBytes(30_000, seed: 92))
        #expect(shown(s3fsMount + "/lc-fifo")?.kind == S_IFIFO && shown(s3fsMount + "/lc-fifo")?.mode == 0o604)
        #expect(shown(s3fsMount + "/lc-dev")?.kind == S_IFBLK, "lakecache's device node through s3fs")
    }
}

/// withMount for bodies that need no await.
func withMountSync(_ mount: TestMount, _ body: (TestMount) throws -> Void) throws {
    try mount.start()
    defer { mount.stop() }
    try body(mount)
}
