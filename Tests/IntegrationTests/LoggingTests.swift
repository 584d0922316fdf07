import Foundation
import Testing

import Platform
@testable import ObjectStore

/// The daemon's log under systemd: with `JOURNAL_STREAM` naming its stderr, journald-native lines; with a
/// stale `JOURNAL_STREAM`, the plain format; in both, one info line per control verb and never a secret.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason), .serialized)
struct LoggingTests {
    /// Credentials no server checks here (the bench store ignores signatures), unique so a leak is unmistakable.
    static let accessKey = "AKIALOGTEST\(UUID().uuidString.prefix(8).uppercased())"
    static let secret = "logTestSecret/\(UUID().uuidString)"

    /// `DEVICE:INODE` of `path`, as systemd writes `JOURNAL_STREAM` for a service's stderr.
    static func deviceInode(_ path: String) throws -> String {
        var st = stat()
        try #require(stat(path, &st) == 0, "stat \(path): \(errno)")
        return "\(st.st_dev):\(st.st_ino)"
    }

    /// Runs `lakecache mount --foreground` in the background with stdout and stderr appended to `log`
    /// (as systemd connects them to the journal), `journalStream` in its environment, until it is live.
    static func mountForeground(_ m: TestMount, log: String, journalStream: String) async throws {
        var env = ProcessInfo.processInfo.environment
        env["JOURNAL_STREAM"] = journalStream
        env["AWS_ACCESS_KEY_ID"] = accessKey
        env["AWS_SECRET_ACCESS_KEY"] = secret
        env["LOG"] = log
        let args = [CLITests.binary, "mount", m.url, m.mountpoint, "--endpoint", m.endpoint, "--cache-dir", m.cacheDir, "--foreground", "--log-level", "trace"]
        let r = spawn("/bin/sh", ["-c", "\"$0\" \"$@\" </dev/null >>\"$LOG\" 2>&1 &"] + args, mergeOutput: true, environment: env)
        try #require(r.status == 0, "sh: \(r.stdout)")
        // Up to two minutes: on a loaded machine the daemon's start and each `status` spawn take seconds.
        let deadline = monotonicSeconds() + 120
        while !isMounted(m.mountpoint) || TestMount.run(["status", "--json", m.mountpoint]).status != 0 {
            try #require(monotonicSeconds() < deadline, "the foreground daemon did not mount: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    /// Mounts with `journalStream`, does some work and two control verbs, unmounts; returns the log's lines.
    func run(journalStream: (String) throws -> String) async throws -> [String] {
        try Servers.requireServers()
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let bucket = try await freshBucket(Servers.bench, "logs")
        _ = try await Servers.bench.putObject(bucket: bucket, key: "a.txt", body: .bytes(Array("logged".utf8)), options: PutOptions())
        let m = TestMount(bucket: bucket, endpoint: bench)
        let log = m.cacheDir + "-daemon.log"
        try Data().write(to: URL(fileURLWithPath: log))
        defer { unlink(log) }
        try await Self.mountForeground(m, log: log, journalStream: try journalStream(log))
        defer { if isMounted(m.mountpoint) { m.stop() } }
        #expect(try String(contentsOfFile: m.path("a.txt"), encoding: .utf8) == "logged")
        #expect(FileManager.default.createFile(atPath: m.path("b.txt"), contents: Data("written".utf8)))
        let sync = TestMount.run(["sync", m.mountpoint])
        #expect(sync.status == 0, "sync: \(sync.output)")
        let status = TestMount.run(["status", "--json", m.mountpoint])
        #expect(status.status == 0 && !status.output.contains(Self.secret), "status names no secret")
        let pid = try m.daemonPID()
        m.stop()
        #expect(kill(pid, 0) != 0, "the daemon exited")
        #expect(try await Servers.bench.headObject(bucket: bucket, key: "b.txt").size == 7, "the write landed")
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(!text.contains(Self.secret), "the secret key is in the daemon's log")
        return text.split(separator: "\n").map(String.init)
    }

    /// The control-request lines of `verb`.
    static func controlLines(_ lines: [String], _ verb: String) -> [String] {
        lines.filter { $0.contains("control request") && $0.contains("verb=\(verb)") }
    }

    @Test func journalStreamOnStderrGivesJournaldLines() async throws {
        let lines = try await run(journalStream: Self.deviceInode)
        #expect(lines.count > 3, "\(lines)")
        // Every line: `<PRIORITY>label: message key=value ...`, nothing before the priority, no colour.
        for line in lines {
            let ok = line.range(of: #"^<[0-7]>lakecache[a-z.]*: \S"#, options: .regularExpression) != nil
            #expect(ok && !line.contains("\u{1B}["), "not a journald line: \(line)")
        }
        #expect(lines.contains { $0.hasPrefix("<6>lakecache") && $0.contains(": mounted ") }, "the mount's info line")
        // Trace lines are there, at priority 7: the threshold was honoured, and they are not at info.
        #expect(lines.contains { $0.hasPrefix("<7>") }, "no debug/trace line at priority 7")
        // The one info line of a verb, with its outcome; status is polled and not logged.
        let sync = Self.controlLines(lines, "sync")
        #expect(sync.count == 1 && sync.first?.hasPrefix("<6>") == true && sync.first?.contains("outcome=ok") == true, "\(sync)")
        #expect(Self.controlLines(lines, "status").isEmpty)
        let unmount = Self.controlLines(lines, "unmount")
        #expect(unmount.count == 1 && unmount.first?.contains("outcome=ok") == true, "\(unmount)")
    }

    @Test func aJournalStreamNamingAnotherFileIsIgnored() async throws {
        // Inherited from a service whose stderr this daemon no longer has: the plain format, timestamped.
        let lines = try await run { log in
            let other = log + "-other"
            try Data().write(to: URL(fileURLWithPath: other))
            defer { unlink(other) }
            return try Self.deviceInode(other)
        }
        #expect(!lines.contains { $0.range(of: #"^<[0-7]>"#, options: .regularExpression) != nil }, "journald lines without the journal: \(lines.prefix(3))")
        let sync = Self.controlLines(lines, "sync")
        #expect(sync.count == 1 && sync.first?.range(of: #"^\d{4}-\d\d-\d\dT"#, options: .regularExpression) != nil && sync.first?.contains("info") == true, "\(sync)")
    }
}
