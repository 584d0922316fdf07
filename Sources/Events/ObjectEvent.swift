/// One object-store notification about one key, in whichever format it came.
package struct ObjectEvent: Sendable, Equatable {
    /// What happened to the object. Anything else is refused (see `EventParser`).
    package enum Kind: String, Sendable {
        /// `ObjectCreated:*` (Put, Post, Copy, CompleteMultipartUpload).
        case created
        /// `ObjectRemoved:*`, and expirations by lifecycle rules.
        case removed
    }

    /// Who sent it, from `eventSource` (or the envelope it came in).
    package enum Source: String, Sendable {
        case aws, minio, ceph, sns
    }

    package var kind: Kind
    /// The event name without the `s3:` prefix some stores add (`ObjectCreated:Put`).
    package var name: String
    package var bucket: String
    /// The key, decoded (AWS and MinIO URL-encode it, with `+` for a space).
    package var key: String
    package var size: Int64?
    package var etag: String?
    /// Orders events of one key (compared after right-padding with zeros; see `Sequencer`).
    package var sequencer: String?
    package var source: Source

    package init(kind: Kind, name: String, bucket: String, key: String, size: Int64? = nil, etag: String? = nil, sequencer: String? = nil, source: Source) {
        self.kind = kind
        self.name = name
        self.bucket = bucket
        self.key = key
        self.size = size
        self.etag = etag
        self.sequencer = sequencer
        self.source = source
    }
}

/// Why a request was refused: the HTTP status, a reason for the sender, and the counter it adds to.
package struct EventRejection: Error, Sendable, Equatable, CustomStringConvertible {
    package var status: Int
    package var reason: String
    /// `malformed`, `unknown_event`, `outside_links`, `too_large`, `unauthorized`, `bad_signature`, ...
    package var counter: String

    package init(_ status: Int, _ counter: String, _ reason: String) {
        self.status = status
        self.counter = counter
        self.reason = reason
    }

    package var description: String { "\(status) \(reason)" }

    /// A POST without the token (checked on the request's head by the server, and again by the endpoint).
    package static let unauthorized = EventRejection(401, "unauthorized", "no valid token: send Authorization: Bearer TOKEN (MinIO's auth_token), a Basic password (an SNS endpoint https://lakecache:TOKEN@host/), or ?token=TOKEN")
}
