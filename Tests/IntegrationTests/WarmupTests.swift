import Foundation
import Testing

import Platform
@testable import ObjectStore

/// `lakecache warmup`, `jobs`, `pin` and `unpin` against real mounts of the bench store, which counts GETs.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct WarmupTests {
    let bench: String

    init() throws {
        try Servers.requireServers()
        bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
    }

    func cli(_ args: [String]) -> (status: Int32, stdout: String, stderr: String) {
        spawn(CLITests.binary, args)
    }

    /// JSON of a CLI answer.
    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    func diskStatus(_ m: TestMount) throws -> [String: Any] {
        try #require((try m.status()["cache"] as? [String: Any])?["disk"] as? [String: Any])
    }

    func memoryBytes(_ m: TestMount) throws -> Int {
        try #require(((try m.status()["cache"] as? [String: Any])?["memory"] as? [String: Any])?["bytes"] as? Int)
    }

    /// 120 small files under data/small and one 40 MiB object, data/big.bin.
    func fill(_ bucket: String) async throws {
        try await putMany(Servers.bench, bucket: bucket, count: 120) { i in ("data/small/f\(i).bin", patternBytes(10_000 + i, seed: UInt64(i))) }
        _ = try await Servers.bench.putObject(bucket: bucket, key: "data/big.bin", body: .bytes(patternBytes(40 << 20, seed: 99)), options: PutOptions())
    }

    @Test func warmupThenEveryReadIsAHitAndCheckAndEvictSayAndDoSo() async throws {
        let bucket = try await freshBucket(Servers.bench, "warm")
        try await fill(bucket)
        let m = TestMount(bucket: bucket, endpoint: bench, extra: ["--memory-cache", "64M"])
        try await withMount(m) { m throws in
            // Nothing is cached yet: --check says so and fails.
            let before = cli(["warmup", "--check", "--json", m.path("data")])
            #expect(before.status == 1, "check of an uncached tree must fail: \(before.stdout) \(before.stderr)")
            let b = try json(before.stdout)
            #expect(b["files"] as? Int == 121 && b["cached_files"] as? Int == 0)
            #expect(b["bytes"] as? Int == 120 * 10_000 + (0..<120).reduce(0, +) + (40 << 20))
            #expect(try await benchCount(bucket, "GetObject") == 0, "--check fetched data")

            // Warm the tree; progress as JSON lines, the last one done.
            let run = cli(["warmup", "--json", "--threads", "8", m.path("data")])
            #expect(run.status == 0, "warmup failed: \(run.stderr)")
            let lines = try run.stdout.split(separator: "\n").map { try json(String($0)) }
            let last = try #require(lines.last)
            #expect(last["state"] as? String == "done" && last["files_done"] as? Int == 121)
            #expect(last["bytes_done"] as? Int == last["bytes"] as? Int)
            #expect((last["failures"] as? [Any])?.isEmpty == true)
            for line in lines { #expect(line["id"] is String && line["bytes"] is Int && line["rate_bytes_per_second"] is Int) }
            // A job that ended keeps the time it took, and its rate, however much later it is looked at.
            try await Task.sleep(for: .seconds(1.2))
            let later = try #require((try json(cli(["jobs", m.mountpoint, "--json"]).stdout)["jobs"] as? [[String: Any]])?.first { $0["id"] as? String == last["id"] as? String })
            #expect(later["seconds"] as? Double == last["seconds"] as? Double && later["rate_bytes_per_second"] as? Int == last["rate_bytes_per_second"] as? Int,
                    "ended job changed: \(later) vs \(last)")
            let warmed = try await benchCount(bucket, "GetObject")
            #expect(warmed == 120 + 5, "one GET per small file and per two 4 MiB blocks of the large one: \(warmed)")

            // Without --memory the data went to disk only: memory holds none of it.
            let resident = try memoryBytes(m)
            #expect(resident < 1 << 20, "a disk-only warmup left \(resident) bytes in memory")

            let after = cli(["warmup", "--check", m.path("data")])
            #expect(after.status == 0, "check after warmup: \(after.stdout) \(after.stderr)")
            #expect(after.stdout.contains("121 of 121 files cached"))

            // Every byte now comes from the cache: zero GETs, right bytes (memory holds 64 MiB, so most
            // of it comes from the disk tier).
            dropPageCache()
            for i in 0..<120 { #expect(try readFile(m.path("data/small/f\(i).bin")) == patternBytes(10_000 + i, seed: UInt64(i))) }
            #expect(try readFile(m.path("data/big.bin")) == patternBytes(40 << 20, seed: 99))
            #expect(try await benchCount(bucket, "GetObject") == warmed, "reads after warmup went to the bucket")

            // A second warmup fetches nothing.
            let again = cli(["warmup", "--json", m.path("data")])
            #expect(again.status == 0)
            #expect(try json(String(again.stdout.split(separator: "\n").last ?? ""))["bytes_fetched"] as? Int == 0)

            // --evict drops the small files from both tiers; the next read fetches again.
            let evict = cli(["warmup", "--evict", m.path("data/small")])
            #expect(evict.status == 0 && evict.stdout.contains("evicted 120 files"), "\(evict.stdout) \(evict.stderr)")
            let check = cli(["warmup", "--check", "--json", m.path("data")])
            #expect(check.status == 1)
            #expect(try json(check.stdout)["cached_files"] as? Int == 1)
            dropPageCache()
            #expect(try readFile(m.path("data/small/f7.bin")) == patternBytes(10_007, seed: 7))
            #expect(try await benchCount(bucket, "GetObject") == warmed + 1)

            // --memory fills the memory tier too, from the disk tier: no GET.
            #expect(cli(["warmup", "--evict", m.path("data/big.bin")]).status == 0)
            #expect(cli(["warmup", m.path("data/big.bin")]).status == 0)
            let inMemory = try memoryBytes(m)
            #expect(cli(["warmup", "--memory", m.path("data/big.bin")]).status == 0)
            #expect(try memoryBytes(m) >= inMemory + (40 << 20), "--memory did not fill the memory tier")
            // The evicted 40 MiB came again in 8 MiB GETs; `--memory` read them from the disk tier.
            #expect(try await benchCount(bucket, "GetObject") == warmed + 1 + 5)
        }
    }

    @Test func aListFromStandardInputAndFromAFile() async throws {
        let bucket = try await freshBucket(Servers.bench, "warml")
        try await putMany(Servers.bench, bucket: bucket, count: 100) { i in ("l/f\(i)", patternBytes(3000, seed: UInt64(i))) }
        let m = TestMount(bucket: bucket, endpoint: bench)
        try await withMount(m) { m throws in
            // 80 files (a list long enough to travel as a file) on stdin, with a comment and a blank line.
            let list = "# the first 80\n\n" + (0..<80).map { m.path("l/f\($0)") }.joined(separator: "\n") + "\n"
            let r = spawn("/bin/sh", ["-c", "printf '%s' \"$1\" | \"$2\" warmup --file - --json", "sh", list, CLITests.binary])
            #expect(r.status == 0, "warmup --file -: \(r.stderr)")
            #expect(try json(String(r.stdout.split(separator: "\n").last ?? ""))["files_done"] as? Int == 80)
            #expect(try await benchCount(bucket, "GetObject") == 80)
            // A list file, relative paths against the current directory.
            let file = NSTemporaryDirectory() + "warm-list-\(getpid())"
            try (80..<100).map { "l/f\($0)" }.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
            defer { unlink(file) }
            let rel = spawn("/bin/sh", ["-c", "cd \"$1\" && \"$2\" warmup --file \"$3\"", "sh", m.mountpoint, CLITests.binary, file])
            #expect(rel.status == 0, "warmup --file LIST: \(rel.stderr)")
            #expect(rel.stdout.contains("20 of 20 files"))
            #expect(cli(["warmup", "--check", m.path("l")]).status == 0)
            #expect(try await benchCount(bucket, "GetObject") == 100)
        }
    }

    @Test func failuresAreNamedAndExitNonZero() async throws {
        let bucket = try await freshBucket(Servers.bench, "warmf")
        _ = try await Servers.bench.putObject(bucket: bucket, key: "big.bin", body: .bytes(patternBytes(24 << 20, seed: 1)), options: PutOptions())
        _ = try await Servers.bench.putObject(bucket: bucket, key: "ok.bin", body: .bytes(patternBytes(1000, seed: 2)), options: PutOptions())
        let m = TestMount(bucket: bucket, endpoint: bench, extra: ["--cache-size", "16M"])
        try await withMount(m) { m throws in
            let missing = cli(["warmup", m.path("ok.bin"), m.path("no/such/thing")])
            #expect(missing.status == 1)
            #expect(missing.stderr.contains(m.path("no/such/thing")) && missing.stderr.contains("not found"), "\(missing.stderr)")

            let big = cli(["warmup", m.path("big.bin")])
            #expect(big.status == 1)
            #expect(big.stderr.contains("did not fit in the cache") && big.stderr.contains("--cache-size"), "\(big.stderr)")
            #expect(try await benchCount(bucket, "GetObject") <= 1, "a warmup that cannot fit fetched anyway")

            let outside = cli(["warmup", "/tmp"])
            #expect(outside.status != 0 && outside.stderr.contains("not inside a lakecache mount"))
            let bad = cli(["warmup", "--bandwidth", "fast", m.path("ok.bin")])
            #expect(bad.status != 0 && bad.stderr.contains("--bandwidth"))
        }
    }

    /// A GET the store refuses (403) is named as access denied, and the rest of the list is still warmed.
    @Test func anAccessDeniedObjectIsNamedAndTheRestIsWarmed() async throws {
        let bucket = try await freshBucket(Servers.bench, "warmd")
        _ = try await Servers.bench.putObject(bucket: bucket, key: "denied/x.bin", body: .bytes(patternBytes(5000, seed: 3)), options: PutOptions())
        _ = try await Servers.bench.putObject(bucket: bucket, key: "ok.bin", body: .bytes(patternBytes(7000, seed: 4)), options: PutOptions())
        try await BenchControl.setFaults(bucket: bucket, [["action": "403", "op": "GetObject", "key_prefix": "denied/"]])
        let m = TestMount(bucket: bucket, endpoint: bench)
        try await withMount(m) { m throws in
            let run = cli(["warmup", m.path("ok.bin"), m.path("denied/x.bin")])
            #expect(run.status == 1, "a warmup with a refused object must fail: \(run.stdout) \(run.stderr)")
            #expect(run.stderr.contains(m.path("denied/x.bin")) && run.stderr.contains("access denied"), "\(run.stderr)")
            #expect(!run.stderr.contains(m.path("ok.bin")), "the object that warmed is not named as a failure: \(run.stderr)")
            let ok = cli(["warmup", "--check", m.path("ok.bin")])
            #expect(ok.status == 0, "ok.bin was not cached: \(ok.stdout)")
            let denied = cli(["warmup", "--check", m.path("denied/x.bin")])
            #expect(denied.status == 1)
        }
    }

    /// `--bandwidth` holds the warmup's download rate to the cap: 24 MiB at 4 MiB/s cannot finish in much
    /// under five seconds (one second of burst, then the rate), however fast the store is.
    @Test func bandwidthCapsTheDownloadRate() async throws {
        let bucket = try await freshBucket(Servers.bench, "warmbw")
        let size = 24 << 20
        _ = try await Servers.bench.putObject(bucket: bucket, key: "big.bin", body: .bytes(patternBytes(size, seed: 8)), options: PutOptions())
        let m = TestMount(bucket: bucket, endpoint: bench, extra: ["--block-size", "1M"])
        try await withMount(m) { m throws in
            let started = monotonicSeconds()
            // Through a pipe that stamps each line as it arrives: a scheduler reads progress while the job runs.
            let stamp = "import sys, time\nfor l in sys.stdin: print('%.3f' % time.monotonic(), l, end='', flush=True)"
            let run = spawn("/bin/bash", ["-c", "set -o pipefail; \"$1\" warmup --json --threads 8 --bandwidth 4M \"$2\" | /usr/bin/python3 -c \"$3\"",
                                        "sh", CLITests.binary, m.path("big.bin"), stamp])
            let elapsed = monotonicSeconds() - started
            #expect(run.status == 0, "capped warmup failed: \(run.stderr)")
            let stamps = run.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.flatMap { Double($0) } }
            #expect(stamps.count >= 3, "progress lines: \(run.stdout)")
            if let first = stamps.first, let last = stamps.last {
                #expect(last - first >= 2, "the JSON lines came out together at the end (a buffered pipe): \(run.stdout)")
            }
            // A lower bound only: a loaded machine makes it slower, never faster.
            let floor = Double(size - (4 << 20)) / Double(4 << 20) * 0.85
            #expect(elapsed >= floor, "24 MiB at --bandwidth 4M took \(elapsed) s, under the cap's \(floor) s")
            #expect(cli(["warmup", "--check", m.path("big.bin")]).status == 0)
            #expect(try await benchCount(bucket, "GetObject") >= 24, "a capped warmup fetches a block per GET (1 MiB here)")
        }
    }

    @Test func aBackgroundJobIsListedFollowedAndCancelled() async throws {
        let bucket = try await freshBucket(Servers.bench, "warmc")
        for i in 0..<3 { _ = try await Servers.bench.putObject(bucket: bucket, key: "m/part\(i)", body: .bytes(patternBytes(32 << 20, seed: UInt64(i))), options: PutOptions()) }
        // The 96 MiB come in twelve 8 MiB GETs of 10 s each, so with one thread the job needs 120 s: it is
        // still running when it is cancelled, even on a loaded machine where each CLI spawn takes seconds (in
        // loaded CI runs 25 s went from the first block's landing to the cancel, and 30 s into the `jobs
        // cancel` spawn alone). What the cancel must do is judged against the GETs counted once `jobs cancel`
        // has returned, never against a guess of how far the job got.
        try await BenchControl.setFaults(bucket: bucket, [["action": "delay", "op": "GetObject", "delay_ms": 10000, "probability": 1.0]])
        defer { Task { try? await BenchControl.setFaults(bucket: bucket, []) } }
        let m = TestMount(bucket: bucket, endpoint: bench)
        try await withMount(m) { m throws in
            let started = cli(["warmup", "--background", "--threads", "1", m.path("m")])
            #expect(started.status == 0)
            let id = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(id.contains("-"), "job id: \(id)")
            // Poll until the first block has landed, then look at the job.
            var job: [String: Any] = [:]
            let deadline = ContinuousClock.now + .seconds(60)
            repeat {
                try await Task.sleep(nanoseconds: 100_000_000)
                let listed = cli(["jobs", m.mountpoint, "--json"])
                #expect(listed.status == 0)
                let jobs = try #require(try json(listed.stdout)["jobs"] as? [[String: Any]])
                job = try #require(jobs.first { $0["id"] as? String == id })
            } while (job["bytes_done"] as? Int ?? 0) == 0 && ContinuousClock.now < deadline
            #expect(job["state"] as? String == "running" && job["files"] as? Int == 3)
            #expect((job["bytes_done"] as? Int ?? 0) > 0 && (job["bytes_done"] as? Int ?? 0) < 96 << 20)
            #expect(cli(["jobs", m.mountpoint]).stdout.contains(id))

            let cancel = cli(["jobs", "cancel", id])
            #expect(cancel.status == 0, "cancel: \(cancel.stderr)")
            let before = try await benchCount(bucket, "GetObject")
            let wait = cli(["jobs", "wait", id])
            #expect(wait.status == 1 && wait.stderr.contains("cancelled"), "\(wait.stdout) \(wait.stderr)")
            let gets = try await benchCount(bucket, "GetObject")
            try await Task.sleep(nanoseconds: 1_000_000_000)
            #expect(try await benchCount(bucket, "GetObject") == gets, "a cancelled job kept fetching")
            // One thread: the GET it had in flight was counted already; at most one more, begun by a fetch
            // that had passed its check of the flag just before the cancel set it.
            #expect(gets <= before + 1, "\(before) GETs when the cancel returned, \(gets) once the job ended")
            #expect(gets < 12, "all twelve GETs went out: the job was not cancelled midway")
            let ended = try #require(try json(cli(["jobs", m.mountpoint, "--json"]).stdout)["jobs"] as? [[String: Any]]).first { $0["id"] as? String == id }
            #expect(ended?["state"] as? String == "cancelled")
            #expect((ended?["bytes_done"] as? Int ?? 0) < 96 << 20, "a cancelled job reports every byte done")
            #expect(cli(["jobs", "cancel", "999-1"]).status != 0)
        }
    }

    @Test func aDemandReadDuringAWarmupFetchesEachBlockOnce() async throws {
        let bucket = try await freshBucket(Servers.bench, "warmd")
        let body = patternBytes(32 << 20, seed: 5)
        _ = try await Servers.bench.putObject(bucket: bucket, key: "model.bin", body: .bytes(body), options: PutOptions())
        try await BenchControl.setFaults(bucket: bucket, [["action": "delay", "op": "GetObject", "delay_ms": 300, "probability": 1.0]])
        defer { Task { try? await BenchControl.setFaults(bucket: bucket, []) } }
        let m = TestMount(bucket: bucket, endpoint: bench)
        try await withMount(m) { m throws in
            let started = cli(["warmup", "--background", "--threads", "4", m.path("model.bin")])
            #expect(started.status == 0)
            // The application reads the same file while the warmup fetches it.
            #expect(try readFile(m.path("model.bin")) == body)
            let id = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(cli(["jobs", "wait", id]).status == 0)
            // Whoever asks first fetches a block (a demand read one block, the warmup two adjacent ones in a
            // GET): the object's bytes come from the store once, however they shared it (beside them only
            // the listing's few KiB of XML; a block fetched twice would add 4 MiB).
            let sent = try await BenchControl.bytesOut(bucket: bucket)
            #expect(sent >= body.count && sent < body.count + (1 << 20), "32 MiB fetched as \(sent) bytes: a block went twice")
        }
    }

    @Test func theProgressBarOnATerminal() async throws {
        let bucket = try await freshBucket(Servers.bench, "warmt")
        _ = try await Servers.bench.putObject(bucket: bucket, key: "x.bin", body: .bytes(patternBytes(12 << 20, seed: 3)), options: PutOptions())
        // Two GETs (8 MiB, then 4 MiB) on one thread, each held 3 s: the bar's 200-ms polls fall many times
        // inside the job, with a rate and an ETA once the first GET is in.
        try await BenchControl.setFaults(bucket: bucket, [["action": "delay", "op": "GetObject", "delay_ms": 3000, "probability": 1.0]])
        defer { Task { try? await BenchControl.setFaults(bucket: bucket, []) } }
        let m = TestMount(bucket: bucket, endpoint: bench)
        try await withMount(m) { m throws in
            // Python's pty.spawn gives the CLI a pseudo-terminal and copies what it draws.
            let r = spawn("/usr/bin/python3", ["-c", "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)", CLITests.binary, "warmup", "--threads", "1", m.path("x.bin")])
            #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
            #expect(r.stdout.contains("\r") && r.stdout.contains("warming  [#") && r.stdout.contains("\u{1B}[K"), "no bar drawn: \(r.stdout.debugDescription)")
            #expect(r.stdout.contains("##]  100%") && r.stdout.contains("1/1 files") && r.stdout.contains("ETA"))
            #expect(r.stdout.contains("cached: 1 of 1 files"))
        }
    }

    @Test func pinnedFilesSurviveReadingMoreThanTheDiskTierHolds() async throws {
        let bucket = try await freshBucket(Servers.bench, "warmp")
        let pinned = patternBytes(12 << 20, seed: 7)
        _ = try await Servers.bench.putObject(bucket: bucket, key: "model/weights.bin", body: .bytes(pinned), options: PutOptions())
        for i in 0..<4 { _ = try await Servers.bench.putObject(bucket: bucket, key: "data/d\(i)", body: .bytes(patternBytes(20 << 20, seed: UInt64(10 + i))), options: PutOptions()) }
        let m = TestMount(bucket: bucket, endpoint: bench, extra: ["--cache-size", "48M", "--memory-cache", "16M"])
        try await withMount(m) { m throws in
            let pin = cli(["pin", m.path("model")])
            #expect(pin.status == 0, "pin: \(pin.stderr)")
            let disk = try diskStatus(m)
            // Pinned bytes are the blocks' footprint on disk: the data and a small header per block.
            #expect(((12 << 20)..<(12 << 20) + 65536).contains(disk["pinned_bytes"] as? Int ?? 0) && disk["pinned_files"] as? Int == 1 && disk["pin_budget"] as? Int == 24 << 20, "\(disk)")

            // 80 MiB through a 48 MiB disk tier: everything unpinned is evicted along the way.
            for i in 0..<4 { #expect(try readFile(m.path("data/d\(i)")).count == 20 << 20) }
            #expect(cli(["warmup", "--check", m.path("model")]).status == 0, "the pinned file was evicted")
            #expect(cli(["warmup", "--check", m.path("data/d0")]).status == 1, "the disk tier kept more than it holds")
            let gets = try await benchCount(bucket, "GetObject")
            dropPageCache()
            #expect(try readFile(m.path("model/weights.bin")) == pinned)
            #expect(try await benchCount(bucket, "GetObject") == gets, "the pinned file was fetched again")

            // A pin beyond the budget is refused, naming it.
            let over = cli(["pin", m.path("data")])
            #expect(over.status == 1 && over.stderr.contains("over the pin budget") && over.stderr.contains("--pin-budget"), "\(over.stderr)")

            // unpin lets it go; the pins file follows.
            let unpin = cli(["unpin", m.path("model")])
            #expect(unpin.status == 0 && unpin.stdout.contains("unpinned 1 files"))
            #expect(try diskStatus(m)["pinned_bytes"] as? Int == 0)
        }
    }

    @Test func pinsOutliveARemount() async throws {
        let bucket = try await freshBucket(Servers.bench, "warmr")
        _ = try await Servers.bench.putObject(bucket: bucket, key: "w.bin", body: .bytes(patternBytes(6 << 20, seed: 8)), options: PutOptions())
        let m = TestMount(bucket: bucket, endpoint: bench)
        try await withMount(m) { m throws in
            #expect(cli(["pin", m.path("w.bin")]).status == 0)
        }
        let again = TestMount(sharing: m, cacheDir: m.cacheDir)
        try await withMount(again) { a throws in
            let disk = try diskStatus(a)
            #expect(((6 << 20)..<(6 << 20) + 65536).contains(disk["pinned_bytes"] as? Int ?? 0), "\(disk)")
            #expect(cli(["warmup", "--check", a.path("w.bin")]).status == 0)
        }
    }
}
