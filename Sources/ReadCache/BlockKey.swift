import ObjectStore

/// One version of one object: the unit of cache validity. A new ETag is a different object to the cache.
package struct ObjectVersion: Hashable, Sendable, CustomStringConvertible {
    package let bucket: String
    package let key: String
    package let etag: String
    package let size: Int64
    /// XXH64 of store name, bucket, key and ETag: the hash used for lookups and disk file names.
    package let id: UInt64
    /// Where to fetch it; nil for the cache's own store.
    package let store: Store?

    package init(bucket: String, key: String, etag: String, size: Int64, store: Store? = nil) {
        self.bucket = bucket
        self.key = key
        self.etag = etag
        self.size = size
        self.store = store
        let name = store?.name ?? ""
        // The unnamed store hashes as before stores had names: a disk tier written then stays valid.
        self.id = XXHash64.hash((name.isEmpty ? "" : name + "\u{0}") + bucket + "\u{0}" + key + "\u{0}" + etag)
    }

    package func hash(into hasher: inout Hasher) { hasher.combine(id) }

    package static func == (a: ObjectVersion, b: ObjectVersion) -> Bool {
        a.id == b.id && a.size == b.size && a.etag == b.etag && a.key == b.key && a.bucket == b.bucket
            && (a.store?.name ?? "") == (b.store?.name ?? "")
    }

    /// The same object at another size or ETag, on the same store.
    package func with(etag: String, size: Int64) -> ObjectVersion {
        ObjectVersion(bucket: bucket, key: key, etag: etag, size: size, store: store)
    }

    package var description: String { "s3://\(bucket)/\(key)@\(etag)" }
}

/// A block of an object version: bytes `[index * blockSize, (index + 1) * blockSize)`.
package struct BlockKey: Hashable, Sendable {
    package let object: ObjectVersion
    package let index: Int64

    package init(object: ObjectVersion, index: Int64) {
        self.object = object
        self.index = index
    }
}
