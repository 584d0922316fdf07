import Platform
import ObjectStore
import ReadCache
import Testing

@testable import Filesystem

/// What an object-store event does to the namespace, over the in-memory store: the bucket decides, the
/// event only says where to look.
@Suite struct EventEffectTests {
    let store = InMemoryObjectStore(buckets: ["b"])

    func makeFS(prefix: String = "", preload: Bool = false, exclude: [String] = []) throws -> Filesystem {
        var config = BlockCacheConfiguration()
        config.blockSize = 1 << 20
        config.memoryBytes = 16 << 20
        let cache = BlockCache(store: store, configuration: config, disk: nil)
        var policy = LinkPolicy()
        policy.metadataTTL = 3600  // cached for an hour: only an event changes what the mount shows
        policy.negativeTTL = 3600
        policy.preloadOnCreate = preload
        policy.filter = KeyFilter(include: [], exclude: try exclude.map { try KeyGlob($0) })
        return Filesystem(store: store, cache: cache, bucket: BucketURL(bucket: "b", prefix: prefix), policy: policy, options: FilesystemOptions(uid: 0, gid: 0))
    }

    func names(_ fs: Filesystem, _ ino: UInt64) async throws -> [String] {
        let handle = try await withCheckedContinuation { c in fs.opendir(ino) { c.resume(returning: $0) } }.get()
        defer { fs.releasedir(handle) }
        var all: [String] = []
        var offset = 0
        while true {
            let page = try await withCheckedContinuation { c in fs.readdir(handle, offset: offset, limit: 100) { c.resume(returning: $0) } }.get()
            if page.isEmpty { break }
            all += page.map(\.name)
            offset = page.last!.offset
        }
        return all.filter { $0 != "." && $0 != ".." }.sorted()
    }

    func size(_ fs: Filesystem, _ name: String) async -> Int64? {
        let r = await withCheckedContinuation { c in fs.lookup(parent: 1, name: name) { c.resume(returning: $0) } }
        return try? r.get().attributes.size
    }

    @Test func changedAppearedVanishedAndUnchanged() async throws {
        store.set(bucket: "b", key: "p/a", data: [1, 2, 3])
        store.set(bucket: "b", key: "p/gone", data: [1])
        let fs = try makeFS(prefix: "p/")
        let first = try await names(fs, 1)
        #expect(first == ["a", "gone"], "\(first)")
        store.set(bucket: "b", key: "p/a", data: [1, 2, 3, 4, 5])
        store.set(bucket: "b", key: "p/new", data: [9])
        try await store.deleteObject(bucket: "b", key: "p/gone")
        #expect(try await names(fs, 1) == ["a", "gone"], "a listing cached for an hour does not see the bucket change")

        #expect(await fs.objectChanged(bucket: "b", key: "p/a").map(\.change) == [.changed])
        #expect(await fs.objectChanged(bucket: "b", key: "p/new").map(\.change) == [.appeared])
        #expect(await fs.objectChanged(bucket: "b", key: "p/gone").map(\.change) == [.vanished])
        #expect(await fs.objectChanged(bucket: "b", key: "p/a").map(\.change) == [.unchanged], "a redelivered event")
        #expect(try await names(fs, 1) == ["a", "new"])
        #expect(await size(fs, "a") == 5)

        // Outside the link's prefix, or excluded: no link shows it, nothing happens.
        #expect(!fs.shows(bucket: "b", key: "other/x") && !fs.shows(bucket: "c", key: "p/a"))
        #expect(await fs.objectChanged(bucket: "b", key: "other/x").isEmpty)
    }

    @Test func preloadTargetsOnlyWhereTheLinkAsksAndOnlyForWhatExists() async throws {
        store.set(bucket: "b", key: "m.bin", data: [UInt8](repeating: 7, count: 3000))
        let lazy = try makeFS()
        #expect(await lazy.objectChanged(bucket: "b", key: "m.bin").first?.preload == nil)
        let eager = try makeFS(preload: true, exclude: ["*.tmp"])
        let effect = try #require(await eager.objectChanged(bucket: "b", key: "m.bin").first)
        #expect(effect.preload?.size == 3000 && effect.preload?.path == "m.bin")
        #expect(await eager.objectChanged(bucket: "b", key: "none.bin").first?.preload == nil, "nothing to preload for a deleted key")
        #expect(!eager.shows(bucket: "b", key: "x.tmp"), "an excluded key is not shown, so not acted on")
    }
}
