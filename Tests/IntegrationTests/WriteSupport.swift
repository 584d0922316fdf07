import Foundation
import Testing

import Platform
@testable import ObjectStore

/// Writes `bytes` to a new file through the mount in `chunk`-sized write(2) calls and closes it.
func writeFile(_ path: String, _ bytes: [UInt8], chunk: Int = 1 << 20, flags: Int32 = O_WRONLY | O_CREAT | O_TRUNC) throws {
    let fd = open(path, flags, 0o644)
    guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    var done = 0
    while done < bytes.count {
        let n = min(chunk, bytes.count - done)
        let w = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, n) }
        if w < 0 {
            let e = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: e) ?? .EIO)
        }
        done += w
    }
    guard close(fd) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
}

/// pwrite of all of `bytes` at `offset`.
func pwriteAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int) -> Bool {
    bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, bytes.count, off_t(offset)) } == bytes.count
}

/// The whole object as the bucket has it (nil if missing).
func objectBytes(_ s3: S3Client, _ bucket: String, _ key: String) async throws -> [UInt8]? {
    guard let info = try? await s3.headObject(bucket: bucket, key: key) else { return nil }
    if info.size == 0 { return [] }
    return try await get(s3, GetObjectRequest(bucket: bucket, key: key), capacity: Int(info.size)).bytes
}

/// Runs `lakecache flush` on a path and returns its status and output.
func flush(_ path: String, timeout: Int = 120) -> (status: Int32, output: String) {
    TestMount.run(["flush", path, "--timeout", String(timeout)])
}

/// Polls `what` every `interval` until it holds or `seconds` have passed; whether it held at the end.
///
/// For what must happen soon but has no event to wait on: it returns as soon as it holds, so the deadline
/// can be generous for a loaded machine. A throw counts as not yet, except on the last look.
func until(_ seconds: Double = 20, every interval: Duration = .milliseconds(100), _ what: () async throws -> Bool) async throws -> Bool {
    let deadline = monotonicSeconds() + seconds
    while monotonicSeconds() < deadline {
        if (try? await what()) == true { return true }
        try await Task.sleep(for: interval)
    }
    return try await what()
}

/// kill -9 the daemon of a mount and clear the dead mount, as an operator would.
///
/// `known` is the daemon's pid, taken earlier by a test whose kill must land at a moment it chose: finding
/// the pid here spawns `status`, which on a loaded machine can take many seconds.
func crash(_ mount: TestMount, pid known: pid_t? = nil) throws {
    let pid = try known ?? mount.daemonPID()
    kill(pid, SIGKILL)
    let died = waitForExit(pid)
    if spawn("/bin/fusermount3", ["-u", mount.mountpoint]).status != 0 { umount2(mount.mountpoint, Int32(MNT_DETACH)) }
    try #require(died, "the daemon (pid \(pid)) was still alive a minute after SIGKILL")
}

/// Waits up to `seconds` for process `pid` to be gone; whether it is. A killed daemon in fdatasync dies
/// late, and until it has, the next mount of its cache directory finds the directory locked.
func waitForExit(_ pid: pid_t, seconds: Int = 60) -> Bool {
    // kill(pid, 0), not the state in /proc/PID/stat: a killed multithreaded daemon's main thread shows as a
    // zombie while another thread still finishes an fdatasync, holding the cache directory's lock.
    for _ in 0..<(seconds * 50) where kill(pid, 0) == 0 { usleep(20_000) }
    return kill(pid, 0) != 0
}

/// Multipart uploads still open in a bucket.
func openUploads(_ s3: S3Client, _ bucket: String) async throws -> [MultipartUploadInfo] {
    try await s3.listMultipartUploads(bucket: bucket, prefix: "")
}
