import Foundation
import Testing

import Platform
@testable import ObjectStore

/// Random operations on a mount and on a local directory side by side: same results, same errors, same tree.
///
/// The local directory (ext4 or tmpfs) is the reference. After the run the mount is flushed, unmounted and
/// mounted again, and the tree is compared once more, so what was acknowledged is also what the bucket kept.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct ReferenceModelTests {
    let bench: String
    static let operations = 10_000  // per write mode: 20,000 in all

    init() throws {
        try Servers.requireServers()
        bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
    }

    @Test(arguments: ["async", "sync"])
    func randomOperationsMatchALocalDirectory(mode: String) async throws {
        let bucket = try await freshBucket(Servers.bench, "model")
        let local = NSTemporaryDirectory() + "lakecache-model-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: local) }
        // LAKECACHE_MODEL_SEED replays a failing run.
        let seed = ProcessInfo.processInfo.environment["LAKECACHE_MODEL_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        let m = TestMount(bucket: bucket, endpoint: bench, extra: ["--part-size", "5M", "--write-mode", mode])
        try m.start()
        defer { m.stop() }
        let checkEvery = ProcessInfo.processInfo.environment["LAKECACHE_MODEL_CHECK_EVERY"].flatMap { Int($0) } ?? 1000
        var runner = ModelRunner(mount: m.mountpoint, local: local, seed: seed)
        for i in 0..<Self.operations {
            let step = runner.step()
            guard step.mount == step.local else {
                Issue.record("op \(i) (seed \(seed), \(mode)): \(step.op): mount \(step.mount) ≠ local \(step.local)\n\(runner.savedHistory())")
                return
            }
            if i % checkEvery == checkEvery - 1 {
                let diff = compareTrees(m.mountpoint, local)
                guard diff.isEmpty else {
                    Issue.record("after op \(i) (seed \(seed), \(mode)): \(diff.prefix(5))\n\(runner.savedHistory())")
                    return
                }
            }
        }
        #expect(runner.kinds.count >= 10, "every kind of operation ran: \(runner.kinds)")
        #expect(flush(m.mountpoint).status == 0)
        m.stop()
        // What the bucket kept, seen through a fresh mount with an empty cache. A listing carries no file
        // modes (docs/semantics.md), so this mount asks the bucket at every stat.
        let again = TestMount(bucket: bucket, endpoint: bench, extra: ["--write-mode", mode, "--metadata-ttl", "0"])
        try again.start()
        defer { again.stop() }
        let diff = compareTrees(again.mountpoint, local)
        #expect(diff.isEmpty, "after remount (seed \(seed), \(mode)): \(diff.prefix(5))")
    }
}

/// Generates operations on a small namespace (so names collide) and applies each to both trees.
struct ModelRunner {
    let mount: String
    let local: String
    var rng: SplitMix
    var kinds: Set<String> = []
    var history: [String] = []
    let dirs = ["", "a", "b", "a/c"]
    let names = ["f0", "f1", "f2", "g", "a", "b", "c"]

    init(mount: String, local: String, seed: UInt64) {
        self.mount = mount
        self.local = local
        rng = SplitMix(seed)
    }

    /// Writes the whole run to a file and returns its last operations, for a failure message.
    func savedHistory() -> String {
        let file = NSTemporaryDirectory() + "lakecache-model-\(rng.state).log"
        try? history.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return history.suffix(30).joined(separator: "\n") + "\n(all operations: \(file))"
    }

    mutating func path() -> String {
        let d = dirs[Int(rng.next() % UInt64(dirs.count))]
        let n = names[Int(rng.next() % UInt64(names.count))]
        return d.isEmpty ? n : d + "/" + n
    }

    /// One operation on both sides: a description and each side's outcome (a value or an errno).
    mutating func step() -> (op: String, mount: String, local: String) {
        let p = path()
        let roll = rng.next() % 100
        let op: String
        let apply: (String) -> String
        switch roll {
        case 0..<28:
            let offset = Int(rng.next() % 40_000)
            let data = patternBytes(Int(rng.next() % 20_000) + 1, seed: rng.next())
            let flags = rng.next() % 4 == 0 ? O_WRONLY | O_CREAT | O_TRUNC : O_WRONLY | O_CREAT
            op = "write \(p) @\(offset) +\(data.count)\(flags & O_TRUNC != 0 ? " trunc" : "")"
            apply = { root in
                let fd = open(root + "/" + p, flags, 0o644)
                guard fd >= 0 else { return "errno \(errno)" }
                let ok = pwriteAll(fd, data, at: offset)
                let e = errno
                return close(fd) == 0 && ok ? "ok" : "errno \(ok ? errno : e)"
            }
        case 28..<33:
            let data = patternBytes(Int(rng.next() % 5_000) + 1, seed: rng.next())
            op = "append \(p) +\(data.count)"
            apply = { root in
                let fd = open(root + "/" + p, O_WRONLY | O_APPEND)
                guard fd >= 0 else { return "errno \(errno)" }
                let n = data.withUnsafeBytes { write(fd, $0.baseAddress, data.count) }
                let e = errno
                return close(fd) == 0 && n == data.count ? "ok" : "errno \(n == data.count ? errno : e)"
            }
        case 33..<48:
            op = "read \(p)"
            apply = { root in
                do {
                    let bytes = try readFile(root + "/" + p)
                    return "\(bytes.count) bytes, hash \(fnv(bytes))"
                } catch let e as POSIXError {
                    return "errno \(e.code.rawValue)"
                } catch {
                    return "\(error)"
                }
            }
        case 48..<55:
            let size = off_t(rng.next() % 70_000)
            op = "truncate \(p) \(size)"
            apply = { root in truncate(root + "/" + p, size) == 0 ? "ok" : "errno \(errno)" }
        case 55..<63:
            let q = path()
            op = "rename \(p) \(q)"
            apply = { root in rename(root + "/" + p, root + "/" + q) == 0 ? "ok" : "errno \(errno)" }
        case 63..<70:
            op = "unlink \(p)"
            apply = { root in unlink(root + "/" + p) == 0 ? "ok" : "errno \(errno)" }
        case 70..<77:
            op = "mkdir \(p)"
            apply = { root in mkdir(root + "/" + p, 0o755) == 0 ? "ok" : "errno \(errno)" }
        case 77..<82:
            op = "rmdir \(p)"
            apply = { root in rmdir(root + "/" + p) == 0 ? "ok" : "errno \(errno)" }
        case 82..<88:
            let mode = mode_t([0o600, 0o640, 0o644, 0o700, 0o750, 0o755][Int(rng.next() % 6)])
            op = "chmod \(p) \(String(mode, radix: 8))"
            apply = { root in chmod(root + "/" + p, mode) == 0 ? "ok" : "errno \(errno)" }
        case 88..<93:
            let t = time_t(1_600_000_000 + Int(rng.next() % 100_000_000))
            op = "utimens \(p) \(t)"
            apply = { root in
                var times = [timespec(tv_sec: t, tv_nsec: 0), timespec(tv_sec: t, tv_nsec: 0)]
                return utimensat(AT_FDCWD, root + "/" + p, &times, 0) == 0 ? "ok" : "errno \(errno)"
            }
        default:
            op = "list \(p)"
            apply = { root in
                guard let names = try? FileManager.default.contentsOfDirectory(atPath: root + "/" + p) else { return "errno" }
                return names.sorted().joined(separator: ",")
            }
        }
        kinds.insert(String(op.prefix(while: { $0 != " " })))
        let result = (op, apply(mount), apply(local))
        history.append("\(op) → \(result.2)")
        return result
    }
}

/// Differences between two trees: entry names, kinds, sizes, contents, permission bits, and file mtimes
/// (to the second).
func compareTrees(_ a: String, _ b: String) -> [String] {
    var diff: [String] = []
    func walk(_ rel: String) {
        let fm = FileManager.default
        let left = (try? fm.contentsOfDirectory(atPath: a + rel).sorted()) ?? []
        let right = (try? fm.contentsOfDirectory(atPath: b + rel).sorted()) ?? []
        if left != right { diff.append("\(rel.isEmpty ? "/" : rel): \(left) vs \(right)") }
        for name in Set(left).intersection(right).sorted() {
            let p = rel + "/" + name
            var sa = stat(), sb = stat()
            guard lstat(a + p, &sa) == 0, lstat(b + p, &sb) == 0 else {
                diff.append("\(p): lstat failed")
                continue
            }
            if sa.st_mode != sb.st_mode { diff.append("\(p): mode \(String(sa.st_mode, radix: 8)) vs \(String(sb.st_mode, radix: 8))") }
            if sa.st_mode & S_IFMT == S_IFDIR {
                walk(p)
                continue
            }
            if sa.st_size != sb.st_size { diff.append("\(p): size \(sa.st_size) vs \(sb.st_size)") }
            if sa.st_mtim.tv_sec != sb.st_mtim.tv_sec && sa.st_size == sb.st_size {
                // Only mtimes set explicitly are comparable; writes stamp each side with its own clock.
                let drift = abs(Int(sa.st_mtim.tv_sec) - Int(sb.st_mtim.tv_sec))
                if drift > 5 { diff.append("\(p): mtime \(sa.st_mtim.tv_sec) vs \(sb.st_mtim.tv_sec)") }
            }
            if (try? readFile(a + p)) != (try? readFile(b + p)) { diff.append("\(p): contents differ") }
        }
    }
    walk("")
    return diff
}

/// FNV-1a, to name contents in a short message.
func fnv(_ bytes: [UInt8]) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return String(h, radix: 16)
}

/// A small seeded generator, so a failing run can be replayed from its seed.
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
