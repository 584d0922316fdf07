import Foundation
import Testing

import Platform
@testable import ObjectStore

/// FIFOs, devices and sockets as zero-byte objects with their type (and device number) in metadata, as s3fs
/// stores them; and the times a change moves.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct SpecialFileTests {
    let bench: String

    init() throws {
        try Servers.requireServers()
        bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
    }

    func kind(_ path: String) -> (mode_t, dev_t)? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return (st.st_mode, st.st_rdev)
    }

    @Test func fifosDevicesAndSocketsSurviveRemountRenameChmodAndChown() async throws {
        let bucket = try await freshBucket(Servers.bench, "special")
        let m = TestMount(bucket: bucket, endpoint: bench)
        let device = makeDevice(1, 3)  // /dev/null's number
        try await withMount(m) { m throws in
            #expect(mkfifo(m.path("pipe"), 0o640) == 0, "mkfifo: \(Errno(errno))")
            #expect(mknod(m.path("null"), S_IFCHR | 0o600, device) == 0, "mknod c: \(Errno(errno))")
            #expect(mknod(m.path("disk"), S_IFBLK | 0o600, makeDevice(8, 1)) == 0, "mknod b: \(Errno(errno))")
            // bind(2) of a unix socket makes its node with mknod.
            let sock = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let path = Array(m.path("sock").utf8)
            withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: path) }
            let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            #expect(bound == 0, "bind: \(Errno(errno))")
            close(sock)
            #expect(chmod(m.path("pipe"), 0o600) == 0)
            #expect(chown(m.path("null"), 42, 43) == 0)
            #expect(rename(m.path("disk"), m.path("disk2")) == 0)
            // A FIFO on the mount is a pipe the kernel serves on this host.
            let writer = Thread { let fd = open(m.path("pipe"), O_WRONLY); _ = write(fd, "hi", 2); close(fd) }
            writer.start()
            let fd = open(m.path("pipe"), O_RDONLY)
            var buf = [UInt8](repeating: 0, count: 2)
            #expect(read(fd, &buf, 2) == 2 && buf == Array("hi".utf8))
            close(fd)
            #expect(flush(m.mountpoint).status == 0)
        }
        // What the bucket holds: zero-byte objects with the type and the device number in metadata.
        let info = try await Servers.bench.headObject(bucket: bucket, key: "null")
        #expect(info.size == 0 && info.metadata["rdev"] == String(device) && UInt32(info.metadata["mode"] ?? "")! & UInt32(S_IFMT) == UInt32(S_IFCHR))
        // A fresh mount, listing first: the same special files.
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            _ = try FileManager.default.contentsOfDirectory(atPath: m.mountpoint)
            #expect(kind(m.path("pipe")).map { $0.0 } == S_IFIFO | 0o600)
            #expect(kind(m.path("null")).map { ($0.0 & S_IFMT, $0.1) }! == (S_IFCHR, device))
            #expect(kind(m.path("disk2")).map { ($0.0 & S_IFMT, $0.1) }! == (S_IFBLK, makeDevice(8, 1)))
            #expect(kind(m.path("disk")) == nil)
            #expect(kind(m.path("sock")).map { $0.0 & S_IFMT } == S_IFSOCK)
            var st = stat()
            #expect(lstat(m.path("null"), &st) == 0 && st.st_uid == 42 && st.st_gid == 43)
            #expect(unlink(m.path("sock")) == 0)
        }
    }

    @Test func ctimeMovesOnChmodChownRenameAndDirectoriesOnTheirChildren() async throws {
        let bucket = try await freshBucket(Servers.bench, "ctime")
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            #expect(mkdir(m.path("d"), 0o755) == 0)
            try writeFile(m.path("d/f"), [1, 2, 3])
            #expect(flush(m.mountpoint).status == 0)
            func times(_ p: String) -> (c: timespec, m: timespec) {
                var st = stat()
                _ = lstat(p, &st)
                return (st.st_ctim, st.st_mtim)
            }
            func later(_ a: timespec, _ b: timespec) -> Bool { (a.tv_sec, a.tv_nsec) > (b.tv_sec, b.tv_nsec) }
            var before = times(m.path("d/f"))
            usleep(20_000)
            #expect(chmod(m.path("d/f"), 0o600) == 0)
            #expect(later(times(m.path("d/f")).c, before.c), "chmod moves ctime")
            before = times(m.path("d/f"))
            usleep(20_000)
            #expect(chown(m.path("d/f"), 7, 7) == 0)
            #expect(later(times(m.path("d/f")).c, before.c), "chown moves ctime")
            before = times(m.path("d/f"))
            let dir = times(m.path("d"))
            usleep(20_000)
            #expect(rename(m.path("d/f"), m.path("d/g")) == 0)
            #expect(later(times(m.path("d/g")).c, before.c), "rename moves ctime")
            #expect(later(times(m.path("d")).m, dir.m) && later(times(m.path("d")).c, dir.c), "a rename in a directory moves its mtime and ctime")
        }
    }
}

/// glibc's makedev (a macro Swift does not import).
func makeDevice(_ major: UInt64, _ minor: UInt64) -> dev_t {
    dev_t(((major & 0xfffff000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffffff00) << 12) | (minor & 0xff))
}
