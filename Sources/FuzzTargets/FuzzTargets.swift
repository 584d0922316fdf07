import ExtrasBase64
import Control
import Events
import MountConfig
import ObjectStore
import Platform

/// The parsers of outside input, as fuzzing entry points: each takes any bytes and must return (or throw
/// its typed error) without crashing, hanging or reading out of bounds.
///
/// `lakecache-fuzz` runs one under libFuzzer (`make fuzz`); `FuzzTargetsTests` replays the corpora in
/// `Fuzz/corpus/`, so every input that once crashed stays a regression test.
package enum FuzzTargets {
    /// Target names, as `FUZZ_TARGET` and the corpus directories name them.
    package static let all = ["xml", "url", "control", "config", "events"]

    /// Feeds `data` to the parsers of `target`.
    package static func run(_ target: String, _ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        switch target {
        case "xml": xml(bytes)
        case "url": url(bytes)
        case "control": control(bytes)
        case "config": config(bytes)
        case "events": events(bytes)
        default: fatalError("unknown fuzz target '\(target)'; expected one of \(all.joined(separator: ", "))")
        }
    }

    /// S3 response bodies: the XML parser, the ListObjectsV2 page reader, Content-Range.
    static func xml(_ bytes: [UInt8]) {
        if let root = try? XMLElement.parse(bytes) {
            _ = root.value("Code")
            _ = root.children("Contents").count
        }
        _ = try? S3Client.parseListObjects(bytes)
        _ = S3Client.parseContentRange(String(decoding: bytes, as: UTF8.self))
    }

    /// Command-line input: bucket URLs, endpoints, sizes, globs (each line one input).
    static func url(_ bytes: [UInt8]) {
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).prefix(64) {
            let text = String(line)
            _ = try? BucketURL(parsing: text)
            _ = try? Endpoint(parsing: text)
            _ = ByteCount.parse(text)
            if let glob = try? KeyGlob(text) {
                _ = glob.matches(text)
                _ = glob.couldMatchBelow(text)
                _ = glob.matchesEverythingBelow(text)
            }
            _ = URIEncoding.decode(text)
        }
    }

    /// POST bodies of the events endpoint (S3, SNS, MinIO, Ceph), and what comes from them: the SNS text to
    /// sign, the inner message, sequencers, the journal's lines, Base64, addresses.
    static func events(_ bytes: [UInt8]) {
        for type in [nil, "Notification", "SubscriptionConfirmation"] as [String?] {
            switch try? EventParser.parse(bytes, snsType: type) {
            case .sns(let e)?:
                _ = e.stringToSign
                _ = try? Base64.decode(string: e.signature)
                if let inner = JSONValue.parse(e.message) { _ = try? EventParser.s3Message(inner) }
            case .records(let events)?:
                for (i, e) in events.enumerated() {
                    if let line = JSONValue.parse(EventJournal.line(id: Int64(i), e)) { _ = EventJournal.event(line) }
                    if let s = e.sequencer { _ = Sequencer.compare(s, events[0].sequencer ?? "") }
                }
            default:
                break
            }
        }
        let text = String(decoding: bytes.prefix(4096), as: UTF8.self)
        for line in text.split(separator: "\n").prefix(16) {
            _ = try? EventAddress.parse(String(line))
            _ = try? Base64.decode(string: String(line))
        }
    }

    /// The control socket: a request line and the JSON a daemon answers.
    static func control(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let request = ControlRequest(line: text)
        _ = ControlRequest.line(request.verb, request.arguments)
        if let v = JSONValue.parse(text) { _ = JSONValue.parse(v.encoded()) }
    }

    /// The links config file (YAML).
    static func config(_ bytes: [UInt8]) {
        _ = try? MountConfig.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml")
    }
}
