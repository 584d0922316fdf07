import CSpawn
import Foundation
import Testing

import Platform
@testable import ObjectStore

/// Whether FUSE mounts can run here; mount tests are skipped (with this reason) only when they cannot.
let fuseAvailable = FileManager.default.fileExists(atPath: "/dev/fuse")
let fuseSkipReason: Comment = "/dev/fuse is absent: FUSE mount tests need it"

/// A running `lakecache mount` of a test bucket; `stop()` unmounts and waits for the daemon.
final class TestMount: @unchecked Sendable {
    let mountpoint: String
    let cacheDir: String
    let endpoint: String
    let url: String
    let extra: [String]
    /// A config file of links, mounted with `--config` instead of a URL.
    let config: String?

    /// The environment `start()` runs `lakecache mount` in; nil is the test process's own.
    var environment: [String: String]?

    /// The test's own directory (mountpoint and default cache), removed when the mount object goes.
    private let base: String

    init(bucket: String, prefix: String = "", endpoint: String, cacheDir: String? = nil, extra: [String] = []) {
        let base = NSTemporaryDirectory() + "lakecache-mnt-\(UUID().uuidString.prefix(8))"
        self.base = base
        mountpoint = base + "/mnt"
        self.cacheDir = cacheDir ?? base + "/cache"
        self.endpoint = endpoint
        url = "s3://\(bucket)" + (prefix.isEmpty ? "" : "/\(prefix)")
        self.extra = extra
        config = nil
        try? FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
    }

    /// A mount of the links `yaml` declares (written to a file of its own; `configPath` names it).
    init(config yaml: String, extra: [String] = []) {
        let base = NSTemporaryDirectory() + "lakecache-mnt-\(UUID().uuidString.prefix(8))"
        self.base = base
        mountpoint = base + "/mnt"
        cacheDir = base + "/cache"
        endpoint = ""
        url = ""
        self.extra = extra
        config = base + "/links.yaml"
        try? FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        try? yaml.write(toFile: config!, atomically: true, encoding: .utf8)
    }

    /// The same config as `other`, on another mountpoint, with the cache directory given.
    init(sharing other: TestMount, cacheDir: String) {
        let base = NSTemporaryDirectory() + "lakecache-mnt-\(UUID().uuidString.prefix(8))"
        self.base = base
        mountpoint = base + "/mnt"
        self.cacheDir = cacheDir
        endpoint = other.endpoint
        url = other.url
        extra = other.extra
        config = other.config
        try? FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
    }

    /// Rewrites the config file (then `lakecache reload`).
    func rewrite(_ yaml: String) throws { try yaml.write(toFile: config!, atomically: true, encoding: .utf8) }

    static func run(_ args: [String]) -> (status: Int32, output: String) {
        let r = spawn(CLITests.binary, args, mergeOutput: true)
        return (r.status, r.stdout)
    }

    deinit {
        // Only once nothing is mounted there: removing files under a live mount would delete objects.
        if !isMounted(mountpoint) { try? FileManager.default.removeItem(atPath: base) }
    }

    func start() throws {
        let args = config.map { ["mount", "--config", $0, mountpoint, "--cache-dir", cacheDir] } ?? ["mount", url, mountpoint, "--endpoint", endpoint, "--cache-dir", cacheDir]
        let r = spawn(CLITests.binary, args + extra, mergeOutput: true, environment: environment)
        try #require(r.status == 0, "mount failed: \(r.stdout)")
    }

    func stop() {
        let r = Self.run(["unmount", mountpoint])
        if r.status != 0 {
            // Never leave a mount behind, whatever the test did.
            _ = Self.run(["unmount", mountpoint])
            umount2(mountpoint, Int32(MNT_DETACH))
        }
    }

    /// `status --json` as a dictionary.
    func status() throws -> [String: Any] {
        let r = Self.run(["status", "--json", mountpoint])
        try #require(r.status == 0, "status failed: \(r.output)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any])
    }

    func daemonPID() throws -> pid_t {
        pid_t(try #require(try status()["pid"] as? Int))
    }

    func path(_ relative: String) -> String { mountpoint + "/" + relative }
}

/// Mounts, runs `body`, and always unmounts.
func withMount(_ mount: TestMount, _ body: (TestMount) async throws -> Void) async throws {
    try mount.start()
    defer { mount.stop() }
    try await body(mount)
}

/// Reads a whole file through the mount with plain read(2).
func readFile(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 1 << 20) }
        if n < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        if n == 0 { break }
        out += buf[0..<n]
    }
    return out
}

/// pread of `length` bytes at `offset`; returns what was read or the errno.
func preadFile(_ fd: Int32, _ offset: Int, _ length: Int) -> Result<[UInt8], POSIXError> {
    var buf = [UInt8](repeating: 0, count: length)
    var done = 0
    while done < length {
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, length - done, off_t(offset + done)) }
        if n < 0 { return .failure(POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)) }
        if n == 0 { break }
        done += n
    }
    return .success(Array(buf[0..<done]))
}

/// Runs blocking `body` on a thread of its own and awaits it, so that a long run of syscalls and sleeps does
/// not hold one of the few cooperative threads every other test needs.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        Thread.detachNewThread {
            do { c.resume(returning: try body()) } catch { c.resume(throwing: error) }
        }
    }
}

/// Runs `body` on `threads` real threads at once (blocking syscalls must not sit on the cooperative pool).
func onThreads(_ threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<threads {
        group.enter()
        Thread.detachNewThread {
            body(i)
            group.leave()
        }
    }
    group.wait()
}

func dropPageCache() {
    sync()
    if let f = fopen("/proc/sys/vm/drop_caches", "w") {
        fputs("3\n", f)
        fclose(f)
    }
}

/// Requests of one operation kind the bench store saw for a bucket.
func benchCount(_ bucket: String, _ op: String) async throws -> Int {
    try await BenchControl.requests(bucket: bucket)[op] ?? 0
}

/// Runs a program and captures its output, with posix_spawn and waitpid.
///
/// Foundation's Process can hang in waitUntilExit when many run at once; this cannot. Descriptors above 2
/// are closed in the child, so a daemon it starts inherits nothing of the test process.
func spawn(_ path: String, _ args: [String], mergeOutput: Bool = false, environment: [String: String]? = nil) -> (status: Int32, stdout: String, stderr: String) {
    var outPipe: [Int32] = [0, 0]
    var errPipe: [Int32] = [0, 0]
    pipe(&outPipe)
    pipe(&errPipe)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, mergeOutput ? outPipe[1] : errPipe[1], 2)
    CSpawn_file_actions_addclosefrom(&actions, 3)
    let argv = ([path] + args).map { strdup($0) } + [nil]
    let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
    var pid = pid_t()
    let rc = posix_spawn(&pid, path, &actions, nil, argv, env)
    posix_spawn_file_actions_destroy(&actions)
    for p in argv { free(p) }
    for p in env { free(p) }
    close(outPipe[1])
    close(errPipe[1])
    guard rc == 0 else {
        close(outPipe[0])
        close(errPipe[0])
        return (-1, "", "cannot spawn \(path): \(rc)")
    }
    // Drain both pipes on separate threads so neither can fill and block the child.
    let errBox = OutputBox()
    let group = DispatchGroup()
    group.enter()
    let errRead = errPipe[0]
    Thread.detachNewThread {
        errBox.bytes = drain(errRead)
        group.leave()
    }
    let out = drain(outPipe[0])
    group.wait()
    close(outPipe[0])
    close(errPipe[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (code, String(decoding: out, as: UTF8.self), String(decoding: errBox.bytes, as: UTF8.self))
}

final class OutputBox: @unchecked Sendable { var bytes: [UInt8] = [] }

func drain(_ fd: Int32) -> [UInt8] {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 65_536) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

/// Whether `path` is a mount point now: listed in /proc/self/mountinfo, or on another device than its parent.
///
/// The second check is there because a mountinfo read that races other tests' mounts and unmounts was once
/// seen to miss a live mount (CI, 2026-12-01); for a path that is not a mount point it is a plain `stat`
/// of two local directories and never reaches a FUSE daemon.
func isMounted(_ path: String) -> Bool {
    guard let table = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return true }
    let listed = table.split(separator: "\n").contains { line in
        let fields = line.split(separator: " ")
        return fields.count > 4 && fields[4] == path
    }
    if listed { return true }
    var me = stat(), parent = stat()
    guard stat(path, &me) == 0 else { return errno == ENOTCONN }
    guard stat(path + "/..", &parent) == 0 else { return false }
    return me.st_dev != parent.st_dev
}
