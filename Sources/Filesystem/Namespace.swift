import Platform
import ObjectStore
import ReadCache

#if canImport(Glibc)
import Glibc
#endif

/// One child of a directory as a listing showed it.
struct ListingEntry: Sendable {
    // 64 bytes an entry: the kind fills the packed ETag's tail, and the mtime is one word.
    var name: String
    var size: Int64
    var mtime: Timestamp {
        get { spilledMTime ?? Self.unpack(packedMTime) }
        set {
            let packed = Self.pack(newValue)
            // The side box changes only when a time moves into it or out of it.
            if packed == nil || spilledMTime != nil { known = Known.make(posix: posix, mtime: packed == nil ? newValue : nil) }
            packedMTime = packed ?? Self.spilled
        }
    }
    var etag: String {
        get { packedETag.string }
        set { packedETag = PackedETag(newValue) }
    }
    /// The entry's POSIX metadata when known: a subdirectory's from its marker object (plain when it has
    /// none), a file's from a HEAD or a write through this mount. nil for a file that only a listing showed.
    var posix: PosixMetadata? {
        get { known?.posix }
        set { known = Known.make(posix: newValue, mtime: spilledMTime) }
    }

    /// The mtime when the packed word cannot hold it.
    private var spilledMTime: Timestamp? { packedMTime == Self.spilled ? known?.mtime : nil }

    /// The mtime as `seconds << 30 | nanoseconds`, which holds every time from 1698 to 2242; one outside
    /// that is `spilled` here and kept in `known`.
    private var packedMTime: Int64
    /// Out of line and shared for plain objects (the usual case), since a listing keeps one entry per object.
    private var known: Known?
    /// Compared as is, so that checking two ETags builds no strings.
    private(set) var packedETag: PackedETag
    var kind: FileAttributes.Kind

    init(name: String, kind: FileAttributes.Kind, size: Int64, mtime: Timestamp, etag: String, posix: PosixMetadata? = nil) {
        self.name = name
        self.kind = kind
        self.size = size
        packedMTime = 0
        packedETag = PackedETag(etag)
        self.posix = posix
        self.mtime = mtime
    }

    private static let spilled = Int64.min

    private static func pack(_ t: Timestamp) -> Int64? {
        guard t.nanoseconds >= 0, t.nanoseconds < 1 << 30, t.seconds > -(1 << 33), t.seconds < 1 << 33 else { return nil }
        return t.seconds << 30 | Int64(t.nanoseconds)
    }

    private static func unpack(_ packed: Int64) -> Timestamp {
        Timestamp(seconds: packed >> 30, nanoseconds: Int32(truncatingIfNeeded: packed & (1 << 30 - 1)))
    }

    /// Immutable, so copies of an entry share it safely.
    private final class Known: Sendable {
        let posix: PosixMetadata?
        /// An mtime the packed form cannot hold.
        let mtime: Timestamp?
        private init(_ posix: PosixMetadata?, _ mtime: Timestamp?) {
            self.posix = posix
            self.mtime = mtime
        }
        static let plain = Known(.plain, nil)
        static func make(posix: PosixMetadata?, mtime: Timestamp?) -> Known? {
            if mtime == nil {
                if posix == nil { return nil }
                if posix == .plain { return plain }
            }
            return Known(posix, mtime)
        }
    }
}

/// A directory's contents from ListObjectsV2, possibly still being paged in.
struct Listing {
    /// In the order they were listed or added; `names` indexes them, so a name changes only through the
    /// methods here.
    private(set) var entries: [ListingEntry] = []
    private var names = NameIndex()
    var complete = false
    var nextToken: String?
    var fetched: Double = 0
    var lastUse: UInt64 = 0

    /// Adds one page, applying the naming rules and the link's key filter; returns the skipped, shadowed
    /// and filtered-out counts.
    ///
    /// `markers` holds the metadata of subdirectory marker objects, by common prefix. `admits` says whether a
    /// child name (a directory when the flag is set) passes the link's include and exclude globs.
    mutating func add(
        page: ListObjectsPage, prefix: String, mountTime: Timestamp, markers: [String: [String: String]] = [:],
        admits: (String, Bool) -> Bool = { _, _ in true }
    ) -> (skipped: Int, shadowed: Int, excluded: Int) {
        var skipped = 0
        var shadowed = 0
        var excluded = 0
        for p in page.commonPrefixes {
            let name = String(p.utf8.dropFirst(prefix.utf8.count).dropLast()) ?? ""
            guard Namespace.isValidName(name) else {
                skipped += 1
                continue
            }
            guard admits(name, true) else {
                excluded += 1
                continue
            }
            if let i = position(of: name) {
                // The directory wins over a file of the same name.
                if entries[i].kind != .directory {
                    entries[i] = ListingEntry(name: name, kind: .directory, size: 0, mtime: mountTime, etag: "", posix: PosixMetadata(markers[p] ?? [:]))
                    shadowed += 1
                }
                continue
            }
            entries.append(ListingEntry(name: name, kind: .directory, size: 0, mtime: mountTime, etag: "", posix: PosixMetadata(markers[p] ?? [:])))
            names.insert(entries.count - 1, in: entries)
        }
        for o in page.objects {
            let name = String(o.key.utf8.dropFirst(prefix.utf8.count)) ?? ""
            if name.isEmpty { continue }  // the directory's own marker object
            if name == DirectorySummary.objectName { continue }  // lakecache's own, not excluded by the user
            guard Namespace.isValidName(name) else {
                skipped += 1
                continue
            }
            guard admits(name, false) else {
                excluded += 1
                continue
            }
            if let i = position(of: name) {
                if entries[i].kind == .directory { shadowed += 1 }
                continue
            }
            entries.append(ListingEntry(name: name, kind: .file, size: o.size, mtime: o.lastModified, etag: o.etag))
            names.insert(entries.count - 1, in: entries)
        }
        nextToken = page.nextContinuationToken
        complete = page.nextContinuationToken == nil
        return (skipped, shadowed, excluded)
    }

    /// The position in `entries` of the child named `name`.
    func position(of name: String) -> Int? { names.position(of: name, in: entries) }

    /// Records what a HEAD, a write or a summary told of the entry at `position`.
    mutating func setPosix(_ posix: PosixMetadata, at position: Int) { entries[position].posix = posix }

    mutating func upsert(_ e: ListingEntry) {
        if let i = position(of: e.name) {
            entries[i] = e
        } else {
            entries.append(e)
            names.insert(entries.count - 1, in: entries)
        }
    }

    mutating func remove(_ name: String) {
        guard let i = position(of: name) else { return }
        names.remove(i, in: entries)
        entries.remove(at: i)
    }
}

/// A node the kernel knows (lookup count > 0), or the root.
struct Node {
    /// The inode number, which is the attributes' own (one copy per node: the table holds every node).
    var ino: UInt64 { attributes.ino }
    var parent: UInt64
    /// Path below the mount root, without leading or trailing slash; "" for the root.
    ///
    /// Kept as `head` and `tail` so that a directory's files share its path's storage: a directory keeps its
    /// whole path in `head` (and `tail` is empty); any other node keeps its directory's path string, the
    /// same storage as its siblings', in `head`, and its name in `tail` (inline up to 15 bytes, else shared
    /// with the listing entry it came from). A path of its own cost a node 80 bytes of heap.
    var path: String {
        get { tail.isEmpty ? head : head.isEmpty ? tail : head + "/" + tail }
        set { (head, tail) = Self.layout(newValue, kind: attributes.kind) }
    }
    private var head: String
    private var tail: String
    var attributes: FileAttributes
    var expires: Double
    var lookups: UInt64
    var etag: String {
        get { packedETag.string }
        set { packedETag = PackedETag(newValue) }
    }
    /// Compared as is, so that checking two ETags builds no strings.
    private(set) var packedETag: PackedETag
    /// What few nodes have (user metadata, an open's cached ETag, a symlink's target), out of line so that
    /// the rest do not carry it: the node table's size is per node the kernel holds.
    private var extras: Extras?

    /// The object's user metadata, from a HEAD or a write here; nil for a node made from a listing entry,
    /// whose attributes came from its `PosixMetadata` (a metadata change HEADs first, so it keeps the rest).
    var metadata: [String: String]? {
        get { extras?.metadata }
        set { extras = Extras.make(metadata: newValue, kernelCachedETag: kernelCachedETag, symlinkTarget: symlinkTarget) }
    }

    /// The ETag whose pages the kernel may still cache (set at open).
    var kernelCachedETag: String? {
        get { extras?.kernelCachedETag }
        set { extras = Extras.make(metadata: metadata, kernelCachedETag: newValue, symlinkTarget: symlinkTarget) }
    }

    /// A symbolic link's target, once read.
    var symlinkTarget: String? {
        get { extras?.symlinkTarget }
        set { extras = Extras.make(metadata: metadata, kernelCachedETag: kernelCachedETag, symlinkTarget: newValue) }
    }

    /// Immutable, so copies of a node share it safely; a change makes a new one.
    private final class Extras: Sendable {
        let metadata: [String: String]?
        let kernelCachedETag: String?
        let symlinkTarget: String?

        private init(metadata: [String: String]?, kernelCachedETag: String?, symlinkTarget: String?) {
            self.metadata = metadata
            self.kernelCachedETag = kernelCachedETag
            self.symlinkTarget = symlinkTarget
        }

        static func make(metadata: [String: String]?, kernelCachedETag: String?, symlinkTarget: String?) -> Extras? {
            metadata == nil && kernelCachedETag == nil && symlinkTarget == nil
                ? nil : Extras(metadata: metadata, kernelCachedETag: kernelCachedETag, symlinkTarget: symlinkTarget)
        }
    }

    init(
        ino: UInt64, parent: UInt64, path: String, attributes: FileAttributes, expires: Double, lookups: UInt64,
        etag: String, metadata: [String: String]?
    ) {
        let (head, tail) = Self.layout(path, kind: attributes.kind)
        self.init(ino: ino, parent: parent, head: head, tail: tail, attributes: attributes, expires: expires, lookups: lookups, etag: etag, metadata: metadata)
    }

    /// A node named `name` in the directory at `directory`, which should be that directory node's own
    /// `path` string, so that the new node shares its storage.
    init(
        ino: UInt64, parent: UInt64, directory: String, name: String, attributes: FileAttributes, expires: Double, lookups: UInt64,
        etag: String, metadata: [String: String]?
    ) {
        let isDirectory = attributes.kind == .directory
        self.init(
            ino: ino, parent: parent, head: isDirectory ? Namespace.join(directory, name) : directory, tail: isDirectory ? "" : name,
            attributes: attributes, expires: expires, lookups: lookups, etag: etag, metadata: metadata)
    }

    private init(
        ino: UInt64, parent: UInt64, head: String, tail: String, attributes: FileAttributes, expires: Double, lookups: UInt64,
        etag: String, metadata: [String: String]?
    ) {
        self.parent = parent
        self.head = head
        self.tail = tail
        self.attributes = attributes
        self.attributes.ino = ino
        self.expires = expires
        self.lookups = lookups
        packedETag = PackedETag(etag)
        extras = Extras.make(metadata: metadata, kernelCachedETag: nil, symlinkTarget: nil)
    }

    /// How a node of `kind` keeps `path` (see `path`).
    private static func layout(_ path: String, kind: FileAttributes.Kind) -> (String, String) {
        kind == .directory || path.isEmpty ? (path, "") : Namespace.split(path)
    }

    /// Whether the node is at `path`, compared byte for byte without building its path.
    func isAt(_ path: String) -> Bool {
        if tail.isEmpty { return head.utf8.elementsEqual(path.utf8) }
        let p = path.utf8
        let h = head.utf8
        let separator = h.isEmpty ? 0 : 1
        guard p.count == h.count + separator + tail.utf8.count, p.starts(with: h) else { return false }
        var i = p.index(p.startIndex, offsetBy: h.count)
        if separator == 1 {
            guard p[i] == UInt8(ascii: "/") else { return false }
            i = p.index(after: i)
        }
        return p[i...].elementsEqual(tail.utf8)
    }

    /// A forgotten node's slot in `NodeStore`: holds nothing.
    static let vacant = Node(
        ino: 0, parent: 0, path: "", attributes: FileAttributes(ino: 0, kind: .file, size: 0, mtime: Timestamp(seconds: 0), mode: 0, uid: 0, gid: 0),
        expires: 0, lookups: 0, etag: "", metadata: nil)

    /// The POSIX metadata the node shows (exact: a node is made only from known metadata).
    var posix: PosixMetadata {
        PosixMetadata(mode: attributes.fullMode, uid: attributes.uid, gid: attributes.gid, mtime: attributes.mtime)
    }
}

/// Pure naming rules: which keys can be names, and how paths map to keys and inode numbers.
enum Namespace {
    /// The errno for a name that is not valid: ENAMETOOLONG over 255 bytes, else EINVAL.
    static func invalidNameError(_ name: String) -> Int32 { name.utf8.count > 255 ? ENAMETOOLONG : EINVAL }

    /// A name the kernel accepts as one path component.
    static func isValidName(_ name: String) -> Bool {
        let bytes = name.utf8
        return !bytes.isEmpty && bytes.count <= 255 && name != "." && name != ".."
            && !bytes.contains(UInt8(ascii: "/")) && !bytes.contains(0)
    }

    /// A stable inode number for a path: a hash, so it survives forget and remount.
    static func inode(for path: String) -> UInt64 {
        if path.isEmpty { return 1 }
        let h = XXHash64.hash(path, seed: 0x6C61_6B65)
        return h < 2 ? h + 2 : h
    }

    static func join(_ parent: String, _ name: String) -> String {
        parent.isEmpty ? name : parent + "/" + name
    }

    /// Splits a path into its parent directory path and name.
    static func split(_ path: String) -> (parent: String, name: String) {
        // By UTF-8 byte, not by Character: "/" is one byte and never part of another character's encoding.
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return ("", path) }
        return (String(path[..<slash]), String(path[path.utf8.index(after: slash)...]))
    }

    /// Paths of detached nodes: no real path starts with NUL.
    static let detachedPrefix = "\u{0}detached/"

    /// Whether `path` is `root` or lies below it ("" contains everything).
    static func inside(_ path: String, _ root: String) -> Bool {
        root.isEmpty || path == root || path.hasPrefix(root + "/")
    }
}
