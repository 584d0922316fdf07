import Testing

import Platform
@testable import ObjectStore

@Suite struct XMLParsingTests {
    static func listing(keys: [String], prefixes: [String] = [], truncated: Bool = false, token: String? = nil, encoded: Bool = false) -> [UInt8] {
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        xml += "<Name>b</Name><Prefix></Prefix><IsTruncated>\(truncated)</IsTruncated>"
        if encoded { xml += "<EncodingType>url</EncodingType>" }
        if let token { xml += "<NextContinuationToken>\(token)</NextContinuationToken>" }
        for (i, k) in keys.enumerated() {
            let key = encoded ? URIEncoding.encode(k, keepSlash: true) : S3Client.xmlEscape(k)
            xml += "<Contents><Key>\(key)</Key><LastModified>2024-02-29T12:34:56.789Z</LastModified>"
            xml += "<ETag>&quot;etag\(i)&quot;</ETag><Size>\(i * 16)</Size><StorageClass>STANDARD</StorageClass></Contents>"
        }
        for p in prefixes { xml += "<CommonPrefixes><Prefix>\(encoded ? URIEncoding.encode(p, keepSlash: true) : p)</Prefix></CommonPrefixes>" }
        xml += "</ListBucketResult>"
        return Array(xml.utf8)
    }

    @Test func thousandKeysWithPrefixesAndContinuation() throws {
        let keys = (0..<1000).map { "data/shard-\($0).bin" }
        let page = try S3Client.parseListObjects(Self.listing(keys: keys, prefixes: ["data/sub/", "data/x y/"], truncated: true, token: "tok/+=="))
        #expect(page.objects.count == 1000)
        #expect(page.objects[999].key == "data/shard-999.bin")
        #expect(page.objects[999].size == 999 * 16)
        #expect(page.objects[3].etag == "\"etag3\"")
        #expect(page.objects[0].lastModified == Timestamp(seconds: 1_709_210_096, nanoseconds: 789_000_000))
        #expect(page.commonPrefixes == ["data/sub/", "data/x y/"])
        #expect(page.nextContinuationToken == "tok/+==")
    }

    @Test func urlEncodedKeysAreDecoded() throws {
        let odd = ["a b+c/é", "ctrl\u{01}char", "amp&lt<", "%41"]
        let page = try S3Client.parseListObjects(Self.listing(keys: odd, prefixes: ["p q/"], encoded: true))
        #expect(page.objects.map(\.key) == odd)
        #expect(page.commonPrefixes == ["p q/"])
    }

    @Test func entitiesAndCDATA() throws {
        let root = try XMLElement.parse(Array("<a><b>x &amp; y &#x41;&#66;</b><c><![CDATA[<raw>]]></c><d/></a>".utf8))
        #expect(root.value("b") == "x & y AB")
        #expect(root.value("c") == "<raw>")
        #expect(root.value("d") == "")
    }

    @Test func errorBody() throws {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><RequestId>R1</RequestId></Error>"
        let root = try XMLElement.parse(Array(body.utf8))
        #expect(root.name == "Error")
        #expect(root.value("Code") == "NoSuchKey")
        #expect(ObjectStoreError.kind(code: "NoSuchKey", status: 404) == .noSuchKey)
    }

    @Test func truncatedListingWithoutTokenIsRejected() {
        #expect(throws: ObjectStoreError.self) { try S3Client.parseListObjects(Self.listing(keys: ["a"], truncated: true)) }
    }

    @Test func wrongRootIsRejected() {
        #expect(throws: ObjectStoreError.self) { try S3Client.parseListObjects(Array("<Foo></Foo>".utf8)) }
    }

    @Test(arguments: ["", "<", "<a>", "<a></b>", "<a>&bogus;</a>", "<a><b></a></b>", "text", "<a>x</a>trailing", "<a attr='x>", "<a><![CDATA[x</a>"])
    func malformedDocumentsThrow(_ doc: String) {
        #expect(throws: ObjectStoreError.self) { try XMLElement.parse(Array(doc.utf8)) }
    }

    /// Every prefix of a valid listing either parses or throws; none crashes or yields wrong keys.
    @Test func everyTruncationIsHandled() {
        let full = Self.listing(keys: ["k1", "k2/x"], prefixes: ["p/"])
        for n in 0..<full.count {
            if let page = try? S3Client.parseListObjects(Array(full[0..<n])) {
                #expect(page.objects.allSatisfy { ["k1", "k2/x"].contains($0.key) })
            }
        }
    }

    @Test func xmlEscapeRoundTrips() throws {
        let text = "a&b<c>\"d'e\u{01}é"
        let root = try XMLElement.parse(Array("<k>\(S3Client.xmlEscape(text))</k>".utf8))
        #expect(root.text == text)
    }
}
