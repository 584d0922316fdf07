extension S3Client {
    package func createMultipartUpload(bucket: String, key: String, options: PutOptions) async throws -> String {
        var op = Operation(name: "CreateMultipartUpload", method: "POST", bucket: bucket, key: key, query: [("uploads", "")], idempotent: false)
        op.headers = try Self.putHeaders(options)
        let response = try await perform(op)
        let root = try XMLElement.parse(response.body)
        guard let id = root.value("UploadId"), !id.isEmpty else {
            throw ObjectStoreError(.malformedResponse, "CreateMultipartUpload result lacks an UploadId", operation: op.name, bucket: bucket, key: key)
        }
        return id
    }

    package func uploadPart(bucket: String, key: String, uploadID: String, partNumber: Int, body: RequestBody) async throws -> String {
        try Self.checkPartNumber(partNumber)
        var op = Operation(
            name: "UploadPart", method: "PUT", bucket: bucket, key: key,
            query: [("partNumber", String(partNumber)), ("uploadId", uploadID)], body: body)
        op.headers.append((name: "Content-MD5", value: Digest.base64(try Self.md5(of: body))))
        let response = try await perform(op, sink: .discard)
        return try Self.requireETag(response)
    }

    package func uploadPartCopy(
        source: ObjectLocation, bucket: String, key: String, uploadID: String, partNumber: Int, range: ByteRange
    ) async throws -> String {
        try Self.checkPartNumber(partNumber)
        var op = Operation(
            name: "UploadPartCopy", method: "PUT", bucket: bucket, key: key,
            query: [("partNumber", String(partNumber)), ("uploadId", uploadID)], errorIn200: true)
        op.headers.append((name: "x-amz-copy-source", value: Self.copySource(source)))
        op.headers.append((name: "x-amz-copy-source-range", value: range.header))
        let response = try await perform(op)
        let root = try XMLElement.parse(response.body)
        guard let etag = root.value("ETag") else {
            throw ObjectStoreError(.malformedResponse, "UploadPartCopy result lacks an ETag", operation: op.name, bucket: bucket, key: key)
        }
        return etag
    }

    package func completeMultipartUpload(bucket: String, key: String, uploadID: String, parts: [CompletedPart]) async throws -> String {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts.sorted(by: { $0.partNumber < $1.partNumber }) {
            xml += "<Part><PartNumber>\(part.partNumber)</PartNumber><ETag>\(Self.xmlEscape(part.etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let op = Operation(
            name: "CompleteMultipartUpload", method: "POST", bucket: bucket, key: key, query: [("uploadId", uploadID)],
            headers: [(name: "Content-Type", value: "application/xml")], body: .bytes(Array(xml.utf8)),
            idempotent: false, errorIn200: true)
        let response = try await perform(op)
        let root = try XMLElement.parse(response.body)
        guard let etag = root.value("ETag") else {
            throw ObjectStoreError(.malformedResponse, "CompleteMultipartUpload result lacks an ETag", operation: op.name, bucket: bucket, key: key)
        }
        return etag
    }

    package func abortMultipartUpload(bucket: String, key: String, uploadID: String) async throws {
        let op = Operation(name: "AbortMultipartUpload", method: "DELETE", bucket: bucket, key: key, query: [("uploadId", uploadID)])
        _ = try await perform(op, sink: .discard)
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
