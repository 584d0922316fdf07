import Foundation
import ObjectStore
import Platform
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import Filesystem

/// The compact forms the node table and listings keep per entry give back exactly what was put in.
@Suite struct CompactStateTests {
    @Test func packedETagsRoundTripEveryShape() {
        let shapes = [
            "\"d41d8cd98f00b204e9800998ecf8427e\"", "d41d8cd98f00b204e9800998ecf8427e", "\"0000000000000000000000000000000a-12\"",
            "ffffffffffffffffffffffffffffffff-999999999", "",
            // Not the packed shape: kept as text, and still given back exactly.
            "\"D41D8CD98F00B204E9800998ECF8427E\"", "\"d41d8cd98f00b204e9800998ecf8427e", "d41d8cd98f00b204e9800998ecf8427e-0",
            "d41d8cd98f00b204e9800998ecf8427e-01", "d41d8cd98f00b204e9800998ecf8427e-1234567890", "d41d8cd98f00b204e9800998ecf8427e-",
            "d41d8cd98f00b204e9800998ecf8427", "\"", "W/\"abc\"", "d41d8cd98f00b204e9800998ecf8427e-1x", "é-not-hex-at-all-but-long-enough-00",
        ]
        for e in shapes {
            #expect(PackedETag(e).string == e)
            #expect(PackedETag(e) == PackedETag(e))
        }
        #expect(PackedETag(shapes[0]) != PackedETag(shapes[1]), "a quoted and an unquoted ETag differ")
        #expect(PackedETag("\"\(String(repeating: "a", count: 32))-2\"") != PackedETag("\"\(String(repeating: "a", count: 32))-3\""))
    }

    /// The kind and mode share one word; each gives back what was put in, whatever the other does.
    @Test func attributesKeepKindAndModeApart() {
        let kinds: [FileAttributes.Kind] = [.file, .directory, .symlink, .fifo, .socket, .characterDevice, .blockDevice]
        for kind in kinds {
            for mode: UInt32 in [0, 0o644, 0o7777, UInt32(S_IFREG) | 0o755, 0o177777] {
                var a = FileAttributes(ino: 9, kind: kind, size: 1, mtime: Timestamp(seconds: 1), mode: mode, uid: 1, gid: 2)
                #expect(a.kind == kind && a.mode == mode)
                a.mode = 0o600
                #expect(a.kind == kind && a.mode == 0o600)
                a.kind = .file
                #expect(a.kind == .file && a.mode == 0o600)
            }
        }
        #expect(FileAttributes(ino: 9, kind: .file, size: 1, mtime: Timestamp(seconds: 1), mode: 0o644, uid: 1, gid: 2)
            != FileAttributes(ino: 9, kind: .directory, size: 1, mtime: Timestamp(seconds: 1), mode: 0o644, uid: 1, gid: 2))
    }

    /// A node's rare fields are out of line, and setting one keeps the others.
    @Test func nodeExtrasKeepEachOther() {
        var n = node(5, "d/f")
        #expect(n.metadata == nil && n.kernelCachedETag == nil && n.symlinkTarget == nil)
        n.metadata = ["mode": "33188"]
        n.kernelCachedETag = "e1"
        n.symlinkTarget = "../t"
        #expect(n.metadata == ["mode": "33188"] && n.kernelCachedETag == "e1" && n.symlinkTarget == "../t")
        n.metadata = nil
        #expect(n.metadata == nil && n.kernelCachedETag == "e1" && n.symlinkTarget == "../t")
        n.kernelCachedETag = nil
        n.symlinkTarget = nil
        #expect(n.metadata == nil && n.kernelCachedETag == nil && n.symlinkTarget == nil)
    }

    /// What a walk keeps per entry: a node the kernel holds and the listing entry it came from. A field
    /// added to either shows here first, and in `scripts/walk-memory.py`'s figure.
    @Test func perEntryRecordsStayAtTheirSize() {
        #expect(MemoryLayout<FileAttributes>.stride == 48)
        #expect(MemoryLayout<Node>.stride <= 136)
        #expect(MemoryLayout<ListingEntry>.stride <= 64)
    }

    /// A listing entry's one-word mtime gives back every time, the ones it cannot hold from its side box.
    @Test func listingEntryMTimesRoundTrip() {
        let times = [
            Timestamp(seconds: 0), Timestamp(seconds: 1_700_000_000, nanoseconds: 999_999_999), Timestamp(seconds: -1, nanoseconds: 5),
            Timestamp(seconds: (1 << 33) - 1, nanoseconds: 1), Timestamp(seconds: -(1 << 33) + 1),
            // Outside the packed range, or not normalised: kept on the side.
            Timestamp(seconds: 1 << 33), Timestamp(seconds: Int64.min), Timestamp(seconds: Int64.max, nanoseconds: Int32.max),
            Timestamp(seconds: 10, nanoseconds: -1), Timestamp(seconds: 10, nanoseconds: 1 << 30),
        ]
        let posix = PosixMetadata(mode: 0o100600, uid: 7, gid: 8, mtime: Timestamp(seconds: 3))
        for t in times {
            for p in [nil, PosixMetadata.plain, posix] {
                var e = ListingEntry(name: "f", kind: .file, size: 5, mtime: t, etag: "e", posix: p)
                #expect(e.mtime == t && e.posix == p && e.kind == .file && e.size == 5)
                e.posix = posix
                #expect(e.mtime == t && e.posix == posix)
                e.mtime = Timestamp(seconds: 42)
                #expect(e.mtime == Timestamp(seconds: 42) && e.posix == posix)
                e.mtime = t
                e.posix = nil
                #expect(e.mtime == t && e.posix == nil)
            }
        }
    }

    func node(_ ino: UInt64, _ path: String) -> Node {
        Node(
            ino: ino, parent: 1, path: path,
            attributes: FileAttributes(ino: ino, kind: .file, size: Int64(ino), mtime: Timestamp(seconds: 7), mode: 0o644, uid: 0, gid: 0),
            expires: 0, lookups: 1, etag: "e\(ino)", metadata: nil)
    }

    @Test func nodeStoreKeepsReplacesForgetsAndReusesSlots() {
        var store = NodeStore()
        for i in 2..<1_002 as Range<UInt64> { store[i] = node(i, "f\(i)") }
        #expect(store.count == 1_000)
        #expect(store[500]?.path == "f500" && store[500]?.ino == 500 && store[500]?.etag == "e500")
        store[500]?.path = "moved"
        #expect(store[500]?.path == "moved")
        for i in stride(from: 2, to: 1_002, by: 2) as StrideTo<UInt64> { #expect(store.removeValue(forKey: i)?.ino == i) }
        #expect(store.removeValue(forKey: 2) == nil)
        #expect(store.count == 500 && store[2] == nil && store[3]?.path == "f3")
        // New nodes take the forgotten slots and never disturb the held ones.
        for i in 5_000..<5_500 as Range<UInt64> { store[i] = node(i, "g\(i)") }
        store[7] = nil
        #expect(store.count == 999)
        var seen = Set<UInt64>()
        for (ino, n) in store {
            #expect(n.ino == ino)
            #expect(n.path == (ino >= 5_000 ? "g\(ino)" : ino == 501 ? "f501" : "f\(ino)") || (ino == 500 && n.path == "moved"))
            seen.insert(ino)
        }
        #expect(seen.count == 999 && !seen.contains(7) && seen.contains(5_499) && seen.contains(1_001))
        #expect(Set(store.values.map(\.ino)) == seen)
        for ino in seen { store[ino] = nil }
        #expect(store.count == 0 && store[3] == nil)
    }

    /// The index's deletions move entries back into the gap they leave: after any mix of inserts and
    /// removals (clustered numbers, as probing past a taken number makes), every held node is found and no
    /// forgotten one is.
    @Test func nodeStoreMatchesADictionaryThroughRandomChurn() {
        var store = NodeStore()
        var model: [UInt64: String] = [:]
        var rng = SystemRandomNumberGenerator()
        for step in 0..<60_000 {
            // Runs of adjacent numbers from a few bases, and scattered ones.
            let ino: UInt64 = step % 3 == 0 ? UInt64.random(in: 5_000...UInt64(Int64.max), using: &rng) : UInt64(1_000 + Int.random(in: 0..<3_000, using: &rng))
            if Bool.random(using: &rng) || model[ino] == nil {
                store[ino] = node(ino, "p\(step)")
                model[ino] = "p\(step)"
            } else {
                #expect(store.removeValue(forKey: ino)?.path == model.removeValue(forKey: ino))
            }
        }
        #expect(store.count == model.count)
        for (ino, path) in model { #expect(store[ino]?.path == path) }
        for ino in 1_000..<4_000 as Range<UInt64> where model[ino] == nil { #expect(store[ino] == nil) }
        #expect(Dictionary(uniqueKeysWithValues: store.map { ($0.key, $0.value.path) }) == model)
    }

    /// A node keeps its path as its directory's string and its name, and gives back the whole path, compares
    /// it byte for byte, and takes a new one, whatever its kind.
    @Test func nodePathsAreSharedWithTheirDirectoryAndCompareByBytes() {
        let dir = "data/train/shards"
        var file = Node(
            ino: 9, parent: 2, directory: dir, name: "shard-000001.tar",
            attributes: FileAttributes(ino: 9, kind: .file, size: 1, mtime: Timestamp(seconds: 7), mode: 0o644, uid: 0, gid: 0),
            expires: 0, lookups: 1, etag: "", metadata: nil)
        #expect(file.path == "data/train/shards/shard-000001.tar")
        #expect(file.isAt("data/train/shards/shard-000001.tar"))
        for other in ["data/train/shards/shard-000001.ta", "data/train/shardsXshard-000001.tar", "data/train/shards/shard-000001.tarx", "shard-000001.tar", ""] {
            #expect(!file.isAt(other), "\(other)")
        }
        // NFC and NFD spell different keys, though Swift's == calls them equal.
        let nfc = Node(
            ino: 10, parent: 1, directory: "", name: "caf\u{E9}",
            attributes: FileAttributes(ino: 10, kind: .file, size: 1, mtime: Timestamp(seconds: 7), mode: 0o644, uid: 0, gid: 0),
            expires: 0, lookups: 1, etag: "", metadata: nil)
        #expect(nfc.path == "caf\u{E9}" && nfc.isAt("caf\u{E9}") && !nfc.isAt("cafe\u{301}"))
        let sub = Node(
            ino: 11, parent: 2, directory: dir, name: "more",
            attributes: FileAttributes(ino: 11, kind: .directory, size: 0, mtime: Timestamp(seconds: 7), mode: 0o755, uid: 0, gid: 0),
            expires: 0, lookups: 1, etag: "", metadata: nil)
        #expect(sub.path == "data/train/shards/more" && sub.isAt("data/train/shards/more") && !sub.isAt("data/train/shards"))
        file.path = "elsewhere/x"
        #expect(file.path == "elsewhere/x" && file.isAt("elsewhere/x") && !file.isAt("data/train/shards/shard-000001.tar"))
        file.path = "top"
        #expect(file.path == "top" && file.isAt("top") && !file.isAt("/top"))
        file.path = "\u{0}detached/9"
        #expect(file.path.hasPrefix(Namespace.detachedPrefix) && file.isAt("\u{0}detached/9"))
        let root = Node(
            ino: 1, parent: 1, path: "",
            attributes: FileAttributes(ino: 1, kind: .directory, size: 0, mtime: Timestamp(seconds: 7), mode: 0o755, uid: 0, gid: 0),
            expires: 0, lookups: 1, etag: "", metadata: nil)
        #expect(root.path == "" && root.isAt("") && !root.isAt("a"))
    }

    /// Across chunks: nodes past the first 4,096 are kept, replaced and forgotten like the rest, and taking
    /// the last ones off frees whole chunks without touching the others.
    @Test func nodeStoreAcrossChunks() {
        var store = NodeStore()
        for i in 2..<10_002 as Range<UInt64> { store[i] = node(i, "f\(i)") }
        #expect(store.count == 10_000 && store[4_097]?.path == "f4097" && store[10_001]?.path == "f10001")
        store[9_000]?.path = "moved"
        #expect(store[9_000]?.path == "moved" && store[8_999]?.path == "f8999")
        // The newest first: each is the array's last slot, down across the chunk boundary at 8,192.
        for i in stride(from: 10_001, through: 8_000, by: -1) as StrideThrough<UInt64> { #expect(store.removeValue(forKey: i)?.ino == i) }
        #expect(store.count == 7_998 && store[8_000] == nil && store[7_999]?.path == "f7999" && store[2]?.path == "f2")
        for i in 20_000..<25_000 as Range<UInt64> { store[i] = node(i, "h\(i)") }
        #expect(store.count == 12_998 && store[24_999]?.path == "h24999" && store[3]?.path == "f3")
        for (ino, n) in store { #expect(n.ino == ino) }
        for ino in Array(store.map(\.key)) { store[ino] = nil }
        #expect(store.count == 0)
        store[5] = node(5, "again")
        #expect(store[5]?.path == "again")
    }

    /// A listing finds each of its names at the entry that holds it, however many it grows to, after
    /// removals from the middle too; names equal as strings (one precomposed, one not) are one name.
    @Test func listingFindsNamesByPosition() {
        var l = Listing()
        let names = (0..<5_000).map { "n\($0)" }
        for n in names { l.upsert(ListingEntry(name: n, kind: .file, size: 1, mtime: Timestamp(seconds: 0), etag: "e")) }
        #expect(l.entries.count == 5_000)
        for (i, n) in names.enumerated() { #expect(l.position(of: n) == i) }
        #expect(l.position(of: "n5000") == nil && l.position(of: "") == nil)
        l.upsert(ListingEntry(name: "n10", kind: .file, size: 7, mtime: Timestamp(seconds: 0), etag: "e"))
        #expect(l.entries.count == 5_000 && l.entries[10].size == 7)
        l.remove("n10")
        l.remove("missing")
        #expect(l.entries.count == 4_999 && l.position(of: "n10") == nil)
        for (i, n) in names.enumerated() where i != 10 { #expect(l.position(of: n).map { l.entries[$0].name } == n) }
        l.upsert(ListingEntry(name: "caf\u{E9}", kind: .file, size: 1, mtime: Timestamp(seconds: 0), etag: "e"))
        l.upsert(ListingEntry(name: "cafe\u{301}", kind: .file, size: 2, mtime: Timestamp(seconds: 0), etag: "e"))
        #expect(l.entries.count == 5_000 && l.position(of: "cafe\u{301}") == 4_999 && l.entries[4_999].size == 2)
        var empty = Listing()
        empty.remove("x")
        #expect(empty.position(of: "x") == nil)
    }

    /// Random adds and removals against a model: after each, every name the model holds is found at an
    /// entry of that name, in the order it was added, and no other name is found.
    @Test func listingIndexMatchesAModelUnderRandomChanges() {
        var rng = SplitMix(seed: 7)
        let pool = (0..<300).map { "k\($0)" }
        var l = Listing()
        var model: [String] = []
        for step in 0..<3_000 {
            let name = pool[Int(rng.next() % UInt64(pool.count))]
            if rng.next() % 3 == 0 {
                l.remove(name)
                model.removeAll { $0 == name }
            } else {
                l.upsert(ListingEntry(name: name, kind: .file, size: Int64(step), mtime: Timestamp(seconds: 0), etag: "e"))
                if !model.contains(name) { model.append(name) }
            }
            #expect(l.entries.map(\.name) == model, "step \(step)")
            for n in pool {
                let want = model.firstIndex(of: n)
                if l.position(of: n) != want { Issue.record("step \(step): \(n) at \(String(describing: l.position(of: n))), not \(String(describing: want))"); return }
            }
        }
    }

    @Test func rareAttributesAndNodeExtrasKeepValueSemantics() {
        var a = FileAttributes(ino: 9, kind: .characterDevice, size: 0, mtime: Timestamp(seconds: 1), mode: 0o600, uid: 0, gid: 0, rdev: 0x105, atime: Timestamp(seconds: 3))
        let before = a
        a.ctime = Timestamp(seconds: 5)
        a.nlink = 0
        #expect(before.ctime == nil && before.nlink == nil && before.rdev == 0x105 && before.atime == Timestamp(seconds: 3))
        #expect(a.ctime == Timestamp(seconds: 5) && a.nlink == 0 && a.rdev == 0x105 && a.atime == Timestamp(seconds: 3))
        #expect(a != before)
        a.ctime = nil
        a.nlink = nil
        #expect(a == before)
        var n = node(3, "x")
        let m = n
        n.symlinkTarget = "../blobs/1"
        n.kernelCachedETag = "k"
        #expect(m.symlinkTarget == nil && m.kernelCachedETag == nil)
        #expect(n.symlinkTarget == "../blobs/1" && n.kernelCachedETag == "k")
        n.symlinkTarget = nil
        #expect(n.symlinkTarget == nil && n.kernelCachedETag == "k")
        var e = ListingEntry(name: "a", kind: .file, size: 1, mtime: Timestamp(seconds: 1), etag: "x")
        #expect(e.posix == nil)
        e.posix = .plain
        #expect(e.posix == .plain)
        e.posix = PosixMetadata(mode: 0o100600)
        #expect(e.posix?.mode == 0o100600)
    }

    @Test func aRenamedFileForgottenByTheKernelKeepsItsNumber() {
        // Hashed numbers are above Int64.max: `node` would trap on them as sizes.
        func file(_ ino: UInt64, _ path: String) -> Node {
            Node(ino: ino, parent: 1, path: path, attributes: FileAttributes(ino: ino, kind: .file, size: 1, mtime: Timestamp(seconds: 7), mode: 0o644, uid: 0, gid: 0),
                 expires: 0, lookups: 1, etag: "e", metadata: nil)
        }
        let table = NodeTable(root: node(1, ""))
        table.withLock { s in
            let a = s.inode(of: "a")
            s.nodes[a] = file(a, "a")
            s.index("a", a)
            s.move(from: "a", to: "b", newParent: 1)
            #expect(s.ino(at: "b") == a && a != Namespace.inode(for: "b"))
            s.drop(a)
            #expect(s.ino(at: "b") == nil)
            #expect(s.inode(of: "b") == a, "looked up again after the forget")
            s.nodes[a] = file(a, "b")
            s.index("b", a)
            #expect(s.remembered.isEmpty)
            // Renamed on while forgotten (a directory move): the number follows.
            s.move(from: "b", to: "d/b", newParent: 1)
            s.drop(a)
            s.move(from: "d", to: "e", newParent: 1)
            #expect(s.inode(of: "e/b") == a && s.remembered["d/b"] == nil)
            // Unlinked: a new file at the path takes its hash.
            s.detach(path: "e/b")
            #expect(s.inode(of: "e/b") == Namespace.inode(for: "e/b"))
        }
    }
}

/// A link's saved listing loads back exactly, and a damaged one is refused.
@Suite struct ListingSnapshotTests {
    let link = Link(
        path: "data", bucket: BucketURL(bucket: "bkt", prefix: "ds/"), store: Store(name: "", client: InMemoryObjectStore(buckets: ["bkt"])),
        policy: LinkPolicy())
    let directory = NSTemporaryDirectory() + "lakecache-snapshot-\(UUID().uuidString.prefix(8))"

    var files: [String: ListedFile] {
        [
            "a/b/plain.bin": ListedFile(etag: "\"d41d8cd98f00b204e9800998ecf8427e\"", size: 0, mtime: Timestamp(seconds: 1_700_000_000, nanoseconds: 5)),
            "odd/tab\there%25 and\nnewline": ListedFile(etag: "W/\"x\ty\"", size: 1 << 40, mtime: Timestamp(seconds: -86_400, nanoseconds: 999_999_999)),
            "unicode/é日本.txt": ListedFile(etag: "abc-3", size: 7, mtime: Timestamp(seconds: 0)),
            "top": ListedFile(etag: "", size: 1, mtime: Timestamp(seconds: 1)),
        ]
    }

    func load() -> [String: ListedFile]? {
        ListingSnapshot.load(link: link, directory: directory).map { Dictionary(uniqueKeysWithValues: $0.map { ($0.key, $0.value) }) }
    }

    @Test func savedListingsLoadBackExactly() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(load() == nil)
        try ListingSnapshot.save(files, link: link, directory: directory).get()
        #expect(load() == files)
        try ListingSnapshot.save([:], link: link, directory: directory).get()
        #expect(load() == [:])
    }

    @Test func damagedOrForeignSnapshotsAreRefused() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ListingSnapshot.save(files, link: link, directory: directory).get()
        let path = ListingSnapshot.path(directory: directory, link: link)
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        func attempt(_ bytes: [UInt8]) throws -> [String: ListedFile]? {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return load()
        }
        var flipped = good
        flipped[good.count / 2] ^= 0x01
        #expect(try attempt(flipped) == nil, "one altered byte")
        #expect(try attempt(Array(good.prefix(good.count - 20))) == nil, "torn checksum line")
        #expect(try attempt(Array(good.prefix(good.count / 2))) == nil, "torn in the body")
        #expect(try attempt([]) == nil, "empty")
        // A body that checksums right but holds a line that is not four fields, or a bad number.
        for bad in ["x\ty\t1\n", "x\ty\tz\t1.0\n", "x\ty\t1\t1\n", "x\ty\t1\t1.1000000000\n", "x\ty\t1\t5.-99999999999\n", "x\ty\t1\t5.-1\n", "x\t%zz\t1\t1.0\n"] {
            let body = Array((ListingSnapshot.header + " " + ListingSnapshot.identity(link) + "\n" + bad).utf8)
            let sum = Array(("sha256 " + Digest.hex(Digest.sha256(body)) + "\n").utf8)
            #expect(try attempt(body + sum) == nil, "line \(bad.debugDescription)")
        }
        #expect(try attempt(good) == files)
        // Another link's identity (another prefix) finds no snapshot.
        let other = Link(path: "data", bucket: BucketURL(bucket: "bkt", prefix: "other/"), store: link.store, policy: LinkPolicy())
        #expect(ListingSnapshot.load(link: other, directory: directory) == nil)
    }
}

