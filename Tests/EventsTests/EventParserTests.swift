import Testing
@testable import Events

/// The notification formats, parsed without a server, as the senders produce them.
@Suite struct EventParserTests {
    static let aws = """
        {"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-west-2","eventTime":"2026-12-01T10:00:00.000Z",
        "eventName":"ObjectCreated:CompleteMultipartUpload","userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},
        "s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"models","arn":"arn:aws:s3:::models"},
        "object":{"key":"llama/weights+v2%2Fshard%3D1.bin","size":1073741824,"eTag":"\\"d41d8cd98f00b204e9800998ecf8427e-64\\"","sequencer":"0055AED6DCD90281E5"}}},
        {"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectRemoved:DeleteMarkerCreated",
        "s3":{"bucket":{"name":"models"},"object":{"key":"old.bin","sequencer":"0055AED6DCD90281E6"}}}]}
        """

    @Test func awsRecordsDecodeKeysAndFields() throws {
        guard case .records(let events) = try EventParser.parse(Array(Self.aws.utf8)) else { Issue.record("not records"); return }
        #expect(events.count == 2)
        #expect(events[0] == ObjectEvent(kind: .created, name: "ObjectCreated:CompleteMultipartUpload", bucket: "models", key: "llama/weights v2/shard=1.bin",
                                         size: 1 << 30, etag: "d41d8cd98f00b204e9800998ecf8427e-64", sequencer: "0055AED6DCD90281E5", source: .aws))
        #expect(events[1].kind == .removed && events[1].key == "old.bin" && events[1].size == nil)
    }

    @Test func minioAndCephAndLifecycle() throws {
        let minio = #"{"EventName":"s3:ObjectCreated:Put","Key":"b/a%20b","Records":[{"eventVersion":"2.0","eventSource":"minio:s3","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%20b","size":"12","sequencer":"17A3F2"}}}]}"#
        guard case .records(let m) = try EventParser.parse(Array(minio.utf8)) else { Issue.record("not records"); return }
        #expect(m[0].name == "ObjectCreated:Put" && m[0].key == "a b" && m[0].source == .minio && m[0].size == 12)
        let ceph = #"{"Records":[{"eventVersion":"2.2","eventSource":"ceph:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"dir/a+b%20c","sequencer":"B1F8D45E"}}}]}"#
        guard case .records(let c) = try EventParser.parse(Array(ceph.utf8)) else { Issue.record("not records"); return }
        #expect(c[0].key == "dir/a+b%20c" && c[0].kind == .removed && c[0].source == .ceph, "Ceph keys are not encoded")
        let expiry = #"{"Records":[{"eventName":"LifecycleExpiration:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"x"}}}]}"#
        guard case .records(let e) = try EventParser.parse(Array(expiry.utf8)) else { Issue.record("not records"); return }
        #expect(e[0].kind == .removed)
    }

    @Test func testEventAndSNSEnvelopes() throws {
        #expect(try EventParser.parse(Array(#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"t","Bucket":"b"}"#.utf8)) == .test)
        let sns = #"{"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:us-east-1:1:t","Subject":"Amazon S3 Notification","Message":"{\"Records\":[]}","Timestamp":"2026-12-01T10:00:00.000Z","SignatureVersion":"1","Signature":"c2ln","SigningCertURL":"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem","UnsubscribeURL":"u"}"#
        guard case .sns(let e) = try EventParser.parse(Array(sns.utf8), snsType: "Notification") else { Issue.record("not SNS"); return }
        #expect(e.stringToSign == "Message\n{\"Records\":[]}\nMessageId\nm\nSubject\nAmazon S3 Notification\nTimestamp\n2026-12-01T10:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\nNotification\n")
        #expect(throws: EventRejection.self) { try EventParser.parse(Array(sns.utf8), snsType: "SubscriptionConfirmation") }
        let confirm = #"{"Type":"SubscriptionConfirmation","MessageId":"m","Token":"tok","TopicArn":"t","Message":"x","SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription","Timestamp":"ts","SignatureVersion":"1","Signature":"c2ln","SigningCertURL":"c"}"#
        guard case .sns(let c) = try EventParser.parse(Array(confirm.utf8)) else { Issue.record("not SNS"); return }
        #expect(c.stringToSign == "Message\nx\nMessageId\nm\nSubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription\nTimestamp\nts\nToken\ntok\nTopicArn\nt\nType\nSubscriptionConfirmation\n")
    }

    @Test(arguments: [
        ("", 400, "malformed"), ("[1]", 400, "malformed"), (#"{"Records":[]}"#, 400, "malformed"),
        (#"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#, 400, "malformed"),
        (#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%ZZ"}}}]}"#, 400, "malformed"),
        (#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%00b"}}}]}"#, 400, "malformed"),
        (#"{"Records":[{"eventName":"ObjectRestore:Post","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#, 422, "unknown_event"),
        (#"{"Event":"s3:Other"}"#, 422, "unknown_event"),
        (#"{"Type":"Notification","TopicArn":"t"}"#, 400, "malformed"),
    ])
    func badBodiesAreRefusedWithTheirReason(body: String, status: Int, counter: String) {
        do {
            _ = try EventParser.parse(Array(body.utf8))
            Issue.record("accepted: \(body)")
        } catch {
            #expect(error.status == status && error.counter == counter, "\(body): \(error)")
        }
    }

    @Test func anOversizedBodyIsRefusedBeforeParsing() {
        #expect(throws: EventRejection(413, "too_large", "the body is \(EventParser.maxBody + 1) bytes; at most \(EventParser.maxBody) are accepted")) {
            try EventParser.parse([UInt8](repeating: 0x20, count: EventParser.maxBody + 1))
        }
    }
}

/// Where the endpoint listens, and the token file it needs.
@Suite struct EventAddressTests {
    @Test func formsOfTheAddress() throws {
        #expect(try EventAddress.parse("127.0.0.1:8089") == EventAddress(host: "127.0.0.1", port: 8089))
        #expect(try EventAddress.parse(":8089") == EventAddress(host: "127.0.0.1", port: 8089))
        #expect(try EventAddress.parse("8089") == EventAddress(host: "127.0.0.1", port: 8089))
        #expect(try EventAddress.parse("[::1]:9") == EventAddress(host: "::1", port: 9))
        #expect(try EventAddress.parse("0.0.0.0:0").isLoopback == false)
        for bad in ["", "host:", "host:99999", "::1:80", "[::1]", "[1.2.3.4]:80", "a b:80", "localhost:http"] {
            #expect(throws: (any Error).self, "\(bad)") { try EventAddress.parse(bad) }
        }
    }

    @Test func constantTimeCompare() {
        #expect(EventEndpoint.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!EventEndpoint.constantTimeEqual(Array("abd".utf8), Array("abc".utf8)))
        #expect(!EventEndpoint.constantTimeEqual(Array("ab".utf8), Array("abc".utf8)))
        #expect(!EventEndpoint.constantTimeEqual([], []), "an empty token never matches")
    }
}

/// The order of events of one key, bounded in memory.
@Suite struct EventOrderTests {
    @Test func duplicatesStaleAndTheBound() {
        var o = EventOrder(limit: 2)
        #expect(o.admit(bucket: "b", key: "k", sequencer: "02") == .newer)
        #expect(o.peek(bucket: "b", key: "k", sequencer: "02") == .duplicate)
        #expect(o.admit(bucket: "b", key: "k", sequencer: "01") == .stale)
        #expect(o.admit(bucket: "b", key: "k", sequencer: "03") == .newer)
        #expect(o.admit(bucket: "b", key: "k", sequencer: nil) == .newer, "without a sequencer every event is applied")
        _ = o.admit(bucket: "b", key: "x", sequencer: "01")
        _ = o.admit(bucket: "b", key: "y", sequencer: "01")
        #expect(o.count == 2, "the oldest key is forgotten past the limit")
    }
}
