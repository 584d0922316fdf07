import Platform
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The production `ObjectStore`: S3 over libcurl with SigV4, retries and typed errors.
package final class S3Client: ObjectStore, @unchecked Sendable {
    package let configuration: S3Configuration
    package let metrics = BackendMetrics()
    let transport: CurlTransport
    let builder: S3RequestBuilder
    let logger: Logger

    package init(configuration: S3Configuration, logger: Logger = Logger(label: "lakecache.s3")) {
        self.configuration = configuration
        self.transport = CurlTransport(options: configuration.transport)
        self.builder = S3RequestBuilder(configuration: configuration)
        self.logger = logger
    }

    /// Stops the network thread; pending requests fail with `.cancelled`.
    package func shutdown() { transport.shutdown() }

    typealias Operation = S3Operation

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
        metrics.sent(op.operation, bodyBytes: op.body.count)
        transport.submit(builder.makeRequest(op, time: Int64(time(nil))), sink: sink, delayNanoseconds: delay) { [self] result in
            var failure: ObjectStoreError
            switch result {
            case .success(let response):
                metrics.received(op.operation, bytes: Int64(response.body.count + response.bufferBytes))
                metrics.record(op.operation, response.timing)
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
            if let next = retryDelay(after: attempt, failure, op) {
                metrics.retried(op.operation)
                logger.debug("retrying \(op.name)", metadata: ["attempt": "\(attempt + 1)", "error": "\(failure)"])
                perform(op, sink: sink, attempt: attempt + 1, delay: next, validate: validate, completion: completion)
            } else {
                // A missing key is an answer (lookups probe for it), not a backend error.
                if failure.kind != .noSuchKey { metrics.failed(op.operation) }
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

    /// Runs `op` and parses its answer; a body that does not parse is a malformed response and is retried.
    func perform<T>(
        _ op: Operation, sink: ResponseSink = .collect(limit: 64 << 20),
        parse: @escaping (HTTPResponse) throws(ObjectStoreError) -> T
    ) async throws -> T {
        let parsed = ParsedBox<T>()
        _ = try await perform(op, sink: sink) { response in
            do throws(ObjectStoreError) {
                parsed.value = try parse(response)
                return nil
            } catch {
                return error
            }
        }
        return parsed.value!
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

    /// The delay before the next attempt, nil to give up: the retry policy's, or, when the backend calls
    /// refreshable credentials expired, a short wait while the provider fetches new ones to sign it with.
    private func retryDelay(after attempt: Int, _ failure: ObjectStoreError, _ op: Operation) -> UInt64? {
        guard Self.isExpiredCredentials(failure), let provider = configuration.credentials, provider.refreshable else {
            return configuration.retry.delay(after: attempt, error: failure, idempotent: op.idempotent)
        }
        guard attempt < configuration.retry.maxAttempts else { return nil }
        provider.rejected()
        logger.info("credentials refused as expired; refreshing them before the retry", metadata: ["operation": "\(op.name)", "source": "\(provider.source)"])
        return UInt64(attempt) * 500_000_000
    }

    /// Whether `error` is the backend refusing a session token as expired or no longer valid.
    static func isExpiredCredentials(_ error: ObjectStoreError) -> Bool {
        guard error.kind == .invalidCredentials else { return false }
        return ["ExpiredToken", "InvalidToken", "TokenRefreshRequired"].contains { error.message.hasPrefix($0) }
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
        return ObjectStoreError(.transport(code: failure.curlCode, detail: failure.message), "connection failed (curl error \(failure.curlCode)): \(failure.message)")
    }
}

/// Carries a parsed value from the network thread to the awaiting task; the continuation orders the accesses.
private final class ParsedBox<T>: @unchecked Sendable {
    var value: T?
}
