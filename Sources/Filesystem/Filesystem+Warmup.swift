import ObjectStore
import Platform
import ReadCache

#if canImport(Glibc)
import Glibc
#endif

/// A file to warm: where it is in the namespace and which version of which object it shows.
package struct WarmTarget: Sendable {
    package var path: String
    package let link: Link
    package var relative: String
    package var etag: String
    package var size: Int64
    /// Written here and not evicted: its bytes are local already.
    package var staged: Bool

    var version: ObjectVersion { link.version(key: link.key(relative), etag: etag, size: size) }
}

/// Why a path given to warmup, check, evict or pin could not be taken care of.
package struct WarmFailure: Sendable, Equatable {
    package var path: String
    package var reason: String
    package init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

extension Filesystem {
    /// The files under `paths` (a file, or a directory recursively, or a directory above links), after each
    /// link's globs; paths that name nothing, or that the bucket refuses, are failures with their reason.
    package func warmTargets(_ paths: [String]) async -> (targets: [WarmTarget], failures: [WarmFailure]) {
        // A list of many files resolves each with a HEAD: 32 at a time, answers kept in the list's order.
        var answers = [([WarmTarget], [WarmFailure])](repeating: ([], []), count: paths.count)
        await withTaskGroup(of: (Int, [WarmTarget], [WarmFailure]).self) { group in
            var next = 0
            func add() {
                guard next < paths.count else { return }
                let i = next
                next += 1
                group.addTask { let (t, f) = await self.warmTargets(at: paths[i]); return (i, t, f) }
            }
            for _ in 0..<32 { add() }
            for await (i, t, f) in group {
                answers[i] = (t, f)
                add()
            }
        }
        var seen = Set<String>()
        var targets: [WarmTarget] = []
        var failures: [WarmFailure] = []
        for (t, f) in answers {
            targets += t.filter { seen.insert($0.path).inserted }
            failures += f
        }
        return (targets, failures)
    }

    private func warmTargets(at raw: String) async -> ([WarmTarget], [WarmFailure]) {
        let path = raw.split(separator: "/").joined(separator: "/")
        var targets: [WarmTarget] = []
        var failures: [WarmFailure] = []
        switch links.resolve(path) {
        case .none:
            failures.append(WarmFailure(path: path, reason: "not found: no link of the mount shows /\(path)"))
        case .synthetic:
            for link in links.links where Namespace.inside(link.path, path) {
                do { targets += try await files(link, below: "") } catch { failures.append(WarmFailure(path: link.path, reason: Self.reason(error))) }
            }
        case .link(let link, let relative):
            if let f = overlay[path] {
                let (size, _, _, _) = writeBack!.attributes(f)
                targets.append(WarmTarget(path: path, link: link, relative: relative, etag: "", size: size, staged: true))
                break
            }
            do {
                let found = try await filesAt(link, relative)
                if found.isEmpty {
                    failures.append(WarmFailure(path: path, reason: "not found: no object or directory \(link.key(relative)) in \(link.bucket.bucket)"))
                }
                targets += found
            } catch {
                failures.append(WarmFailure(path: path, reason: Self.reason(error)))
            }
        }
        return (targets, failures)
    }

    /// One object, or every object below a directory, of `link` at `relative`.
    private func filesAt(_ link: Link, _ relative: String) async throws -> [WarmTarget] {
        if !relative.isEmpty && link.policy.filter.admits(file: relative) {
            do {
                let info = try await link.store.client.headObject(bucket: link.bucket.bucket, key: link.key(relative))
                return [WarmTarget(path: link.namespacePath(relative), link: link, relative: relative, etag: info.etag, size: info.size, staged: false)]
            } catch let e as ObjectStoreError where e.kind == .noSuchKey {
                // Not an object: perhaps a directory.
            }
        }
        return try await files(link, below: relative)
    }

    private func files(_ link: Link, below relative: String) async throws -> [WarmTarget] {
        let listed = try await fullListing(link, below: relative)
        let staged = overlay.withLock { $0.descendants(of: link.namespacePath(relative)) }
        var out = listed.map { rel, f in
            WarmTarget(path: link.namespacePath(rel), link: link, relative: rel, etag: f.etag, size: f.size, staged: false)
        }
        // Files written here count as what they are now.
        let stagedPaths = Set(staged.map(\.0))
        out.removeAll { stagedPaths.contains($0.path) }
        for (path, f) in staged {
            let (size, _, _, _) = writeBack!.attributes(f)
            out.append(WarmTarget(path: path, link: link, relative: link.relative(namespacePath: path) ?? "", etag: "", size: size, staged: true))
        }
        return out.sorted { $0.path < $1.path }
    }

    static func reason(_ error: any Error) -> String {
        if let e = error as? ObjectStoreError {
            switch e.kind {
            case .accessDenied, .invalidCredentials: return "access denied: \(e.message)"
            case .noSuchBucket: return "not found: the bucket does not exist (\(e.message))"
            default: return e.description
            }
        }
        return "\(error)"
    }

    /// Bytes of the file held in the cache now (the disk tier, or memory unless `onDisk`); a staged file is
    /// wholly local.
    package func cachedBytes(_ t: WarmTarget, onDisk: Bool = false) -> Int64 {
        if t.staged { return t.size }
        guard t.size > 0 else { return 0 }
        let blockSize = Int64(cache.blockSize)
        var held: Int64 = 0
        for index in 0...((t.size - 1) / blockSize) where cache.holds(t.version, block: index, onDisk: onDisk) {
            held += min(blockSize, t.size - index * blockSize)
        }
        return held
    }

    /// The blocks of the file the disk tier does not hold (or, with `memory`, that are not in memory too).
    package func missingBlocks(_ t: WarmTarget, memory: Bool = false) -> [Int64] {
        if t.staged || t.size == 0 { return [] }
        let blockSize = Int64(cache.blockSize)
        let version = t.version
        return (0...((t.size - 1) / blockSize)).filter {
            !cache.holds(version, block: $0, onDisk: true) || (memory && !cache.inMemory(version, block: $0))
        }
    }

    /// What warming one block did.
    package enum BlockResult: Sendable, Equatable {
        /// The block is cached; `fetched` bytes came from the bucket now (0: someone else had it).
        case held(fetched: Int64)
        case failed(String)
        case cancelled
    }

    /// Fetches adjacent blocks into the disk tier (and into memory too with `memory`, from the disk tier if
    /// they are there), with one GET where the cache can, single-flight with demand reads. `pace` runs first:
    /// it waits while applications read, and for the bandwidth cap.
    package func warmBlocks(_ t: WarmTarget, _ blocks: Range<Int64>, memory: Bool = false, pace: @Sendable (Int64) async -> Bool) async -> BlockResult {
        let blockSize = Int64(cache.blockSize)
        let version = t.version
        let length = { (index: Int64) in min(blockSize, t.size - index * blockSize) }
        let wanted = blocks.filter { !cache.holds(version, block: $0, onDisk: true) || (memory && !cache.inMemory(version, block: $0)) }
        guard let first = wanted.first, let last = wanted.last else { return .held(fetched: 0) }
        let fetched = wanted.filter { !cache.holds(version, block: $0, onDisk: true) }.reduce(Int64(0)) { $0 + length($1) }
        var busy = 0
        while true {
            guard await pace(wanted.reduce(0) { $0 + length($1) }) else { return .cancelled }
            let outcome = await withCheckedContinuation { c in cache.fill(version, blocks: first..<(last + 1), memory: memory) { c.resume(returning: $0) } }
            switch outcome {
            case .held:
                return .held(fetched: fetched)
            case .busy:
                busy += 1
                // Every slot is in use by reads: they go first.
                if busy > 500 { return .failed("did not fit: the memory tier stayed full for 10 s") }
                try? await Task.sleep(nanoseconds: 20_000_000)
            case .failed(let e):
                if e.kind == .preconditionFailed { return .failed("changed in the bucket while warming; run sync, then warm it again") }
                return .failed(Self.reason(e))
            }
        }
    }

    /// Whether every block of the file reached the disk tier (write-behind runs after a fill; a full tier
    /// skips blocks), waiting up to `seconds` for the writes in flight.
    package func onDisk(_ t: WarmTarget, within seconds: Double = 5) async -> Bool {
        if t.staged || t.size == 0 { return true }
        let deadline = monotonicSeconds() + seconds
        while cachedBytes(t, onDisk: true) < t.size {
            if monotonicSeconds() > deadline { return false }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return true
    }

    /// Drops the file from both tiers (and lets go of its pin). A staged file is the truth here: left alone.
    package func evictCached(_ t: WarmTarget) {
        guard !t.staged else { return }
        cache.disk?.unpin(below: t.path)
        cache.evict(t.version)
    }

    /// Keeps the files in the disk tier through eviction, within the pin budget; they must be cached.
    package func pin(_ targets: [WarmTarget]) -> Result<Void, SystemError> {
        guard let disk = cache.disk else { return .failure(SystemError("this mount has no disk tier to pin into")) }
        return disk.pin(targets.filter { !$0.staged }.map { ($0.version, $0.path) })
    }

    /// Lets go of the pins at or below `path`; returns how many files.
    package func unpin(below path: String) -> Int { cache.disk?.unpin(below: path) ?? 0 }
}
