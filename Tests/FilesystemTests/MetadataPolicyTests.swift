import Foundation
import Platform
import ObjectStore
import ReadCache
import Testing
import WriteBack

@testable import Filesystem

#if canImport(Glibc)
import Glibc
#endif

/// A path shows the same type, mode and owner whether a listing or a lookup reached it (issue: symlinks and
/// modes were lost to listings after a remount).
@Suite struct MetadataPolicyTests {
    let store = InMemoryObjectStore(buckets: ["b"])

    func makeFS(metadata: MetadataPolicy, writable: Bool = false) throws -> Filesystem {
        var policy = LinkPolicy()
        policy.metadata = metadata
        return try engineFilesystem(store: store, policy: policy, writable: writable)
    }

    func lookup(_ fs: Filesystem, _ parent: UInt64, _ name: String) async throws -> FileAttributes {
        try await withCheckedContinuation { c in fs.lookup(parent: parent, name: name) { c.resume(returning: $0) } }.get().attributes
    }

    func list(_ fs: Filesystem, _ ino: UInt64, returned: Bool = false) async throws -> [DirectoryEntry] {
        try await listAll(fs, ino, returned: returned)
    }

    /// A tree as lakecache, s3fs and rclone write it: a symlink, files with their own modes and owner, a plain object.
    func seedTree() {
        store.set(bucket: "b", key: "m/link", data: Array("../blobs/sha1".utf8), metadata: ["mode": String(UInt32(S_IFLNK) | 0o777)])
        store.set(bucket: "b", key: "m/secret", data: [UInt8](repeating: 1, count: 10_000), metadata: ["mode": String(UInt32(S_IFREG) | 0o600), "uid": "7", "gid": "8"])
        store.set(bucket: "b", key: "m/tool", data: [UInt8](repeating: 2, count: 100), metadata: ["mode": String(UInt32(S_IFREG) | 0o755)])
        store.set(bucket: "b", key: "m/plain", data: [UInt8](repeating: 3, count: 5_000))
    }

    func waitForReadAhead(_ fs: Filesystem) async throws {
        // Up to a minute: on a loaded machine the read-ahead's tasks can start late.
        for _ in 0..<6000 where fs.fetcher(fs.links.links[0]).backlog > 0 { try await Task.sleep(nanoseconds: 10_000_000) }
    }

    @Test func exactListingNeverShowsAGuess() async throws {
        seedTree()
        let fs = try makeFS(metadata: .exact)
        let dir = try await lookup(fs, 1, "m").ino
        // Whatever the read-ahead had learned when the page was served, no entry shows wrong attributes.
        for e in try await list(fs, dir) where e.exact {
            #expect(e.attributes.kind == (e.name == "link" ? .symlink : .file), "\(e.name)")
        }
        try await waitForReadAhead(fs)
        var listed: [String: FileAttributes] = [:]
        for e in try await list(fs, dir) {
            #expect(e.exact, "\(e.name): the read-ahead HEAD should have taught the listing")
            listed[e.name] = e.attributes
        }
        #expect(listed["link"]?.kind == .symlink && listed["link"]?.mode == 0o777)
        #expect(listed["secret"]?.mode == 0o600 && listed["secret"]?.uid == 7 && listed["secret"]?.gid == 8)
        #expect(listed["tool"]?.mode == 0o755)
        #expect(listed["plain"]?.mode == 0o644 && listed["plain"]?.uid == 1000 && listed["plain"]?.kind == .file)
        // A fresh mount that looks up by name first agrees with the listing.
        let other = try makeFS(metadata: .exact)
        let otherDir = try await lookup(other, 1, "m").ino
        for (name, a) in listed {
            let b = try await lookup(other, otherDir, name)
            #expect(a.kind == b.kind && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.size == b.size && a.mtime == b.mtime, "\(name)")
        }
    }

    @Test func exactPolicyAsksForEachListedFileOnce() async throws {
        for i in 0..<200 { store.set(bucket: "b", key: "d/f\(i)", data: [UInt8](repeating: 0, count: i)) }
        let fs = try makeFS(metadata: .exact)
        let dir = try await lookup(fs, 1, "d").ino
        func requests() -> Int { (store.requests["HeadObject"] ?? 0) + (store.requests["GetObject"] ?? 0) }
        let before = requests()
        _ = try await list(fs, dir)
        // Lookups race the read-ahead: each joins its HEAD, takes it from the queue, or finds it done.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 { group.addTask {
                let size = try await lookup(fs, dir, "f\(i)").size
                #expect(size == Int64(i))
            } }
            try await group.waitForAll()
        }
        try await waitForReadAhead(fs)
        // One request per file: a GET of the whole object (small ones; it fills the cache too), else a HEAD.
        #expect(requests() - before == 200)
        #expect((store.requests["GetObject"] ?? 0) > 100)
    }

    @Test func listingPolicyShowsPlainFilesEverywhere() async throws {
        seedTree()
        let fs = try makeFS(metadata: .listing, writable: true)
        let dir = try await lookup(fs, 1, "m").ino
        let heads = store.requests["HeadObject"] ?? 0
        let entries = try await list(fs, dir)
        #expect(entries.allSatisfy { $0.exact && $0.attributes.kind == .file && $0.attributes.mode == 0o644 && $0.attributes.uid == 1000 })
        #expect(store.requests["HeadObject"] ?? 0 == heads, "no HEAD per listed file")
        // By name, in another mount, before any listing: the same.
        let other = try makeFS(metadata: .listing)
        let otherDir = try await lookup(other, 1, "m").ino
        let link = try await lookup(other, otherDir, "link")
        #expect(link.kind == .file && link.mode == 0o644)
        let made = await withCheckedContinuation { c in
            fs.symlink(target: "x", parent: dir, name: "new", caller: Caller(uid: 0, gid: 0)) { c.resume(returning: $0) }
        }
        if case .failure(let e) = made { #expect(e.errno == EPERM) } else { Issue.record("a symlink under the listing policy") }
    }

    @Test func chmodOfAListedFileKeepsItsOtherMetadata() async throws {
        store.set(bucket: "b", key: "x/f", data: [1, 2, 3], metadata: ["mode": String(UInt32(S_IFREG) | 0o640), "owner-tag": "kept"])
        let fs = try makeFS(metadata: .exact, writable: true)
        let dir = try await lookup(fs, 1, "x").ino
        _ = try await list(fs, dir)
        try await waitForReadAhead(fs)
        // Listed with attributes now: readdirplus makes the node, without the object's user metadata.
        let entry = try #require(try await list(fs, dir, returned: true).first)
        #expect(entry.exact && entry.attributes.mode == 0o640)
        var change = AttributeChanges()
        change.mode = 0o600
        let changed = try await withCheckedContinuation { c in fs.setattr(entry.attributes.ino, change) { c.resume(returning: $0) } }.get()
        #expect(changed.attributes.mode == 0o600)
        let info = try await store.headObject(bucket: "b", key: "x/f")
        #expect(info.metadata["owner-tag"] == "kept")
        #expect(info.metadata["mode"] == String(UInt32(S_IFREG) | 0o600))
    }
}
