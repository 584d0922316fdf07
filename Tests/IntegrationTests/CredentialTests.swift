import Foundation
import Testing

import Platform
@testable import ObjectStore

/// The bench store's credential issuer for one bucket: it mints keys that expire after `lifetime` seconds,
/// serves them as IMDSv2, a container endpoint and STS would, and refuses requests to the bucket that are
/// not signed with a live one.
enum Issuer {
    static func enable(bucket: String, lifetime: Double, token: String? = nil) async throws {
        var spec: [String: Any] = ["lifetime": lifetime]
        if let token { spec["token"] = token }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        _ = try await BenchControl.call("POST", "/_bench/issuer?bucket=\(bucket)", json: json)
    }

    struct Stats {
        var minted: Int
        var accepted: Int
        var refused: [String: Int]
        var keysUsed: Int
    }

    static func stats(_ bucket: String) async throws -> Stats {
        let body = try await BenchControl.call("GET", "/_bench/issuer?bucket=\(bucket)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        return Stats(
            minted: json["minted"] as? Int ?? 0, accepted: json["accepted"] as? Int ?? 0,
            refused: json["refused"] as? [String: Int] ?? [:], keysUsed: (json["keys_used"] as? [Any])?.count ?? 0)
    }

    static func url(_ bucket: String, _ path: String = "") throws -> String {
        try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT") + "/_bench/issuer/\(bucket)" + path
    }
}

/// An environment with no AWS settings of the test process (its static keys above all), a HOME without
/// `~/.aws`, and instance metadata off unless `extra` turns it on: only the source under test can apply.
func credentialEnvironment(_ extra: [String: String]) -> [String: String] {
    let home = NSTemporaryDirectory() + "lakecache-home-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
    ScratchDirectories.shared.add(home)
    return ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") }
        .merging(["HOME": home, "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"]) { $1 }
        .merging(extra) { $1 }
}

/// Credentials from every source of the chain, against real servers: moto's STS (AssumeRole on the
/// authenticating moto, AssumeRoleWithWebIdentity) and the bench store's IMDSv2, container and STS
/// stand-ins, whose keys live a few seconds so that refreshes happen during a mount's reads and writes.
@Suite struct CredentialTests {
    /// Writes, lists and reads through `m` for `seconds`, every operation checked; the bucket holds
    /// `objects` objects `r/N` of 128 KiB put before the mount. Runs off the cooperative pool (see `offPool`)
    /// and records what went wrong once it is back.
    func exercise(_ m: TestMount, seconds: Double, objects: Int) async throws {
        let mountpoint = m.mountpoint
        let problems = try await offPool { () throws -> [String] in
            var problems: [String] = []
            let deadline = monotonicSeconds() + seconds
            try FileManager.default.createDirectory(atPath: mountpoint + "/w", withIntermediateDirectories: true)
            var i = 0
            while monotonicSeconds() < deadline {
                let data = patternBytes(256 << 10, seed: UInt64(1000 + i))
                // write-mode sync: close() returns after the upload, so a refused upload fails here.
                if !FileManager.default.createFile(atPath: mountpoint + "/w/\(i)", contents: Data(data)) { problems.append("write w/\(i) failed: \(Errno(errno))") }
                let listed = (try? FileManager.default.contentsOfDirectory(atPath: mountpoint + "/w"))?.count ?? -1
                if listed != i + 1 { problems.append("listing after \(i + 1) writes shows \(listed)") }
                let n = i % objects
                if (try? readFile(mountpoint + "/r/\(n)")) != patternBytes(128 << 10, seed: UInt64(n + 1)) { problems.append("read r/\(n) wrong or failed") }
                i += 1
                usleep(150_000)
            }
            // And everything written is in the bucket, read back through a second look-up.
            for j in stride(from: 0, to: i, by: max(1, i / 5)) where (try? readFile(mountpoint + "/w/\(j)")) != patternBytes(256 << 10, seed: UInt64(1000 + j)) {
                problems.append("w/\(j) reads back wrong")
            }
            return problems
        }
        #expect(problems.isEmpty, "\(problems.prefix(10))")
    }

    /// A bucket on the bench store with `objects` objects, then its issuer switched on.
    func issuedBucket(_ tag: String, lifetime: Double, token: String? = nil, objects: Int) async throws -> String {
        let bucket = try await freshBucket(Servers.bench, tag)
        try await putMany(Servers.bench, bucket: bucket, count: objects) { i in ("r/\(i)", patternBytes(128 << 10, seed: UInt64(i + 1))) }
        try await Issuer.enable(bucket: bucket, lifetime: lifetime, token: token)
        return bucket
    }

    /// Checks what the issuer saw: several keys minted and used, nothing refused but (at most one) race of
    /// a request signed just before a refresh and delayed past expiry, which the retry absorbs.
    func expectRefreshed(_ bucket: String, minted: Int) async throws {
        let s = try await Issuer.stats(bucket)
        print("credential issuer of \(bucket): minted \(s.minted), requests accepted \(s.accepted), refused \(s.refused)")
        #expect(s.minted >= minted, "minted \(s.minted)")
        #expect(s.keysUsed >= minted, "keys used \(s.keysUsed)")
        let refused = s.refused.filter { $0.key != "ExpiredToken" }
        #expect(refused.isEmpty, "refused: \(s.refused)")
        #expect((s.refused["ExpiredToken"] ?? 0) <= 1, "refused as expired: \(s.refused)")
    }

    @Test func instanceMetadataKeysAreRefreshedWhileAMountReadsAndWrites() async throws {
        try Servers.requireServers()
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let bucket = try await issuedBucket("imds", lifetime: 5, objects: 30)
        let m = TestMount(bucket: bucket, endpoint: bench, extra: ["--write-mode", "sync", "--metadata-ttl", "0"])
        m.environment = credentialEnvironment(["AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": try Issuer.url(bucket)])
        try await withMount(m) { m in
            try await exercise(m, seconds: 13, objects: 30)
            // `status` names the source and counts the refreshes.
            let creds = try #require(try m.status()["credentials"] as? [String: Any])
            #expect((creds["source"] as? String)?.contains("instance metadata") == true, "\(creds)")
            #expect((creds["refreshes"] as? Int ?? 0) >= 2, "\(creds)")
            #expect(creds["last_refresh_error"] == nil, "\(creds)")
        }
        try await expectRefreshed(bucket, minted: 3)
    }

    @Test func containerKeysWithARotatingTokenFile() async throws {
        try Servers.requireServers()
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let token = "pod-identity-\(UUID().uuidString)"
        let bucket = try await issuedBucket("container", lifetime: 4, token: token, objects: 20)
        let tokenFile = NSTemporaryDirectory() + "lakecache-token-\(UUID().uuidString.prefix(8))"
        try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        defer { unlink(tokenFile) }
        let env = credentialEnvironment([
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": try Issuer.url(bucket, "/container"), "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile,
        ])
        let m = TestMount(bucket: bucket, endpoint: bench, extra: ["--write-mode", "sync", "--metadata-ttl", "0"])
        m.environment = env
        try await withMount(m) { m in
            try await exercise(m, seconds: 9, objects: 20)
        }
        try await expectRefreshed(bucket, minted: 3)

        // A wrong token: the mount is refused, naming the endpoint and the variable to fix, never the token.
        try "not-the-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let bad = TestMount(bucket: bucket, endpoint: bench)
        let r = spawn(CLITests.binary, ["mount", bad.url, bad.mountpoint, "--endpoint", bench, "--cache-dir", bad.cacheDir], mergeOutput: true, environment: env)
        #expect(r.status != 0)
        #expect(r.stdout.contains("container credentials endpoint") && r.stdout.contains("401") && r.stdout.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN"), "\(r.stdout)")
        #expect(!r.stdout.contains("not-the-token") && !r.stdout.contains(token), "a token reached the output: \(r.stdout)")
        #expect(!isMounted(bad.mountpoint))
    }

    @Test func aWebIdentityProfileIsExchangedAtSTSAndRefreshed() async throws {
        try Servers.requireServers()
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let token = "eyJ-service-account-\(UUID().uuidString)"
        let bucket = try await issuedBucket("webid", lifetime: 4, token: token, objects: 20)
        let home = NSTemporaryDirectory() + "lakecache-irsa-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        try token.write(toFile: home + "/token", atomically: true, encoding: .utf8)
        try """
            [profile irsa]
            role_arn = arn:aws:iam::123456789012:role/lakecache-node
            web_identity_token_file = \(home)/token
            role_session_name = lakecache-test
            """.write(toFile: home + "/config", atomically: true, encoding: .utf8)
        let m = TestMount(bucket: bucket, endpoint: bench, extra: ["--write-mode", "sync", "--metadata-ttl", "0", "--profile", "irsa"])
        m.environment = credentialEnvironment(["AWS_CONFIG_FILE": home + "/config", "AWS_ENDPOINT_URL_STS": try Issuer.url(bucket, "/sts")])
        try await withMount(m) { m in
            try await exercise(m, seconds: 9, objects: 20)
        }
        try await expectRefreshed(bucket, minted: 3)
    }

    @Test func webIdentityFromTheEnvironmentAtMotoSTS() async throws {
        try Servers.requireServers()
        let moto = try Servers.endpoint("LAKECACHE_TEST_MOTO_ENDPOINT")
        let tokenFile = NSTemporaryDirectory() + "lakecache-webid-\(UUID().uuidString.prefix(8))"
        try "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        defer { unlink(tokenFile) }
        let env = credentialEnvironment([
            "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/irsa", "AWS_ROLE_SESSION_NAME": "lakecache-irsa",
            "AWS_ENDPOINT_URL_STS": moto,
        ])
        let config = try S3Configuration.resolve(endpoint: moto, region: nil, profile: nil, anonymous: false, environment: env)
        let provider = try #require(config.credentials)
        #expect(provider.source.contains("web identity"))
        let c = try #require(provider.current())
        #expect(c.accessKeyID.hasPrefix("ASIA") && c.sessionToken != nil)
        let lifetime = try #require(c.expiration) - Int64(wallClock().seconds)
        #expect((3000...3700).contains(lifetime), "moto's default web identity lifetime is an hour: \(lifetime)")
        let client = S3Client(configuration: config)
        defer { client.shutdown() }
        let bucket = try await freshBucket(client, "webid-moto")
        _ = try await client.putObject(bucket: bucket, key: "k", body: .bytes(Array("signed by STS keys".utf8)), options: PutOptions())
        #expect(try await client.headObject(bucket: bucket, key: "k").size == 18)
    }

    /// AssumeRole through a profile, on the moto that checks signatures and policies: the assumed role's keys
    /// (not the source profile's) sign the S3 calls, and keys that live 3 s are replaced during the calls.
    @Test func anAssumedRoleProfileSignsAndIsRefreshed() async throws {
        try Servers.requireServers()
        let env = ProcessInfo.processInfo.environment
        let endpoint = try Servers.endpoint("LAKECACHE_TEST_MOTO_AUTH_ENDPOINT")
        let role = try #require(env["LAKECACHE_TEST_MOTO_ROLE_ARN"])
        let home = NSTemporaryDirectory() + "lakecache-role-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        try """
            [base]
            aws_access_key_id = \(try #require(env["LAKECACHE_TEST_MOTO_AUTH_KEY"]))
            aws_secret_access_key = \(try #require(env["LAKECACHE_TEST_MOTO_AUTH_SECRET"]))
            [denied]
            aws_access_key_id = \(try #require(env["LAKECACHE_TEST_MOTO_DENIED_KEY"]))
            aws_secret_access_key = \(try #require(env["LAKECACHE_TEST_MOTO_DENIED_SECRET"]))
            """.write(toFile: home + "/credentials", atomically: true, encoding: .utf8)
        try """
            [profile reader]
            role_arn = \(role)
            source_profile = base
            duration_seconds = 3
            [profile nobody]
            role_arn = \(role)
            source_profile = denied
            """.write(toFile: home + "/config", atomically: true, encoding: .utf8)
        let cenv = credentialEnvironment([
            "AWS_CONFIG_FILE": home + "/config", "AWS_SHARED_CREDENTIALS_FILE": home + "/credentials", "AWS_ENDPOINT_URL_STS": endpoint,
        ])
        let config = try S3Configuration.resolve(endpoint: endpoint, region: nil, profile: "reader", anonymous: false, environment: cenv)
        let provider = try #require(config.credentials)
        let first = try #require(provider.current())
        #expect(first.accessKeyID != env["LAKECACHE_TEST_MOTO_AUTH_KEY"] && first.sessionToken != nil)
        let client = S3Client(configuration: config)
        defer { client.shutdown() }
        let bucket = "t-role-\(UUID().uuidString.prefix(8).lowercased())"
        try await client.createBucket(bucket)
        let deadline = monotonicSeconds() + 8
        var i = 0
        while monotonicSeconds() < deadline {
            let body = Array("object \(i)".utf8)
            _ = try await client.putObject(bucket: bucket, key: "o/\(i)", body: .bytes(body), options: PutOptions())
            #expect(try await client.headObject(bucket: bucket, key: "o/\(i)").size == Int64(body.count))
            i += 1
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        #expect(provider.refreshStats.refreshes >= 2, "refreshes: \(provider.refreshStats)")
        #expect(provider.current()?.accessKeyID != first.accessKeyID)

        // A source profile the role does not trust (no sts:AssumeRole): refused at resolve, naming STS and the role.
        do {
            _ = try S3Configuration.resolve(endpoint: endpoint, region: nil, profile: "nobody", anonymous: false, environment: cenv)
            Issue.record("a denied AssumeRole resolved")
        } catch {
            #expect(error.message.contains("STS AssumeRole of \(role)") && error.message.contains("refused"), "\(error.message)")
            #expect(!error.message.contains(env["LAKECACHE_TEST_MOTO_DENIED_SECRET"] ?? "-"), "a secret reached the message")
        }
    }

    @Test func withNoSourceTheErrorListsWhatWasTried() throws {
        // Instance metadata on a port nobody listens on: the probe fails fast and says so.
        let env = credentialEnvironment(["AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9"])
        do {
            _ = try S3Configuration.resolve(endpoint: "http://127.0.0.1:9", region: nil, profile: nil, anonymous: false, environment: env)
            Issue.record("resolved without any credentials")
        } catch {
            for part in ["environment variables", "web identity", "shared files", "container endpoint", "instance metadata (http://127.0.0.1:9): not reachable"] {
                #expect(error.message.contains(part), "\(part) in: \(error.message)")
            }
        }
    }
}
