import Platform

extension S3Client {
    package func createMultipartUpload(bucket: String, key: String, options: PutOptions) async throws -> String {
        var op = Operation(operation: .createMultipartUpload, method: "POST", bucket: bucket, key: key, query: [("uploads", "")], idempotent: false)
        op.headers = try Self.putHeaders(options)
        return try await perform(op) { response throws(ObjectStoreError) in
            guard let id = try XMLElement.parse(response.body).value("UploadId"), !id.isEmpty else {
                throw ObjectStoreError(.malformedResponse, "CreateMultipartUpload result lacks an UploadId")
            }
            return id
        }
    }

    package func uploadPart(bucket: String, key: String, uploadID: String, partNumber: Int, body: RequestBody) async throws -> String {
        try Self.checkPartNumber(partNumber)
        var op = Operation(
            operation: .uploadPart, method: "PUT", bucket: bucket, key: key,
            query: [("partNumber", String(partNumber)), ("uploadId", uploadID)], body: body)
        op.headers.append((name: "Content-MD5", value: Digest.base64(try Self.md5(of: body))))
        return try await perform(op, sink: .discard, parse: Self.requireETag)
    }

    package func uploadPartCopy(
        source: ObjectLocation, bucket: String, key: String, uploadID: String, partNumber: Int, range: ByteRange
    ) async throws -> String {
        try Self.checkPartNumber(partNumber)
        var op = Operation(
            operation: .uploadPartCopy, method: "PUT", bucket: bucket, key: key,
            query: [("partNumber", String(partNumber)), ("uploadId", uploadID)], errorIn200: true)
        op.headers.append((name: "x-amz-copy-source", value: Self.copySource(source)))
        op.headers.append((name: "x-amz-copy-source-range", value: range.header))
        return try await perform(op, parse: Self.resultETag)
    }

    package func completeMultipartUpload(bucket: String, key: String, uploadID: String, parts: [CompletedPart]) async throws -> String {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts.sorted(by: { $0.partNumber < $1.partNumber }) {
            xml += "<Part><PartNumber>\(part.partNumber)</PartNumber><ETag>\(Self.xmlEscape(part.etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let op = Operation(
            operation: .completeMultipartUpload, method: "POST", bucket: bucket, key: key, query: [("uploadId", uploadID)],
            headers: [(name: "Content-Type", value: "application/xml")], body: .bytes(Array(xml.utf8)),
            idempotent: false, errorIn200: true)
        return try await perform(op, parse: Self.resultETag)
    }

    package func abortMultipartUpload(bucket: String, key: String, uploadID: String) async throws {
        let op = Operation(operation: .abortMultipartUpload, method: "DELETE", bucket: bucket, key: key, query: [("uploadId", uploadID)])
        _ = try await perform(op, sink: .discard)
    }

    /// The `<ETag>` of a copy or completion result document.
    static func resultETag(_ response: HTTPResponse) throws(ObjectStoreError) -> String {
        guard let etag = try XMLElement.parse(response.body).value("ETag"), !etag.isEmpty else {
            throw ObjectStoreError(.malformedResponse, "result document lacks an ETag")
        }
        return etag
    }

    static func checkPartNumber(_ n: Int) throws(ObjectStoreError) {
        guard (1...10_000).contains(n) else { throw .configuration("part number \(n) is outside 1…10000") }
    }

    /// Escapes text for an XML element body.
    static func xmlEscape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // Control characters are not representable in XML 1.0 text except as references.
                if scalar.value < 0x20 { out += "&#x\(String(scalar.value, radix: 16));" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }
}
