/// The S3 operations lakecache sends, as a small dense enum: counters are fixed arrays indexed by it, so
/// counting a request costs no hashing and no allocation.
package enum BackendOperation: Int, CaseIterable, Sendable {
    case headBucket, createBucket
    case headObject, getObject, putObject, deleteObject, copyObject
    case listObjectsV2, deleteObjects
    case createMultipartUpload, uploadPart, uploadPartCopy, completeMultipartUpload, abortMultipartUpload
    case listParts, listMultipartUploads

    /// The S3 API name (GetObject, UploadPart, ...), as metrics, `status` and errors spell it.
    package var name: String {
        switch self {
        case .headBucket: "HeadBucket"
        case .createBucket: "CreateBucket"
        case .headObject: "HeadObject"
        case .getObject: "GetObject"
        case .putObject: "PutObject"
        case .deleteObject: "DeleteObject"
        case .copyObject: "CopyObject"
        case .listObjectsV2: "ListObjectsV2"
        case .deleteObjects: "DeleteObjects"
        case .createMultipartUpload: "CreateMultipartUpload"
        case .uploadPart: "UploadPart"
        case .uploadPartCopy: "UploadPartCopy"
        case .completeMultipartUpload: "CompleteMultipartUpload"
        case .abortMultipartUpload: "AbortMultipartUpload"
        case .listParts: "ListParts"
        case .listMultipartUploads: "ListMultipartUploads"
        }
    }

    /// Per-operation figures by operation name, for `status`; operations whose figure is 0 are left out.
    package static func named(_ figure: (BackendOperation) -> Int) -> [String: Int] {
        var out: [String: Int] = [:]
        for op in allCases where figure(op) > 0 { out[op.name] = figure(op) }
        return out
    }
}

/// One operation's traffic: what an `S3Client` sent and got back for it.
package struct OperationTraffic: Sendable, Equatable {
    /// HTTP requests sent, retries included.
    package var requests = 0
    /// Requests sent again after a retryable failure.
    package var retries = 0
    /// Operations that failed after their retries, not counting NoSuchKey (an expected answer to lookups).
    package var errors = 0
    /// Bytes received: bodies and XML.
    package var bytesIn: Int64 = 0
    /// Request body bytes sent.
    package var bytesOut: Int64 = 0

    package init() {}

    /// Adds `other` in, for totals over operations or clients.
    package mutating func add(_ other: OperationTraffic) {
        requests += other.requests
        retries += other.retries
        errors += other.errors
        bytesIn += other.bytesIn
        bytesOut += other.bytesOut
    }
}
