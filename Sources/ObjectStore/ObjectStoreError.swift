#if canImport(Glibc)
import Platform
import Glibc
#endif

/// A failed object-store operation, with the context needed to act on it and a ready errno for the FUSE edge.
package struct ObjectStoreError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, independent of which request it was.
    package enum Kind: Sendable, Equatable {
        case noSuchKey
        case noSuchBucket
        case noSuchUpload
        case accessDenied
        /// Unknown access key or a signature mismatch: the credentials are wrong.
        case invalidCredentials
        /// If-Match failed: the object changed since its ETag was read.
        case preconditionFailed
        case invalidRange
        /// 503 SlowDown or 429: the backend asks us to back off.
        case slowDown
        /// A part was rejected (InvalidPart, InvalidPartOrder, EntityTooSmall).
        case invalidPart
        case entityTooLarge
        /// Any other S3 error code with a 4xx status.
        case clientError(code: String)
        /// A 5xx that was not SlowDown.
        case serverError(code: String)
        /// The connection failed (curl error code and text).
        case transport(code: Int32, detail: String)
        case timeout
        /// The response could not be understood: bad XML, missing header, wrong length, truncated body.
        case malformedResponse
        /// Bad input from the caller or configuration (URL, option, credentials file).
        case configuration
        /// The operation was cancelled because the client is shutting down.
        case cancelled
    }

    package var kind: Kind
    package var message: String
    package var operation: String
    package var bucket: String?
    package var key: String?
    package var httpStatus: Int?
    package var requestID: String?
    package var attempts: Int

    package init(
        _ kind: Kind, _ message: String, operation: String = "", bucket: String? = nil, key: String? = nil,
        httpStatus: Int? = nil, requestID: String? = nil, attempts: Int = 1
    ) {
        self.kind = kind
        self.message = message
        self.operation = operation
        self.bucket = bucket
        self.key = key
        self.httpStatus = httpStatus
        self.requestID = requestID
        self.attempts = attempts
    }

    /// A configuration problem; `message` says what to fix.
    package static func configuration(_ message: String) -> ObjectStoreError {
        ObjectStoreError(.configuration, message)
    }

    /// Maps an S3 error code and HTTP status to a kind.
    package static func kind(code: String, status: Int) -> Kind {
        switch code {
        case "NoSuchKey": return .noSuchKey
        case "NoSuchBucket": return .noSuchBucket
        case "NoSuchUpload": return .noSuchUpload
        case "AccessDenied", "AllAccessDisabled", "AccountProblem": return .accessDenied
        case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "TokenRefreshRequired":
            return .invalidCredentials
        case "PreconditionFailed": return .preconditionFailed
        case "InvalidRange": return .invalidRange
        case "SlowDown", "TooManyRequests", "RequestLimitExceeded", "Throttling", "ThrottlingException": return .slowDown
        case "InvalidPart", "InvalidPartOrder", "EntityTooSmall": return .invalidPart
        case "EntityTooLarge": return .entityTooLarge
        default: break
        }
        switch status {
        case 404: return .noSuchKey
        case 403: return .accessDenied
        case 412: return .preconditionFailed
        case 416: return .invalidRange
        case 429: return .slowDown
        // A HEAD carries no error body; a bare 503 from S3 is its throttling signal.
        case 503 where code.isEmpty: return .slowDown
        case 500...599: return .serverError(code: code.isEmpty ? "HTTP\(status)" : code)
        default: return .clientError(code: code.isEmpty ? "HTTP\(status)" : code)
        }
    }

    /// Whether another attempt of an idempotent request may succeed.
    package var isRetryable: Bool {
        switch kind {
        case .slowDown, .serverError, .timeout, .malformedResponse: return true
        case .transport(let code, _):
            // 6/7: resolve/connect, 18: partial body, 28: timeout, 52: empty reply, 55/56: send/recv (reset),
            // 65: could not rewind a body to replay it, 16/92: HTTP/2 framing.
            return [6, 7, 16, 18, 28, 52, 55, 56, 65, 92].contains(code)
        case .clientError(let code): return code == "RequestTimeout" || code == "InternalError"
        default: return false
        }
    }

    /// The errno a filesystem should return for this failure.
    package var errno: Int32 {
        switch kind {
        case .noSuchKey, .noSuchBucket, .noSuchUpload: return ENOENT
        case .accessDenied, .invalidCredentials: return EACCES
        case .preconditionFailed: return ESTALE
        case .invalidRange, .configuration: return EINVAL
        case .entityTooLarge: return EFBIG
        case .timeout: return ETIMEDOUT
        case .cancelled: return ECANCELED
        case .slowDown, .invalidPart, .clientError, .serverError, .transport, .malformedResponse: return EIO
        }
    }

    package var description: String {
        var where_ = ""
        if let bucket {
            where_ = " s3://\(bucket)" + (key.map { "/\($0)" } ?? "")
        }
        var parts = [String]()
        if let httpStatus { parts.append("HTTP \(httpStatus)") }
        if attempts > 1 { parts.append("after \(attempts) attempts") }
        if let requestID { parts.append("request id \(requestID)") }
        let suffix = parts.isEmpty ? "" : " (\(parts.joined(separator: ", ")))"
        let op = operation.isEmpty ? "" : "\(operation)\(where_): "
        return "\(op)\(message)\(suffix)"
    }
}
