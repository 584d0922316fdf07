import Control
import Filesystem
import ObjectStore
import WriteBack

/// `pending PATH` and `retry PATH`: upload progress below a namespace path, for `flush` and `unmount`;
/// `retry` (their first poll) retries failed uploads there at once.
enum PendingHandler {
    static func pending(_ p: MountDaemon.Parts, path: String, retry: Bool) -> JSONValue {
        guard let writeBack = p.writeBack else { return StatusHandler.uploads(UploadStats()) }
        let path = path.trimmingSlashes()
        // The links (and the key prefix in each) the path covers: one link, or every link below a directory
        // above links.
        let scopes: [(Link, String)] = p.filesystem.links.links.compactMap { link in
            if let rel = link.relative(namespacePath: path) { return (link, link.key(rel)) }
            if path.isEmpty || link.path.hasPrefix(path + "/") { return (link, link.bucket.prefix) }
            return nil
        }
        let matches: (UploadTarget) -> Bool = { t in
            scopes.contains { link, base in
                guard t.store == link.store.name, t.bucket == link.bucket.bucket else { return false }
                let b = base.hasSuffix("/") ? String(base.dropLast()) : base
                return b.isEmpty || t.key == b || t.key.hasPrefix(b + "/")
            }
        }
        if retry { writeBack.retryNow(matching: matches) }
        return StatusHandler.uploads(writeBack.stats(matching: matches))
    }
}

extension String {
    /// The path without leading and trailing slashes.
    func trimmingSlashes() -> String {
        var s = Substring(self)
        while s.hasPrefix("/") { s = s.dropFirst() }
        while s.hasSuffix("/") { s = s.dropLast() }
        return String(s)
    }
}
