import Foundation
import Testing

import Platform
@testable import ObjectStore

/// The object-store events endpoint of real mounts of the bench store, fed over HTTP with curl in the
/// formats AWS S3, SNS, MinIO and Ceph RGW send.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct EventsTests {
    let bench: String
    let token = "events-test-token-0123456789abcdef"

    init() throws {
        try Servers.requireServers()
        bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
    }

    /// A token file (mode 0600) in a directory of its own.
    func tokenFile() throws -> String {
        let dir = NSTemporaryDirectory() + "lakecache-events-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        ScratchDirectories.shared.add(dir)
        let path = dir + "/token"
        try (token + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        return path
    }

    func mount(_ bucket: String, _ extra: [String] = [], cacheDir: String? = nil) throws -> TestMount {
        TestMount(bucket: bucket, endpoint: bench, cacheDir: cacheDir, extra: ["--metadata-ttl", "3600", "--events-address", "127.0.0.1:0", "--events-token-file", try tokenFile()] + extra)
    }

    func port(_ m: TestMount) throws -> Int {
        let address = try #require((try m.status()["events"] as? [String: Any])?["address"] as? String)
        return try #require(Int(address.split(separator: ":").last ?? ""))
    }

    func counters(_ m: TestMount) throws -> [String: Int] {
        try #require((try m.status()["events"] as? [String: Any])?["counters"] as? [String: Int])
    }

    /// POSTs `body` with curl; the status and the reply.
    func post(_ port: Int, _ body: String, path: String = "/", headers: [String] = [], auth: Bool = true, method: String = "POST") throws -> (status: Int, body: String, headers: String) {
        let dir = NSTemporaryDirectory() + "lakecache-post-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body.write(toFile: dir + "/body", atomically: true, encoding: .utf8)
        var args = ["-s", "-X", method, "-o", dir + "/reply", "-D", dir + "/headers", "-w", "%{http_code}", "--data-binary", "@" + dir + "/body", "-H", "Content-Type: application/json"]
        if auth { args += ["-H", "Authorization: Bearer \(token)"] }
        for h in headers { args += ["-H", h] }
        let r = spawn("/usr/bin/curl", args + ["http://127.0.0.1:\(port)\(path)"])
        let reply = (try? String(contentsOfFile: dir + "/reply", encoding: .utf8)) ?? ""
        let head = (try? String(contentsOfFile: dir + "/headers", encoding: .utf8)) ?? ""
        return (Int(r.stdout) ?? -1, reply, head)
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    /// A key as AWS puts it in an event: URL-encoded, a space as '+'.
    static func encode(_ key: String) -> String {
        var out = ""
        for b in key.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(b)))
            case UInt8(ascii: " "): out += "+"
            default: out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    /// One record as S3 sends it (MinIO: `s3:` before the name and `minio:s3` as the source; Ceph: the raw key).
    static func record(_ bucket: String, _ key: String, _ name: String = "ObjectCreated:Put", sequencer: String, source: String = "aws:s3") -> String {
        let prefix = source == "minio:s3" ? "s3:" : ""
        let encodedKey = source == "ceph:s3" ? key : encode(key)
        return """
            {"eventVersion":"2.1","eventSource":"\(source)","awsRegion":"us-east-1","eventTime":"2026-12-01T10:00:00.000Z",
             "eventName":"\(prefix)\(name)","userIdentity":{"principalId":"AWS:EXAMPLE"},
             "s3":{"s3SchemaVersion":"1.0","configurationId":"lakecache","bucket":{"name":"\(bucket)","arn":"arn:aws:s3:::\(bucket)"},
                   "object":{"key":"\(encodedKey)","size":1,"eTag":"0123456789abcdef0123456789abcdef","sequencer":"\(sequencer)"}}}
            """
    }

    static func records(_ rs: [String]) -> String { "{\"Records\":[\(rs.joined(separator: ","))]}" }

    func list(_ path: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }

    @Test func awsEventsChangeAddAndRemoveFilesLongBeforeTheTTL() async throws {
        let bucket = try await freshBucket(Servers.bench, "eva")
        let s3 = Servers.bench
        _ = try await s3.putObject(bucket: bucket, key: "data/a.txt", body: .bytes(Array("version one".utf8)), options: PutOptions())
        _ = try await s3.putObject(bucket: bucket, key: "data/c.txt", body: .bytes(Array("to be deleted".utf8)), options: PutOptions())
        try await withMount(try mount(bucket)) { m throws in
            let port = try port(m)
            #expect(try readFile(m.path("data/a.txt")) == Array("version one".utf8))
            #expect(list(m.path("data")) == ["a.txt", "c.txt"])

            // The bucket changes behind the mount's back; with a one-hour TTL the mount does not notice.
            _ = try await s3.putObject(bucket: bucket, key: "data/a.txt", body: .bytes(Array("version two, longer".utf8)), options: PutOptions())
            _ = try await s3.putObject(bucket: bucket, key: "data/b v2.txt", body: .bytes(Array("new".utf8)), options: PutOptions())
            try await s3.deleteObject(bucket: bucket, key: "data/c.txt")
            #expect(try readFile(m.path("data/a.txt")) == Array("version one".utf8))

            let batch = Self.records([
                Self.record(bucket, "data/a.txt", sequencer: "0055AED6DCD90281E5"),
                Self.record(bucket, "data/b v2.txt", sequencer: "0055AED6DCD90281E6"),
                Self.record(bucket, "data/c.txt", "ObjectRemoved:Delete", sequencer: "0055AED6DCD90281E7"),
            ])
            let r = try post(port, batch)
            #expect(r.status == 200, "\(r.body)")
            #expect(try json(r.body)["accepted"] as? Int == 3)
            let applied = try await until {
                (try readFile(m.path("data/a.txt"))) == Array("version two, longer".utf8) && list(m.path("data")) == ["a.txt", "b v2.txt"]
            }
            #expect(applied, "after the events: \(list(m.path("data"))), a.txt = \(String(decoding: (try? readFile(m.path("data/a.txt"))) ?? [], as: UTF8.self))")
            #expect(try readFile(m.path("data/b v2.txt")) == Array("new".utf8))
            #expect(!FileManager.default.fileExists(atPath: m.path("data/c.txt")))

            // The same batch again, and an older event of a.txt: known, not applied twice.
            let again = try json(try post(port, batch).body)
            #expect(again["accepted"] as? Int == 0 && again["duplicates"] as? Int == 3, "\(again)")
            let old = try json(try post(port, Self.records([Self.record(bucket, "data/a.txt", sequencer: "0055AED6DCD90281")])).body)
            #expect(old["stale"] as? Int == 1, "\(old)")
            let c = try counters(m)
            #expect(c["accepted"] == 3 && c["applied"] == 3, "\(c)")
            #expect(c["changed"] == 1 && c["appeared"] == 1 && c["vanished"] == 1, "\(c)")
            #expect(try readFile(m.path("data/a.txt")) == Array("version two, longer".utf8))
        }
    }

    @Test func minioAndCephEventsAndAPreloadThatLeavesTheFirstReadWithoutAGet() async throws {
        let bucket = try await freshBucket(Servers.bench, "evm")
        let s3 = Servers.bench
        try await withMount(try mount(bucket, ["--on-create", "preload"])) { m throws in
            let port = try port(m)
            // MinIO probes its webhook target with a HEAD first.
            let probe = spawn("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I", "http://127.0.0.1:\(port)/"])
            #expect(probe.stdout == "200")
            #expect(list(m.path("models")).isEmpty)

            let model = patternBytes(12 << 20, seed: 7)
            _ = try await s3.putObject(bucket: bucket, key: "models/model v1.bin", body: .bytes(model), options: PutOptions())
            let r = try post(port, Self.records([Self.record(bucket, "models/model v1.bin", sequencer: "01", source: "minio:s3")]), path: "/minio/webhook")
            let accepted = try json(r.body)["accepted"] as? Int
            #expect(r.status == 200 && accepted == 1, "\(r.status) \(r.body)")
            // The preload runs as a warmup job, listed with its origin.
            let preloaded = try await until(30) { (try counters(m))["preloaded"] == 1 }
            #expect(preloaded, "\((try? counters(m)) ?? [:])")
            let jobs = TestMount.run(["jobs", m.mountpoint, "--json"])
            let listed = (try JSONSerialization.jsonObject(with: Data(jobs.output.utf8)) as? [String: Any])?["jobs"] as? [[String: Any]] ?? []
            #expect(listed.contains { $0["origin"] as? String == "event" }, "\(jobs.output)")
            let gets = try await benchCount(bucket, "GetObject")
            #expect(gets == 2, "a 12 MiB object is three 4 MiB blocks, warmed as a run of two and one: \(gets) GETs")
            #expect(try readFile(m.path("models/model v1.bin")) == model)
            #expect(try await benchCount(bucket, "GetObject") == gets, "the first read after a preload fetched from the bucket")

            // Ceph RGW sends the key as it is, spaces and all.
            _ = try await s3.putObject(bucket: bucket, key: "ceph dir/a b.txt", body: .bytes(Array("ceph".utf8)), options: PutOptions())
            let ceph = try post(port, Self.records([Self.record(bucket, "ceph dir/a b.txt", sequencer: "", source: "ceph:s3")]))
            #expect(ceph.status == 200, "\(ceph.body)")
            let appeared = try await until { list(m.path("ceph dir")) == ["a b.txt"] }
            #expect(appeared)
            #expect(try readFile(m.path("ceph dir/a b.txt")) == Array("ceph".utf8))
        }
    }

    @Test func badRequestsAreRefusedWithAReasonAndCounted() async throws {
        let bucket = try await freshBucket(Servers.bench, "evr")
        try await withMount(try mount(bucket)) { m throws in
            let port = try port(m)
            let good = Self.records([Self.record(bucket, "k", sequencer: "01")])
            let none = try post(port, good, auth: false)
            #expect(none.status == 401 && none.headers.lowercased().contains("www-authenticate: basic"), "\(none)")
            #expect(try post(port, good, headers: ["Authorization: Bearer wrong-token-wrong-token-00"], auth: false).status == 401)
            #expect(try post(port, good, headers: ["Authorization: Basic " + Data("lakecache:\(token)".utf8).base64EncodedString()], auth: false).status == 200)
            #expect(try post(port, good, path: "/?token=\(token)", auth: false).status == 200)

            let garbled = try post(port, "{\"Records\": [{\"eventName\": ")
            #expect(garbled.status == 400 && garbled.body.contains("not a JSON object"), "\(garbled.body)")
            let noRecords = try post(port, "{\"hello\": 1}")
            #expect(noRecords.status == 400 && noRecords.body.contains("Records"), "\(noRecords.body)")
            let unknown = try post(port, Self.records([Self.record(bucket, "k", "ObjectTagging:Put", sequencer: "02")]))
            #expect(unknown.status == 422 && unknown.body.contains("ObjectTagging:Put"), "\(unknown.body)")
            let outside = try post(port, Self.records([Self.record("some-other-bucket", "k", sequencer: "03")]))
            #expect(outside.status == 422 && outside.body.contains("no link"), "\(outside.body)")
            #expect(try post(port, "{}", method: "PUT").status == 405)
            let deep = try post(port, String(repeating: "[", count: 100_000))
            #expect(deep.status == 400, "\(deep.status)")

            // Too large: refused from its Content-Length, before the body is read.
            let big = "{\"Records\":[" + String(repeating: " ", count: 2 << 20) + "]}"
            #expect(try post(port, big).status == 413)
            // Without the token, the body is not even read.
            #expect(try post(port, big, auth: false).status == 401)
            let get = try post(port, "", method: "GET")
            #expect(get.status == 200 && get.headers.lowercased().contains("connection: close"), "\(get.headers)")
            // A header past the parser's limit ends the connection, and the server goes on serving.
            let huge = try post(port, good, headers: ["X-Filler: " + String(repeating: "a", count: 200_000)])
            #expect(huge.status != 200, "\(huge.status)")
            let test = try post(port, "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"Time\":\"2026-12-01T10:00:00.000Z\",\"Bucket\":\"\(bucket)\"}")
            #expect(test.status == 200 && test.body.contains("\"test\":true"), "\(test.body)")

            let c = try counters(m)
            #expect(c["rejected_unauthorized"] == 3 && c["rejected_malformed"] ?? 0 >= 3 && c["rejected_unknown_event"] == 1 && c["rejected_outside_links"] == 1 && c["rejected_too_large"] == 1, "\(c)")
            let status = TestMount.run(["status", m.mountpoint])
            #expect(status.output.contains("events") && status.output.contains("last refused"), "\(status.output)")
            #expect(!status.output.contains(token) && !TestMount.run(["status", "--json", m.mountpoint]).output.contains(token))
        }
    }

    @Test func aTokenFileOthersCanReadOrAMissingOneIsRefusedAtMount() async throws {
        let bucket = try await freshBucket(Servers.bench, "evt")
        let file = try tokenFile()
        chmod(file, 0o644)
        let m = TestMount(bucket: bucket, endpoint: bench, extra: ["--events-address", "127.0.0.1:0", "--events-token-file", file])
        let r = TestMount.run(["mount", m.url, m.mountpoint, "--endpoint", bench, "--cache-dir", m.cacheDir] + m.extra)
        #expect(r.status != 0 && r.output.contains("chmod 600 \(file)"), "\(r.output)")
        let noToken = TestMount.run(["mount", m.url, m.mountpoint, "--endpoint", bench, "--cache-dir", m.cacheDir, "--events-address", "127.0.0.1:0"])
        #expect(noToken.status != 0 && noToken.output.contains("--events-token-file"), "\(noToken.output)")
        let badAddress = TestMount.run(["mount", m.url, m.mountpoint, "--endpoint", bench, "--cache-dir", m.cacheDir, "--events-address", "localhost:http", "--events-token-file", file])
        #expect(badAddress.status != 0 && badAddress.output.contains("--events-address 'localhost:http'"), "\(badAddress.output)")
        #expect(!isMounted(m.mountpoint))
    }

    @Test func anAcceptedEventIsAppliedAfterKillDashNine() async throws {
        let bucket = try await freshBucket(Servers.bench, "evk")
        let s3 = Servers.bench
        _ = try await s3.putObject(bucket: bucket, key: "f.txt", body: .bytes(Array("one".utf8)), options: PutOptions())
        let m = try mount(bucket)
        try m.start()
        let port = try port(m)
        // The pid now: `crash` would spawn `status` to find it, seconds on a loaded machine, before the kill.
        let pid = try m.daemonPID()
        #expect(try readFile(m.path("f.txt")) == Array("one".utf8))
        // Every HEAD takes two minutes, far longer than the spawns before the kill: the event is journaled and
        // answered, and the daemon dies before applying it. The held HEADs of the dead daemon sleep on in the
        // store, on their own connections; the faults are lifted before the next mount asks.
        try await BenchControl.setFaults(bucket: bucket, [["action": "delay", "op": "HeadObject", "delay_ms": 120_000, "probability": 1.0]])
        _ = try await s3.putObject(bucket: bucket, key: "f.txt", body: .bytes(Array("two!".utf8)), options: PutOptions())
        let r = try post(port, Self.records([Self.record(bucket, "f.txt", sequencer: "0A")]))
        let accepted = try json(r.body)["accepted"] as? Int
            #expect(r.status == 200 && accepted == 1, "\(r.body)")
        try crash(m, pid: pid)
        try await BenchControl.setFaults(bucket: bucket, [])
        let journal = (try? String(contentsOfFile: m.cacheDir + "/events.journal", encoding: .utf8)) ?? ""
        #expect(journal.contains("f.txt"), "the accepted event is not in the journal: \(journal)")

        try await withMount(m) { m throws in
            let replayed = try await until(60) { (try counters(m))["applied"] == 1 }
            #expect(replayed, "\((try? counters(m)) ?? [:])")
            #expect(try counters(m)["accepted"] == nil, "nothing was sent to this run")
            #expect((try m.status()["events"] as? [String: Any])?["pending"] as? Int == 0)
        }
    }

    @Test func snsDeliveriesAreVerifiedAgainstTheirSigningCertificate() async throws {
        let bucket = try await freshBucket(Servers.bench, "evs")
        let dir = NSTemporaryDirectory() + "lakecache-sns-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/www", withIntermediateDirectories: true)
        ScratchDirectories.shared.add(dir)
        let gen = spawn("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/key.pem", "-out", dir + "/www/cert.pem", "-days", "2", "-subj", "/CN=sns.us-east-1.amazonaws.com"])
        try #require(gen.status == 0, "openssl: \(gen.stderr)")
        // A local web server stands in for SNS: it serves the certificate and counts the confirmation.
        let script = """
            import http.server, os, sys
            os.chdir(sys.argv[1])
            class H(http.server.SimpleHTTPRequestHandler):
                def log_message(self, fmt, *args):
                    with open("../requests.log", "a") as f: f.write(self.path + "\\n")
            s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
            with open("../port.tmp", "w") as f: f.write(str(s.server_address[1]))
            os.rename("../port.tmp", "../port")
            s.serve_forever()
            """
        try script.write(toFile: dir + "/server.py", atomically: true, encoding: .utf8)
        try "ok".write(toFile: dir + "/www/confirm", atomically: true, encoding: .utf8)
        let started = spawn("/bin/sh", ["-c", "python3 \"$1/server.py\" \"$1/www\" >/dev/null 2>&1 & echo $!", "sh", dir])
        let serverPID = try #require(pid_t(started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        // SIGKILL: the test process blocks SIGTERM, and a spawned child inherits the mask.
        defer { kill(serverPID, SIGKILL) }
        _ = try await until(10) { FileManager.default.fileExists(atPath: dir + "/port") }
        let webPort = try #require(Int(try String(contentsOfFile: dir + "/port", encoding: .utf8)))
        let base = "http://127.0.0.1:\(webPort)/"
        setenv("LAKECACHE_TEST_SNS_CERT_PREFIX", base, 1)

        _ = try await Servers.bench.putObject(bucket: bucket, key: "sns/new.bin", body: .bytes(Array("from sns".utf8)), options: PutOptions())
        try await withMount(try mount(bucket, ["--events-sns-verify", "required"])) { m throws in
            let port = try port(m)
            /// An SNS message signed with the key, as SNS signs: `Name\nvalue\n` over the fields in order.
            func signed(_ fields: [(String, String)], version: String, certURL: String) throws -> String {
                let order = fields.sorted { $0.0 < $1.0 }
                let text = order.map { "\($0.0)\n\($0.1)\n" }.joined()
                try text.write(toFile: dir + "/tosign", atomically: true, encoding: .utf8)
                let sign = spawn("/usr/bin/openssl", ["dgst", version == "2" ? "-sha256" : "-sha1", "-sign", dir + "/key.pem", "-out", dir + "/sig", dir + "/tosign"])
                try #require(sign.status == 0, "\(sign.stderr)")
                let signature = try Data(contentsOf: URL(fileURLWithPath: dir + "/sig")).base64EncodedString()
                var all = fields + [("SignatureVersion", version), ("Signature", signature), ("SigningCertURL", certURL)]
                all.append(("UnsubscribeURL", base + "unsubscribe"))
                let object = Dictionary(uniqueKeysWithValues: all)
                return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            }
            let message = Self.records([Self.record(bucket, "sns/new.bin", sequencer: "0B")])
            let notification: [(String, String)] = [
                ("Type", "Notification"), ("MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"),
                ("TopicArn", "arn:aws:sns:us-east-1:123456789012:lakecache"), ("Subject", "Amazon S3 Notification"),
                ("Message", message), ("Timestamp", "2026-12-01T10:00:00.000Z"),
            ]
            let basic = "Authorization: Basic " + Data("lakecache:\(token)".utf8).base64EncodedString()
            let body = try signed(notification, version: "1", certURL: base + "cert.pem")
            let r = try post(port, body, headers: ["x-amz-sns-message-type: Notification", basic], auth: false)
            let accepted = try json(r.body)["accepted"] as? Int
            #expect(r.status == 200 && accepted == 1, "\(r.status) \(r.body)")
            let appeared = try await until { list(m.path("sns")) == ["new.bin"] }
            #expect(appeared)

            // Altered after signing: refused.
            let altered = body.replacingOccurrences(of: "0B", with: "0C")
            let bad = try post(port, altered, headers: ["x-amz-sns-message-type: Notification", basic], auth: false)
            #expect(bad.status == 403 && bad.body.contains("signature"), "\(bad.status) \(bad.body)")
            // A certificate from anywhere but SNS: refused, and never fetched.
            let foreign = try signed(notification, version: "2", certURL: "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem")
            #expect(try post(port, foreign, headers: ["x-amz-sns-message-type: Notification", basic], auth: false).status == 403)
            // SignatureVersion 2 (SHA256) verifies too.
            let v2 = try signed(notification.map { $0.0 == "MessageId" ? ($0.0, "v2-message") : $0 }, version: "2", certURL: base + "cert.pem")
            let r2 = try json(try post(port, v2, headers: ["x-amz-sns-message-type: Notification", basic], auth: false).body)
            #expect(r2["duplicates"] as? Int == 1, "\(r2)")

            // The subscription confirmation: verified, then confirmed by visiting SubscribeURL.
            let confirmation = try signed([
                ("Type", "SubscriptionConfirmation"), ("MessageId", "165545c9-2a5c-472c-8df2-7ff2be2b3b1b"), ("Token", "2336412f37f"),
                ("TopicArn", "arn:aws:sns:us-east-1:123456789012:lakecache"), ("Message", "You have chosen to subscribe to the topic."),
                ("SubscribeURL", base + "confirm?Action=ConfirmSubscription"), ("Timestamp", "2026-12-01T10:00:00.000Z"),
            ], version: "1", certURL: base + "cert.pem")
            let c = try post(port, confirmation, headers: ["x-amz-sns-message-type: SubscriptionConfirmation", basic], auth: false)
            #expect(c.status == 200 && c.body.contains("\"confirmed\":true"), "\(c.status) \(c.body)")
            let log = (try? String(contentsOfFile: dir + "/requests.log", encoding: .utf8)) ?? ""
            #expect(log.contains("/confirm?Action=ConfirmSubscription"), "\(log)")
            #expect(log.components(separatedBy: "/cert.pem").count - 1 == 1, "the certificate is fetched once and kept: \(log)")
            #expect(!log.contains("evil"))
            #expect(try counters(m)["rejected_bad_signature"] == 2)
        }
    }
}
