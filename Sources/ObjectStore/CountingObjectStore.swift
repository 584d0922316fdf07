import Platform
import Synchronization

/// Requests one link made, by operation, and how many failed; for `status` and metrics per link.
///
/// Fixed arrays indexed by `BackendOperation` under one lock: counting a call hashes nothing and allocates
/// nothing.
package final class RequestCounters: Sendable {
    private struct Counts {
        var calls = [Int](repeating: 0, count: BackendOperation.allCases.count)
        var failures = [Int](repeating: 0, count: BackendOperation.allCases.count)
    }

    private let counts = Locked(Counts())

    package init() {}

    func count(_ operation: BackendOperation) { counts.withLock { $0.calls[operation.rawValue] += 1 } }

    /// A call failed for good; a missing key is an answer to a lookup, not a failure of the store.
    func failed(_ operation: BackendOperation, _ error: any Error) {
        if let e = error as? ObjectStoreError, e.kind == .noSuchKey { return }
        counts.withLock { $0.failures[operation.rawValue] += 1 }
    }

    /// Calls by operation name (GetObject, HeadObject, ListObjectsV2, ...), one per call however many
    /// attempts it took; operations never called are left out.
    package var byOperation: [String: Int] {
        let calls = counts.withLock { $0.calls }
        return BackendOperation.named { calls[$0.rawValue] }
    }

    /// Failed calls by operation name (NoSuchKey left out); operations that never failed are left out.
    package var errorsByOperation: [String: Int] {
        let failures = counts.withLock { $0.failures }
        return BackendOperation.named { failures[$0.rawValue] }
    }

    /// Failed calls over all operations.
    package var errors: Int { counts.withLock { $0.failures.reduce(0, +) } }

    package var total: Int { counts.withLock { $0.calls.reduce(0, +) } }
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

    private func counted<T>(_ operation: BackendOperation, _ body: () async throws -> T) async throws -> T {
        counters.count(operation)
        do { return try await body() } catch {
            counters.failed(operation, error)
            throw error
        }
    }

    package func headBucket(_ bucket: String) async throws { try await counted(.headBucket) { try await inner.headBucket(bucket) } }

    package func headObject(bucket: String, key: String) async throws -> ObjectInfo {
        try await counted(.headObject) { try await inner.headObject(bucket: bucket, key: key) }
    }

    package func getObject(
        _ request: GetObjectRequest, into buffer: UnsafeMutableRawBufferPointer,
        completion: @escaping @Sendable (Result<GetObjectResult, ObjectStoreError>) -> Void
    ) {
        counters.count(.getObject)
        let counters = self.counters
        inner.getObject(request, into: buffer) { result in
            if case .failure(let error) = result { counters.failed(.getObject, error) }
            completion(result)
        }
    }

    package func listObjects(_ request: ListObjectsRequest) async throws -> ListObjectsPage {
        try await counted(.listObjectsV2) { try await inner.listObjects(request) }
    }

    package func putObject(bucket: String, key: String, body: RequestBody, options: PutOptions) async throws -> String {
        try await counted(.putObject) { try await inner.putObject(bucket: bucket, key: key, body: body, options: options) }
    }

    package func createMultipartUpload(bucket: String, key: String, options: PutOptions) async throws -> String {
        try await counted(.createMultipartUpload) { try await inner.createMultipartUpload(bucket: bucket, key: key, options: options) }
    }

    package func uploadPart(bucket: String, key: String, uploadID: String, partNumber: Int, body: RequestBody) async throws -> String {
        try await counted(.uploadPart) { try await inner.uploadPart(bucket: bucket, key: key, uploadID: uploadID, partNumber: partNumber, body: body) }
    }

    package func uploadPartCopy(source: ObjectLocation, bucket: String, key: String, uploadID: String, partNumber: Int, range: ByteRange) async throws -> String {
        try await counted(.uploadPartCopy) {
            try await inner.uploadPartCopy(source: source, bucket: bucket, key: key, uploadID: uploadID, partNumber: partNumber, range: range)
        }
    }

    package func completeMultipartUpload(bucket: String, key: String, uploadID: String, parts: [CompletedPart]) async throws -> String {
        try await counted(.completeMultipartUpload) { try await inner.completeMultipartUpload(bucket: bucket, key: key, uploadID: uploadID, parts: parts) }
    }

    package func abortMultipartUpload(bucket: String, key: String, uploadID: String) async throws {
        try await counted(.abortMultipartUpload) { try await inner.abortMultipartUpload(bucket: bucket, key: key, uploadID: uploadID) }
    }

    package func listParts(bucket: String, key: String, uploadID: String) async throws -> [PartInfo] {
        try await counted(.listParts) { try await inner.listParts(bucket: bucket, key: key, uploadID: uploadID) }
    }

    package func listMultipartUploads(bucket: String, prefix: String) async throws -> [MultipartUploadInfo] {
        try await counted(.listMultipartUploads) { try await inner.listMultipartUploads(bucket: bucket, prefix: prefix) }
    }

    package func deleteObject(bucket: String, key: String) async throws {
        try await counted(.deleteObject) { try await inner.deleteObject(bucket: bucket, key: key) }
    }

    package func deleteObjects(bucket: String, keys: [String]) async throws -> [(key: String, error: ObjectStoreError)] {
        try await counted(.deleteObjects) { try await inner.deleteObjects(bucket: bucket, keys: keys) }
    }

    package func copyObject(source: ObjectLocation, bucket: String, key: String, options: CopyOptions) async throws -> String {
        try await counted(.copyObject) { try await inner.copyObject(source: source, bucket: bucket, key: key, options: options) }
    }
}
