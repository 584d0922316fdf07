import ObjectStore
import Platform
import ReadCache
import Synchronization

/// A path of the namespace joined to `s3://bucket/prefix` on a store, with its policy.
///
/// Immutable: a reload that changes a link's policy makes a new `Link` with the same name and counters, so a
/// handle opened before keeps the policy it was opened with and new opens get the new one.
package final class Link: Sendable, CustomStringConvertible {
    /// Where it appears in the mount: "" for the root, else `a/b` without leading or trailing slashes.
    package let path: String
    package let bucket: BucketURL
    package let store: Store
    package let policy: LinkPolicy
    /// Per-link figures for `status`, kept across reloads of the same path.
    package let counters: LinkCounters

    package init(path: String, bucket: BucketURL, store: Store, policy: LinkPolicy, counters: LinkCounters = LinkCounters()) {
        self.path = path
        self.bucket = bucket
        self.store = store
        var policy = policy
        // The summaries are lakecache's own objects, never part of a namespace, whatever the link's metadata
        // policy now (a link may have been mounted under `summary` before).
        policy.filter.hiddenNames.insert(DirectorySummary.objectName)
        self.policy = policy
        self.counters = counters
    }

    package var description: String { "/\(path) → \(bucket)" }

    /// The object key of a path relative to the link ("" is the link's own prefix).
    package func key(_ relative: String) -> String { bucket.prefix + relative }

    /// The listing prefix of a directory relative to the link.
    package func listPrefix(_ relative: String) -> String { relative.isEmpty ? bucket.prefix : bucket.prefix + relative + "/" }

    /// The path relative to the link of a key below its prefix, or nil.
    package func relative(forKey key: String) -> String? {
        guard key.hasPrefix(bucket.prefix) else { return nil }
        return String(key.dropFirst(bucket.prefix.count))
    }

    /// The path relative to the link of a namespace path inside it, or nil.
    package func relative(namespacePath p: String) -> String? {
        if path.isEmpty { return p }
        if p == path { return "" }
        return p.hasPrefix(path + "/") ? String(p.dropFirst(path.count + 1)) : nil
    }

    /// The namespace path of a path relative to the link.
    package func namespacePath(_ relative: String) -> String {
        path.isEmpty ? relative : (relative.isEmpty ? path : path + "/" + relative)
    }

    /// A version of an object of this link, for the cache.
    package func version(key: String, etag: String, size: Int64) -> ObjectVersion {
        ObjectVersion(bucket: bucket.bucket, key: key, etag: etag, size: size, store: store)
    }
}

/// Per-link figures, for `status` (counters only; sizes are computed when asked).
package final class LinkCounters: Sendable {
    package let reads = Atomic<Int>(0)
    package let readHits = Atomic<Int>(0)
    package let skippedKeys = Atomic<Int>(0)
    package let shadowedFiles = Atomic<Int>(0)
    package let excludedKeys = Atomic<Int>(0)
    package let syncs = Atomic<Int>(0)
    /// Directory listings fetched ahead of a walk and kept (`Filesystem+ListingReadAhead.swift`).
    package let listingReadAheads = Atomic<Int>(0)
    /// Object-store events applied to this link.
    package let events = Atomic<Int>(0)
    package init() {}
}
