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
    static func load(link: Link, directory: String) -> [String: ListedFile]? {
        guard let text = readTextFile(path(directory: directory, link: link)) else { return nil }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        while lines.last == "" { lines.removeLast() }
        guard let last = lines.popLast(), last.hasPrefix("sha256 "), lines.first == Substring(header + " " + identity(link)) else { return nil }
        let body = lines.joined(separator: "\n") + "\n"
        guard Digest.hex(Digest.sha256(Array(body.utf8))) == last.dropFirst(7) else { return nil }
        var out: [String: ListedFile] = [:]
        out.reserveCapacity(lines.count)
        for line in lines.dropFirst() {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count == 4, let key = URIEncoding.decode(String(f[0])), let etag = URIEncoding.decode(String(f[1])), let size = Int64(f[2]) else { return nil }
            let t = f[3].split(separator: ".")
            guard t.count == 2, let s = Int64(t[0]), let ns = Int32(t[1]) else { return nil }
            out[key] = ListedFile(etag: etag, size: size, mtime: Timestamp(seconds: s, nanoseconds: ns))
        }
        return out
    }
}
