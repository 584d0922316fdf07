import Foundation
import Logging
import ObjectStore
import Platform
import ReadCache
import Synchronization
import Testing
import WriteBack

@testable import Filesystem

#if canImport(Glibc)
import Glibc
#endif

/// Random operations on a namespace of three links over two stores, driven through `Filesystem` without a
/// mount, against a model: writes, reads, unlinks, renames (within and across links), changes another client
/// makes directly in the buckets, then `sync`. After each sync every directory the sequence used lists
/// exactly what the model holds, and every file reads back its bytes; once the uploads are done, the buckets
/// hold exactly the model too.
///
/// `LAKECACHE_LINK_MODEL_SEED` replays one failing sequence; `LAKECACHE_LINK_MODEL_SEQUENCES` sets how many run;
/// `LAKECACHE_LINK_MODEL_JITTER_MS` sets the longest random pause of every store request.
@Suite struct LinkModelTests {
    let first = InMemoryObjectStore(buckets: ["a"])
    let second = InMemoryObjectStore(buckets: ["b"])

    /// data/sets → s3://a/ds/ (async close, *.tmp excluded); ckpt → s3://b (sync close, listing metadata);
    /// models → s3://a/models/ (read-only). Metadata never expires: only `sync` shows outside changes.
    func makeFS() throws -> Filesystem { try makeFS(first, second) }

    func makeFS(_ first: InMemoryObjectStore, _ second: InMemoryObjectStore) throws -> Filesystem {
        var config = BlockCacheConfiguration()
        config.blockSize = 1 << 20
        config.memoryBytes = 32 << 20
        let cache = BlockCache(store: first, configuration: config, disk: nil)
        let s1 = Store(name: "one", client: first)
        let s2 = Store(name: "two", client: second)
        var data = LinkPolicy()
        data.metadataTTL = nil
        data.negativeTTL = nil
        data.filter = KeyFilter(exclude: [try KeyGlob("*.tmp")])
        var ckpt = data
        ckpt.filter = KeyFilter()
        ckpt.syncClose = true
        ckpt.metadata = .listing
        var models = ckpt
        models.readOnly = true
        let links = try LinkTable([
            Link(path: "data/sets", bucket: BucketURL(bucket: "a", prefix: "ds/"), store: s1, policy: data),
            Link(path: "ckpt", bucket: BucketURL(bucket: "b", prefix: ""), store: s2, policy: ckpt),
            Link(path: "models", bucket: BucketURL(bucket: "a", prefix: "models/"), store: s1, policy: models),
        ])
        let dir = NSTemporaryDirectory() + "lakecache-links-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let writeBack = try WriteBack(stores: { ["one": s1, "two": s2][$0] }, options: WriteBackOptions(directory: dir))
        // Refusals are logged at notice: thousands of them here, all expected.
        var quiet = Logger(label: "lakecache.fs.model")
        quiet.logLevel = .error
        return Filesystem(links: links, cache: cache, writeBack: writeBack, options: FilesystemOptions(uid: 0, gid: 0), logger: quiet)
    }

    @Test func randomSequencesMatchTheModel() async throws {
        let env = ProcessInfo.processInfo.environment
        let seeds: [UInt64]
        if let one = env["LAKECACHE_LINK_MODEL_SEED"].flatMap({ UInt64($0) }) {
            seeds = [one]
        } else {
            let base = UInt64.random(in: 0...UInt64.max / 2)
            seeds = (0..<UInt64(env["LAKECACHE_LINK_MODEL_SEQUENCES"].flatMap { Int($0) } ?? 1000)).map { base + $0 }
        }
        // A fresh namespace every 100 sequences: what earlier ones left behind (thousands of staged files and
        // nodes) only slows the engine's scans, it tests nothing more.
        // Every third namespace serves requests after random pauses, so uploads, deletes and listings finish
        // out of order, as on a loaded server (a loaded CI run found a replaced file's late PUT that way).
        let fixedJitter = env["LAKECACHE_LINK_MODEL_JITTER_MS"].flatMap { Int($0) }.map { Duration.milliseconds($0) }
        var block = 0
        func freshStores() -> (InMemoryObjectStore, InMemoryObjectStore) {
            let jitter = fixedJitter ?? (block % 3 == 1 ? .milliseconds(10) : .zero)
            block += 1
            let s = (InMemoryObjectStore(buckets: ["a"]), InMemoryObjectStore(buckets: ["b"]))
            s.0.setJitter(upTo: jitter)
            s.1.setJitter(upTo: jitter)
            return s
        }
        var stores = freshStores()
        var fs = try makeFS(stores.0, stores.1)
        for (n, seed) in seeds.enumerated() {
            if n > 0 && n % 100 == 0 {
                stores = freshStores()
                fs = try makeFS(stores.0, stores.1)
            }
            var run = LinkModelRun(fs: fs, first: stores.0, second: stores.1, seed: seed)
            if let problem = await run.play(steps: 30) {
                Issue.record("seed \(seed) (LAKECACHE_LINK_MODEL_SEED=\(seed) replays it): \(problem)\n\(run.history.joined(separator: "\n"))")
                return
            }
        }
    }

    @Test func syntheticDirectoriesListLinksAndRefuseWrites() async throws {
        let fs = try makeFS()
        let e = FSDriver(fs)
        #expect(try await e.list("").sorted() == ["ckpt", "data", "models"])
        #expect(try await e.list("data") == ["sets"])
        #expect(await e.mkdir("data/new") == EROFS, "above the links nothing can be made")
        #expect(await e.write("x", [1]) == EROFS)
        #expect(await e.write("models/m.bin", [1]) == EROFS, "a read-only link")
        #expect(await e.write("data/sets/a.bin", [1, 2]) == 0)
        #expect(await e.rename("data/sets/a.bin", "ckpt/a.bin") == EXDEV, "across links: mv copies")
        #expect(await e.write("data/sets/junk.tmp", [1]) == EPERM, "an excluded name cannot be made")
        _ = first.set(bucket: "a", key: "ds/seen.tmp", data: [1])
        _ = first.set(bucket: "a", key: "ds/seen.bin", data: [2])
        _ = try await fs.sync(path: "data")
        #expect(try await e.list("data/sets").sorted() == ["a.bin", "seen.bin"], "excluded keys are neither listed nor looked up")
        #expect(await e.read("data/sets/seen.tmp") == .failure(Errno(ENOENT)))
    }
}

/// One random sequence in its own directory of each writable link.
struct LinkModelRun {
    let fs: Filesystem
    let first: InMemoryObjectStore
    let second: InMemoryObjectStore
    var rng: SplitMix
    let tag: String
    /// path → bytes, as the mount must show it after a sync.
    var model: [String: [UInt8]] = [:]
    /// Changes made in the buckets, shown only after the next sync.
    var outside: [String: [UInt8]?] = [:]
    var history: [String] = []

    init(fs: Filesystem, first: InMemoryObjectStore, second: InMemoryObjectStore, seed: UInt64) {
        self.fs = fs
        self.first = first
        self.second = second
        rng = SplitMix(seed: seed)
        tag = "q" + String(seed, radix: 36)
    }

    var dirs: [String] { ["data/sets/\(tag)", "ckpt/\(tag)", "models/\(tag)"] }

    /// Where a namespace path lives in the buckets.
    func object(_ path: String) -> (InMemoryObjectStore, String, String) {
        if path.hasPrefix("data/sets/") { return (first, "a", "ds/" + path.dropFirst(10)) }
        if path.hasPrefix("ckpt/") { return (second, "b", String(path.dropFirst(5))) }
        return (first, "a", "models/" + path.dropFirst(7))
    }

    mutating func bytes() -> [UInt8] { (0..<Int(rng.next() % 3000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }

    /// Plays `steps` operations; the first disagreement with the model, or nil.
    mutating func play(steps: Int) async -> String? {
        let e = FSDriver(fs)
        for dir in dirs.prefix(2) {
            let rc = await e.mkdir(dir)
            guard rc == 0 else { return "mkdir \(dir) answered \(rc)" }
        }
        // The read-only link's directory exists because another client put something there.
        _ = first.set(bucket: "a", key: "models/\(tag)/x0", data: [7])
        outside["models/\(tag)/x0"] = .some([7])
        for step in 0..<steps {
            let dir = dirs[Int(rng.next() % 3)]
            let name = "f\(rng.next() % 6)"
            let path = dir + "/" + name
            let writable = !dir.hasPrefix("models/")
            switch rng.next() % 10 {
            case 0, 1, 2:
                let data = bytes()
                history.append("\(step): write \(path) (\(data.count) B)")
                let rc = await e.write(path, data)
                if writable {
                    guard rc == 0 else { return "write \(path) failed with errno \(rc)" }
                    model[path] = data
                    outside.removeValue(forKey: path)
                } else if rc != EROFS && rc != ENOENT {
                    return "write into the read-only link \(path) answered \(rc), not EROFS"
                }
            case 3:
                history.append("\(step): read \(path)")
                // Outside changes not yet synced may or may not show; only what the model is sure of is checked.
                if outside[path] == nil, let problem = await check(e, path) { return problem }
            case 4:
                history.append("\(step): unlink \(path)")
                let rc = await e.unlink(path)
                if writable && outside[path] == nil {
                    let expected: Int32 = model[path] == nil ? ENOENT : 0
                    guard rc == expected else { return "unlink \(path) answered \(rc), expected \(expected)" }
                    model.removeValue(forKey: path)
                } else if !writable && rc != EROFS && rc != ENOENT {
                    return "unlink in the read-only link answered \(rc)"
                } else if writable {
                    model.removeValue(forKey: path)
                    outside.removeValue(forKey: path)
                }
            case 5:
                let other = dirs[Int(rng.next() % 3)] + "/f\(rng.next() % 6)"
                history.append("\(step): rename \(path) -> \(other)")
                guard model[path] != nil, outside[path] == nil, outside[other] == nil, path != other else { continue }
                let rc = await e.rename(path, other)
                let sameLink = path.split(separator: "/").first == other.split(separator: "/").first
                if !sameLink {
                    // ENOENT: the read-only link's directory exists only while another client keeps an object there.
                    guard rc == EXDEV || (rc == ENOENT && (other.hasPrefix("models/") || !writable)) else { return "rename across links answered \(rc), not EXDEV" }
                } else if writable {
                    guard rc == 0 else { return "rename \(path) -> \(other) answered \(rc)" }
                    model[other] = model.removeValue(forKey: path)
                }
            case 6, 7:
                // Another client writes or deletes in the bucket directly (a name this sequence never writes).
                let outsider = dir + "/x\(rng.next() % 4)"
                let (store, bucket, key) = object(outsider)
                if rng.next() % 3 == 0 {
                    history.append("\(step): outside delete \(outsider)")
                    try? await store.deleteObject(bucket: bucket, key: key)
                    outside[outsider] = .some(nil)
                } else {
                    let data = bytes()
                    history.append("\(step): outside put \(outsider) (\(data.count) B)")
                    _ = store.set(bucket: bucket, key: key, data: data)
                    outside[outsider] = .some(data)
                }
            default:
                // Mostly this sequence's own directories; now and then a whole link or the whole namespace,
                // which lists every earlier sequence's objects too.
                let wide = rng.next() % 200 == 0
                let scope = wide ? ["", "data", "ckpt"][Int(rng.next() % 3)] : ["data/sets/\(tag)", "ckpt/\(tag)", "models/\(tag)"][Int(rng.next() % 3)]
                history.append("\(step): sync /\(scope)")
                do { _ = try await fs.sync(path: scope) } catch { return "sync /\(scope) failed: \(error)" }
                for (p, v) in outside where Namespace.inside(p, scope) {
                    model[p] = v
                    outside.removeValue(forKey: p)
                }
                if let problem = await verify(e, scope) { return problem }
            }
        }
        for dir in dirs { _ = try? await fs.sync(path: dir) }
        for (p, v) in outside { model[p] = v }
        outside = [:]
        for dir in dirs {
            if let problem = await verify(e, dir) { return problem }
        }
        return await bucketsAgree()
    }

    /// Once every upload is done, the buckets hold exactly the model's files below this sequence's directories:
    /// a replaced file's late upload, or an unlinked file's, would show here and not through the mount.
    func bucketsAgree() async -> String? {
        for _ in 0..<6000 where !fs.writeBack!.isIdle { try? await Task.sleep(for: .milliseconds(5)) }
        guard fs.writeBack!.isIdle else { return "uploads still pending 30 s after the sequence" }
        for dir in dirs {
            let (store, bucket, prefix) = object(dir + "/")
            let held = store.contents(bucket: bucket, prefix: prefix).filter { $0.key != prefix }  // mkdir's marker
            let want = model.filter { Namespace.split($0.key).parent == dir }
            let got = Dictionary(uniqueKeysWithValues: held.map { (dir + "/" + $0.key.dropFirst(prefix.count), $0.value) })
            if got != want {
                let wrong = Set(got.keys).union(want.keys).filter { got[$0] != want[$0] }.sorted()
                return "the bucket disagrees with the model at \(wrong.map { "\($0): bucket \(got[$0].map { "\($0.count) B" } ?? "nothing"), model \(want[$0].map { "\($0.count) B" } ?? "nothing")" })"
            }
        }
        return nil
    }

    /// The file reads back as the model says (or does not exist).
    func check(_ e: FSDriver, _ path: String) async -> String? {
        let got = await e.read(path)
        switch (got, model[path]) {
        case (.success(let bytes), let want?) where bytes == want: return nil
        case (.failure(let e), nil) where e.rawValue == ENOENT: return nil
        default: return "read \(path): got \(got.map(\.count)), model has \(model[path].map { "\($0.count) B" } ?? "nothing")"
        }
    }

    /// Every directory of this sequence below `scope` lists the model's names, and each reads back.
    func verify(_ e: FSDriver, _ scope: String) async -> String? {
        for dir in dirs where Namespace.inside(dir, scope) || Namespace.inside(scope, dir) {
            let want = Set(model.keys.filter { Namespace.split($0).parent == dir }.map { Namespace.split($0).name })
            let listed: Set<String>
            switch await e.listResult(dir) {
            case .success(let names): listed = Set(names)
            case .failure(let e) where e.rawValue == ENOENT: listed = []
            case .failure(let e): return "list \(dir) failed with \(e)"
            }
            guard listed == want else { return "list \(dir): \(listed.sorted()) but the model has \(want.sorted())" }
            for name in want {
                if let problem = await check(e, dir + "/" + name) { return problem }
            }
        }
        return nil
    }
}

/// Drives a `Filesystem` by path, as the kernel would: lookups per component, then the operation.
struct FSDriver: Sendable {
    let fs: Filesystem
    init(_ fs: Filesystem) { self.fs = fs }

    func lookup(_ path: String) async -> Result<FileAttributes, Errno> {
        var ino: UInt64 = 1
        var attrs = FileAttributes(ino: 1, kind: .directory, size: 0, mtime: Timestamp(seconds: 0), mode: 0o755, uid: 0, gid: 0)
        for part in path.split(separator: "/") {
            let r = await withCheckedContinuation { c in fs.lookup(parent: ino, name: String(part)) { c.resume(returning: $0) } }
            switch r {
            case .success(let e):
                ino = e.attributes.ino
                attrs = e.attributes
            case .failure(let e): return .failure(Errno(e.errno))
            }
        }
        return .success(attrs)
    }

    func parent(_ path: String) async -> Result<UInt64, Errno> {
        await lookup(Namespace.split(path).parent).map(\.ino)
    }

    func write(_ path: String, _ data: [UInt8]) async -> Int32 {
        guard case .success(let dir) = await parent(path) else { return ENOENT }
        let made = await withCheckedContinuation { c in
            fs.create(parent: dir, name: Namespace.split(path).name, mode: 0o644, flags: O_WRONLY | O_CREAT | O_TRUNC, caller: Caller(uid: 0, gid: 0)) { c.resume(returning: $0) }
        }
        guard case .success(let (_, open)) = made else {
            if case .failure(let e) = made { return e.errno }
            return EIO
        }
        defer { fs.release(handle: open.handle) }
        if !data.isEmpty, case .failure(let e) = data.withUnsafeBytes({ fs.write(open.handle, offset: 0, data: $0) }) { return e.errno }
        let flushed = await withCheckedContinuation { c in fs.flush(open.handle) { c.resume(returning: $0) } }
        return flushed?.errno ?? 0
    }

    func read(_ path: String) async -> Result<[UInt8], Errno> {
        switch await lookup(path) {
        case .failure(let e): return .failure(e)
        case .success(let a):
            let opened = await withCheckedContinuation { c in fs.open(a.ino, flags: O_RDONLY) { c.resume(returning: $0) } }
            guard case .success(let o) = opened else { return .failure(Errno(EIO)) }
            defer { fs.release(handle: o.handle) }
            var out: [UInt8] = []
            while true {
                let chunk = await withCheckedContinuation { c in
                    fs.read(o.handle, offset: Int64(out.count), size: 1 << 16) { c.resume(returning: $0.map { $0.copyBytes() }) }
                }
                guard case .success(let bytes) = chunk else { return .failure(Errno(EIO)) }
                if bytes.isEmpty { return .success(out) }
                out += bytes
            }
        }
    }

    func unlink(_ path: String) async -> Int32 {
        guard case .success(let dir) = await parent(path) else { return ENOENT }
        if case .failure(let e) = await lookup(path) { return e.rawValue }
        let r = await withCheckedContinuation { c in fs.unlink(parent: dir, name: Namespace.split(path).name) { c.resume(returning: $0) } }
        if case .failure(let e) = r { return e.errno }
        return 0
    }

    func mkdir(_ path: String) async -> Int32 {
        guard case .success(let dir) = await parent(path) else { return ENOENT }
        let r = await withCheckedContinuation { c in fs.mkdir(parent: dir, name: Namespace.split(path).name, mode: 0o755, caller: Caller(uid: 0, gid: 0)) { c.resume(returning: $0) } }
        if case .failure(let e) = r { return e.errno }
        return 0
    }

    func rename(_ from: String, _ to: String) async -> Int32 {
        guard case .success(let a) = await parent(from), case .success(let b) = await parent(to) else { return ENOENT }
        if case .failure(let e) = await lookup(from) { return e.rawValue }
        let r = await withCheckedContinuation { c in
            fs.rename(parent: a, name: Namespace.split(from).name, newParent: b, newName: Namespace.split(to).name, flags: 0) { c.resume(returning: $0) }
        }
        if case .failure(let e) = r { return e.errno }
        return 0
    }

    func listResult(_ path: String) async -> Result<[String], Errno> {
        guard case .success(let a) = await lookup(path) else { return .failure(Errno(ENOENT)) }
        let opened = await withCheckedContinuation { c in fs.opendir(a.ino) { c.resume(returning: $0) } }
        guard case .success(let handle) = opened else { return .failure(Errno(EIO)) }
        defer { fs.releasedir(handle) }
        var names: [String] = []
        var offset = 0
        while true {
            let page = await withCheckedContinuation { c in fs.readdir(handle, offset: offset, limit: 100) { c.resume(returning: $0) } }
            guard case .success(let entries) = page else { return .failure(Errno(EIO)) }
            if entries.isEmpty { break }
            names += entries.map(\.name).filter { $0 != "." && $0 != ".." }
            offset = entries.last!.offset
        }
        return .success(names)
    }

    func list(_ path: String) async throws -> [String] {
        switch await listResult(path) {
        case .success(let n): return n
        case .failure(let e): throw FilesystemError(e.rawValue, "cannot list \(path)")
        }
    }
}

/// SplitMix64: small, fast, and the same on every machine for a seed.
struct SplitMix {
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
