import Control
import Platform

/// An SNS HTTP(S) delivery: the envelope around an S3 notification, or a subscription message.
package struct SNSEnvelope: Sendable, Equatable {
    /// `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    package var type: String
    package var messageID: String
    package var topicARN: String
    package var subject: String?
    package var message: String
    package var timestamp: String
    package var signatureVersion: String
    package var signature: String
    package var signingCertURL: String
    package var subscribeURL: String?
    package var token: String?

    /// The text SNS signs: the envelope's fields in its documented order, each as `Name\nvalue\n`.
    package var stringToSign: String {
        var fields: [(String, String?)]
        if type == "Notification" {
            fields = [("Message", message), ("MessageId", messageID), ("Subject", subject), ("Timestamp", timestamp), ("TopicArn", topicARN), ("Type", type)]
        } else {
            fields = [("Message", message), ("MessageId", messageID), ("SubscribeURL", subscribeURL), ("Timestamp", timestamp), ("Token", token), ("TopicArn", topicARN), ("Type", type)]
        }
        return fields.compactMap { name, value in value.map { "\(name)\n\($0)\n" } }.joined()
    }
}

/// What one POST said.
package enum EventMessage: Sendable, Equatable {
    /// Object events (AWS `Records`, a MinIO webhook, a Ceph RGW push).
    case records([ObjectEvent])
    /// `s3:TestEvent`, which S3 sends when notifications are configured.
    case test
    /// An SNS delivery; a `Notification` carries an S3 message in `message`.
    case sns(SNSEnvelope)
}

/// Parses the notification formats of AWS S3 (directly or through SNS), MinIO webhooks and Ceph RGW push
/// endpoints. Pure: no I/O, so the fuzzer runs it.
package enum EventParser {
    /// The largest body accepted (S3 messages are at most 64 KB; a MinIO batch can be larger).
    package static let maxBody = 1 << 20

    /// Parses a POST body; `snsType` is the `x-amz-sns-message-type` header.
    package static func parse(_ body: [UInt8], snsType: String? = nil) throws(EventRejection) -> EventMessage {
        guard body.count <= maxBody else { throw EventRejection(413, "too_large", "the body is \(body.count) bytes; at most \(maxBody) are accepted") }
        guard let root = JSONValue.parse(String(decoding: body, as: UTF8.self)), case .object = root else {
            throw EventRejection(400, "malformed", "the body is not a JSON object")
        }
        if snsType != nil || (root["Type"]?.string != nil && root["TopicArn"]?.string != nil) {
            return .sns(try envelope(root, header: snsType))
        }
        return try s3Message(root)
    }

    /// The S3 message itself (a body, or an SNS notification's `Message`).
    package static func s3Message(_ root: JSONValue) throws(EventRejection) -> EventMessage {
        if let event = root["Event"]?.string {
            guard event == "s3:TestEvent" else { throw EventRejection(422, "unknown_event", "unknown event '\(event)': only s3:TestEvent comes without Records") }
            return .test
        }
        guard case .array(let records)? = root["Records"] else {
            throw EventRejection(400, "malformed", "not an S3 event notification: expected a 'Records' array (AWS, MinIO and Ceph RGW send one)")
        }
        guard !records.isEmpty else { throw EventRejection(400, "malformed", "'Records' is empty") }
        var events: [ObjectEvent] = []
        for (i, r) in records.enumerated() { events.append(try record(r, index: i)) }
        return .records(events)
    }

    static func record(_ r: JSONValue, index i: Int) throws(EventRejection) -> ObjectEvent {
        func bad(_ what: String) -> EventRejection { EventRejection(400, "malformed", "Records[\(i)]: \(what)") }
        guard case .object = r else { throw bad("not an object") }
        guard let rawName = r["eventName"]?.string, !rawName.isEmpty else { throw bad("no eventName") }
        let source: ObjectEvent.Source
        switch r["eventSource"]?.string {
        case "minio:s3": source = .minio
        case "ceph:s3": source = .ceph
        default: source = .aws
        }
        let name = rawName.hasPrefix("s3:") ? String(rawName.dropFirst(3)) : rawName
        let kind: ObjectEvent.Kind
        if name.hasPrefix("ObjectCreated:") {
            kind = .created
        } else if name.hasPrefix("ObjectRemoved:") || name.hasPrefix("LifecycleExpiration:") || name.hasPrefix("ObjectLifecycle:Expiration") {
            kind = .removed
        } else {
            throw EventRejection(422, "unknown_event", "Records[\(i)]: unknown event '\(rawName)': lakecache acts on ObjectCreated:*, ObjectRemoved:* and lifecycle expirations; leave other types out of the notification configuration")
        }
        guard let bucket = r["s3"]?["bucket"]?["name"]?.string, !bucket.isEmpty else { throw bad("no s3.bucket.name") }
        guard let object = r["s3"]?["object"], let rawKey = object["key"]?.string, !rawKey.isEmpty else { throw bad("no s3.object.key") }
        // AWS and MinIO send the key URL-encoded, a space as '+'; Ceph RGW sends it as it is.
        let key: String
        if source == .ceph {
            key = rawKey
        } else {
            guard let decoded = URIEncoding.decode(rawKey, plusIsSpace: true), !decoded.isEmpty else { throw bad("s3.object.key '\(rawKey)' is not URL-encoded text") }
            key = decoded
        }
        guard !key.utf8.contains(0) else { throw bad("the key contains a NUL byte") }
        var size: Int64?
        if let n = object["size"]?.number, n >= 0, n < 9e18 {
            size = Int64(n)
        } else if let t = object["size"]?.string {
            size = Int64(t)
        }
        let etag = object["eTag"]?.string.map { $0.trimmingCharacters(of: "\"") }.flatMap { $0.isEmpty ? nil : $0 }
        let sequencer = object["sequencer"]?.string.flatMap { s in s.isEmpty || !s.utf8.allSatisfy(isHex) ? nil : s }
        return ObjectEvent(kind: kind, name: name, bucket: bucket, key: key, size: size, etag: etag, sequencer: sequencer, source: source)
    }

    static func isHex(_ c: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(c)
    }

    static func envelope(_ root: JSONValue, header: String?) throws(EventRejection) -> SNSEnvelope {
        func field(_ name: String) throws(EventRejection) -> String {
            guard let v = root[name]?.string else { throw EventRejection(400, "malformed", "SNS message without '\(name)'") }
            return v
        }
        let type = try field("Type")
        if let header, header != type {
            throw EventRejection(400, "malformed", "x-amz-sns-message-type is \(header) but the message's Type is \(type)")
        }
        guard ["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"].contains(type) else {
            throw EventRejection(422, "unknown_event", "unknown SNS message type '\(type)'")
        }
        var e = SNSEnvelope(
            type: type, messageID: try field("MessageId"), topicARN: try field("TopicArn"), subject: root["Subject"]?.string,
            message: try field("Message"), timestamp: try field("Timestamp"), signatureVersion: root["SignatureVersion"]?.string ?? "1",
            signature: try field("Signature"), signingCertURL: try field("SigningCertURL"))
        if type != "Notification" {
            e.subscribeURL = try field("SubscribeURL")
            e.token = try field("Token")
        }
        return e
    }
}

extension String {
    /// The string without leading and trailing `c`.
    func trimmingCharacters(of c: Character) -> String {
        var s = Substring(self)
        while s.first == c { s = s.dropFirst() }
        while s.last == c { s = s.dropLast() }
        return String(s)
    }
}
