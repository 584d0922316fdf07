import Platform

/// The object-store operations lakecache needs, independent of transport.
///
/// `S3Client` implements it over HTTP; `InMemoryObjectStore` implements it for engine unit tests. Every method
/// throws `ObjectStoreError`. `getObject` is callback-based because FUSE read misses must not park a thread
/// on the network; the completion runs on a network thread and must return quickly.
package protocol ObjectStore: AnyObject, Sendable {
    /// Checks that the bucket exists and is reachable with these credentials.
    func headBucket(_ bucket: String) async throws -> Void

    func headObject(bucket: String, key: String) async throws -> ObjectInfo

    /// Reads `request.range` (or the whole object) straight into `buffer`; never writes past `buffer.count`.
    ///
    /// The buffer must stay valid until `completion` runs. The result says how many bytes were written.
    func getObject(
        _ request: GetObjectRequest, into buffer: UnsafeMutableRawBufferPointer,
        completion: @escaping @Sendable (Result<GetObjectResult, ObjectStoreError>) -> Void)

    func listObjects(_ request: ListObjectsRequest) async throws -> ListObjectsPage

    func putObject(bucket: String, key: String, body: RequestBody, options: PutOptions) async throws -> String

    func createMultipartUpload(bucket: String, key: String, options: PutOptions) async throws -> String

    /// Uploads one part (1…10,000) with Content-MD5 and returns its ETag.
    func uploadPart(bucket: String, key: String, uploadID: String, partNumber: Int, body: RequestBody) async throws -> String

    /// Copies `range` of a source object into a part (for copies above 5 GiB); returns the part ETag.
    func uploadPartCopy(
        source: ObjectLocation, bucket: String, key: String, uploadID: String, partNumber: Int, range: ByteRange
    ) async throws -> String

    func completeMultipartUpload(bucket: String, key: String, uploadID: String, parts: [CompletedPart]) async throws -> String

    func abortMultipartUpload(bucket: String, key: String, uploadID: String) async throws

    func listParts(bucket: String, key: String, uploadID: String) async throws -> [PartInfo]

    func listMultipartUploads(bucket: String, prefix: String) async throws -> [MultipartUploadInfo]

    func deleteObject(bucket: String, key: String) async throws

    /// Deletes up to 1,000 keys per request; returns the keys that failed with their errors.
    func deleteObjects(bucket: String, keys: [String]) async throws -> [(key: String, error: ObjectStoreError)]

    /// Server-side copy of an object up to 5 GiB; returns the new ETag.
    func copyObject(source: ObjectLocation, bucket: String, key: String, options: CopyOptions) async throws -> String
}

extension ObjectStore {
    /// `getObject` for callers that may suspend (staging, symlinks); the buffer must outlive the call.
    package func getObject(_ request: GetObjectRequest, into buffer: UnsafeMutableRawBufferPointer) async throws -> GetObjectResult {
        let target = UnsafeSendableBuffer(buffer)
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<GetObjectResult, any Error>) in
            getObject(request, into: target.buffer) { c.resume(with: $0.mapError { $0 as any Error }) }
        }
    }
}

/// A buffer handed across a suspension; its owner keeps it alive until the request completes.
package struct UnsafeSendableBuffer: @unchecked Sendable {
    package let buffer: UnsafeMutableRawBufferPointer
    package init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }
}

/// A bucket and key.
package struct ObjectLocation: Sendable, Hashable {
    package var bucket: String
    package var key: String
    package init(bucket: String, key: String) {
        self.bucket = bucket
        self.key = key
    }
}

/// An inclusive byte range, as HTTP Range uses.
package struct ByteRange: Sendable, Hashable {
    package var first: Int64
    package var last: Int64
    package init(first: Int64, last: Int64) {
        precondition(first >= 0 && last >= first, "invalid byte range \(first)-\(last)")
        self.first = first
        self.last = last
    }
    package init(offset: Int64, length: Int64) { self.init(first: offset, last: offset + length - 1) }
    package var count: Int64 { last - first + 1 }
    package var header: String { "bytes=\(first)-\(last)" }
}

/// What HEAD (or a GET's headers) says about an object.
package struct ObjectInfo: Sendable, Equatable {
    package var key: String
    package var size: Int64
    package var etag: String
    package var lastModified: Timestamp
    package var contentType: String?
    /// `x-amz-meta-*` headers with the prefix removed; names are lower-case.
    package var metadata: [String: String]

    package init(key: String, size: Int64, etag: String, lastModified: Timestamp, contentType: String? = nil, metadata: [String: String] = [:]) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
        self.contentType = contentType
        self.metadata = metadata
    }
}

/// A ranged, version-pinned GET.
package struct GetObjectRequest: Sendable {
    package var bucket: String
    package var key: String
    package var range: ByteRange?
    /// Sent as `If-Match`; a changed object fails with `.preconditionFailed` instead of mixing versions.
    package var ifMatch: String?

    package init(bucket: String, key: String, range: ByteRange? = nil, ifMatch: String? = nil) {
        self.bucket = bucket
        self.key = key
        self.range = range
        self.ifMatch = ifMatch
    }
}

/// The outcome of a GET: bytes written to the buffer and the object's identity.
package struct GetObjectResult: Sendable {
    package var bytesWritten: Int
    package var etag: String
    /// Total object size, from Content-Range or Content-Length.
    package var objectSize: Int64
    /// `x-amz-meta-*` headers, as `ObjectInfo.metadata` has them: a GET tells what a HEAD would.
    package var metadata: [String: String] = [:]
    /// Last-Modified, when the answer had one.
    package var lastModified: Timestamp?

    package init(bytesWritten: Int, etag: String, objectSize: Int64, metadata: [String: String] = [:], lastModified: Timestamp? = nil) {
        self.bytesWritten = bytesWritten
        self.etag = etag
        self.objectSize = objectSize
        self.metadata = metadata
        self.lastModified = lastModified
    }
}

package struct ListObjectsRequest: Sendable {
    package var bucket: String
    package var prefix: String
    package var delimiter: String?
    package var continuationToken: String?
    package var startAfter: String?
    package var maxKeys: Int?

    package init(
        bucket: String, prefix: String = "", delimiter: String? = nil, continuationToken: String? = nil,
        startAfter: String? = nil, maxKeys: Int? = nil
    ) {
        self.bucket = bucket
        self.prefix = prefix
        self.delimiter = delimiter
        self.continuationToken = continuationToken
        self.startAfter = startAfter
        self.maxKeys = maxKeys
    }
}

/// One entry of a listing.
package struct ListedObject: Sendable, Equatable {
    package var key: String
    package var size: Int64
    package var etag: String
    package var lastModified: Timestamp
}

/// One page of ListObjectsV2.
package struct ListObjectsPage: Sendable {
    package var objects: [ListedObject]
    package var commonPrefixes: [String]
    /// Set when more pages follow.
    package var nextContinuationToken: String?
}

/// Headers to set on a new object.
package struct PutOptions: Sendable {
    package var metadata: [String: String]
    package var contentType: String?
    package init(metadata: [String: String] = [:], contentType: String? = nil) {
        self.metadata = metadata
        self.contentType = contentType
    }
}

/// How CopyObject treats metadata: keep the source's, or replace it.
package struct CopyOptions: Sendable {
    package var replaceMetadata: [String: String]?
    package var contentType: String?
    /// `x-amz-copy-source-if-match`: copy only this version of the source.
    package var sourceIfMatch: String?
    package init(replaceMetadata: [String: String]? = nil, contentType: String? = nil, sourceIfMatch: String? = nil) {
        self.replaceMetadata = replaceMetadata
        self.contentType = contentType
        self.sourceIfMatch = sourceIfMatch
    }
}

package struct CompletedPart: Sendable, Equatable {
    package var partNumber: Int
    package var etag: String
    package init(partNumber: Int, etag: String) {
        self.partNumber = partNumber
        self.etag = etag
    }
}

package struct PartInfo: Sendable, Equatable {
    package var partNumber: Int
    package var etag: String
    package var size: Int64
}

package struct MultipartUploadInfo: Sendable, Equatable {
    package var key: String
    package var uploadID: String
    package var initiated: Timestamp
}

/// A request body: bytes in memory, or a byte range of an open file read with `pread` as the transfer runs.
package enum RequestBody: Sendable {
    case empty
    case bytes([UInt8])
    /// The descriptor must stay open until the request completes.
    case file(descriptor: Int32, offset: Int64, length: Int64)
    /// Memory the caller owns: it must stay allocated and unchanged until the request completes (retries
    /// included). Sends a part read once from disk without copying it into an array.
    case memory(BodyMemory)

    package var count: Int64 {
        switch self {
        case .empty: return 0
        case .bytes(let b): return Int64(b.count)
        case .file(_, _, let length): return length
        case .memory(let m): return Int64(m.bytes.count)
        }
    }
}

/// Borrowed bytes for a request body; see `RequestBody.memory`.
package struct BodyMemory: @unchecked Sendable {
    package let bytes: UnsafeRawBufferPointer
    /// The MD5 of `bytes` when the caller already has it (computed off the request's thread).
    package let md5: [UInt8]?
    package init(_ bytes: UnsafeRawBufferPointer, md5: [UInt8]? = nil) {
        self.bytes = bytes
        self.md5 = md5
    }
}
