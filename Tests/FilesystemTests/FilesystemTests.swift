import Foundation
import Platform
import ObjectStore
import ReadCache
import Synchronization
import Testing

@testable import Filesystem

/// The namespace engine driven directly, over the in-memory store: no mount, no HTTP.
@Suite struct FilesystemTests {
    let store = InMemoryObjectStore(buckets: ["b"])

    func makeFS(prefix: String = "", ttl: Double? = 60, metadata: MetadataPolicy = .exact) -> Filesystem {
        var config = BlockCacheConfiguration()
        config.blockSize = 1 << 20
        config.memoryBytes = 16 << 20
        let cache = BlockCache(store: store, configuration: config, disk: nil)
        var policy = LinkPolicy()
        policy.metadataTTL = ttl
        policy.negativeTTL = ttl
        policy.metadata = metadata
        return Filesystem(store: store, cache: cache, bucket: BucketURL(bucket: "b", prefix: prefix), policy: policy, options: FilesystemOptions(uid: 1000, gid: 1000))
    }

    /// A read's bytes, copied while the reply runs (they are valid only then).
    func read(_ fs: Filesystem, _ handle: UInt64, offset: Int, size: Int) async throws -> [UInt8] {
        try await withCheckedContinuation { c in fs.read(handle, offset: Int64(offset), size: size) { c.resume(returning: $0.map { $0.copyBytes() }) } }.get()
    }

    func lookup(_ fs: Filesystem, _ parent: UInt64, _ name: String) async -> Result<EntryReply, FilesystemError> {
        await withCheckedContinuation { c in fs.lookup(parent: parent, name: name) { c.resume(returning: $0) } }
    }

    func list(_ fs: Filesystem, _ ino: UInt64) async throws -> [DirectoryEntry] {
        let handle = try await withCheckedContinuation { c in fs.opendir(ino) { c.resume(returning: $0) } }.get()
        defer { fs.releasedir(handle) }
        var all: [DirectoryEntry] = []
        var offset = 0
        while true {
            let page = try await withCheckedContinuation { c in fs.readdir(handle, offset: offset, limit: 100) { c.resume(returning: $0) } }.get()
            if page.isEmpty { break }
            all += page
            offset = page.last!.offset
        }
        return all
    }

    @Test func lookupFindsFilesAndDirectoriesWithStableInodes() async throws {
        store.set(bucket: "b", key: "data/a.bin", data: [1, 2, 3], metadata: ["mode": "33152", "uid": "7"])
        store.set(bucket: "b", key: "data/sub/x", data: [])
        let fs = makeFS()
        let data = try await lookup(fs, 1, "data").get()
        #expect(data.attributes.kind == .directory)
        let file = try await lookup(fs, data.attributes.ino, "a.bin").get()
        #expect(file.attributes.kind == .file && file.attributes.size == 3)
        #expect(file.attributes.mode == 0o600 && file.attributes.uid == 7 && file.attributes.gid == 1000)
        // Forget, then look up again: the same inode number.
        fs.forget(file.attributes.ino, count: 1)
        #expect(try await lookup(fs, data.attributes.ino, "a.bin").get().attributes.ino == file.attributes.ino)
        if case .failure(let e) = await lookup(fs, data.attributes.ino, "missing") { #expect(e.errno == ENOENT) } else { Issue.record("found a missing file") }
    }

    @Test func prefixMountShowsOnlyItsSubtree() async throws {
        store.set(bucket: "b", key: "train/x.bin", data: [1])
        store.set(bucket: "b", key: "other/y.bin", data: [2])
        let fs = makeFS(prefix: "train/")
        let names = try await list(fs, 1).map(\.name)
        #expect(names == [".", "..", "x.bin"])
    }

    @Test func listingAppliesTheNamingRules() async throws {
        for key in ["a//b", "d/./x", "d/../y", "long/" + String(repeating: "z", count: 256), "x", "x/inner", "ok", "dir/", "dir/f"] {
            store.set(bucket: "b", key: key, data: Array(key.utf8))
        }
        let fs = makeFS()
        let root = try await list(fs, 1)
        #expect(root.map(\.name).sorted() == [".", "..", "a", "d", "dir", "long", "ok", "x"])
        #expect(root.first { $0.name == "x" }?.attributes.kind == .directory)
        #expect(fs.links.links[0].counters.shadowedFiles.load(ordering: .relaxed) == 1)
        for dir in ["a", "d", "long"] {
            let ino = try await lookup(fs, 1, dir).get().attributes.ino
            #expect(try await list(fs, ino).map(\.name) == [".", ".."], "\(dir) should look empty")
        }
        #expect(fs.links.links[0].counters.skippedKeys.load(ordering: .relaxed) == 4)
    }

    @Test func pagedListingOf2500Entries() async throws {
        for i in 0..<2500 { store.set(bucket: "b", key: String(format: "big/%05d", i), data: []) }
        let fs = makeFS()
        let ino = try await lookup(fs, 1, "big").get().attributes.ino
        let entries = try await list(fs, ino)
        #expect(entries.count == 2502)
        #expect(Set(entries.map(\.offset)).count == 2502, "offsets must be unique cookies")
        #expect((store.requests["ListObjectsV2"] ?? 0) >= 3, "a 2,500-entry directory takes three pages")
    }

    @Test func listingPolicyAnswersLookupsWithoutHeads() async throws {
        for i in 0..<50 { store.set(bucket: "b", key: "d/f\(i)", data: [UInt8](repeating: 0, count: 4096 + i)) }
        let fs = makeFS(metadata: .listing)
        let ino = try await lookup(fs, 1, "d").get().attributes.ino
        _ = try await list(fs, ino)
        let heads = store.requests["HeadObject"] ?? 0
        for i in 0..<50 {
            let e = try await lookup(fs, ino, "f\(i)").get()
            #expect(e.attributes.size == Int64(4096 + i))
        }
        if case .success = await lookup(fs, ino, "nope") { Issue.record("a complete listing must answer ENOENT") }
        #expect((store.requests["HeadObject"] ?? 0) == heads)
    }

    @Test func readReturnsBytesAndRefusesWrites() async throws {
        let data = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        store.set(bucket: "b", key: "f", data: data)
        let fs = makeFS()
        let ino = try await lookup(fs, 1, "f").get().attributes.ino
        let denied = await withCheckedContinuation { c in fs.open(ino, flags: O_WRONLY) { c.resume(returning: $0) } }
        if case .failure(let e) = denied { #expect(e.errno == EROFS) } else { Issue.record("opened for writing") }
        let opened = try await withCheckedContinuation { c in fs.open(ino, flags: O_RDONLY) { c.resume(returning: $0) } }.get()
        for (off, len) in [(0, 4096), (1_048_000, 1000), (2_999_000, 4096)] {
            let bytes = try await read(fs, opened.handle, offset: off, size: len)
            #expect(bytes == Array(data[off..<min(off + len, data.count)]))
        }
        fs.release(handle: opened.handle)
    }

    @Test func changedObjectIsReadAtItsNewVersion() async throws {
        store.set(bucket: "b", key: "f", data: [UInt8](repeating: 1, count: 3 << 20))
        let fs = makeFS()
        let invalidated = Atomic<Int>(0)
        fs.setNotifier(KernelNotifier(inode: { _ in invalidated.add(1, ordering: .relaxed) }))
        let ino = try await lookup(fs, 1, "f").get().attributes.ino
        let opened = try await withCheckedContinuation { c in fs.open(ino, flags: O_RDONLY) { c.resume(returning: $0) } }.get()
        store.set(bucket: "b", key: "f", data: [UInt8](repeating: 2, count: 3 << 20))
        #expect(try await read(fs, opened.handle, offset: 2 << 20, size: 10) == [UInt8](repeating: 2, count: 10))
        #expect(invalidated.load(ordering: .relaxed) == 1)
    }

    @Test func forgetBoundsMemory() async throws {
        for i in 0..<2000 { store.set(bucket: "b", key: "w/f\(i)", data: []) }
        let fs = makeFS()
        let ino = try await lookup(fs, 1, "w").get().attributes.ino
        _ = try await list(fs, ino)
        for i in 0..<2000 {
            let e = try await lookup(fs, ino, "f\(i)").get()
            fs.forget(e.attributes.ino, count: 1)
        }
        #expect(fs.sizes.nodes <= 3, "forgotten inodes must not stay in memory")
    }

    @Test func accessFollowsModeBits() async throws {
        store.set(bucket: "b", key: "f", data: [1], metadata: ["mode": "33184", "uid": "1000", "gid": "2000"])  // 0640
        let fs = makeFS()
        let ino = try await lookup(fs, 1, "f").get().attributes.ino
        #expect(fs.access(ino, mask: R_OK, uid: 1000, gid: 1) == 0)
        #expect(fs.access(ino, mask: R_OK, uid: 5, gid: 2000) == 0)
        #expect(fs.access(ino, mask: R_OK, uid: 5, gid: 5) == EACCES)
        #expect(fs.access(ino, mask: W_OK, uid: 1000, gid: 1) == EROFS)
    }
}
