import Foundation
import Testing

import Platform
@testable import ObjectStore

/// What pjdfstest found and was fixed (docs/reliability.md), each on a real mount: inode numbers across
/// renames over existing targets, long names, set-ID bits on unprivileged writes, unlinked open files, and
/// ctime on writes.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct PosixRegressionTests {
    let bench: String

    init() throws {
        try Servers.requireServers()
        bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
    }

    func inode(_ path: String) -> ino_t? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_ino : nil
    }

    /// lstat's errno, or 0 when it succeeds.
    func lstatErrno(_ path: String) -> Int32 {
        var st = stat()
        return lstat(path, &st) == 0 ? 0 : errno
    }

    /// pjdfstest's rename/09 and rename/10 pattern: a→b over an existing b, then b→a over a new a, with the
    /// source still staged (its upload held back by the store) and again once it is in the bucket. With
    /// `--metadata-ttl 0` every stat is the daemon's answer, not the kernel's cached inode.
    @Test(arguments: [[String](), ["--metadata-ttl", "0"]])
    func renameOverAnExistingTargetAndBackKeepsTheInode(extra: [String]) async throws {
        let bucket = try await freshBucket(Servers.bench, "renino")
        try await withMount(TestMount(bucket: bucket, endpoint: bench, extra: extra)) { m throws in
            try writeFile(m.path("b"), Array("old b".utf8))
            #expect(flush(m.mountpoint).status == 0)
            // Each PUT is held 20 s (under the daemon's 30-s stall limit, past which it would abandon and resend
            // it): far longer than the few calls to the rename. No `status` spawn in between, which on a
            // loaded machine can outlast any hold: the bucket, asked in-process, has no `a` yet, so its upload
            // has not finished.
            try await BenchControl.setFaults(bucket: bucket, [["action": "delay", "op": "PutObject", "delay_ms": 20_000, "probability": 1.0]])
            try writeFile(m.path("a"), Array("first a".utf8))
            let original = try #require(inode(m.path("a")))
            #expect(try await objectBytes(Servers.bench, bucket, "a") == nil, "a's upload is still pending when it is renamed")
            #expect(rename(m.path("a"), m.path("b")) == 0, "rename a b: \(Errno(errno))")
            #expect(lstatErrno(m.path("b")) == 0, "lstat of the renamed file: \(Errno(lstatErrno(m.path("b"))))")
            #expect(inode(m.path("b")) == original, "a rename over an existing file keeps the source's inode")
            #expect(lstatErrno(m.path("a")) == ENOENT)
            #expect(try readFile(m.path("b")) == Array("first a".utf8), "the destination has the source's bytes, not the replaced file's")
            try writeFile(m.path("a"), Array("second a".utf8))
            let second = try #require(inode(m.path("a")))
            #expect(second != original)
            #expect(rename(m.path("b"), m.path("a")) == 0, "rename b a: \(Errno(errno))")
            #expect(lstatErrno(m.path("a")) == 0, "lstat after renaming back: \(Errno(lstatErrno(m.path("a"))))")
            #expect(inode(m.path("a")) == original, "renaming back over a new file keeps the inode")
            #expect(lstatErrno(m.path("b")) == ENOENT)
            #expect(try readFile(m.path("a")) == Array("first a".utf8))
            // Once it is in the bucket (the uploads held back above have landed; flush waits out the holds
            // already begun): the same again.
            try await BenchControl.setFaults(bucket: bucket, [])
            #expect(flush(m.mountpoint).status == 0)
            try writeFile(m.path("c"), Array("c".utf8))
            #expect(flush(m.mountpoint).status == 0)
            #expect(rename(m.path("a"), m.path("c")) == 0)
            #expect(inode(m.path("c")) == original, "a rename of an uploaded file over an uploaded file keeps the inode")
            #expect(try readFile(m.path("c")) == Array("first a".utf8))
            #expect(flush(m.mountpoint).status == 0)
            // The kernel forgets the renamed file (dropping its dentries and inodes sends FORGET): looked up
            // again, it has the number it had, not the hash of its new path.
            func inodes() throws -> Int { try #require((try m.status()["namespace"] as? [String: Any])?["inodes"] as? Int) }
            let held = try inodes()
            var forgotten = false
            for _ in 0..<50 where !forgotten {
                dropPageCache()
                try await Task.sleep(for: .milliseconds(100))
                forgotten = try inodes() < held
            }
            // With a TTL of 0 the kernel may keep the inode however often its dentries go (seen on loaded
            // runs); the default TTL's case is the one that must see the forget.
            if extra.isEmpty { #expect(forgotten, "the kernel never forgot the inodes (\(held) held)") }
            #expect(inode(m.path("c")) == original, "a renamed file keeps its inode number after the kernel forgets it")
            #expect(unlink(m.path("c")) == 0)
            try writeFile(m.path("c"), Array("new c".utf8))
            #expect(inode(m.path("c")) != original, "a new file at the path does not take the unlinked file's number")
        }
        #expect(try await objectBytes(Servers.bench, bucket, "c") == Array("new c".utf8))
        #expect(try await objectBytes(Servers.bench, bucket, "a") == nil)
        #expect(try await objectBytes(Servers.bench, bucket, "b") == nil)
    }

    @Test func namesOver255BytesAreENAMETOOLONG() async throws {
        let bucket = try await freshBucket(Servers.bench, "longname")
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            let longest = String(repeating: "x", count: 255)
            let tooLong = String(repeating: "x", count: 256)
            let fd = open(m.path(tooLong), O_WRONLY | O_CREAT, 0o644)
            let createErrno = errno
            #expect(fd == -1 && createErrno == ENAMETOOLONG, "create: \(Errno(createErrno))")
            #expect(mkdir(m.path(tooLong), 0o755) == -1 && errno == ENAMETOOLONG, "mkdir: \(Errno(errno))")
            #expect(lstatErrno(m.path(tooLong)) == ENAMETOOLONG, "lookup")
            // 256 bytes of a multibyte name, fewer characters: the limit is in bytes.
            let multibyte = String(repeating: "é", count: 128)
            #expect(lstatErrno(m.path(multibyte)) == ENAMETOOLONG, "lookup of 256 bytes in 128 characters")
            // 255 bytes is allowed.
            try writeFile(m.path(longest), [1])
            #expect(mkdir(m.path("d" + String(repeating: "y", count: 254)), 0o755) == 0, "mkdir of 255 bytes: \(Errno(errno))")
            #expect(lstatErrno(m.path(longest)) == 0)
        }
    }

    /// The write comes from uid 65534 (setpriv), through a write-only descriptor, which is direct I/O: the
    /// kernel does not clear the bits there, the daemon must.
    @Test func anUnprivilegedWriteClearsSetIDBits() async throws {
        let bucket = try await freshBucket(Servers.bench, "setid")
        try await withMount(TestMount(bucket: bucket, endpoint: bench, extra: ["--allow-other"])) { m throws in
            try writeFile(m.path("tool"), Array("#!/bin/sh\n".utf8))
            #expect(chmod(m.path("tool"), 0o6777) == 0)
            #expect(chmod(m.mountpoint, 0o777) == 0)
            var st = stat()
            #expect(lstat(m.path("tool"), &st) == 0 && st.st_mode & 0o7777 == 0o6777)
            let r = spawn("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", "printf 'echo hi\\n' >> \"$1\"", "sh", m.path("tool")], mergeOutput: true)
            #expect(r.status == 0, "the unprivileged write failed: \(r.stdout)")
            #expect(lstat(m.path("tool"), &st) == 0)
            #expect(st.st_mode & 0o7777 == 0o777, "set-user-ID and set-group-ID cleared, the rest kept: \(String(st.st_mode, radix: 8))")
            #expect(st.st_size == 18)
            #expect(flush(m.mountpoint).status == 0)
        }
        let info = try await Servers.bench.headObject(bucket: bucket, key: "tool")
        #expect(UInt32(info.metadata["mode"] ?? "").map { $0 & 0o7777 } == 0o777, "the bucket's mode has the bits cleared too: \(info.metadata)")
    }

    @Test func anUnlinkedOpenFileShowsNlinkZeroAndItsStagedSize() async throws {
        let bucket = try await freshBucket(Servers.bench, "unlinked")
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            let fd = open(m.path("f"), O_RDWR | O_CREAT, 0o644)
            try #require(fd >= 0)
            defer { close(fd) }
            #expect(pwriteAll(fd, Array(repeating: 7, count: 5000), at: 0))
            #expect(unlink(m.path("f")) == 0)
            #expect(lstatErrno(m.path("f")) == ENOENT)
            var st = stat()
            #expect(fstat(fd, &st) == 0)
            #expect(st.st_nlink == 0, "nlink of an unlinked open file: \(st.st_nlink)")
            #expect(st.st_size == 5000, "the staged size: \(st.st_size)")
            // Still writable and readable through the descriptor.
            #expect(pwriteAll(fd, [9, 9], at: 5000))
            #expect(fstat(fd, &st) == 0 && st.st_size == 5002 && st.st_nlink == 0)
            #expect(try preadFile(fd, 4998, 4).get() == [7, 7, 9, 9])
        }
        #expect(try await objectBytes(Servers.bench, bucket, "f") == nil, "an unlinked file is never uploaded")
    }

    @Test func ctimeAndMtimeMoveOnAWrite() async throws {
        let bucket = try await freshBucket(Servers.bench, "wctime")
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            try writeFile(m.path("f"), [1, 2, 3])
            #expect(flush(m.mountpoint).status == 0)
            func times() -> (c: timespec, m: timespec) {
                var st = stat()
                _ = lstat(m.path("f"), &st)
                return (st.st_ctim, st.st_mtim)
            }
            func later(_ a: timespec, _ b: timespec) -> Bool { (a.tv_sec, a.tv_nsec) > (b.tv_sec, b.tv_nsec) }
            // An object in the bucket, written in place (staged first), and then a file already staged.
            for round in ["uploaded file", "staged file"] {
                let before = times()
                usleep(20_000)
                let fd = open(m.path("f"), O_WRONLY)
                try #require(fd >= 0)
                #expect(pwriteAll(fd, [4], at: 1))
                var st = stat()
                #expect(fstat(fd, &st) == 0 && later(st.st_ctim, before.c), "fstat: a write moves ctime (\(round))")
                close(fd)
                #expect(later(times().c, before.c), "stat: a write moves ctime (\(round))")
                #expect(later(times().m, before.m), "stat: a write moves mtime (\(round))")
            }
        }
    }
}
