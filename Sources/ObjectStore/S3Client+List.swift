import Platform

extension S3Client {
    package func listObjects(_ request: ListObjectsRequest) async throws -> ListObjectsPage {
        var query: [(String, String)] = [("list-type", "2"), ("encoding-type", "url"), ("prefix", request.prefix)]
        if let d = request.delimiter { query.append(("delimiter", d)) }
        if let t = request.continuationToken { query.append(("continuation-token", t)) }
        if let s = request.startAfter { query.append(("start-after", s)) }
        if let m = request.maxKeys { query.append(("max-keys", String(m))) }
        let op = Operation(operation: .listObjectsV2, method: "GET", bucket: request.bucket, query: query)
        return try await perform(op) { response throws(ObjectStoreError) in try Self.parseListObjects(response.body) }
    }

    /// Parses a ListObjectsV2 result, decoding keys when the server URL-encoded them.
    package static func parseListObjects(_ body: [UInt8]) throws(ObjectStoreError) -> ListObjectsPage {
        let root = try XMLElement.parse(body)
        guard root.name == "ListBucketResult" else {
            throw ObjectStoreError(.malformedResponse, "expected ListBucketResult, got <\(root.name)>")
        }
        let encoded = root.value("EncodingType") == "url"
        func decode(_ text: String) throws(ObjectStoreError) -> String {
            guard encoded else { return text }
            guard let plain = URIEncoding.decode(text, plusIsSpace: true) else {
                throw ObjectStoreError(.malformedResponse, "bad URL encoding in listed key '\(text)'")
            }
            return plain
        }
        var objects: [ListedObject] = []
        for item in root.children("Contents") {
            guard let key = item.value("Key"), let sizeText = item.value("Size"), let size = Int64(sizeText) else {
                throw ObjectStoreError(.malformedResponse, "listing entry lacks Key or Size")
            }
            let modified = item.value("LastModified").flatMap { Timestamp(iso8601: $0) } ?? Timestamp(seconds: 0)
            objects.append(ListedObject(key: try decode(key), size: size, etag: item.value("ETag") ?? "", lastModified: modified))
        }
        var prefixes: [String] = []
        for item in root.children("CommonPrefixes") {
            guard let p = item.value("Prefix") else { throw ObjectStoreError(.malformedResponse, "CommonPrefixes entry lacks Prefix") }
            prefixes.append(try decode(p))
        }
        let truncated = root.value("IsTruncated") == "true"
        let token = root.value("NextContinuationToken")
        if truncated && (token ?? "").isEmpty {
            throw ObjectStoreError(.malformedResponse, "truncated listing without NextContinuationToken")
        }
        return ListObjectsPage(objects: objects, commonPrefixes: prefixes, nextContinuationToken: truncated ? token : nil)
    }

    package func listParts(bucket: String, key: String, uploadID: String) async throws -> [PartInfo] {
        var parts: [PartInfo] = []
        var marker: String?
        repeat {
            var query = [("uploadId", uploadID)]
            if let marker { query.append(("part-number-marker", marker)) }
            let op = Operation(operation: .listParts, method: "GET", bucket: bucket, key: key, query: query)
            let page = try await perform(op) { response throws(ObjectStoreError) in
                let root = try XMLElement.parse(response.body)
                var found: [PartInfo] = []
                for p in root.children("Part") {
                    guard let n = p.value("PartNumber").flatMap({ Int($0) }), let etag = p.value("ETag"),
                        let size = p.value("Size").flatMap({ Int64($0) })
                    else { throw ObjectStoreError(.malformedResponse, "ListParts entry lacks PartNumber, ETag or Size") }
                    found.append(PartInfo(partNumber: n, etag: etag, size: size))
                }
                return (found, root.value("IsTruncated") == "true" ? root.value("NextPartNumberMarker") : nil)
            }
            parts += page.0
            marker = page.1
        } while marker != nil
        return parts
    }

    package func listMultipartUploads(bucket: String, prefix: String) async throws -> [MultipartUploadInfo] {
        var uploads: [MultipartUploadInfo] = []
        var keyMarker: String?
        var idMarker: String?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let idMarker { query.append(("upload-id-marker", idMarker)) }
            let op = Operation(operation: .listMultipartUploads, method: "GET", bucket: bucket, query: query)
            let root = try await perform(op) { response throws(ObjectStoreError) in
                let root = try XMLElement.parse(response.body)
                for u in root.children("Upload") where u.value("Key") == nil || u.value("UploadId") == nil {
                    throw ObjectStoreError(.malformedResponse, "ListMultipartUploads entry lacks Key or UploadId")
                }
                return root
            }
            for u in root.children("Upload") {
                let initiated = u.value("Initiated").flatMap { Timestamp(iso8601: $0) } ?? Timestamp(seconds: 0)
                uploads.append(MultipartUploadInfo(key: u.value("Key")!, uploadID: u.value("UploadId")!, initiated: initiated))
            }
            if root.value("IsTruncated") == "true" {
                keyMarker = root.value("NextKeyMarker")
                idMarker = root.value("NextUploadIdMarker")
                if keyMarker == nil { break }
            } else {
                keyMarker = nil
            }
        } while keyMarker != nil
        return uploads
    }

    package func deleteObjects(bucket: String, keys: [String]) async throws -> [(key: String, error: ObjectStoreError)] {
        var failed: [(key: String, error: ObjectStoreError)] = []
        var start = 0
        while start < keys.count {
            let batch = keys[start..<min(keys.count, start + 1000)]
            start += batch.count
            var xml = "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
            for key in batch { xml += "<Object><Key>\(Self.xmlEscape(key))</Key></Object>" }
            xml += "</Delete>"
            let body = Array(xml.utf8)
            let op = Operation(
                operation: .deleteObjects, method: "POST", bucket: bucket, query: [("delete", "")],
                headers: [
                    (name: "Content-Type", value: "application/xml"),
                    (name: "Content-MD5", value: Digest.base64(Digest.md5(body))),
                ],
                body: .bytes(body))
            let root = try await perform(op) { response throws(ObjectStoreError) in try XMLElement.parse(response.body) }
            for e in root.children("Error") {
                let key = e.value("Key") ?? ""
                let code = e.value("Code") ?? "InternalError"
                failed.append((key, ObjectStoreError(
                    ObjectStoreError.kind(code: code, status: 400), "\(code): \(e.value("Message") ?? "")",
                    operation: op.name, bucket: bucket, key: key)))
            }
        }
        return failed
    }
}
