#if canImport(Glibc)
import Platform
import Glibc
#endif

/// One S3 call before signing: what to send and how to treat the answer.
struct S3Operation {
    var operation: BackendOperation
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

    /// The S3 API name, for errors and logs.
    var name: String { operation.name }
}

/// Turns an `S3Operation` into a signed `HTTPRequest`: addressing style, URL encoding, payload hash, SigV4.
struct S3RequestBuilder: Sendable {
    let configuration: S3Configuration

    init(configuration: S3Configuration) {
        self.configuration = configuration
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

    /// Builds and signs the request for one attempt at `time` (epoch seconds); each retry signs anew.
    func makeRequest(_ op: S3Operation, time: Int64) -> HTTPRequest {
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
        // Each attempt asks for the credentials afresh: temporary ones are replaced while a mount runs.
        if let credentials = configuration.credentials?.current() {
            SigV4Signer(credentials: credentials, region: configuration.region).sign(method: op.method, encodedPath: path, query: op.query, headers: &headers, payloadHash: payloadHash(op.body, headers: op.headers), time: time)
        }
        let query = SigV4Signer.canonicalQueryString(op.query)
        let url = "\(endpoint.scheme)://\(hostHeader)\(path)\(query.isEmpty ? "" : "?" + query)"
        return HTTPRequest(method: op.method, url: url, headers: headers, body: op.body)
    }

    func payloadHash(_ body: RequestBody, headers: [(name: String, value: String)] = []) -> String {
        let signed: Bool
        switch configuration.payloadSigning {
        case .signed: signed = true
        case .unsigned: signed = false
        case .auto:
            // Over plain http the signature is the only integrity check, unless Content-MD5 already gives the
            // server one; then a second pass over the data (SHA-256) buys nothing.
            signed = configuration.endpoint.scheme == "http" && !headers.contains { $0.name.lowercased() == "content-md5" }
        }
        guard signed else { return "UNSIGNED-PAYLOAD" }
        switch body {
        case .empty: return Digest.emptySHA256Hex
        case .bytes(let bytes): return Digest.hex(Digest.sha256(bytes))
        case .memory(let m): return Digest.hex(Digest.sha256(m.bytes))
        case .file(let fd, let offset, let length):
            // An unreadable file gets a placeholder; the transfer then fails on the same read with a clear error.
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

}
