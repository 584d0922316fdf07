import ObjectStore
import Platform
import WriteBack

/// The POSIX metadata of a directory's files, kept by lakecache in one object per directory under the
/// `summary` metadata policy, so that a listing shows types and modes without a HEAD per file.
///
/// Each entry is keyed by the file's name, ETag and size: an entry whose object changed since (another tool
/// wrote it, or it was copied into a new ETag) no longer matches the listing and is ignored, and that file
/// is HEADed as under `exact`. The object is `<directory>/.lakecache-metadata`, a text of lines
/// `name TAB etag TAB size TAB mode TAB uid TAB gid TAB mtime TAB rdev TAB atime` (names and ETags
/// percent-encoded, empty fields for what the file does not carry) after a header line.
struct DirectorySummary: Sendable, Equatable {
    /// The object's name in each directory; links under the `summary` policy never show it.
    static let objectName = ".lakecache-metadata"
    static let header = "lakecache-directory-summary 1"
    /// A summary larger than this is not read (it would be over a million entries).
    static let sizeLimit = 64 << 20

    struct Entry: Sendable, Equatable {
        /// Packed, as listing entries keep theirs: a listing compares each entry's without building strings.
        var packedETag: PackedETag
        var size: Int64
        var posix: PosixMetadata

        init(etag: String, size: Int64, posix: PosixMetadata) {
            self.init(etag: PackedETag(etag), size: size, posix: posix)
        }

        init(etag: PackedETag, size: Int64, posix: PosixMetadata) {
            packedETag = etag
            self.size = size
            self.posix = posix
        }

        /// Whether this entry describes the object version listed with `etag` and `size`.
        func describes(etag: PackedETag, size: Int64) -> Bool { packedETag == etag && self.size == size }
    }

    var entries: [String: Entry] = [:]

    /// The known metadata of the listed file `name` at `etag` and `size`; nil when the summary has no entry
    /// for that version of it.
    func posix(name: String, etag: PackedETag, size: Int64) -> PosixMetadata? {
        guard let e = entries[name], e.describes(etag: etag, size: size) else { return nil }
        return e.posix
    }

    func encoded() -> [UInt8] {
        var text = Self.header + "\n"
        text.reserveCapacity(entries.count * 64)
        func field<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "" }
        func time(_ t: Timestamp?) -> String { t.map { "\($0.seconds).\($0.nanoseconds)" } ?? "" }
        for name in entries.keys.sorted() {
            let e = entries[name]!
            let p = e.posix
            text += "\(URIEncoding.encode(name))\t\(URIEncoding.encode(e.packedETag.string))\t\(e.size)\t\(field(p.mode))\t\(field(p.uid))\t\(field(p.gid))\t\(time(p.mtime))\t\(field(p.rdev))\t\(time(p.atime))\n"
        }
        return Array(text.utf8)
    }

    /// Parses a summary; nil for anything that is not one, whole (a foreign or damaged object is ignored,
    /// never half applied).
    init?(parsing bytes: ArraySlice<UInt8>) {
        let newline = UInt8(ascii: "\n")
        guard let headerEnd = bytes.firstIndex(of: newline), bytes[..<headerEnd].elementsEqual(Self.header.utf8) else { return nil }
        var line = headerEnd + 1
        while line < bytes.endIndex {
            guard let lineEnd = bytes[line...].firstIndex(of: newline) else { return nil }
            guard let (name, entry) = Self.parse(bytes[line..<lineEnd]) else { return nil }
            entries[name] = entry
            line = lineEnd + 1
        }
    }

    init(entries: [String: Entry] = [:]) { self.entries = entries }

    private static func parse(_ line: ArraySlice<UInt8>) -> (String, Entry)? {
        let fields = line.split(separator: UInt8(ascii: "\t"), omittingEmptySubsequences: false)
        guard fields.count == 9, let name = URIEncoding.decode(bytes: fields[0]), Namespace.isValidName(name),
            let etag = URIEncoding.decode(bytes: fields[1]), let size = ListingSnapshot.decimal(fields[2]), size >= 0
        else { return nil }
        func number<T: FixedWidthInteger>(_ f: ArraySlice<UInt8>, _: T.Type) -> T?? {
            if f.isEmpty { return .some(nil) }
            guard let v = ListingSnapshot.decimal(f), let t = T(exactly: v) else { return nil }
            return .some(t)
        }
        func time(_ f: ArraySlice<UInt8>) -> Timestamp?? {
            if f.isEmpty { return .some(nil) }
            let t = f.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
            guard t.count == 2, let s = ListingSnapshot.decimal(t[0]), let ns = ListingSnapshot.decimal(t[1]), (0..<1_000_000_000).contains(ns) else { return nil }
            return .some(Timestamp(seconds: s, nanoseconds: Int32(ns)))
        }
        guard let mode = number(fields[3], UInt32.self), let uid = number(fields[4], UInt32.self), let gid = number(fields[5], UInt32.self),
            let mtime = time(fields[6]), let rdev = number(fields[7], UInt64.self), let atime = time(fields[8])
        else { return nil }
        var p = PosixMetadata(mode: mode, uid: uid, gid: gid, mtime: mtime)
        p.rdev = rdev
        p.atime = atime
        return (name, Entry(etag: etag, size: size, posix: p))
    }
}
