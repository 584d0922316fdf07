import Platform
import Synchronization

/// Requests one link made, by operation, and how many failed; for `status` per link.
package final class RequestCounters: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    package let errors = Atomic<Int>(0)

    package init() {}

    func count(_ operation: String) { counts.withLock { $0[operation, default: 0] += 1 } }

    /// Requests by operation name (GetObject, HeadObject, ListObjectsV2, ...).
    package var byOperation: [String: Int] { counts.withLock { $0 } }

    package var total: Int { counts.withLock { $0.values.reduce(0, +) } }
}

/// An object store that counts what passes through it, then forwards to the real one.
///
/// Links that share a store share its client (its connections and its own metrics); each wraps it in one
/// of these to have figures of its own.
package final class CountingObjectStore: ObjectStore {
    package let inner: any ObjectStore
    package let counters: RequestCounters

    package init(_ inner: any ObjectStore, counters: RequestCounters = RequestCounters()) {
        self.inner = inner
        self.counters = counters
    }

    private func counted<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        counters.count(operation)
        do { return try await body() } catch {
            counters.errors.add(1, ordering: .relaxed)
            throw error
        }
    }

    package func headBucket(_ bucket: String) async throws { try await counted("HeadBucket") { try await inner.headBucket(bucket) } }

    package func headObject(bucket: String, key: String) async throws -> ObjectInfo {
        try await counted("HeadObject") { try await inner.headObject(bucket: bucket, key: key) }
    }

    package func getObject(
        _ request: GetObjectRequest, into buffer: UnsafeMutableRawBufferPointer,
        completion: @escaping @Sendable (Result<GetObjectResult, ObjectStoreError>) -> Void
    ) {
        counters.count("GetObject")
        let counters = self.counters
        inner.getObject(request, into: buffer) { result in
            if case .failure = result { counters.errors.add(1, ordering: .relaxed) }
            completion(result)
        }
    }

    package func listObjects(_ request: ListObjectsRequest) async throws -> ListObjectsPage {
        try await counted("ListObjectsV2") { try await inner.listObjects(request) }
    }

    package func putObject(bucket: String, key: String, body: RequestBody, options: PutOptions) async throws -> String {
        try await counted("PutObject") { try await inner.putObject(bucket: bucket, key: key, body: body, options: options) }
    }

    package func createMultipartUpload(bucket: String, key: String, options: PutOptions) async throws -> String {
        try await counted("CreateMultipartUpload") { try await inner.createMultipartUpload(bucket: bucket, key: key, options: options) }
    }

    package func uploadPart(bucket: String, key: String, uploadID: String, partNumber: Int, body: RequestBody) async throws -> String {
        try await counted("UploadPart") { try await inner.uploadPart(bucket: bucket, key: key, uploadID: uploadID, partNumber: partNumber, body: body) }
    }

    package func uploadPartCopy(source: ObjectLocation, bucket: String, key: String, uploadID: String, partNumber: Int, range: ByteRange) async throws -> String {
        try await counted("UploadPartCopy") {
            try await inner.uploadPartCopy(source: source, bucket: bucket, key: key, uploadID: uploadID, partNumber: partNumber, range: range)
        }
    }

    package func completeMultipartUpload(bucket: String, key: String, uploadID: String, parts: [CompletedPart]) async throws -> String {
        try await counted("CompleteMultipartUpload") { try await inner.completeMultipartUpload(bucket: bucket, key: key, uploadID: uploadID, parts: parts) }
    }

    package func abortMultipartUpload(bucket: String, key: String, uploadID: String) async throws {
        try await counted("AbortMultipartUpload") { try await inner.abortMultipartUpload(bucket: bucket, key: key, uploadID: uploadID) }
    }

    package func listParts(bucket: String, key: String, uploadID: String) async throws -> [PartInfo] {
        try await counted("ListParts") { try await inner.listParts(bucket: bucket, key: key, uploadID: uploadID) }
    }

    package func listMultipartUploads(bucket: String, prefix: String) async throws -> [MultipartUploadInfo] {
        try await counted("ListMultipartUploads") { try await inner.listMultipartUploads(bucket: bucket, prefix: prefix) }
    }

    package func deleteObject(bucket: String, key: String) async throws {
        try await counted("DeleteObject") { try await inner.deleteObject(bucket: bucket, key: key) }
    }

    package func deleteObjects(bucket: String, keys: [String]) async throws -> [(key: String, error: ObjectStoreError)] {
        try await counted("DeleteObjects") { try await inner.deleteObjects(bucket: bucket, keys: keys) }
    }

    package func copyObject(source: ObjectLocation, bucket: String, key: String, options: CopyOptions) async throws -> String {
        try await counted("CopyObject") { try await inner.copyObject(source: source, bucket: bucket, key: key, options: options) }
    }
}
