#if canImport(Glibc)
import Glibc
#endif
import Testing

import Platform
@testable import ObjectStore

@Suite struct ErrorMappingTests {
    @Test func codesMapToKindsAndErrnos() {
        let cases: [(String, Int, ObjectStoreError.Kind, Int32)] = [
            ("NoSuchKey", 404, .noSuchKey, ENOENT),
            ("NoSuchBucket", 404, .noSuchBucket, ENOENT),
            ("AccessDenied", 403, .accessDenied, EACCES),
            ("InvalidAccessKeyId", 403, .invalidCredentials, EACCES),
            ("SignatureDoesNotMatch", 403, .invalidCredentials, EACCES),
            ("PreconditionFailed", 412, .preconditionFailed, ESTALE),
            ("InvalidRange", 416, .invalidRange, EINVAL),
            ("SlowDown", 503, .slowDown, EIO),
            ("", 503, .slowDown, EIO),
            ("InternalError", 500, .serverError(code: "InternalError"), EIO),
            ("EntityTooLarge", 400, .entityTooLarge, EFBIG),
            ("", 404, .noSuchKey, ENOENT),
            ("Weird", 400, .clientError(code: "Weird"), EIO),
        ]
        for (code, status, kind, err) in cases {
            let k = ObjectStoreError.kind(code: code, status: status)
            #expect(k == kind, "\(code) \(status)")
            #expect(ObjectStoreError(k, "m").errno == err, "\(code) \(status)")
        }
    }

    @Test func retryability() {
        #expect(ObjectStoreError(.slowDown, "").isRetryable)
        #expect(ObjectStoreError(.serverError(code: "InternalError"), "").isRetryable)
        #expect(ObjectStoreError(.transport(code: 56, detail: "reset"), "").isRetryable)
        #expect(ObjectStoreError(.transport(code: 18, detail: "partial"), "").isRetryable)
        #expect(ObjectStoreError(.malformedResponse, "").isRetryable)
        #expect(!ObjectStoreError(.noSuchKey, "").isRetryable)
        #expect(!ObjectStoreError(.accessDenied, "").isRetryable)
        #expect(!ObjectStoreError(.preconditionFailed, "").isRetryable)
        #expect(!ObjectStoreError(.transport(code: 60, detail: "cert"), "").isRetryable)
    }

    @Test func descriptionNamesTheObjectAndAttempts() {
        let e = ObjectStoreError(.slowDown, "SlowDown: reduce rate", operation: "GetObject", bucket: "b", key: "k/x", httpStatus: 503, attempts: 6)
        #expect(e.description == "GetObject s3://b/k/x: SlowDown: reduce rate (HTTP 503, after 6 attempts)")
    }
}

@Suite struct RetryPolicyTests {
    @Test func boundedAttemptsAndExponentialCeiling() {
        let policy = RetryPolicy()
        let err = ObjectStoreError(.serverError(code: "InternalError"), "")
        var ceilings: [UInt64] = []
        for attempt in 1..<policy.maxAttempts {
            let d = policy.delay(after: attempt, error: err, idempotent: true, random: { $0 })
            ceilings.append(d!)
        }
        #expect(ceilings == [50, 100, 200, 400, 800].map { UInt64($0) * 1_000_000 })
        #expect(policy.delay(after: policy.maxAttempts, error: err, idempotent: true) == nil)
    }

    @Test func jitterStaysUnderTheCeiling() {
        let policy = RetryPolicy()
        let err = ObjectStoreError(.transport(code: 56, detail: ""), "")
        for _ in 0..<1000 {
            let d = policy.delay(after: 3, error: err, idempotent: true)!
            #expect(d <= 200_000_000)
        }
    }

    @Test func slowDownBacksOffHarderAndIsCapped() {
        var policy = RetryPolicy()
        policy.maxAttempts = 40
        let err = ObjectStoreError(.slowDown, "")
        #expect(policy.delay(after: 1, error: err, idempotent: true, random: { $0 }) == 500_000_000)
        #expect(policy.delay(after: 30, error: err, idempotent: true, random: { $0 }) == policy.maxDelayNanoseconds)
    }

    @Test func nonRetryableErrorsStopAtOnce() {
        #expect(RetryPolicy().delay(after: 1, error: ObjectStoreError(.accessDenied, ""), idempotent: true) == nil)
    }

    @Test func nonIdempotentRetriesOnlyWhenTheServerRefused() {
        let p = RetryPolicy()
        #expect(p.delay(after: 1, error: ObjectStoreError(.slowDown, ""), idempotent: false) != nil)
        #expect(p.delay(after: 1, error: ObjectStoreError(.transport(code: 7, detail: ""), ""), idempotent: false) != nil)
        #expect(p.delay(after: 1, error: ObjectStoreError(.transport(code: 56, detail: ""), ""), idempotent: false) == nil)
        #expect(p.delay(after: 1, error: ObjectStoreError(.malformedResponse, ""), idempotent: false) == nil)
    }
}

@Suite struct GetValidationTests {
    func response(status: Int, length: Int, written: Int, range: String? = nil, etag: String? = "\"e\"") -> HTTPResponse {
        var h = ["content-length": String(length)]
        if let range { h["content-range"] = range }
        if let etag { h["etag"] = etag }
        return HTTPResponse(status: status, headers: h, body: [], bufferBytes: written)
    }

    @Test func exactRangeIsAccepted() throws {
        let req = GetObjectRequest(bucket: "b", key: "k", range: ByteRange(first: 10, last: 19), ifMatch: "\"e\"")
        let r = try S3Client.validateGet(response(status: 206, length: 10, written: 10, range: "bytes 10-19/100"), request: req).get()
        #expect(r.bytesWritten == 10 && r.objectSize == 100 && r.etag == "\"e\"")
    }

    @Test func rangeClampedAtEndOfObjectIsAccepted() throws {
        let req = GetObjectRequest(bucket: "b", key: "k", range: ByteRange(first: 90, last: 199))
        let r = try S3Client.validateGet(response(status: 206, length: 10, written: 10, range: "bytes 90-99/100"), request: req).get()
        #expect(r.bytesWritten == 10 && r.objectSize == 100)
    }

    @Test(arguments: [
        (206, 10, 5, "bytes 10-19/100", "\"e\""),  // truncated body
        (206, 10, 10, "bytes 11-20/100", "\"e\""),  // wrong range
        (206, 10, 10, nil, "\"e\""),  // missing Content-Range
        (200, 100, 100, nil, "\"e\""),  // Range ignored
        (206, 10, 10, "bytes 10-19/100", nil),  // no ETag
        (206, 10, 10, "bytes 10-19/100", "\"other\""),  // version changed
        (206, 10, 10, "garbage", "\"e\""),
    ] as [(Int, Int, Int, String?, String?)])
    func badAnswersAreRejected(_ c: (Int, Int, Int, String?, String?)) {
        let req = GetObjectRequest(bucket: "b", key: "k", range: ByteRange(first: 10, last: 19), ifMatch: "\"e\"")
        let result = S3Client.validateGet(response(status: c.0, length: c.1, written: c.2, range: c.3, etag: c.4), request: req)
        #expect(throws: ObjectStoreError.self) { try result.get() }
    }
}
