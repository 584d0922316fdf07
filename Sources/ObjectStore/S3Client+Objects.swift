extension S3Client {
    package func headBucket(_ bucket: String) async throws {
        let op = Operation(operation: .headBucket, method: "HEAD", bucket: bucket)
        do {
            _ = try await perform(op, sink: .discard)
        } catch var error as ObjectStoreError {
            // HEAD has no body, so a 404 cannot say which thing is missing; here it is the bucket.
            if error.kind == .noSuchKey {
                error.kind = .noSuchBucket
                error.message = "bucket does not exist"
            }
            throw error
        }
    }

    package func headObject(bucket: String, key: String) async throws -> ObjectInfo {
        let op = Operation(operation: .headObject, method: "HEAD", bucket: bucket, key: key)
        return try await perform(op, sink: .discard) { response throws(ObjectStoreError) in
            try Self.objectInfo(key: key, headers: response.headers)
        }
    }

    /// Reads object identity from response headers; a missing or garbled header is a malformed response.
    static func objectInfo(key: String, headers: [String: String]) throws(ObjectStoreError) -> ObjectInfo {
        guard let etag = headers["etag"], !etag.isEmpty else {
            throw ObjectStoreError(.malformedResponse, "response lacks an ETag header")
        }
        guard let lengthText = headers["content-length"], let size = Int64(lengthText), size >= 0 else {
            throw ObjectStoreError(.malformedResponse, "response lacks a valid Content-Length header")
        }
        let modified = headers["last-modified"].flatMap { Timestamp(httpDate: $0) } ?? Timestamp(seconds: 0)
        var metadata: [String: String] = [:]
        for (name, value) in headers where name.hasPrefix("x-amz-meta-") {
            metadata[String(name.dropFirst(11))] = value
        }
        return ObjectInfo(key: key, size: size, etag: etag, lastModified: modified, contentType: headers["content-type"], metadata: metadata)
    }

    package func getObject(
        _ request: GetObjectRequest, into buffer: UnsafeMutableRawBufferPointer,
        completion: @escaping @Sendable (Result<GetObjectResult, ObjectStoreError>) -> Void
    ) {
        var op = Operation(operation: .getObject, method: "GET", bucket: request.bucket, key: request.key)
        if let range = request.range { op.headers.append((name: "Range", value: range.header)) }
        if let etag = request.ifMatch { op.headers.append((name: "If-Match", value: etag)) }
        // One per GET, set once by the transfer's thread: the inline `Mutex` allocates nothing.
        let validated = Mutex<GetObjectResult?>(nil)
        perform(op, sink: .buffer(buffer), validate: { response in
            switch Self.validateGet(response, request: request) {
            case .success(let result):
                validated.withLock { $0 = result }
                return nil
            case .failure(let error):
                return error
            }
        }) { result in
            completion(result.map { _ in validated.withLock { $0! } })
        }
    }

    /// Checks that a GET answer is exactly the bytes asked for: right range, right length, right version.
    static func validateGet(_ response: HTTPResponse, request: GetObjectRequest) -> Result<GetObjectResult, ObjectStoreError> {
        guard let etag = response.headers["etag"], !etag.isEmpty else {
            return .failure(ObjectStoreError(.malformedResponse, "GET response lacks an ETag header"))
        }
        if let wanted = request.ifMatch, wanted != etag {
            return .failure(ObjectStoreError(.preconditionFailed, "the object changed: ETag \(etag), expected \(wanted)"))
        }
        guard let lengthText = response.headers["content-length"], let length = Int(lengthText) else {
            return .failure(ObjectStoreError(.malformedResponse, "GET response lacks Content-Length"))
        }
        guard length == response.bufferBytes else {
            return .failure(ObjectStoreError(.malformedResponse, "truncated body: \(response.bufferBytes) of \(length) bytes"))
        }
        var total = Int64(length)
        if let range = request.range {
            if response.status == 206 {
                guard let cr = response.headers["content-range"], let parsed = parseContentRange(cr) else {
                    return .failure(ObjectStoreError(.malformedResponse, "206 response lacks a valid Content-Range"))
                }
                guard parsed.first == range.first, parsed.last <= range.last, parsed.last - parsed.first + 1 == Int64(length) else {
                    return .failure(ObjectStoreError(.malformedResponse, "Content-Range \(cr) does not match the requested \(range.header)"))
                }
                total = parsed.total
            } else if range.first != 0 {
                return .failure(ObjectStoreError(.malformedResponse, "server ignored the Range header (status \(response.status))"))
            }
        }
        var metadata: [String: String] = [:]
        for (name, value) in response.headers where name.hasPrefix("x-amz-meta-") {
            metadata[String(name.dropFirst(11))] = value
        }
        return .success(GetObjectResult(
            bytesWritten: response.bufferBytes, etag: etag, objectSize: total, metadata: metadata,
            lastModified: response.headers["last-modified"].flatMap { Timestamp(httpDate: $0) }))
    }

    /// Parses `bytes FIRST-LAST/TOTAL`.
    package static func parseContentRange(_ text: String) -> (first: Int64, last: Int64, total: Int64)? {
        guard text.hasPrefix("bytes ") else { return nil }
        let spec = text.dropFirst(6)
        guard let dash = spec.firstIndex(of: "-"), let slash = spec.firstIndex(of: "/"),
            let first = Int64(spec[..<dash]), let last = Int64(spec[spec.index(after: dash)..<slash]),
            let total = Int64(spec[spec.index(after: slash)...]), first <= last, last < total
        else { return nil }
        return (first, last, total)
    }

    package func putObject(bucket: String, key: String, body: RequestBody, options: PutOptions) async throws -> String {
        var op = Operation(operation: .putObject, method: "PUT", bucket: bucket, key: key, body: body)
        op.headers = try Self.putHeaders(options)
        op.headers.append((name: "Content-MD5", value: Digest.base64(try Self.md5(of: body))))
        return try await perform(op, sink: .discard, parse: Self.requireETag)
    }

    package func deleteObject(bucket: String, key: String) async throws {
        let op = Operation(operation: .deleteObject, method: "DELETE", bucket: bucket, key: key)
        _ = try await perform(op, sink: .discard)
    }

    package func copyObject(source: ObjectLocation, bucket: String, key: String, options: CopyOptions) async throws -> String {
        var op = Operation(operation: .copyObject, method: "PUT", bucket: bucket, key: key, errorIn200: true)
        op.headers.append((name: "x-amz-copy-source", value: Self.copySource(source)))
        if let etag = options.sourceIfMatch { op.headers.append((name: "x-amz-copy-source-if-match", value: etag)) }
        if let metadata = options.replaceMetadata {
            op.headers.append((name: "x-amz-metadata-directive", value: "REPLACE"))
            op.headers += try Self.putHeaders(PutOptions(metadata: metadata, contentType: options.contentType))
        }
        return try await perform(op, parse: Self.resultETag)
    }

    /// `x-amz-copy-source`: `bucket/key`, URI-encoded with `/` kept.
    static func copySource(_ source: ObjectLocation) -> String {
        URIEncoding.encode(source.bucket) + "/" + URIEncoding.encode(source.key, keepSlash: true)
    }

    /// Content-Type and `x-amz-meta-*` headers; rejects names or values S3 would refuse or mangle.
    static func putHeaders(_ options: PutOptions) throws(ObjectStoreError) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        if let type = options.contentType { headers.append((name: "Content-Type", value: type)) }
        for (name, value) in options.metadata.sorted(by: { $0.key < $1.key }) {
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") }) else {
                throw .configuration("metadata name '\(name)' must be printable ASCII without spaces or ':'")
            }
            guard value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
                throw .configuration("metadata value for '\(name)' must be printable ASCII; encode it first")
            }
            headers.append((name: "x-amz-meta-\(name.lowercased())", value: value))
        }
        return headers
    }

    static func md5(of body: RequestBody) throws(ObjectStoreError) -> [UInt8] {
        switch body {
        case .empty: return Digest.md5([UInt8]())
        case .bytes(let bytes): return Digest.md5(bytes)
        case .memory(let m): return m.md5 ?? Digest.md5(m.bytes)
        case .file(let fd, let offset, let length):
            do throws(Errno) {
                return try S3RequestBuilder.hashFile(fd: fd, offset: offset, length: length, .md5)
            } catch {
                throw .configuration("cannot read the upload body from descriptor \(fd): \(error)")
            }
        }
    }

    static func requireETag(_ response: HTTPResponse) throws(ObjectStoreError) -> String {
        guard let etag = response.headers["etag"], !etag.isEmpty else {
            throw ObjectStoreError(.malformedResponse, "response lacks an ETag header")
        }
        return etag
    }
}

import Platform
import Synchronization

extension S3Client {
    /// Creates a bucket (tests, the demo and benchmarks); an existing bucket owned by us is not an error.
    package func createBucket(_ bucket: String) async throws {
        var op = Operation(operation: .createBucket, method: "PUT", bucket: bucket)
        if configuration.region != "us-east-1" {
            let xml = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(configuration.region)</LocationConstraint></CreateBucketConfiguration>"
            op.body = .bytes(Array(xml.utf8))
        }
        do {
            _ = try await perform(op, sink: .discard)
        } catch let error as ObjectStoreError where error.kind == .clientError(code: "BucketAlreadyOwnedByYou") {
            return
        }
    }
}
