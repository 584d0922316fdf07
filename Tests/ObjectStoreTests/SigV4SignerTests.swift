import Foundation
import Testing

import Platform
@testable import ObjectStore

/// The worked examples of the public S3 SigV4 documentation ("Signature calculations for the Authorization header").
@Suite struct SigV4DocumentedExamples {
    let credentials = Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    let time: Int64 = 1_369_353_600  // 2013-05-24T00:00:00Z

    func signature(_ method: String, _ path: String, query: [(String, String)] = [], headers: [(String, String)], payload: String) -> String {
        var h = headers.map { (name: $0.0, value: $0.1) }
        SigV4Signer(credentials: credentials, region: "us-east-1").sign(
            method: method, encodedPath: path, query: query, headers: &h, payloadHash: payload, time: time)
        return h.first { $0.name == "Authorization" }!.value
    }

    @Test func getObjectWithRange() {
        let auth = signature("GET", "/test.txt", headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")], payload: Digest.emptySHA256Hex)
        #expect(auth == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func putObject() {
        let body = Array("Welcome to Amazon S3.".utf8)
        let auth = signature(
            "PUT", "/test%24file.text",
            headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            payload: Digest.hex(Digest.sha256(body)))
        #expect(auth.hasSuffix("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"))
    }

    @Test func getBucketLifecycle() {
        let auth = signature("GET", "/", query: [("lifecycle", "")], headers: [("Host", "examplebucket.s3.amazonaws.com")], payload: Digest.emptySHA256Hex)
        #expect(auth.hasSuffix("Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"))
    }

    @Test func listObjects() {
        let auth = signature("GET", "/", query: [("max-keys", "2"), ("prefix", "J")], headers: [("Host", "examplebucket.s3.amazonaws.com")], payload: Digest.emptySHA256Hex)
        #expect(auth.hasSuffix("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"))
    }

    @Test func sessionTokenIsSigned() {
        var h: [(name: String, value: String)] = [(name: "host", value: "h")]
        SigV4Signer(credentials: Credentials(accessKeyID: "A", secretAccessKey: "S", sessionToken: "T"), region: "us-east-1")
            .sign(method: "GET", encodedPath: "/b/k", query: [], headers: &h, payloadHash: Digest.emptySHA256Hex, time: time)
        #expect(h.contains { $0.name == "x-amz-security-token" && $0.value == "T" })
        #expect(h.first { $0.name == "Authorization" }!.value.contains("x-amz-security-token"))
    }
}

/// Generated requests signed by botocore (scripts/gen_sigv4_vectors.py); ours must match byte for byte.
@Suite struct SigV4MatchesBotocore {
    struct Case: Decodable {
        var name, method, scheme, host, bucket, region: String
        var virtual: Bool
        var key: String?
        var query: [[String]]
        var headers: [[String]]
        var body_hex: String
        var sign_payload: Bool
        var time: Int64
        var access_key, secret_key: String
        var session_token: String?
        var expected_url, expected_authorization, expected_content_sha256, expected_amz_date: String
    }

    struct Fixture: Decodable {
        var generator: String
        var cases: [Case]
    }

    static func load() throws -> [Case] {
        let url = try #require(Bundle.module.url(forResource: "sigv4-botocore", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url)).cases
    }

    static func bytes(hex: String) -> [UInt8] {
        var out = [UInt8]()
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
        return out
    }

    @Test func atLeast200Cases() throws {
        #expect(try Self.load().count >= 200)
    }

    @Test func everyCaseMatches() throws {
        var mismatches: [String] = []
        for c in try Self.load() {
            let hostParts = c.host.split(separator: ":")
            let endpoint = Endpoint(scheme: c.scheme, host: String(hostParts[0]), port: hostParts.count > 1 ? Int(hostParts[1]) : nil)
            var config = S3Configuration(
                endpoint: endpoint, region: c.region,
                credentials: Credentials(accessKeyID: c.access_key, secretAccessKey: c.secret_key, sessionToken: c.session_token))
            config.addressing = c.virtual ? .virtual : .path
            config.payloadSigning = c.sign_payload ? .signed : .unsigned
            let body = Self.bytes(hex: c.body_hex)
            let op = S3Operation(
                operation: .getObject, method: c.method, bucket: c.bucket, key: c.key,
                query: c.query.map { ($0[0], $0[1]) }, headers: c.headers.map { (name: $0[0], value: $0[1]) },
                body: body.isEmpty ? .empty : .bytes(body))
            let request = S3RequestBuilder(configuration: config).makeRequest(op, time: c.time)
            let auth = request.headers.first { $0.name == "Authorization" }?.value
            let sha = request.headers.first { $0.name == "x-amz-content-sha256" }?.value
            if request.url != c.expected_url || auth != c.expected_authorization || sha != c.expected_content_sha256 {
                mismatches.append("\(c.name): url \(request.url) vs \(c.expected_url); auth \(auth ?? "nil") vs \(c.expected_authorization)")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.first ?? "")")
    }
}
