import Foundation
import Testing

import Platform
@testable import ObjectStore

/// The `lakecache` binary as a user runs it: one clear line and a non-zero status for every bad input.
@Suite struct CLITests {
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var binary: String {
        URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent().appendingPathComponent("lakecache").path
    }

    func run(_ args: [String], env extra: [String: String] = [:]) throws -> Outcome {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        let r = spawn(Self.binary, args, environment: env)
        return Outcome(status: r.status, stdout: r.stdout, stderr: r.stderr)
    }

    /// A scratch directory, removed when the test process exits (the CLI tests mount nothing there).
    func tempDir() -> String {
        let path = NSTemporaryDirectory() + "lakecache-cli-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        ScratchDirectories.shared.add(path)
        return path
    }

    @Test func versionAndHelp() throws {
        #expect(try run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == LakeCacheVersion.current)
        let help = try run(["--help"])
        #expect(help.status == 0)
        for sub in ["mount", "unmount", "status", "flush"] { #expect(help.stdout.contains(sub)) }
        let mountHelp = try run(["mount", "--help"]).stdout
        for option in ["--endpoint", "--region", "--profile", "--no-sign-request", "--cache-dir", "--cache-size", "--memory-cache", "--write-mode", "--close-durability", "--metadata-ttl", "--read-only", "--allow-other", "--foreground"] {
            #expect(mountHelp.contains(option), "mount --help lacks \(option)")
        }
    }

    @Test func badInputGetsOneClearLine() throws {
        let mp = tempDir()
        let cache = tempDir()
        let moto = try Servers.endpoint("LAKECACHE_TEST_MOTO_ENDPOINT")
        let cases: [([String], String, Int32)] = [
            (["mount", "not-a-url", mp], "invalid bucket URL 'not-a-url'", 64),
            (["mount", "s3://Bad_Bucket", mp], "invalid bucket name 'Bad_Bucket'", 64),
            (["mount", "s3://bucket", mp, "--endpoint", "ftp://x"], "invalid endpoint URL 'ftp://x'", 64),
            (["mount", "s3://bucket", mp, "--write-mode", "later"], "invalid --write-mode 'later'", 64),
            (["mount", "s3://bucket", mp, "--close-durability", "disk"], "invalid --close-durability 'disk'", 64),
            (["mount", "s3://bucket", mp, "--metadata-ttl", "soon"], "invalid --metadata-ttl 'soon'", 64),
            (["mount", "s3://bucket", mp, "--cache-size", "lots"], "invalid size 'lots'", 64),
            (["mount", "s3://bucket", mp, "-o", "ro,bogus=1"], "unknown mount option 'bogus'", 64),
            (["mount", "s3://bucket", mp + "/missing"], "does not exist; create it with: mkdir -p", 1),
            (["mount", "s3://bucket", "/etc/hostname"], "is not a directory", 1),
            (["mount", "s3://bucket", mp, "--cache-dir", "/proc/lakecache-cache"], "cannot create cache directory", 1),
            (["mount", "s3://no-such-bucket-xyz", mp, "--endpoint", moto, "--cache-dir", cache], "bucket 'no-such-bucket-xyz' does not exist", 1),
            (["mount", "s3://bucket", mp, "--endpoint", "http://127.0.0.1:1", "--cache-dir", cache], "cannot reach http://127.0.0.1:1", 1),
        ]
        for (args, message, status) in cases {
            let o = try run(args)
            #expect(o.status == status, "\(args): status \(o.status), stderr \(o.stderr)")
            #expect(o.stderr.contains(message), "\(args): \(o.stderr)")
            #expect(o.stderr.split(separator: "\n").count == 1, "\(args) printed more than one line: \(o.stderr)")
        }
    }

    @Test func accessDeniedAndSecretsStayOutOfOutput() throws {
        let env = ProcessInfo.processInfo.environment
        let authEndpoint = try Servers.endpoint("LAKECACHE_TEST_MOTO_AUTH_ENDPOINT")
        let secret = "wrong-secret-\(UUID().uuidString)"
        let o = try run(
            ["mount", "s3://some-bucket", tempDir(), "--endpoint", authEndpoint, "--cache-dir", tempDir(), "--log-level", "trace"],
            env: ["AWS_ACCESS_KEY_ID": try #require(env["LAKECACHE_TEST_MOTO_AUTH_KEY"]), "AWS_SECRET_ACCESS_KEY": secret])
        #expect(o.status == 1)
        #expect(o.stderr.contains("access denied to bucket 'some-bucket'"), "\(o.stderr)")
        #expect(!o.stderr.contains(secret) && !o.stdout.contains(secret))
    }

    @Test func cacheDirIsCreatedPrivate() throws {
        let parent = tempDir()
        let cache = parent + "/a/b/cache"
        let moto = try Servers.endpoint("LAKECACHE_TEST_MOTO_ENDPOINT")
        _ = try run(["mount", "s3://no-such-bucket-abc", tempDir(), "--endpoint", moto, "--cache-dir", cache])
        var st = stat()
        #expect(stat(cache, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o700)
    }

    @Test func flushOutsideAMountSaysSo() throws {
        let o = try run(["flush", "/tmp"])
        #expect(o.status == 1)
        #expect(o.stderr.contains("/tmp is not inside a lakecache mount"))
    }
}
