#if canImport(Glibc)
import Platform
import Glibc
#endif

/// AWS Signature Version 4 header signing for S3.
///
/// The canonical URI is the path exactly as sent on the wire (S3 does not normalise or double-encode it),
/// so callers pass the already-encoded path that they also put in the URL.
package struct SigV4Signer: Sendable {
    package let credentials: Credentials
    package let region: String
    package let service: String

    /// Headers that proxies and clients change in flight, so they are never signed (as botocore does).
    private static let unsignedHeaders: Set<String> = [
        "authorization", "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
    ]

    package init(credentials: Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// Adds `x-amz-date`, `x-amz-content-sha256`, the session token and `Authorization` to `headers`.
    ///
    /// - Parameters:
    ///   - encodedPath: the URI path as it appears in the request line.
    ///   - query: raw (unencoded) query parameters; the signer encodes and sorts them.
    ///   - headers: request headers; `host` must be present.
    ///   - payloadHash: hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    ///   - time: seconds since the epoch, UTC.
    package func sign(
        method: String, encodedPath: String, query: [(String, String)],
        headers: inout [(name: String, value: String)], payloadHash: String, time: Int64
    ) {
        let (amzDate, day) = Self.timestamps(time)
        headers.removeAll { ["x-amz-date", "x-amz-content-sha256", "authorization", "x-amz-security-token"].contains($0.name.lowercased()) }
        headers.append((name: "x-amz-date", value: amzDate))
        headers.append((name: "x-amz-content-sha256", value: payloadHash))
        if let token = credentials.sessionToken {
            headers.append((name: "x-amz-security-token", value: token))
        }
        let canonical = canonicalRequest(method: method, encodedPath: encodedPath, query: query, headers: headers, payloadHash: payloadHash)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(Digest.hex(Digest.sha256(Array(canonical.request.utf8))))"
        let signature = Digest.hex(Digest.hmacSHA256(key: signingKey(day: day), message: Array(stringToSign.utf8)))
        headers.append((
            name: "Authorization",
            value: "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(canonical.signedHeaders), Signature=\(signature)"
        ))
    }

    /// The canonical request string and the `SignedHeaders` list, exposed for tests.
    package func canonicalRequest(
        method: String, encodedPath: String, query: [(String, String)],
        headers: [(name: String, value: String)], payloadHash: String
    ) -> (request: String, signedHeaders: String) {
        let canonicalQuery = Self.canonicalQueryString(query)
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            let lower = name.lowercased()
            if Self.unsignedHeaders.contains(lower) { continue }
            merged[lower, default: []].append(Self.collapseSpaces(value))
        }
        let names = merged.keys.sorted()
        var canonicalHeaders = ""
        for name in names {
            canonicalHeaders += "\(name):\(merged[name]!.joined(separator: ","))\n"
        }
        let signed = names.joined(separator: ";")
        let path = encodedPath.isEmpty ? "/" : encodedPath
        let request = "\(method)\n\(path)\n\(canonicalQuery)\n\(canonicalHeaders)\n\(signed)\n\(payloadHash)"
        return (request, signed)
    }

    /// Encodes each name and value, then sorts by name and value: the form both the wire and the signature use.
    package static func canonicalQueryString(_ query: [(String, String)]) -> String {
        query.map { (URIEncoding.encode($0.0), URIEncoding.encode($0.1)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    private func signingKey(day: String) -> [UInt8] {
        let kDate = Digest.hmacSHA256(key: Array("AWS4\(credentials.secretAccessKey)".utf8), message: Array(day.utf8))
        let kRegion = Digest.hmacSHA256(key: kDate, message: Array(region.utf8))
        let kService = Digest.hmacSHA256(key: kRegion, message: Array(service.utf8))
        return Digest.hmacSHA256(key: kService, message: Array("aws4_request".utf8))
    }

    /// Trims and folds runs of spaces into one, as the SigV4 spec requires for header values.
    private static func collapseSpaces(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    /// (`YYYYMMDDTHHMMSSZ`, `YYYYMMDD`) for a UTC epoch time.
    package static func timestamps(_ time: Int64) -> (String, String) {
        var t = time_t(time)
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let day = pad(tm.tm_year + 1900, 4) + pad(tm.tm_mon + 1, 2) + pad(tm.tm_mday, 2)
        return ("\(day)T\(pad(tm.tm_hour, 2))\(pad(tm.tm_min, 2))\(pad(tm.tm_sec, 2))Z", day)
    }
}
