import Foundation
import ObjectStore
import Platform
import ReadCache
import Testing
import WriteBack

@testable import Filesystem

/// Listings of sibling directories fetched ahead of a walk (`Filesystem+ListingReadAhead.swift`), over the
/// in-memory store, which counts the LISTs.
@Suite struct ListingReadAheadTests {
    let store = InMemoryObjectStore(buckets: ["b"])
    static let directories = 20

    func makeFS(metadata: MetadataPolicy = .listing, writable: Bool = false, ahead: Int = 8) throws -> Filesystem {
        var policy = LinkPolicy()
        policy.metadata = metadata
        // An hour: a loaded test run can take longer than the default minute, and an expired listing is
        // listed again, which the LIST counts here would take for read-ahead gone wrong.
        policy.metadataTTL = 3600
        var options = FilesystemOptions(uid: 1000, gid: 1000)
        options.listingReadAhead = ahead
        return try engineFilesystem(store: store, policy: policy, writable: writable, options: options)
    }

    /// The seeded tree, a filesystem over it, and `w` listed: its inode and the LISTs made so far.
    func walkRoot(metadata: MetadataPolicy = .listing, writable: Bool = false, ahead: Int = 8) async throws -> (fs: Filesystem, w: UInt64, lists: Int) {
        seed()
        let fs = try makeFS(metadata: metadata, writable: writable, ahead: ahead)
        let w = try await lookup(fs, 1, "w")
        _ = try await list(fs, w)
        return (fs, w, lists)
    }

    /// `w/d00` … `w/d19`, three small files each, and a file beside the directories.
    func seed() {
        for d in 0..<Self.directories {
            for f in 0..<3 { store.set(bucket: "b", key: "w/d\(String(format: "%02d", d))/f\(f)", data: [UInt8](repeating: UInt8(d), count: 100 + f)) }
        }
        store.set(bucket: "b", key: "w/readme", data: Array("hi".utf8))
    }

    func lookup(_ fs: Filesystem, _ parent: UInt64, _ name: String) async throws -> UInt64 {
        try await withCheckedContinuation { c in fs.lookup(parent: parent, name: name) { c.resume(returning: $0) } }.get().attributes.ino
    }

    func list(_ fs: Filesystem, _ ino: UInt64) async throws -> [DirectoryEntry] { try await listAll(fs, ino) }

    /// Opens and closes a directory without reading it.
    func open(_ fs: Filesystem, _ ino: UInt64) async throws {
        let handle = try await withCheckedContinuation { c in fs.opendir(ino) { c.resume(returning: $0) } }.get()
        fs.releasedir(handle)
    }

    var lists: Int { store.requests["ListObjectsV2", default: 0] }
    func readAheads(_ fs: Filesystem) -> Int { fs.links.links[0].counters.listingReadAheads.load(ordering: .relaxed) }

    func settle(_ fs: Filesystem) async throws {
        for _ in 0..<6000 where fs.listingFlights.count > 0 { try await Task.sleep(nanoseconds: 10_000_000) }
    }

    /// A walk in listing order: each directory is listed once, all but the first two ahead of the walk, and
    /// each shows exactly what the bucket holds.
    @Test func aWalkListsEachDirectoryOnce() async throws {
        let (fs, w, before) = try await walkRoot()
        // From the cached listing: no LIST of its own.
        let top = try await list(fs, w)
        #expect(top.filter { $0.attributes.kind == .directory }.count == Self.directories)
        for d in 0..<Self.directories {
            let name = "d\(String(format: "%02d", d))"
            let ino = try await lookup(fs, w, name)
            let entries = try await list(fs, ino)
            #expect(entries.map(\.name).sorted() == ["f0", "f1", "f2"], "\(name)")
            #expect(entries.map(\.attributes.size).sorted() == [100, 101, 102], "\(name)")
        }
        try await settle(fs)
        #expect(lists - before == Self.directories, "\(lists - before) LISTs for \(Self.directories) directories")
        #expect(readAheads(fs) == Self.directories - 2)
    }

    /// One directory opened alone, or two that are not adjacent, is not a walk: nothing is listed ahead.
    @Test func directoriesOpenedApartAreNotReadAhead() async throws {
        let (fs, w, before) = try await walkRoot()
        _ = try await list(fs, try await lookup(fs, w, "d05"))
        _ = try await list(fs, try await lookup(fs, w, "d07"))
        try await settle(fs)
        #expect(lists - before == 2)
        #expect(readAheads(fs) == 0)
    }

    /// `listingReadAhead` bounds how far ahead of the walk the listings go.
    @Test func theWalkIsLedByAtMostTheBound() async throws {
        let (fs, w, before) = try await walkRoot(ahead: 3)
        _ = try await list(fs, try await lookup(fs, w, "d00"))
        _ = try await list(fs, try await lookup(fs, w, "d01"))
        try await settle(fs)
        #expect(lists - before == 2 + 3)
        #expect(readAheads(fs) == 3)
    }

    /// 0 turns it off.
    @Test func zeroTurnsItOff() async throws {
        let (fs, w, before) = try await walkRoot(ahead: 0)
        for d in 0..<4 { _ = try await list(fs, try await lookup(fs, w, "d0\(d)")) }
        try await settle(fs)
        #expect(lists - before == 4)
        #expect(readAheads(fs) == 0)
    }

    /// A directory of more than one page is read ahead by its first page; the walk's readdir goes on from
    /// there, so each page is listed once.
    @Test func aLargeDirectoryIsReadAheadByItsFirstPage() async throws {
        let (fs, w, before) = try await walkRoot()
        // d02 is not listed yet: it holds these when it is.
        for f in 3..<1500 { store.set(bucket: "b", key: "w/d02/f\(f)", data: [1]) }
        _ = try await list(fs, try await lookup(fs, w, "d00"))
        _ = try await list(fs, try await lookup(fs, w, "d01"))
        try await settle(fs)
        #expect(lists - before == 2 + 8)
        let d02ino = try await lookup(fs, w, "d02")
        let d02 = try await list(fs, d02ino)
        #expect(d02.count == 1500)
        #expect(Set(d02.map(\.name)).count == 1500)
        try await settle(fs)
        // The second page of d02, and d10: opening d02 keeps the walk led by eight.
        #expect(lists - before == 2 + 8 + 1 + 1)
        #expect(try await list(fs, try await lookup(fs, w, "d03")).count == 3)
        try await settle(fs)
        #expect(lists - before == 2 + 8 + 1 + 1 + 1)
    }

    /// A directory opened while its read-ahead LIST is out waits for that LIST instead of sending its own.
    @Test func anOpenDuringTheReadAheadJoinsIt() async throws {
        let (fs, w, _) = try await walkRoot()
        _ = try await list(fs, try await lookup(fs, w, "d00"))
        let before = lists
        // Opening d01 starts the read-ahead of d02 … d09, whose LISTs take a while.
        for _ in 0..<8 { store.delayNext("ListObjectsV2", by: .milliseconds(500)) }
        try await open(fs, try await lookup(fs, w, "d01"))
        #expect(fs.listingFlights.count == 8, "the read-ahead LISTs should be out")
        let entries = try await list(fs, try await lookup(fs, w, "d02"))
        #expect(entries.map(\.name).sorted() == ["f0", "f1", "f2"])
        try await settle(fs)
        #expect(lists - before == 8, "\(lists - before) LISTs: d02 was listed twice")
    }

    /// A change this mount makes to a cached listing while a read-ahead LIST is out discards that LIST's
    /// answer, which may predate the change; the directory is listed again when opened.
    @Test func aChangeDuringTheReadAheadDiscardsIt() async throws {
        let (fs, w, _) = try await walkRoot(writable: true)
        _ = try await list(fs, try await lookup(fs, w, "d00"))
        // Opening d01 starts the read-ahead of d02 … d09; an unlink while their LISTs are out changes a
        // cached listing.
        for _ in 0..<8 { store.delayNext("ListObjectsV2", by: .milliseconds(500)) }
        try await open(fs, try await lookup(fs, w, "d01"))
        #expect(fs.listingFlights.count == 8)
        let d00 = try await lookup(fs, w, "d00")
        _ = try await lookup(fs, d00, "f0")
        try await withCheckedContinuation { c in fs.unlink(parent: d00, name: "f0") { c.resume(returning: $0) } }.get()
        try await settle(fs)
        #expect(readAheads(fs) == 0, "a read-ahead LIST answered across a change was kept")
        let before = lists
        let entries = try await list(fs, try await lookup(fs, w, "d03"))
        #expect(entries.map(\.name).sorted() == ["f0", "f1", "f2"])
        #expect(lists - before == 1)
    }

    /// Under the `exact` policy a listing read ahead starts its files' metadata fetches: once they land, the
    /// walk finds every file of a later directory described, with no request of its own.
    @Test func exactPolicyReadAheadLearnsTheFilesToo() async throws {
        let (fs, w, _) = try await walkRoot(metadata: .exact)
        _ = try await list(fs, try await lookup(fs, w, "d00"))
        _ = try await list(fs, try await lookup(fs, w, "d01"))
        try await settle(fs)
        for _ in 0..<6000 where fs.fetcher(fs.links.links[0]).backlog > 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(readAheads(fs) == 8)
        // d05 came from the read-ahead, and its files from the metadata fetches that started: looking them up
        // (as a walk's stat does) asks the bucket nothing.
        #expect(fs.listings.withLock { $0.listings["w/d05"]?.entries.allSatisfy { $0.posix != nil } } == true)
        let before = store.requests
        let d05 = try await lookup(fs, w, "d05")
        for f in 0..<3 {
            let attributes = try await withCheckedContinuation { c in fs.lookup(parent: d05, name: "f\(f)") { c.resume(returning: $0) } }.get().attributes
            #expect(attributes.size == Int64(100 + f))
        }
        #expect(store.requests == before, "the walk's lookups in d05 made requests: \(store.requests) against \(before)")
    }
}
