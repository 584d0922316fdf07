import Platform

/// A parsed `s3://BUCKET[/PREFIX]` URL: what a mount serves.
package struct BucketURL: Sendable, Equatable, CustomStringConvertible {
    package var bucket: String
    /// Empty, or ends with `/`: the key prefix that maps to the mount's root directory.
    package var prefix: String

    /// Parses and validates; the error names the input and what a valid one looks like.
    package init(parsing text: String) throws(ObjectStoreError) {
        let usage = "expected s3://BUCKET or s3://BUCKET/PREFIX"
        guard text.hasPrefix("s3://") else {
            throw .configuration("invalid bucket URL '\(text)': \(usage)")
        }
        let rest = text.dropFirst(5)
        let bucketPart = rest.prefix { $0 != "/" }
        var prefixPart = rest.dropFirst(bucketPart.count)
        while prefixPart.hasPrefix("/") { prefixPart = prefixPart.dropFirst() }
        try Self.validateBucket(String(bucketPart), in: text)
        bucket = String(bucketPart)
        if prefixPart.contains("//") {
            throw .configuration("invalid bucket URL '\(text)': the prefix has an empty path segment ('//')")
        }
        if prefixPart.utf8.count > 900 {
            throw .configuration("invalid bucket URL '\(text)': the prefix is longer than 900 bytes")
        }
        prefix = prefixPart.isEmpty || prefixPart.hasSuffix("/") ? String(prefixPart) : String(prefixPart) + "/"
    }

    package init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix
    }

    /// S3 bucket naming rules, relaxed to allow the underscores some S3-compatible stores accept.
    static func validateBucket(_ name: String, in text: String) throws(ObjectStoreError) {
        let hint = "bucket names are 3 to 63 characters of a-z, 0-9, '.', '-' and start and end with a letter or digit"
        guard !name.isEmpty else { throw .configuration("invalid bucket URL '\(text)': the bucket name is empty; \(hint)") }
        guard (3...63).contains(name.utf8.count) else {
            throw .configuration("invalid bucket name '\(name)': \(hint)")
        }
        let allowed = name.utf8.allSatisfy { c in
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
                || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
        }
        let alnum: (UInt8) -> Bool = { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) }
        guard allowed, alnum(name.utf8.first!), alnum(name.utf8.last!), !name.contains("..") else {
            throw .configuration("invalid bucket name '\(name)': \(hint)")
        }
    }

    package var description: String { "s3://\(bucket)/\(prefix)" }
}
