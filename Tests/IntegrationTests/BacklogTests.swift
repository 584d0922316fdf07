import Foundation
import Synchronization
import Testing

import Platform
@testable import ObjectStore

/// Async close means a backlog of pending uploads whenever writers outrun the backend. Memory and
/// descriptors must stay bounded however long it gets, and nothing acknowledged may be lost.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct BacklogTests {
    let bench: String

    init() throws {
        try Servers.requireServers()
        bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
    }

    /// The daemon's resident memory and open descriptors now.
    static func usage(_ pid: pid_t) -> (rss: Int, fds: Int) {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let rss = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
        return (rss * 1024, fds)
    }

    @Test func aBacklogOfPendingUploadsKeepsMemoryAndDescriptorsBounded() async throws {
        let bucket = try await freshBucket(Servers.bench, "backlog")
        try await putMany(Servers.bench, bucket: bucket, count: 200) { ("data/f\($0)", patternBytes(16_384, seed: UInt64($0))) }
        // A slow backend for writes: every part and object upload waits 1.5 s.
        try await BenchControl.setFaults(bucket: bucket, ["UploadPart", "PutObject", "CompleteMultipartUpload"].map { ["action": "delay", "op": $0, "delay_ms": 1500, "probability": 1.0] })
        let memoryCache = 256 << 20
        // Bytes made once: generating them per file (debug build) would pace the writers, not the backend.
        let expected = (0..<200).map { patternBytes(16_384, seed: UInt64($0)) }
        let pool = patternBytes(24 << 20, seed: 77)
        @Sendable func checkpoint(_ size: Int, _ seed: UInt64) -> ArraySlice<UInt8> {
            let start = Int(seed % UInt64(1 << 20))
            return pool[start..<(start + size)]
        }
        let m = TestMount(bucket: bucket, endpoint: bench, extra: ["--memory-cache", "256M", "--cache-size", "8G", "--part-size", "5M"])
        try m.start()
        defer { m.stop() }
        let pid = try m.daemonPID()
        #expect(mkdir(m.path("ckpt"), 0o755) == 0)
        let stop = Atomic<Bool>(false)
        let peak = Mutex<(rss: Int, fds: Int, pending: Int)>((0, 0, 0))
        let written = Mutex<[(String, Int, UInt64)]>([])
        let wrongBytes = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        // At least 20 s, and on until the backlog passed 80 pending uploads (a loaded machine writes more
        // slowly), at most 120 s.
        let started = monotonicSeconds()
        onThreads(8) { t in
            var rng = SplitMixT(seed: UInt64(t) &* 7919)
            while !stop.load(ordering: .relaxed) {
                switch t {
                case 0..<3:
                    // Readers verify small files.
                    let i = Int(rng.next() % 200)
                    if (try? readFile(m.path("data/f\(i)"))) != expected[i] { wrongBytes.add(1, ordering: .relaxed) }
                    reads.add(1, ordering: .relaxed)
                case 3, 4, 5:
                    // Writers, closing asynchronously.
                    let n = written.withLock { $0.count }
                    // Alternately a checkpoint of 16 MiB (parts copied while written) and a small file (many
                    // pending at once).
                    let size = n % 4 == 0 ? 16 << 20 : 64 << 10
                    let seed = rng.next()
                    let name = "ckpt/w\(t)-\(n).bin"
                    if (try? writeFile(m.path(name), Array(checkpoint(size, seed)), chunk: 1 << 20)) != nil {
                        written.withLock { $0.append((name, size, seed)) }
                    }
                case 6:
                    // A renamer moves finished checkpoints.
                    if let last = written.withLock({ $0.last }), last.0.hasPrefix("ckpt/w3") {
                        let moved = last.0.replacingOccurrences(of: "ckpt/", with: "ckpt/moved-")
                        if rename(m.path(last.0), m.path(moved)) == 0 {
                            written.withLock { w in if let i = w.firstIndex(where: { $0.0 == last.0 }) { w[i].0 = moved } }
                        }
                    }
                    usleep(200_000)
                default:
                    // The sampler: RSS, descriptors and the backlog.
                    let u = Self.usage(pid)
                    let r = TestMount.run(["status", "--json", m.mountpoint])
                    let json = try? JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any]
                    let pending = ((json?["uploads"] as? [String: Any])?["pending"] as? Int) ?? -1
                    if pending < 0 { print("status: \(r.status) \(r.output.prefix(300))") }
                    let most = peak.withLock { p in
                        p = (max(p.rss, u.rss), max(p.fds, u.fds), max(p.pending, pending))
                        return p.pending
                    }
                    let elapsed = monotonicSeconds() - started
                    if (elapsed >= 20 && most >= 80) || elapsed >= 120 { stop.store(true, ordering: .relaxed) }
                    usleep(250_000)
                }
            }
        }
        let p = peak.withLock { $0 }
        print("backlog run: \(written.withLock { $0.count }) checkpoints, \(reads.load(ordering: .relaxed)) reads, peak \(p.pending) pending, RSS \(p.rss >> 20) MiB, \(p.fds) descriptors")
        #expect(wrongBytes.load(ordering: .relaxed) == 0, "a reader saw wrong bytes")
        #expect(reads.load(ordering: .relaxed) > 100)
        #expect(written.withLock { $0.count } >= 20, "the writers should have closed checkpoints")
        #expect(p.pending >= 60, "the run should build a backlog (\(p.pending) pending at most)")
        #expect(p.rss <= memoryCache + (256 << 20), "peak RSS \(p.rss >> 20) MiB with --memory-cache 256M and \(p.pending) pending uploads")
        #expect(p.fds <= 220, "peak descriptors \(p.fds) with \(p.pending) pending uploads")
        // Everything acknowledged reaches the bucket once the backend is fast again.
        try await BenchControl.setFaults(bucket: bucket, [])
        #expect(flush(m.mountpoint, timeout: 300).status == 0)
        for (name, size, seed) in written.withLock({ $0 }) {
            let info = try await Servers.bench.headObject(bucket: bucket, key: name)
            #expect(info.size == Int64(size), "\(name)")
            if name.hasSuffix("-0.bin") || name.contains("moved") {
                #expect(try readFile(m.path(name))[...] == checkpoint(size, seed), "\(name)")
            }
        }
    }
}

/// SplitMix64, for the threads of one test.
struct SplitMixT {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// An error an application gets because a backend request failed is logged once, at warning, with the
/// operation, the path and the cause.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct FailureLogTests {
    @Test func aFailedCopyInADirectoryRenameIsLogged() async throws {
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let bucket = try await freshBucket(Servers.bench, "faillog")
        for i in 0..<3 { _ = try await Servers.bench.putObject(bucket: bucket, key: "dir/f\(i)", body: .bytes([UInt8(i)]), options: PutOptions()) }
        let m = TestMount(bucket: bucket, endpoint: bench)
        try await withMount(m) { m throws in
            #expect(FileManager.default.fileExists(atPath: m.path("dir/f1")))
            try await BenchControl.setFaults(bucket: bucket, [["action": "403", "op": "CopyObject", "key_prefix": "moved/f1"]])
            #expect(rename(m.path("dir"), m.path("moved")) == -1)
            let e = errno
            #expect(e == EACCES, "errno \(e)")
            try await BenchControl.setFaults(bucket: bucket, [])
            // The daemon logs to its cache directory once the mount is live (up to a minute for the line).
            var log = ""
            for _ in 0..<1200 {
                log = (try? String(contentsOfFile: m.cacheDir + "/lakecache.log", encoding: .utf8)) ?? ""
                if log.contains("operation failed") { break }
                usleep(50_000)
            }
            let lines = log.split(separator: "\n").filter { $0.contains("operation failed") && $0.contains("rename") }
            #expect(lines.count == 1, "one warning for the failed rename: \(lines)")
            #expect(lines.first?.contains("warning") == true && lines.first?.contains("/dir") == true && lines.first?.contains("moved/f1") == true, "\(lines)")
        }
    }
}
