import ObjectStore
import Platform

#if canImport(Glibc)
import Glibc
#endif

/// A link's whole listing saved in the cache directory, for links whose metadata never expires: a remount of
/// an immutable dataset then lists nothing until a `sync`.
///
/// One file per link identity (store, bucket, prefix and globs: a change of any makes another file). Lines
/// are `key TAB etag TAB size TAB mtime`, keys relative to the link and percent-encoded, after a header line
/// with the identity, and the last line is a SHA-256 of the rest, so a torn or altered file is refused.
enum ListingSnapshot {
    static let header = "lakecache-listing 1"

    /// What names a link's snapshot: everything that decides what its listing shows.
    static func identity(_ link: Link) -> String {
        let globs = link.policy.filter.include.map { "+" + $0.pattern } + link.policy.filter.exclude.map { "-" + $0.pattern }
        return [link.store.name, link.bucket.bucket, link.bucket.prefix, globs.joined(separator: ",")].map { URIEncoding.encode($0) }.joined(separator: " ")
    }

    static func path(directory: String, link: Link) -> String {
        let id = Digest.hex(Digest.sha256(Array(identity(link).utf8))).prefix(32)
        return directory + "/" + id + ".listing"
    }

    static func save(_ files: [String: ListedFile], link: Link, directory: String) -> Result<Void, Errno> {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST { return .failure(Errno(errno)) }
        var body = header + " " + identity(link) + "\n"
        body.reserveCapacity(files.count * 80)
        for key in files.keys.sorted() {
            let f = files[key]!
            body += "\(URIEncoding.encode(key, keepSlash: true))\t\(URIEncoding.encode(f.etag))\t\(f.size)\t\(f.mtime.seconds).\(f.mtime.nanoseconds)\n"
        }
        let text = body + "sha256 " + Digest.hex(Digest.sha256(Array(body.utf8))) + "\n"
        return Syscall.writeFileAtomically(path(directory: directory, link: link), Array(text.utf8), directory: directory)
    }

    /// The saved listing, or nil when there is none or it is damaged or of another identity.
    ///
    /// Parsed as bytes: a remount of a large link waits for this, and splitting the text as Swift strings
    /// (by grapheme) took two seconds for 200,000 lines.
    static func load(link: Link, directory: String) -> [(key: String, value: ListedFile)]? {
        guard let bytes = readFileBytes(path(directory: directory, link: link)) else { return nil }
        let newline = UInt8(ascii: "\n")
        var end = bytes.endIndex
        while end > 0 && bytes[end - 1] == newline { end -= 1 }
        // The last line is the checksum of everything before it, which ends with a newline.
        guard let lastStart = bytes[..<end].lastIndex(of: newline).map({ $0 + 1 }) else { return nil }
        let last = bytes[lastStart..<end]
        let sum = Array("sha256 ".utf8)
        guard last.starts(with: sum), Array(last.dropFirst(sum.count)) == Array(Digest.hex(bytes[..<lastStart].withUnsafeBytes { Digest.sha256($0) }).utf8) else { return nil }
        let body = bytes[..<lastStart]
        guard let headerEnd = body.firstIndex(of: newline), Array(body[..<headerEnd]) == Array((header + " " + identity(link)).utf8) else { return nil }
        // The keys are unique (they were saved from a dictionary): no dictionary is built for them here.
        var out: [(key: String, value: ListedFile)] = []
        out.reserveCapacity(body.reduce(0) { $0 + ($1 == newline ? 1 : 0) })
        var line = headerEnd + 1
        while line < body.endIndex {
            let lineEnd = body[line...].firstIndex(of: newline)!
            guard let f = parse(body[line..<lineEnd]) else { return nil }
            out.append((f.key, f.file))
            line = lineEnd + 1
        }
        return out
    }

    /// One `key TAB etag TAB size TAB seconds.nanoseconds` line.
    private static func parse(_ line: ArraySlice<UInt8>) -> (key: String, file: ListedFile)? {
        let tab = UInt8(ascii: "\t")
        let fields = line.split(separator: tab, maxSplits: 4, omittingEmptySubsequences: false)
        guard fields.count == 4, let key = URIEncoding.decode(bytes: fields[0]), let etag = URIEncoding.decode(bytes: fields[1]),
            let size = decimal(fields[2])
        else { return nil }
        let t = fields[3].split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard t.count == 2, let seconds = decimal(t[0]), let ns = decimal(t[1]), (0..<1_000_000_000).contains(ns) else { return nil }
        return (key, ListedFile(etag: etag, size: size, mtime: Timestamp(seconds: seconds, nanoseconds: Int32(ns))))
    }

    /// A non-negative decimal of at most 18 digits (no overflow possible), or a negative one written by `save`.
    static func decimal(_ digits: ArraySlice<UInt8>) -> Int64? {
        var d = digits[...]
        let negative = d.first == UInt8(ascii: "-")
        if negative { d = d.dropFirst() }
        guard !d.isEmpty, d.count <= 18 else { return nil }
        var v: Int64 = 0
        for b in d {
            guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return nil }
            v = v * 10 + Int64(b - UInt8(ascii: "0"))
        }
        return negative ? -v : v
    }
}
