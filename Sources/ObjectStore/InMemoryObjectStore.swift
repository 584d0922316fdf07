import Platform
import Synchronization

/// An `ObjectStore` held in memory, for unit tests of the engine; integration tests use real servers.
///
/// It follows S3's rules where the engine depends on them: ETags change on every write (a completed upload
/// gets S3's multipart ETag, the MD5 of its parts' MD5s and `-N`), If-Match is
/// enforced, ranges are clamped, listings are sorted and honour prefix, delimiter and pagination.
package final class InMemoryObjectStore: ObjectStore, Sendable {
    package struct Object: Sendable {
        var data: [UInt8]
        var etag: String
        var metadata: [String: String]
        var modified: Timestamp
        /// Set on the data-less copies a listing works with.
        var size: Int? = nil
    }

    private struct State {
        var objects: [String: [String: Object]] = [:]
        var uploads: [String: (bucket: String, key: String, parts: [Int: [UInt8]], options: PutOptions)] = [:]
        var counter = 0
        var requests: [String: Int] = [:]
    }

    private let state = Locked(State())
    /// Longest random pause before an async request is served; zero serves at once.
    private let jitter = Locked(Duration.zero)
    /// Pauses for the next requests of an operation, taken in order.
    private let delays = Locked([String: [Duration]]())
    /// How many of the next requests of an operation are served but answered with a dropped connection.
    private let lostAnswers = Locked([String: Int]())

    package init(buckets: [String]) {
        state.withLock { s in for b in buckets { s.objects[b] = [:] } }
    }

    /// Requests served so far, by operation name.
    package var requests: [String: Int] { state.withLock { $0.requests } }

    private func count(_ op: String) { state.withLock { $0.requests[op, default: 0] += 1 } }

    /// Pauses each later async request (all but GETs) for a random time up to `upTo`, so requests finish out
    /// of the order they were made in, the way a loaded server or network has them.
    package func setJitter(upTo: Duration) { jitter.withLock { $0 = upTo } }

    /// The bytes of every object below `prefix`, by key, as the bucket holds them now (no request counted).
    package func contents(bucket: String, prefix: String = "") -> [String: [UInt8]] {
        state.withLock { s in (s.objects[bucket] ?? [:]).filter { $0.key.hasPrefix(prefix) }.mapValues(\.data) }
    }

    /// Holds the next request of `op` for `pause` before serving it (after any pauses already queued for it).
    package func delayNext(_ op: String, by pause: Duration) { delays.withLock { $0[op, default: []].append(pause) } }

    /// Serves the next request of `op` (only `CompleteMultipartUpload` so far) and then drops its answer, as a
    /// connection lost after the store did the work: the caller sees a transport error.
    package func loseNextAnswer(_ op: String) { lostAnswers.withLock { $0[op, default: 0] += 1 } }

    /// Throws the dropped connection `loseNextAnswer` queued for `op`, once the request was served.
    private func answer(_ op: String) throws(ObjectStoreError) {
        let lost = lostAnswers.withLock { l -> Bool in
            guard let n = l[op], n > 0 else { return false }
            l[op] = n - 1
            return true
        }
        if lost { throw ObjectStoreError(.transport(code: 56, detail: "Connection reset by peer"), "the answer to \(op) was lost") }
    }

    /// Counts `op` and waits its queued delay or its share of the jitter.
    private func arrive(_ op: String) async {
        count(op)
        if let pause = delays.withLock({ $0[op]?.isEmpty == false ? $0[op]!.removeFirst() : nil }) {
            try? await Task.sleep(for: pause)
            return
        }
        let most = jitter.withLock { $0 }
        guard most > .zero else { return }
        try? await Task.sleep(for: most * Double.random(in: 0...1))
    }

    private func object(_ bucket: String, _ key: String) throws(ObjectStoreError) -> Object {
        try state.withLock { s throws(ObjectStoreError) in
            guard let b = s.objects[bucket] else { throw ObjectStoreError(.noSuchBucket, "no such bucket", bucket: bucket) }
            guard let o = b[key] else { throw ObjectStoreError(.noSuchKey, "no such key", bucket: bucket, key: key) }
            return o
        }
    }

    /// Stores an object directly (test setup); returns its ETag.
    @discardableResult
    package func set(bucket: String, key: String, data: [UInt8], metadata: [String: String] = [:], etag given: String? = nil) -> String {
        state.withLock { s in
            s.counter += 1
            let etag = given ?? "\"\(Digest.hex(Digest.md5(data)))-v\(s.counter)\""
            s.objects[bucket, default: [:]][key] = Object(data: data, etag: etag, metadata: metadata, modified: Timestamp(seconds: 1_700_000_000 + Int64(s.counter)))
            return etag
        }
    }

    package func headBucket(_ bucket: String) async throws {
        await arrive("HeadBucket")
        let exists = state.withLock { $0.objects[bucket] != nil }
        if !exists { throw ObjectStoreError(.noSuchBucket, "no such bucket", bucket: bucket) }
    }

    package func headObject(bucket: String, key: String) async throws -> ObjectInfo {
        await arrive("HeadObject")
        let o = try object(bucket, key)
        return ObjectInfo(key: key, size: Int64(o.data.count), etag: o.etag, lastModified: o.modified, metadata: o.metadata)
    }

    package func getObject(
        _ request: GetObjectRequest, into buffer: UnsafeMutableRawBufferPointer,
        completion: @escaping @Sendable (Result<GetObjectResult, ObjectStoreError>) -> Void
    ) {
        count("GetObject")
        do {
            let o = try object(request.bucket, request.key)
            if let want = request.ifMatch, want != o.etag {
                throw ObjectStoreError(.preconditionFailed, "the object changed", bucket: request.bucket, key: request.key)
            }
            var first = 0
            var last = o.data.count - 1
            if let r = request.range {
                guard r.first < Int64(o.data.count) else { throw ObjectStoreError(.invalidRange, "range not satisfiable") }
                first = Int(r.first)
                last = min(Int(r.last), o.data.count - 1)
            }
            let n = max(0, last - first + 1)
            guard n <= buffer.count else { throw ObjectStoreError(.malformedResponse, "response body is longer than the request allows") }
            o.data.withUnsafeBytes { src in
                if n > 0 { buffer.baseAddress!.copyMemory(from: src.baseAddress! + first, byteCount: n) }
            }
            completion(.success(GetObjectResult(bytesWritten: n, etag: o.etag, objectSize: Int64(o.data.count), metadata: o.metadata, lastModified: o.modified)))
        } catch let e as ObjectStoreError {
            completion(.failure(e))
        } catch {
            completion(.failure(ObjectStoreError(.malformedResponse, "\(error)")))
        }
    }

    package func listObjects(_ request: ListObjectsRequest) async throws -> ListObjectsPage {
        await arrive("ListObjectsV2")
        let start = request.continuationToken ?? request.startAfter ?? ""
        // Only what the page can show, without the objects' bytes: the engine tests list buckets of
        // thousands of objects thousands of times.
        let all = try state.withLock { s throws(ObjectStoreError) in
            guard let b = s.objects[request.bucket] else { throw ObjectStoreError(.noSuchBucket, "no such bucket", bucket: request.bucket) }
            return b.compactMap { key, o -> (String, Object)? in
                guard key.hasPrefix(request.prefix), key > start else { return nil }
                return (key, Object(data: [], etag: o.etag, metadata: [:], modified: o.modified, size: o.data.count))
            }.sorted { $0.0 < $1.0 }
        }
        let limit = request.maxKeys ?? 1000
        var objects: [ListedObject] = []
        var prefixes: [String] = []
        var last: String?
        var truncated = false
        for (key, o) in all where key.hasPrefix(request.prefix) && key > start {
            if let p = prefixes.last, key.hasPrefix(p) { continue }
            if let d = request.delimiter, !d.isEmpty, let p = Self.commonPrefix(of: key, after: request.prefix, delimiter: d) {
                if objects.count + prefixes.count >= limit { truncated = true; break }
                prefixes.append(p)
                // Continue after every key under p: a token of p + U+10FFFF sorts after them all.
                last = p + "\u{10FFFF}"
                continue
            }
            if objects.count + prefixes.count >= limit { truncated = true; break }
            objects.append(ListedObject(key: key, size: Int64(o.size ?? o.data.count), etag: o.etag, lastModified: o.modified))
            last = key
        }
        return ListObjectsPage(objects: objects, commonPrefixes: prefixes, nextContinuationToken: truncated ? last : nil)
    }

    /// The key up to and including the first `delimiter` after `prefix`, if there is one.
    static func commonPrefix(of key: String, after prefix: String, delimiter: String) -> String? {
        let rest = key.utf8.dropFirst(prefix.utf8.count)
        let d = Array(delimiter.utf8)
        var i = rest.startIndex
        while i != rest.endIndex {
            if rest[i...].starts(with: d) {
                let end = key.utf8.index(i, offsetBy: d.count)
                return String(key[..<end])
            }
            i = rest.index(after: i)
        }
        return nil
    }

    package func putObject(bucket: String, key: String, body: RequestBody, options: PutOptions) async throws -> String {
        await arrive("PutObject")
        return set(bucket: bucket, key: key, data: try Self.bytes(of: body), metadata: options.metadata)
    }

    package func createMultipartUpload(bucket: String, key: String, options: PutOptions) async throws -> String {
        await arrive("CreateMultipartUpload")
        return state.withLock { s in
            s.counter += 1
            let id = "upload-\(s.counter)"
            s.uploads[id] = (bucket, key, [:], options)
            return id
        }
    }

    package func uploadPart(bucket: String, key: String, uploadID: String, partNumber: Int, body: RequestBody) async throws -> String {
        await arrive("UploadPart")
        let b = try Self.bytes(of: body)
        try state.withLock { s throws(ObjectStoreError) in
            guard s.uploads[uploadID] != nil else { throw ObjectStoreError(.noSuchUpload, "no such upload") }
            s.uploads[uploadID]!.parts[partNumber] = b
        }
        return "\"\(Digest.hex(Digest.md5(b)))\""
    }

    package func uploadPartCopy(source: ObjectLocation, bucket: String, key: String, uploadID: String, partNumber: Int, range: ByteRange) async throws -> String {
        let o = try object(source.bucket, source.key)
        return try await uploadPart(bucket: bucket, key: key, uploadID: uploadID, partNumber: partNumber, body: .bytes(Array(o.data[Int(range.first)...Int(range.last)])))
    }

    package func completeMultipartUpload(bucket: String, key: String, uploadID: String, parts: [CompletedPart]) async throws -> String {
        await arrive("CompleteMultipartUpload")
        let upload = try state.withLock { s throws(ObjectStoreError) in
            guard let u = s.uploads.removeValue(forKey: uploadID) else { throw ObjectStoreError(.noSuchUpload, "no such upload") }
            return u
        }
        let sorted = parts.sorted { $0.partNumber < $1.partNumber }
        let data = sorted.flatMap { upload.parts[$0.partNumber] ?? [] }
        // S3's ETag for an upload: the MD5 of the parts' MD5s, then the part count.
        let etag = "\"" + Digest.multipartETag(partMD5s: sorted.flatMap { Digest.md5(upload.parts[$0.partNumber] ?? []) }, parts: sorted.count) + "\""
        set(bucket: bucket, key: key, data: data, metadata: upload.options.metadata, etag: etag)
        try answer("CompleteMultipartUpload")
        return etag
    }

    package func abortMultipartUpload(bucket: String, key: String, uploadID: String) async throws {
        await arrive("AbortMultipartUpload")
        state.withLock { _ = $0.uploads.removeValue(forKey: uploadID) }
    }

    package func listParts(bucket: String, key: String, uploadID: String) async throws -> [PartInfo] {
        await arrive("ListParts")
        return state.withLock { s in
            (s.uploads[uploadID]?.parts ?? [:]).sorted { $0.key < $1.key }.map {
                PartInfo(partNumber: $0.key, etag: "\"\(Digest.hex(Digest.md5($0.value)))\"", size: Int64($0.value.count))
            }
        }
    }

    package func listMultipartUploads(bucket: String, prefix: String) async throws -> [MultipartUploadInfo] {
        await arrive("ListMultipartUploads")
        return state.withLock { s in
            s.uploads.filter { $0.value.bucket == bucket && $0.value.key.hasPrefix(prefix) }
                .map { MultipartUploadInfo(key: $0.value.key, uploadID: $0.key, initiated: Timestamp(seconds: 0)) }
        }
    }

    package func deleteObject(bucket: String, key: String) async throws {
        await arrive("DeleteObject")
        state.withLock { _ = $0.objects[bucket]?.removeValue(forKey: key) }
    }

    package func deleteObjects(bucket: String, keys: [String]) async throws -> [(key: String, error: ObjectStoreError)] {
        await arrive("DeleteObjects")
        state.withLock { s in for k in keys { s.objects[bucket]?.removeValue(forKey: k) } }
        return []
    }

    package func copyObject(source: ObjectLocation, bucket: String, key: String, options: CopyOptions) async throws -> String {
        await arrive("CopyObject")
        let o = try object(source.bucket, source.key)
        if let want = options.sourceIfMatch, want != o.etag { throw ObjectStoreError(.preconditionFailed, "source changed") }
        return set(bucket: bucket, key: key, data: o.data, metadata: options.replaceMetadata ?? o.metadata)
    }

    /// The bytes of a request body; file bodies are read as the HTTP client would send them.
    static func bytes(of body: RequestBody) throws(ObjectStoreError) -> [UInt8] {
        switch body {
        case .empty: return []
        case .bytes(let b): return b
        case .memory(let m): return Array(m.bytes)
        case .file(let fd, let offset, let length):
            var out = [UInt8](repeating: 0, count: Int(length))
            let n = out.withUnsafeMutableBytes { Syscall.preadFully(fd, $0.baseAddress!, Int(length), offset) }
            guard case .success(Int(length)) = n else { throw ObjectStoreError(.configuration, "cannot read the body from descriptor \(fd)") }
            return out
        }
    }
}
