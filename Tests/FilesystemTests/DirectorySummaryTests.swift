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

/// The `summary` metadata policy: a directory's summary object describes its files by name, ETag and size,
/// so that a listing needs no HEAD per file, and a stale entry is ignored rather than applied.
@Suite struct DirectorySummaryTests {
    /// The metadata policy tests' store and mount builder, with this suite's policy.
    let base = MetadataPolicyTests()
    var store: InMemoryObjectStore { base.store }

    /// The summary object of directory `m`, if there is one.
    var summaryBytes: [UInt8]? { store.contents(bucket: "b", prefix: "m/")["m/" + DirectorySummary.objectName] }

    func makeFS(writable: Bool = true) throws -> Filesystem { try base.makeFS(metadata: .summary, writable: writable) }

    func lookup(_ fs: Filesystem, _ parent: UInt64, _ name: String) async -> Result<EntryReply, FilesystemError> {
        await withCheckedContinuation { c in fs.lookup(parent: parent, name: name) { c.resume(returning: $0) } }
    }

    func list(_ fs: Filesystem, _ ino: UInt64) async throws -> [String: DirectoryEntry] {
        Dictionary(uniqueKeysWithValues: try await base.list(fs, ino).map { ($0.name, $0) })
    }

    func chmod(_ fs: Filesystem, _ ino: UInt64, _ mode: UInt32) async throws {
        var change = AttributeChanges()
        change.mode = mode
        _ = try await withCheckedContinuation { c in fs.setattr(ino, change) { c.resume(returning: $0) } }.get()
    }

    /// Objects written elsewhere, then given modes, a symlink and a FIFO through a summary mount.
    func writeTree() async throws -> Filesystem {
        store.set(bucket: "b", key: "m/secret", data: [UInt8](repeating: 1, count: 10_000))
        store.set(bucket: "b", key: "m/tool", data: [UInt8](repeating: 2, count: 100))
        store.set(bucket: "b", key: "m/plain", data: [UInt8](repeating: 3, count: 5_000))
        let fs = try makeFS()
        let dir = try await lookup(fs, 1, "m").get().attributes.ino
        // Looked up here (a HEAD): what the mount learned of a file it did not change is described too. Before
        // the changes: a lookup is no change, so one after them would reach the summary only if no rewrite
        // had run yet (on a loaded run one can, a quiet second after any change).
        _ = try await lookup(fs, dir, "plain").get()
        try await chmod(fs, try await lookup(fs, dir, "secret").get().attributes.ino, 0o600)
        try await chmod(fs, try await lookup(fs, dir, "tool").get().attributes.ino, 0o755)
        _ = try await withCheckedContinuation { c in
            fs.symlink(target: "../blobs/sha1", parent: dir, name: "link", caller: Caller(uid: 7, gid: 8)) { c.resume(returning: $0) }
        }.get()
        _ = try await withCheckedContinuation { c in
            fs.mknod(parent: dir, name: "pipe", mode: UInt32(S_IFIFO) | 0o640, rdev: 0, caller: Caller(uid: 0, gid: 0)) { c.resume(returning: $0) }
        }.get()
        await fs.flushSummaries()
        return fs
    }

    @Test func summaryRoundTripsAndRefusesWhatIsNotOne() throws {
        var p = PosixMetadata(mode: UInt32(S_IFLNK) | 0o777, uid: 7, gid: nil, mtime: Timestamp(seconds: 1_700_000_000, nanoseconds: 5))
        p.rdev = 259
        p.atime = Timestamp(seconds: 3, nanoseconds: 999_999_999)
        let summary = DirectorySummary(entries: [
            "tab\tand\nnewline %": DirectorySummary.Entry(etag: "\"abc-3\"", size: 12, posix: p),
            "ünïcode": DirectorySummary.Entry(etag: "e", size: 0, posix: .plain),
        ])
        let bytes = summary.encoded()
        #expect(DirectorySummary(parsing: bytes[...]) == summary)
        let text = String(decoding: bytes, as: UTF8.self)
        for bad in [
            "",
            "lakecache-directory-summary 2\n",
            text.replacingOccurrences(of: "\t12\t", with: "\t-12\t"),
            text.replacingOccurrences(of: "\t259\t", with: "\tx\t"),
            text + "a\tb\t1\t\t\t\t\t\n",  // eight fields
            text + "a%2Fb\tb\t1\t\t\t\t\t\t\n",  // not a name
            text + "half",  // torn
            text.replacingOccurrences(of: ".999999999", with: ".1000000000"),
        ] {
            #expect(DirectorySummary(parsing: Array(bad.utf8)[...]) == nil, "\(bad.debugDescription)")
        }
        #expect(DirectorySummary(parsing: Array((DirectorySummary.header + "\n").utf8)[...])?.entries.isEmpty == true)
    }

    @Test func aSummarisedDirectoryListsExactlyWithoutAHeadPerFile() async throws {
        let fs = try await writeTree()
        let bytes = try #require(summaryBytes)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix(DirectorySummary.header + "\n"))
        #expect(text.split(separator: "\n").count == 6, "header and five files: \(text)")

        // A fresh mount: every entry is exact from the listing alone (one LIST and the summary's GET).
        let fresh = try makeFS(writable: false)
        let dir = try await lookup(fresh, 1, "m").get().attributes.ino
        let before = store.requests
        let listed = try await list(fresh, dir)
        func delta(_ op: String) -> Int { (store.requests[op] ?? 0) - (before[op] ?? 0) }
        #expect(Set(listed.keys) == ["link", "pipe", "plain", "secret", "tool"], "the summary object is not shown")
        #expect(listed.values.allSatisfy { $0.exact })
        #expect(listed["link"]?.attributes.kind == .symlink && listed["link"]?.attributes.uid == 7 && listed["link"]?.attributes.gid == 8)
        #expect(listed["pipe"]?.attributes.kind == .fifo && listed["pipe"]?.attributes.mode == 0o640)
        #expect(listed["secret"]?.attributes.mode == 0o600 && listed["tool"]?.attributes.mode == 0o755)
        #expect(listed["plain"]?.attributes.mode == 0o644 && listed["plain"]?.attributes.kind == .file)
        #expect(delta("HeadObject") == 0)
        #expect(delta("GetObject") == 1, "the summary only")
        #expect(delta("ListObjectsV2") == 1)
        // Lookups after the listing agree with it and ask nothing more.
        for (name, e) in listed {
            let a = try await lookup(fresh, dir, name).get().attributes
            #expect(a.kind == e.attributes.kind && a.mode == e.attributes.mode && a.uid == e.attributes.uid, "\(name)")
        }
        #expect(delta("HeadObject") == 0 && delta("GetObject") == 1)
        // The summary's name is not a file of the mount.
        guard case .failure(let e) = await lookup(fresh, dir, DirectorySummary.objectName) else { Issue.record("summary shown by lookup"); return }
        #expect(e.errno == ENOENT)
        // Nor can a file of that name be made, which would replace the summary.
        let made = await withCheckedContinuation { c in
            fs.mknod(parent: dir, name: DirectorySummary.objectName, mode: UInt32(S_IFREG) | 0o644, rdev: 0, caller: Caller(uid: 0, gid: 0)) { c.resume(returning: $0) }
        }
        guard case .failure(let refused) = made else { Issue.record("a file named like the summary was made"); return }
        #expect(refused.errno == EPERM && refused.message.contains("reserved"))
    }

    @Test func aStaleEntryIsIgnoredAndThatFileIsHeaded() async throws {
        _ = try await writeTree()
        // Another tool rewrites one file: same name, new ETag, no metadata.
        store.set(bucket: "b", key: "m/secret", data: [UInt8](repeating: 9, count: 10_000))
        let fresh = try makeFS(writable: false)
        let dir = try await lookup(fresh, 1, "m").get().attributes.ino
        let listed = try await list(fresh, dir)
        #expect(listed["secret"].map { !$0.exact || $0.attributes.mode == 0o644 } == true, "the 0600 entry of the old version must not apply")
        #expect(listed["tool"]?.exact == true && listed["tool"]?.attributes.mode == 0o755)
        let secret = try await lookup(fresh, dir, "secret").get().attributes
        #expect(secret.mode == 0o644, "the HEAD of the new version decides")
    }

    @Test func unlinkAndRenameLeaveTheSummary() async throws {
        let fs = try await writeTree()
        let dir = try await lookup(fs, 1, "m").get().attributes.ino
        _ = try await withCheckedContinuation { c in fs.unlink(parent: dir, name: "tool") { c.resume(returning: $0) } }.get()
        _ = try await withCheckedContinuation { c in
            fs.rename(parent: dir, name: "secret", newParent: dir, newName: "moved", flags: 0) { c.resume(returning: $0) }
        }.get()
        await fs.flushSummaries()
        let bytes = try #require(summaryBytes)
        let summary = try #require(DirectorySummary(parsing: bytes[...]))
        #expect(summary.entries["tool"] == nil && summary.entries["secret"] == nil)
        #expect(summary.entries["moved"]?.posix.mode.map { $0 & 0o7777 } == 0o600, "a rename keeps the object's metadata, and its summary entry follows")
        // Every file gone: the summary goes too.
        for name in ["moved", "link", "pipe", "plain"] {
            _ = try await withCheckedContinuation { c in fs.unlink(parent: dir, name: name) { c.resume(returning: $0) } }.get()
        }
        await fs.flushSummaries()
        #expect(summaryBytes == nil)
    }

    /// `rm -rf` right after the last unlink: a summary that is still in the bucket (not rewritten yet, or
    /// left by another mount) is the directory's own object, not an entry, for rmdir and for a rename over
    /// an empty directory.
    @Test func aSummaryDoesNotMakeADirectoryNonEmpty() async throws {
        let fs = try await writeTree()
        let dir = try await lookup(fs, 1, "m").get().attributes.ino
        let written = try #require(summaryBytes)
        for name in ["link", "pipe", "plain", "secret", "tool"] {
            _ = try await withCheckedContinuation { c in fs.unlink(parent: dir, name: name) { c.resume(returning: $0) } }.get()
        }
        // The rewrite comes a quiet second after the last change, and a loaded machine may reach it before
        // rmdir does. Finish it, then put the old summary back: no rewrite is pending, so it stays.
        await fs.flushSummaries()
        store.set(bucket: "b", key: "m/" + DirectorySummary.objectName, data: written)
        #expect(summaryBytes != nil)
        _ = try await withCheckedContinuation { c in fs.rmdir(parent: 1, name: "m") { c.resume(returning: $0) } }.get()
        #expect(store.contents(bucket: "b", prefix: "m/").isEmpty, "rmdir took the summary too")

        // A rename over an empty directory that has a summary of its own.
        store.set(bucket: "b", key: "x/", data: [])
        store.set(bucket: "b", key: "x/" + DirectorySummary.objectName, data: DirectorySummary(entries: ["f": .init(etag: "e", size: 1, posix: .plain)]).encoded())
        store.set(bucket: "b", key: "y/f", data: [1])
        _ = try await lookup(fs, 1, "x").get()
        _ = try await lookup(fs, 1, "y").get()
        _ = try await withCheckedContinuation { c in fs.rename(parent: 1, name: "y", newParent: 1, newName: "x", flags: 0) { c.resume(returning: $0) } }.get()
        #expect(Set(store.contents(bucket: "b", prefix: "x/").keys) == ["x/", "x/f"], "the replaced directory's summary went: \(store.contents(bucket: "b", prefix: "x/").keys.sorted())")
    }
}
