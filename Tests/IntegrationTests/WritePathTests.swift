import Foundation
import Synchronization
import Testing

import Platform
@testable import ObjectStore

/// The write path on real mounts: part boundaries, write patterns, metadata, faults (bench store and moto).
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct WritePathTests {
    let s3 = Servers.bench
    let bench: String
    let part = 5 << 20

    init() throws {
        try Servers.requireServers()
        bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
    }

    func mount(_ bucket: String, mode: String = "async", extra: [String] = []) -> TestMount {
        TestMount(bucket: bucket, endpoint: bench, extra: ["--part-size", "5M", "--write-mode", mode] + extra)
    }

    @Test(arguments: ["async", "sync"])
    func multipartBoundariesArriveByteForByte(mode: String) async throws {
        let bucket = try await freshBucket(s3, "sizes")
        let sizes = [0, 1, part - 1, part, part + 1, 3 * part + 7]
        try await withMount(mount(bucket, mode: mode)) { m in
            for (i, size) in sizes.enumerated() {
                try writeFile(m.path("f\(size)"), patternBytes(size, seed: UInt64(i + 1)), chunk: 128 << 10)
            }
            #expect(flush(m.mountpoint).status == 0)
            for (i, size) in sizes.enumerated() {
                #expect(try await objectBytes(s3, bucket, "f\(size)") == patternBytes(size, seed: UInt64(i + 1)), "size \(size)")
                #expect(try readFile(m.path("f\(size)")) == patternBytes(size, seed: UInt64(i + 1)))
            }
        }
        let counts = try await BenchControl.requests(bucket: bucket)
        // Only the two files over one part go multipart: 2 + 4 parts.
        #expect(counts["CompleteMultipartUpload"] == 2)
        // Under load a part may be re-sent (a retry, or a rewrite racing its upload); never fewer than six.
        #expect((counts["UploadPart"] ?? 0) >= 6)
        #expect(counts["PutObject"] == 4)
        #expect(try await openUploads(s3, bucket).map(\.key) == [])
    }

    /// Whole parts reach the bucket while the writer still holds the file open, written through a write-only
    /// (direct I/O) descriptor in 1 MiB writes as a checkpoint writer does; the rest goes at close.
    @Test func partsStreamOutWhileTheFileIsOpen() async throws {
        let bucket = try await freshBucket(s3, "stream")
        let bytes = patternBytes(6 * part + 123, seed: 42)
        try await withMount(mount(bucket)) { m in
            let fd = open(m.path("ckpt.bin"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            #expect(fd >= 0)
            var off = 0
            while off < 4 * part {
                let n = min(1 << 20, 4 * part - off)
                #expect(bytes[off..<(off + n)].withUnsafeBytes { write(fd, $0.baseAddress, n) } == n)
                off += n
            }
            // Still open: the four whole parts stream out (two at a time while writing, all once idle); up to
            // a minute on a loaded machine.
            var streamed = 0
            for _ in 0..<600 where streamed < 4 {
                try await Task.sleep(for: .milliseconds(100))
                streamed = try await BenchControl.requests(bucket: bucket)["UploadPart"] ?? 0
            }
            #expect(streamed >= 4, "parts uploaded before close: \(streamed)")
            #expect(try await BenchControl.requests(bucket: bucket)["CompleteMultipartUpload"] == nil)
            #expect(bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count - off)
            #expect(close(fd) == 0)
            #expect(flush(m.path("ckpt.bin")).status == 0)
            #expect(try await objectBytes(s3, bucket, "ckpt.bin") == bytes)
            #expect(try readFile(m.path("ckpt.bin")) == bytes)
        }
        let counts = try await BenchControl.requests(bucket: bucket)
        #expect(counts["CompleteMultipartUpload"] == 1)
        #expect((counts["UploadPart"] ?? 0) >= 7)
    }

    @Test func writePatternsMatchALocalModel() async throws {
        let bucket = try await freshBucket(s3, "patterns")
        try await withMount(mount(bucket)) { m in
            // Sequential 3 parts, then a rewrite inside part 1 after it streamed out, then random writes.
            var model = patternBytes(3 * part + 100, seed: 5)
            let fd = open(m.path("w"), O_RDWR | O_CREAT | O_TRUNC, 0o644)
            #expect(pwriteAll(fd, model, at: 0))
            try await Task.sleep(for: .milliseconds(300))
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<50 {
                let off = Int.random(in: 0..<(model.count + 1000), using: &rng)
                let chunk = patternBytes(Int.random(in: 1..<70_000, using: &rng), seed: rng.next())
                #expect(pwriteAll(fd, chunk, at: off))
                if off + chunk.count > model.count { model += [UInt8](repeating: 0, count: off + chunk.count - model.count) }
                model.replaceSubrange(off..<(off + chunk.count), with: chunk)
                // A read while writing sees the newest bytes.
                #expect(try preadFile(fd, off, chunk.count).get() == chunk)
            }
            #expect(ftruncate(fd, off_t(part + 3)) == 0)
            model = Array(model[0..<(part + 3)])
            #expect(ftruncate(fd, off_t(2 * part)) == 0)
            model += [UInt8](repeating: 0, count: 2 * part - model.count)
            #expect(close(fd) == 0)
            // Append through O_APPEND.
            let tail = patternBytes(1234, seed: 9)
            let afd = open(m.path("w"), O_WRONLY | O_APPEND)
            #expect(pwriteAll(afd, tail, at: 0) || write(afd, tail, tail.count) == tail.count)
            close(afd)
            model += tail
            #expect(try readFile(m.path("w")) == model)
            #expect(flush(m.path("w")).status == 0)
            #expect(try await objectBytes(s3, bucket, "w") == model)
        }
        #expect(try await openUploads(s3, bucket).map(\.key) == [])
    }

    @Test func existingObjectIsStagedForInPlaceWrites() async throws {
        let bucket = try await freshBucket(s3, "rmw")
        var data = patternBytes(7 << 20, seed: 3)
        _ = try await s3.putObject(bucket: bucket, key: "obj", body: .bytes(data), options: PutOptions())
        try await withMount(mount(bucket)) { m in
            let fd = open(m.path("obj"), O_RDWR)
            #expect(fd >= 0)
            #expect(pwriteAll(fd, [1, 2, 3], at: 6 << 20))
            close(fd)
            data.replaceSubrange((6 << 20)..<((6 << 20) + 3), with: [1, 2, 3])
            #expect(flush(m.mountpoint).status == 0)
        }
        #expect(try await objectBytes(s3, bucket, "obj") == data)
    }

    @Test func namespaceOperations() async throws {
        let bucket = try await freshBucket(s3, "ns")
        try await withMount(mount(bucket)) { m in
            let fm = FileManager.default
            try fm.createDirectory(atPath: m.path("d/e"), withIntermediateDirectories: true)
            try writeFile(m.path("d/e/f"), Array("f".utf8))
            try writeFile(m.path("d/g"), Array("g".utf8))
            // rmdir of a non-empty directory, also when its child is only in the bucket.
            #expect(rmdir(m.path("d/e")) == -1 && errno == ENOTEMPTY)
            _ = try await s3.putObject(bucket: bucket, key: "x/hidden", body: .bytes([1]), options: PutOptions())
            #expect(rmdir(m.path("x")) == -1 && errno == ENOTEMPTY)
            // File rename replaces the destination; directory rename moves every key.
            try writeFile(m.path("d/h"), Array("h".utf8))
            #expect(rename(m.path("d/g"), m.path("d/h")) == 0)
            #expect(try readFile(m.path("d/h")) == Array("g".utf8))
            #expect(rename(m.path("d"), m.path("moved")) == 0)
            #expect(try fm.contentsOfDirectory(atPath: m.path("moved")).sorted() == ["e", "h"])
            #expect(try readFile(m.path("moved/e/f")) == Array("f".utf8))
            #expect(!fm.fileExists(atPath: m.path("d")))
            // Empty directories persist as markers.
            try fm.createDirectory(atPath: m.path("empty"), withIntermediateDirectories: false)
            #expect(link(m.path("moved/h"), m.path("hard")) == -1 && errno == EPERM)
            // A FIFO is a zero-byte object with its type in metadata (SpecialFileTests).
            #expect(mkfifo(m.path("fifo"), 0o644) == 0)
            // unlink of an open file keeps the open handle readable.
            let fd = open(m.path("moved/h"), O_RDONLY)
            #expect(unlink(m.path("moved/h")) == 0)
            #expect(try preadFile(fd, 0, 10).get() == Array("g".utf8))
            close(fd)
            #expect(!fm.fileExists(atPath: m.path("moved/h")))
            // user xattrs are object metadata.
            let py = "import os,sys,errno\np=sys.argv[1]\nos.setxattr(p,'user.team',b'vision')\nprint(os.getxattr(p,'user.team').decode())\n"
                + "try:\n  os.setxattr(p,'trusted.x',b'1')\nexcept OSError as e:\n  print(errno.errorcode[e.errno])\n"
            let out = spawn("/usr/bin/env", ["python3", "-c", py, m.path("moved/e/f")])
            #expect(out.stdout == "vision\nENOTSUP\n" || out.stdout == "vision\nEOPNOTSUPP\n", "\(out.stdout) \(out.stderr)")
            #expect(flush(m.mountpoint).status == 0)
        }
        let keys = try await s3.listObjects(ListObjectsRequest(bucket: bucket)).objects.map(\.key).sorted()
        #expect(keys == ["empty/", "fifo", "moved/", "moved/e/", "moved/e/f", "x/hidden"])
        #expect(try await s3.headObject(bucket: bucket, key: "moved/e/f").metadata["team"] == "vision")
        #expect(try await openUploads(s3, bucket).map(\.key) == [])
    }

    @Test func aNewFileAtARenamedFilesOldPathIsANewFile() async throws {
        let bucket = try await freshBucket(s3, "reuse")
        try await withMount(mount(bucket, mode: "sync")) { m in
            try writeFile(m.path("a"), Array(repeating: UInt8(ascii: "z"), count: 30_000))
            #expect(rename(m.path("a"), m.path("moved")) == 0)
            try writeFile(m.path("a"), Array(repeating: UInt8(ascii: "y"), count: 10), flags: O_WRONLY | O_CREAT)
            // The listing must not hand the kernel the moved file's inode number for the new name.
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.mountpoint).sorted() == ["a", "moved"])
            #expect(try readFile(m.path("a")) == Array(repeating: UInt8(ascii: "y"), count: 10))
            #expect(try readFile(m.path("moved")).count == 30_000)
            // The same after an unlink: the old number's cached pages must not show through.
            #expect(unlink(m.path("moved")) == 0)
            try writeFile(m.path("moved"), [1, 2, 3], flags: O_WRONLY | O_CREAT)
            #expect(try readFile(m.path("moved")) == [1, 2, 3])
        }
    }

    @Test func aForkedChildsCloseDoesNotCommitTheWritersFile() async throws {
        let bucket = try await freshBucket(s3, "fork")
        let data = patternBytes(300_000, seed: 71)
        try await withMount(mount(bucket, mode: "sync")) { m in
            // No O_CLOEXEC: the child inherits the descriptor and closes it when it exits (a FUSE flush).
            let fd = open(m.path("ckpt"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            #expect(pwriteAll(fd, Array(data[0..<100_000]), at: 0))
            #expect(spawn("/bin/true", []).status == 0)
            #expect(pwriteAll(fd, Array(data[100_000...]), at: 100_000))
            #expect(close(fd) == 0)
        }
        #expect(try await objectBytes(s3, bucket, "ckpt") == data)
        // One upload, at the writer's close; none of the half-written file at the child's exit.
        #expect(try await BenchControl.requests(bucket: bucket)["PutObject"] == 1)
    }

    /// A writer thread that has exited since it wrote: a child's flush is still not the writer's close. (The
    /// daemon once compared processes by reading the writing thread's /proc entry at flush time; with the
    /// thread gone it could not tell and committed the half-written file.)
    @Test func aChildsCloseAfterTheWritingThreadExitedDoesNotCommit() async throws {
        let bucket = try await freshBucket(s3, "fork-thread")
        let data = patternBytes(300_000, seed: 72)
        try await withMount(mount(bucket, mode: "sync")) { (m: TestMount) async throws in
            let fd = open(m.path("ckpt"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            let wrote = Mutex(false)
            let writer = Thread { wrote.withLock { $0 = pwriteAll(fd, Array(data[0..<100_000]), at: 0) } }
            writer.start()
            while !writer.isFinished { usleep(1_000) }
            usleep(100_000)  // the thread's exit completes after isFinished
            let ok = wrote.withLock { $0 }
            #expect(ok)
            #expect(spawn("/bin/true", []).status == 0)
            #expect(try await BenchControl.requests(bucket: bucket)["PutObject"] == nil)
            #expect(pwriteAll(fd, Array(data[100_000...]), at: 100_000))
            #expect(close(fd) == 0)
        }
        #expect(try await objectBytes(s3, bucket, "ckpt") == data)
        #expect(try await BenchControl.requests(bucket: bucket)["PutObject"] == 1)
    }

    /// A rename while the old name's upload is in flight waits for it and then deletes the old key, so the
    /// late upload cannot land after the rename. (Before, the old key was deleted once the upload finished,
    /// after the rename had returned: a new file written at the old name in between was overwritten by the
    /// late upload and then deleted.)
    @Test func aRenameDuringAnUploadLeavesNothingAtTheOldName() async throws {
        let bucket = try await freshBucket(s3, "rename-inflight")
        let old = patternBytes(100_000, seed: 81)
        let new = patternBytes(70_000, seed: 82)
        try await BenchControl.setFaults(bucket: bucket, [["action": "delay", "op": "PutObject", "key_prefix": "x", "times": 1, "delay_ms": 1000]])
        try await withMount(mount(bucket)) { m in
            try writeFile(m.path("x"), old)  // async close: its PutObject is held for a second
            #expect(rename(m.path("x"), m.path("y")) == 0)
            try writeFile(m.path("x"), new)
            #expect(flush(m.mountpoint).status == 0)
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try readFile(m.path("x")) == new)
        }
        #expect(try await objectBytes(s3, bucket, "y") == old)
        #expect(try await objectBytes(s3, bucket, "x") == new)
    }

    /// The save pattern of Foundation's atomic write and of tools like it: write a temporary file, fsync it,
    /// rename it into place while it is still open, then close. The fsync uploads it; the rename copies the
    /// object in the bucket instead of uploading the bytes again.
    @Test(arguments: [6 << 20 + 11, 300_000])
    func aFileFsyncedThenRenamedBeforeItsCloseIsCopiedNotUploadedAgain(size: Int) async throws {
        let bucket = try await freshBucket(s3, "fsync-rename")
        let data = patternBytes(size, seed: 83)
        try await withMount(mount(bucket)) { m in
            let fd = open(m.path(".tmp.ckpt"), O_WRONLY | O_CREAT | O_EXCL, 0o644)
            try #require(fd >= 0)
            let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            #expect(written == size)
            #expect(fsync(fd) == 0)
            #expect(rename(m.path(".tmp.ckpt"), m.path("ckpt")) == 0)
            #expect(close(fd) == 0)
            #expect(flush(m.mountpoint).status == 0)
            #expect(try readFile(m.path("ckpt")) == data)
        }
        #expect(try await objectBytes(s3, bucket, "ckpt") == data)
        #expect(try await objectBytes(s3, bucket, ".tmp.ckpt") == nil)
        let counts = try await BenchControl.requests(bucket: bucket)
        let uploads = (counts["PutObject"] ?? 0) + (counts["CompleteMultipartUpload"] ?? 0)
        #expect(uploads == 1, "the bytes went up \(uploads) times: \(counts)")
        #expect(counts["CopyObject"] ?? 0 >= 1, "\(counts)")
    }

    @Test func readOnlyMountRefusesWrites() async throws {
        let bucket = try await freshBucket(s3, "ro")
        _ = try await s3.putObject(bucket: bucket, key: "f", body: .bytes([1]), options: PutOptions())
        try await withMount(mount(bucket, extra: ["--read-only"])) { m in
            #expect(open(m.path("f"), O_WRONLY) == -1 && errno == EROFS)
            #expect(open(m.path("new"), O_WRONLY | O_CREAT, 0o644) == -1 && errno == EROFS)
        }
    }
}
