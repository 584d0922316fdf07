import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The production `ObjectStore`: S3 over libcurl with SigV4, retries and typed errors.
package final class S3Client: ObjectStore, @unchecked Sendable {
    package let configuration: S3Configuration
    package let metrics = BackendMetrics()
    let transport: CurlTransport
    let signer: SigV4Signer?
    let logger: Logger

    package init(configuration: S3Configuration, logger: Logger = Logger(label: "lakecache.s3")) {
        self.configuration = configuration
        self.transport = CurlTransport(options: configuration.transport)
        self.signer = configuration.credentials.map { SigV4Signer(credentials: $0, region: configuration.region) }
        self.logger = logger
    }

    /// Stops the network thread; pending requests fail with `.cancelled`.
    package func shutdown() { transport.shutdown() }

    /// One S3 call before signing: what to send and how to treat the answer.
    struct Operation {
        var name: String
        var method: String
        var bucket: String
        var key: String?
        var query: [(String, String)] = []
        var headers: [(name: String, value: String)] = []
        var body: RequestBody = .empty
        /// Whether a retry after the request may have taken effect is safe.
        var idempotent = true
        /// A 200 whose body is an `<Error>` document (CompleteMultipartUpload, CopyObject) is a failure.
        var errorIn200 = false
    }

    func useVirtualHost(bucket: String) -> Bool {
        switch configuration.addressing {
        case .path: return false
        case .virtual: return true
        case .auto:
            guard configuration.endpoint.isAWS, (3...63).contains(bucket.count) else { return false }
            // Dots break TLS wildcard certificates, so such buckets use path-style.
            return bucket.allSatisfy { ($0.isLowercase && $0.isASCII) || $0.isNumber || $0 == "-" }
        }
    }

    /// Builds and signs the HTTP request for one attempt; the signature carries the current time.
    func makeRequest(_ op: Operation) -> HTTPRequest {
        let endpoint = configuration.endpoint
        let keyPath = op.key.map { URIEncoding.encode($0, keepSlash: true) }
        var host = endpoint.host
        var path: String
        if useVirtualHost(bucket: op.bucket) {
            host = "\(op.bucket).\(endpoint.host)"
            path = "/" + (keyPath ?? "")
        } else {
            path = "/" + URIEncoding.encode(op.bucket) + (keyPath.map { "/" + $0 } ?? "")
        }
        let hostHeader = endpoint.hostHeader(host: host)
        var headers = op.headers
        headers.append((name: "host", value: hostHeader))
        if let signer {
            signer.sign(
                method: op.method, encodedPath: path, query: op.query, headers: &headers,
                payloadHash: payloadHash(op.body), time: Int64(time(nil)))
        }
        let query = SigV4Signer.canonicalQueryString(op.query)
        let url = "\(endpoint.scheme)://\(hostHeader)\(path)\(query.isEmpty ? "" : "?" + query)"
        return HTTPRequest(method: op.method, url: url, headers: headers, body: op.body)
    }

    private func payloadHash(_ body: RequestBody) -> String {
        let signed: Bool
        switch configuration.payloadSigning {
        case .signed: signed = true
        case .unsigned: signed = false
        case .auto: signed = configuration.endpoint.scheme == "http"
        }
        switch body {
        case .empty: return Digest.emptySHA256Hex
        case .bytes(let bytes): return signed ? Digest.hex(Digest.sha256(bytes)) : "UNSIGNED-PAYLOAD"
        case .file(let fd, let offset, let length):
            guard signed else { return "UNSIGNED-PAYLOAD" }
            // An unreadable file yields a hash that will not match; the transfer then reports the read error.
            return (try? Self.hashFile(fd: fd, offset: offset, length: length, .sha256)).map { Digest.hex($0) } ?? "UNSIGNED-PAYLOAD"
        }
    }

    /// Digests a byte range of a file in 1 MiB chunks.
    static func hashFile(fd: Int32, offset: Int64, length: Int64, _ algorithm: IncrementalDigest.Algorithm) throws(Errno) -> [UInt8] {
        let digest = IncrementalDigest(algorithm)
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        var done: Int64 = 0
        while done < length {
            let want = Int(min(Int64(chunk), length - done))
            switch Syscall.preadFully(fd, buffer.baseAddress!, want, offset + done) {
            case .success(let n) where n == want: break
            case .success: throw Errno(EIO)
            case .failure(let e): throw e
            }
            digest.update(UnsafeRawBufferPointer(rebasing: buffer[0..<want]))
            done += Int64(want)
        }
        return digest.finalize()
    }

    /// Runs `op` with retries; `validate` may reject a 2xx answer as malformed (which is retried).
    func perform(
        _ op: Operation, sink: ResponseSink, attempt: Int = 1,
        validate: @escaping (HTTPResponse) -> ObjectStoreError? = { _ in nil },
        completion: @escaping (Result<HTTPResponse, ObjectStoreError>) -> Void
    ) {
        perform(op, sink: sink, attempt: attempt, delay: 0, validate: validate, completion: completion)
    }

    private func perform(
        _ op: Operation, sink: ResponseSink, attempt: Int, delay: UInt64,
        validate: @escaping (HTTPResponse) -> ObjectStoreError?,
        completion: @escaping (Result<HTTPResponse, ObjectStoreError>) -> Void
    ) {
        metrics.countRequest(op.name)
        metrics.bytesOut.add(op.body.count, ordering: .relaxed)
        transport.submit(makeRequest(op), sink: sink, delayNanoseconds: delay) { [self] result in
            var failure: ObjectStoreError
            switch result {
            case .success(let response):
                metrics.bytesIn.add(Int64(response.body.count + response.bufferBytes), ordering: .relaxed)
                if let error = classify(response, op: op) ?? validate(response) {
                    failure = error
                } else {
                    completion(.success(response))
                    return
                }
            case .failure(let transportFailure):
                failure = Self.error(from: transportFailure)
            }
            failure.operation = op.name
            failure.bucket = op.bucket
            failure.key = op.key
            failure.attempts = attempt
            if let next = configuration.retry.delay(after: attempt, error: failure, idempotent: op.idempotent) {
                metrics.retries.add(1, ordering: .relaxed)
                logger.debug("retrying \(op.name)", metadata: ["attempt": "\(attempt + 1)", "error": "\(failure)"])
                perform(op, sink: sink, attempt: attempt + 1, delay: next, validate: validate, completion: completion)
            } else {
                metrics.errors.add(1, ordering: .relaxed)
                completion(.failure(failure))
            }
        }
    }

    /// async form of `perform` for the control plane.
    func perform(
        _ op: Operation, sink: ResponseSink = .collect(limit: 64 << 20),
        validate: @escaping (HTTPResponse) -> ObjectStoreError? = { _ in nil }
    ) async throws -> HTTPResponse {
        try await withCheckedThrowingContinuation { continuation in
            perform(op, sink: sink, validate: validate) { continuation.resume(with: $0) }
        }
    }

    /// Turns a non-2xx answer, or a 200 carrying an `<Error>` document, into an error.
    private func classify(_ response: HTTPResponse, op: Operation) -> ObjectStoreError? {
        let status = response.status
        if (200..<300).contains(status) {
            guard op.errorIn200, let root = try? XMLElement.parse(response.body), root.name == "Error" else {
                if status == 200 && op.errorIn200 && response.body.isEmpty {
                    return ObjectStoreError(.malformedResponse, "empty response body", httpStatus: status)
                }
                return nil
            }
            let code = root.value("Code") ?? "InternalError"
            var error = ObjectStoreError(
                ObjectStoreError.kind(code: code, status: 500), root.value("Message") ?? code,
                httpStatus: status, requestID: root.value("RequestId"))
            if code == "InternalError" { error.kind = .serverError(code: code) }
            return error
        }
        var code = ""
        var message = ""
        var requestID = response.headers["x-amz-request-id"]
        if !response.body.isEmpty, let root = try? XMLElement.parse(response.body), root.name == "Error" {
            code = root.value("Code") ?? ""
            message = root.value("Message") ?? ""
            requestID = root.value("RequestId") ?? requestID
        }
        let kind = ObjectStoreError.kind(code: code, status: status)
        if message.isEmpty { message = Self.defaultMessage(kind, code: code, status: status) }
        if !code.isEmpty && !message.hasPrefix(code) { message = "\(code): \(message)" }
        return ObjectStoreError(kind, message, httpStatus: status, requestID: requestID)
    }

    private static func defaultMessage(_ kind: ObjectStoreError.Kind, code: String, status: Int) -> String {
        switch kind {
        case .noSuchKey: return "no such key"
        case .noSuchBucket: return "no such bucket"
        case .accessDenied: return "access denied; check the credentials and the bucket policy"
        case .preconditionFailed: return "the object changed (If-Match failed)"
        case .slowDown: return "the backend asked to slow down"
        default: return code.isEmpty ? "HTTP status \(status)" : code
        }
    }

    static func error(from failure: TransportFailure) -> ObjectStoreError {
        if failure.overflow {
            return ObjectStoreError(.malformedResponse, "response body is longer than the request allows")
        }
        if failure.curlCode == -1 {
            return ObjectStoreError(.cancelled, failure.message)
        }
        if failure.bodyReadError != nil {
            return ObjectStoreError(.configuration, failure.message)
        }
        if failure.curlCode == 28 {
            return ObjectStoreError(.timeout, "timed out: \(failure.message)")
        }
        if failure.curlCode == 60 || failure.curlCode == 77 || failure.curlCode == 35 {
            return ObjectStoreError(
                .transport(code: failure.curlCode, detail: failure.message),
                "TLS failure: \(failure.message); set AWS_CA_BUNDLE to the CA that signed the endpoint's certificate")
        }
        return ObjectStoreError(.transport(code: failure.curlCode, detail: failure.message), "connection failed: \(failure.message)")
    }
}
