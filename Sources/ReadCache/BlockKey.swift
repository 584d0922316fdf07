/// One version of one object: the unit of cache validity. A new ETag is a different object to the cache.
package struct ObjectVersion: Hashable, Sendable, CustomStringConvertible {
    package let bucket: String
    package let key: String
    package let etag: String
    package let size: Int64
    /// XXH64 of bucket, key and ETag: the hash used for lookups and disk file names.
    package let id: UInt64

    package init(bucket: String, key: String, etag: String, size: Int64) {
        self.bucket = bucket
        self.key = key
        self.etag = etag
        self.size = size
        self.id = XXHash64.hash(bucket + "\u{0}" + key + "\u{0}" + etag)
    }

    package func hash(into hasher: inout Hasher) { hasher.combine(id) }

    package static func == (a: ObjectVersion, b: ObjectVersion) -> Bool {
        a.id == b.id && a.size == b.size && a.etag == b.etag && a.key == b.key && a.bucket == b.bucket
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
