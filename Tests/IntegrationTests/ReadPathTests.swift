import Foundation
import Synchronization
import Testing

import Platform
@testable import ObjectStore

/// The read path through a real FUSE mount, against the bench store (counters, faults) and moto.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct ReadPathTests {
    let s3 = Servers.bench
    var bench: String { try! Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT") }

    func put(_ bucket: String, _ key: String, _ data: [UInt8], metadata: [String: String] = [:]) async throws {
        _ = try await s3.putObject(bucket: bucket, key: key, body: .bytes(data), options: PutOptions(metadata: metadata))
    }

    @Test func randomRangedReadsFrom16Threads() async throws {
        let bucket = try await freshBucket(s3, "rr")
        let sizes = [0, 1, 4095, 4096, 65_537, (1 << 20) - 1, 1 << 20, (4 << 20) - 1, 4 << 20, (4 << 20) + 1, 9 << 20 | 123, 3_000_000, 12_345, 7, 2 << 20, 5 << 20, 100, 6 << 20 | 5, 8 << 20, 777_777]
        var objects: [[UInt8]] = []
        for (i, size) in sizes.enumerated() {
            let data = patternBytes(size, seed: UInt64(100 + i))
            objects.append(data)
            try await put(bucket, "obj/\(i).bin", data)
        }
        let objectsCopy = objects
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            for (i, data) in objectsCopy.enumerated() {
                #expect(try readFile(m.path("obj/\(i).bin")) == data, "whole read of \(i)")
            }
            dropPageCache()
            let mismatches = Atomic<Int>(0)
            let errors = Atomic<Int>(0)
            onThreads(16) { t in
                var rng = SystemRandomNumberGenerator()
                for _ in 0..<100 {
                    let i = Int.random(in: 0..<objectsCopy.count, using: &rng)
                    let data = objectsCopy[i]
                    let fd = open(m.path("obj/\(i).bin"), O_RDONLY)
                    defer { close(fd) }
                    let off = data.isEmpty ? 0 : Int.random(in: 0..<data.count, using: &rng)
                    let len = Int.random(in: 1...(2 << 20), using: &rng)
                    switch preadFile(fd, off, len) {
                    case .success(let got):
                        if got != Array(data[min(off, data.count)..<min(off + len, data.count)]) { mismatches.add(1, ordering: .relaxed) }
                    case .failure: errors.add(1, ordering: .relaxed)
                    }
                }
            }
            #expect(mismatches.load(ordering: .relaxed) == 0)
            #expect(errors.load(ordering: .relaxed) == 0)
        }
    }

    @Test func mmapReadsMatch() async throws {
        let bucket = try await freshBucket(s3, "mmap")
        let data = patternBytes(9 << 20 | 321, seed: 5)
        try await put(bucket, "model.safetensors", data)
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            let fd = open(m.path("model.safetensors"), O_RDONLY)
            defer { close(fd) }
            let p = try #require(mmap(nil, data.count, PROT_READ, MAP_SHARED, fd, 0))
            try #require(p != MAP_FAILED)
            defer { munmap(p, data.count) }
            let view = UnsafeRawBufferPointer(start: p, count: data.count)
            for off in [0, 4096, 4 << 20, (4 << 20) - 17, data.count - 100] {
                #expect(Array(view[off..<min(off + 4096, data.count)]) == Array(data[off..<min(off + 4096, data.count)]))
            }
            #expect(Array(view) == data)
        }
    }

    @Test func tenThousandEntryDirectoryAndNestedPrefixes() async throws {
        let bucket = try await freshBucket(s3, "big")
        try await putMany(s3, bucket: bucket, count: 10_000, workers: 20) { (String(format: "many/f%05d", $0), []) }
        try await put(bucket, "a/b/c/d/deep.txt", Array("deep".utf8))
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            let names = try FileManager.default.contentsOfDirectory(atPath: m.path("many"))
            #expect(names.count == 10_000)
            #expect(Set(names).contains("f09999"))
            #expect(try readFile(m.path("a/b/c/d/deep.txt")) == Array("deep".utf8))
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.path("a/b")) == ["c"])
        }
    }

    @Test func oddKeysAreSkippedAndCountedNeverFatal() async throws {
        let bucket = try await freshBucket(s3, "oddk")
        let long = String(repeating: "x", count: 300)
        for key in ["a//b", "d/./x", "d/../y", "long/\(long)", "x", "x/inner", "ok.txt", "dir/", "dir/file"] {
            try await put(bucket, key, Array(key.utf8))
        }
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            let root = try FileManager.default.contentsOfDirectory(atPath: m.mountpoint).sorted()
            #expect(root == ["a", "d", "dir", "long", "ok.txt", "x"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.path("a")).isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.path("d")).isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.path("long")).isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.path("x")) == ["inner"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.path("dir")) == ["file"])
            var isDir: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: m.path("x"), isDirectory: &isDir) && isDir.boolValue)
            #expect(try readFile(m.path("x/inner")) == Array("x/inner".utf8))
            #expect(try readFile(m.path("ok.txt")) == Array("ok.txt".utf8))
            let status = try m.status()
            let socket = status["control_socket"] as? String ?? ""
            #expect(FileManager.default.fileExists(atPath: socket), "status names its control socket: \(socket)")
            let ns = try #require(status["namespace"] as? [String: Any])
            #expect((ns["skipped_keys"] as? Int ?? 0) >= 4)
            #expect((ns["shadowed_files"] as? Int ?? 0) >= 1)
            // The listing's background HEADs are counted while they run, and drain.
            #expect(ns["background_heads"] is Int, "status namespace: \(ns)")
            var heads = -1
            let drained = try await until(60, every: .milliseconds(50)) {
                heads = (try m.status()["namespace"] as? [String: Any])?["background_heads"] as? Int ?? -1
                return heads == 0
            }
            #expect(drained, "background HEADs left: \(heads)")
        }
    }

    @Test func objectReplacedMidReadNeverMixesVersions() async throws {
        let bucket = try await freshBucket(s3, "repl")
        let size = 40 << 20
        let old = patternBytes(size, seed: 1)
        let new = patternBytes(size, seed: 2)
        try await put(bucket, "shard", old)
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            let fd = open(m.path("shard"), O_RDONLY)
            defer { close(fd) }
            #expect(try preadFile(fd, 0, 4096).get() == Array(old[0..<4096]))
            try await put(bucket, "shard", new)
            // Block 8 was never fetched: its GET carries the old ETag, gets 412, and the read retries on the new version.
            let off = 32 << 20
            #expect(try preadFile(fd, off, 65_536).get() == Array(new[off..<(off + 65_536)]))
            // Reads across block boundaries are wholly one version.
            for boundary in [4 << 20, 8 << 20, 12 << 20, 36 << 20] {
                let got = try preadFile(fd, boundary - 1000, 2000).get()
                let a = Array(old[(boundary - 1000)..<(boundary + 1000)])
                let b = Array(new[(boundary - 1000)..<(boundary + 1000)])
                #expect(got == a || got == b, "read at \(boundary) mixed versions")
            }
        }
    }

    @Test func backendFaultsGiveCorrectBytesOrEIO() async throws {
        let bucket = try await freshBucket(s3, "flt")
        var files: [[UInt8]] = []
        for i in 0..<4 {
            let d = patternBytes(6 << 20 | i, seed: UInt64(50 + i))
            files.append(d)
            try await put(bucket, "f\(i)", d)
        }
        try await BenchControl.setFaults(bucket: bucket, [
            ["action": "503", "op": "GetObject", "probability": 0.15],
            ["action": "500", "op": "GetObject", "probability": 0.1],
            ["action": "reset", "op": "GetObject", "probability": 0.1],
            ["action": "truncate", "op": "GetObject", "probability": 0.1],
        ])
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            for (i, d) in files.enumerated() {
                do {
                    #expect(try readFile(m.path("f\(i)")) == d, "wrong bytes in f\(i)")
                } catch let e as POSIXError {
                    #expect(e.code == .EIO, "unexpected \(e)")
                }
            }
        }
    }

    /// A fresh bucket holding one object of `size` patterned bytes, and a mount of it over the bench store.
    func oneObject(_ prefix: String, _ key: String, size: Int, seed: UInt64) async throws -> (bucket: String, data: [UInt8], mount: TestMount) {
        let bucket = try await freshBucket(s3, prefix)
        let data = patternBytes(size, seed: seed)
        try await put(bucket, key, data)
        return (bucket, data, TestMount(bucket: bucket, endpoint: bench))
    }

    /// The mount's `status --json`.
    func status(_ m: TestMount) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(TestMount.run(["status", "--json", m.mountpoint]).output.utf8)) as? [String: Any])
    }

    @Test func singleFlightCachedRereadAndWarmRemount() async throws {
        let size = 64 << 20
        let (bucket, data, mount) = try await oneObject("sf", "big.bin", size: size, seed: 77)
        let bytesBefore = try await BenchControl.bytesOut(bucket: bucket)
        try await withMount(mount) { m throws in
            let wrong = Atomic<Int>(0)
            onThreads(8) { _ in
                if (try? readFile(m.path("big.bin"))) != data { wrong.add(1, ordering: .relaxed) }
            }
            #expect(wrong.load(ordering: .relaxed) == 0)
            let fetched = try await BenchControl.bytesOut(bucket: bucket) - bytesBefore
            #expect(Double(fetched) <= 1.05 * Double(size), "8 readers fetched \(fetched) bytes for a \(size)-byte object")
            let gets = try await benchCount(bucket, "GetObject")
            dropPageCache()
            #expect(try readFile(m.path("big.bin")) == data)
            #expect(try await benchCount(bucket, "GetObject") == gets, "a cached object was fetched again")
        }
        let gets = try await benchCount(bucket, "GetObject")
        try await withMount(mount) { m throws in
            dropPageCache()
            #expect(try readFile(m.path("big.bin")) == data)
        }
        #expect(try await benchCount(bucket, "GetObject") == gets, "a warm remount fetched blocks again")
    }

    /// After a remount (memory tier empty, disk tier warm), small random reads come from the disk tier's
    /// sub-blocks: right bytes, no GET, counted as range reads in `status`.
    @Test func randomReadsAfterAWarmRemountReadDiskSubBlocks() async throws {
        let size = 32 << 20
        let (bucket, data, mount) = try await oneObject("subblk", "r.bin", size: size, seed: 78)
        try await withMount(mount) { m throws in #expect(try readFile(m.path("r.bin")) == data) }
        let gets = try await benchCount(bucket, "GetObject")
        // A new mount has none of the file's pages in the kernel (no drop_caches: tests beside this one count
        // the lookups that dropping dentries causes).
        try await withMount(mount) { m throws in
            let fd = open(m.path("r.bin"), O_RDONLY)
            defer { close(fd) }
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<200 {
                let length = Int.random(in: 1...(256 << 10), using: &rng)
                let offset = Int.random(in: 0...(size - length), using: &rng)
                #expect(try preadFile(fd, offset, length).get() == Array(data[offset..<(offset + length)]))
            }
            let disk = try #require((try status(m)["cache"] as? [String: Any])?["disk"] as? [String: Any])
            #expect((disk["range_reads"] as? Int ?? 0) > 0, "status: \(disk)")
            #expect((disk["corrupt_blocks"] as? Int) == 0)
        }
        #expect(try await benchCount(bucket, "GetObject") == gets, "everything came from the disk tier")
    }

    /// `--metadata listing`: `ls -l` after a listing makes no request. `exact` (the default): one request per
    /// file, started as the listing arrives and joined by the lookups, and none on a second pass.
    @Test(arguments: ["listing", "exact"]) func lsDashLAfterListing(policy: String) async throws {
        let bucket = try await freshBucket(s3, "lsl")
        try await putMany(s3, bucket: bucket, count: 1000, workers: 10) { ("d/f\($0)", [UInt8](repeating: 1, count: $0)) }
        try await withMount(TestMount(bucket: bucket, endpoint: bench, extra: ["--metadata", policy])) { m throws in
            var dir = stat()
            #expect(stat(m.path("d"), &dir) == 0)
            // Under `exact`, a HEAD per file, or a GET of the whole object for small ones (which fills the cache).
            func asked() async throws -> Int { try await benchCount(bucket, "HeadObject") + benchCount(bucket, "GetObject") }
            // A request the daemon retried (a loaded run's timeout) reaches the store twice: not a second fetch.
            func retried() throws -> Int { (try status(m)["backend"] as? [String: Any])?["retries"] as? Int ?? 0 }
            let heads = try await asked()
            let retriesBefore = try retried()
            let names = try FileManager.default.contentsOfDirectory(atPath: m.path("d"))
            for pass in 0..<2 {
                var total = 0
                for n in names {
                    var st = stat()
                    #expect(stat(m.path("d/\(n)"), &st) == 0)
                    total += Int(st.st_size)
                }
                #expect(names.count == 1000)
                #expect(total == (0..<1000).reduce(0, +), "pass \(pass)")
                let made = try await asked() - heads - (try retried() - retriesBefore)
                #expect(made == (policy == "listing" ? 0 : 1000), "pass \(pass): \(made) HEADs and GETs, not counting retries")
            }
        }
    }

    @Test func corruptDiskBlockIsRefetched() async throws {
        let bucket = try await freshBucket(s3, "corr")
        let data = patternBytes(16 << 20, seed: 9)
        try await put(bucket, "f", data)
        let mount = TestMount(bucket: bucket, endpoint: bench)
        try await withMount(mount) { m throws in #expect(try readFile(m.path("f")) == data) }
        // Flip one byte of one cached block.
        let blocks = try #require(FileManager.default.enumerator(atPath: mount.cacheDir + "/blocks")?.compactMap { $0 as? String }.filter { $0.hasSuffix(".blk") })
        #expect(blocks.count == 4)
        let victim = mount.cacheDir + "/blocks/" + blocks[0]
        let fd = open(victim, O_RDWR)
        var b: UInt8 = 0
        pread(fd, &b, 1, 4096 + 12345)
        b ^= 0x5A
        pwrite(fd, &b, 1, 4096 + 12345)
        close(fd)
        let gets = try await benchCount(bucket, "GetObject")
        try await withMount(mount) { m throws in
            dropPageCache()
            #expect(try readFile(m.path("f")) == data)
            let disk = try #require((try m.status()["cache"] as? [String: Any])?["disk"] as? [String: Any])
            #expect(disk["corrupt_blocks"] as? Int == 1)
        }
        #expect(try await benchCount(bucket, "GetObject") - gets == 1)
    }

    @Test func fullCacheDiskStillServesReads() async throws {
        let bucket = try await freshBucket(s3, "full")
        let data = patternBytes(32 << 20, seed: 10)
        try await put(bucket, "f", data)
        let cache = NSTemporaryDirectory() + "lakecache-tmpfs-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        try #require(Glibc.mount("tmpfs", cache, "tmpfs", 0, "size=6m") == 0, "cannot mount a tmpfs for the cache: \(errno)")
        defer {
            umount2(cache, Int32(MNT_DETACH))
            try? FileManager.default.removeItem(atPath: cache)
        }
        try await withMount(TestMount(bucket: bucket, endpoint: bench, cacheDir: cache)) { m throws in
            #expect(try readFile(m.path("f")) == data)
            dropPageCache()
            #expect(try readFile(m.path("f")) == data)
            let disk = try #require((try m.status()["cache"] as? [String: Any])?["disk"] as? [String: Any])
            #expect((disk["write_skips"] as? Int ?? 0) + (disk["evictions"] as? Int ?? 0) > 0)
        }
    }

    @Test func killNineThenFusermountThenRemountReusesTheDiskTier() async throws {
        let bucket = try await freshBucket(s3, "kill")
        let data = patternBytes(12 << 20, seed: 11)
        try await put(bucket, "f", data)
        let mount = TestMount(bucket: bucket, endpoint: bench)
        try mount.start()
        #expect(try readFile(mount.path("f")) == data)
        // Let write-behind land all three 4 MiB blocks on disk (each renamed in whole), then kill without
        // warning: polled, since a loaded machine's write-behind can take longer than any fixed pause.
        let blocks = mount.cacheDir + "/blocks"
        func blocksOnDisk() -> Int {
            (FileManager.default.enumerator(atPath: blocks)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".blk") }.count
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while blocksOnDisk() < 3 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(blocksOnDisk() == 3, "write-behind left \(blocksOnDisk()) of 3 blocks on disk")
        let pid = try mount.daemonPID()
        kill(pid, SIGKILL)
        // Dead before the remount (up to a minute: a daemon in fdatasync dies late), or its cache is locked.
        #expect(waitForExit(pid), "the daemon was still alive a minute after SIGKILL")
        #expect(spawn("/bin/fusermount3", ["-u", mount.mountpoint]).status == 0)
        let gets = try await benchCount(bucket, "GetObject")
        try await withMount(mount) { m throws in
            #expect(try readFile(m.path("f")) == data)
        }
        #expect(try await benchCount(bucket, "GetObject") == gets)
    }

    @Test func sigtermUnmountsCleanly() async throws {
        let bucket = try await freshBucket(s3, "term")
        try await put(bucket, "f", Array("hello".utf8))
        let mount = TestMount(bucket: bucket, endpoint: bench)
        try mount.start()
        defer { mount.stop() }
        #expect(try readFile(mount.path("f")) == Array("hello".utf8))
        let pid = try mount.daemonPID()
        #expect(kill(pid, SIGTERM) == 0)
        for _ in 0..<1200 where kill(pid, 0) == 0 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(kill(pid, 0) != 0, "the daemon did not exit on SIGTERM within a minute")
        #expect(spawn("/bin/mountpoint", ["-q", mount.mountpoint]).status != 0, "SIGTERM left the mount behind")
        // The control socket is gone too, so status says so plainly.
        #expect(TestMount.run(["status", mount.mountpoint]).status != 0)
    }

    @Test func unmountOfABusyMountSaysSoAndLosesNothing() async throws {
        let bucket = try await freshBucket(s3, "busy")
        try await put(bucket, "f", Array("data".utf8))
        let mount = TestMount(bucket: bucket, endpoint: bench)
        try mount.start()
        defer { mount.stop() }
        let fd = open(mount.path("f"), O_RDONLY)
        #expect(fd >= 0)
        let busy = TestMount.run(["unmount", mount.mountpoint])
        #expect(busy.status == 1)
        #expect(busy.output.contains("busy"), "\(busy.output)")
        #expect(busy.output.contains("pid \(getpid())") && busy.output.contains("1 file"), "the message names who holds it: \(busy.output)")
        #expect(try preadFile(fd, 0, 4).get() == Array("data".utf8), "the mount must keep serving after a refused unmount")
        close(fd)
        #expect(TestMount.run(["unmount", mount.mountpoint]).status == 0)
        #expect(spawn("/bin/mountpoint", ["-q", mount.mountpoint]).status != 0)
    }

    /// A shell left `cd`'d into the mount holds it as an open file does; /proc/PID/cwd names it.
    @Test func unmountOfAMountSomeonesWorkingDirectoryIsInSaysWho() async throws {
        let bucket = try await freshBucket(s3, "busycwd")
        try await put(bucket, "d/f", Array("data".utf8))
        let mount = TestMount(bucket: bucket, endpoint: bench)
        try mount.start()
        defer { mount.stop() }
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["60"]
        sleeper.currentDirectoryURL = URL(fileURLWithPath: mount.path("d"))
        try sleeper.run()
        defer { if sleeper.isRunning { kill(sleeper.processIdentifier, SIGKILL) } }
        let busy = TestMount.run(["unmount", mount.mountpoint])
        #expect(busy.status == 1, "\(busy.output)")
        #expect(busy.output.contains("pid \(sleeper.processIdentifier) (sleep: cwd)"), "the message names the process and why: \(busy.output)")
        #expect(!busy.output.contains("pid \(getpid())"), "the test process holds nothing: \(busy.output)")
        #expect(try readFile(mount.path("d/f")) == Array("data".utf8), "the mount must keep serving after a refused unmount")
        // SIGKILL: the test runner's children can inherit an ignored SIGTERM (terminate() waited out the sleep).
        kill(sleeper.processIdentifier, SIGKILL)
        sleeper.waitUntilExit()
        #expect(TestMount.run(["unmount", mount.mountpoint]).status == 0)
        #expect(spawn("/bin/mountpoint", ["-q", mount.mountpoint]).status != 0)
    }

    /// kill -9 leaves the kernel side behind ("transport endpoint is not connected"); mounting again clears
    /// it and mounts, without a manual fusermount3 -u.
    @Test func mountingOverAStaleMountClearsIt() async throws {
        let bucket = try await freshBucket(s3, "stale")
        try await put(bucket, "f", Array("still here".utf8))
        let mount = TestMount(bucket: bucket, endpoint: bench)
        try mount.start()
        let pid = try mount.daemonPID()
        kill(pid, SIGKILL)
        // Up to a minute: a daemon in fdatasync dies late, and the remount would find its cache locked.
        #expect(waitForExit(pid), "the daemon was still alive a minute after SIGKILL")
        for _ in 0..<1200 {
            var st = stat()
            if stat(mount.mountpoint, &st) != 0 && errno == ENOTCONN { break }
            usleep(50_000)
        }
        var st = stat()
        #expect(stat(mount.mountpoint, &st) != 0 && errno == ENOTCONN, "the killed daemon should leave a dead mount")
        let again = TestMount.run(["mount", mount.url, mount.mountpoint, "--endpoint", bench, "--cache-dir", mount.cacheDir])
        defer { mount.stop() }
        #expect(again.status == 0, "\(again.output)")
        #expect(again.output.contains("cleared the stale mount"), "\(again.output)")
        #expect(try readFile(mount.path("f")) == Array("still here".utf8))
    }

    @Test func secondMountOnTheSameMountpointIsRefused() async throws {
        let bucket = try await freshBucket(s3, "twice")
        try await withMount(TestMount(bucket: bucket, endpoint: bench)) { m throws in
            let r = TestMount.run(["mount", "s3://\(bucket)", m.mountpoint, "--endpoint", bench, "--cache-dir", m.cacheDir + "2"])
            #expect(r.status == 1)
            #expect(r.output.contains("is already mounted"), "\(r.output)")
            let same = TestMount.run(["mount", "s3://\(bucket)", NSTemporaryDirectory(), "--endpoint", bench, "--cache-dir", m.cacheDir])
            #expect(same.status == 1)
            #expect(same.output.contains("in use by another lakecache mount"), "\(same.output)")
        }
    }
}

/// The same mount against moto, the reference for S3 behaviour.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct MotoReadPathTests {
    @Test func readsAndListsAgainstMoto() async throws {
        let s3 = Servers.moto
        let moto = try Servers.endpoint("LAKECACHE_TEST_MOTO_ENDPOINT")
        let bucket = try await freshBucket(s3, "mread")
        let big = patternBytes(9 << 20, seed: 3)
        _ = try await s3.putObject(bucket: bucket, key: "data/train/shard-0.bin", body: .bytes(big), options: PutOptions())
        try await putMany(s3, bucket: bucket, count: 1000, workers: 10) { ("data/list/k\($0)", Array("\($0)".utf8)) }
        try await withMount(TestMount(bucket: bucket, prefix: "data", endpoint: moto)) { m throws in
            #expect(try readFile(m.path("train/shard-0.bin")) == big)
            let fd = open(m.path("train/shard-0.bin"), O_RDONLY)
            defer { close(fd) }
            #expect(try preadFile(fd, 5_000_000, 100_000).get() == Array(big[5_000_000..<5_100_000]))
            let names = try FileManager.default.contentsOfDirectory(atPath: m.path("list"))
            #expect(names.count == 1000)
            #expect(try readFile(m.path("list/k999")) == Array("999".utf8))
            #expect(try FileManager.default.contentsOfDirectory(atPath: m.mountpoint).sorted() == ["list", "train"])
            #expect(open(m.path("train/nope"), O_RDONLY) == -1 && errno == ENOENT)
        }
    }
}

