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

/// kill -9 the daemon of a mount and clear the dead mount, as an operator would.
func crash(_ mount: TestMount) throws {
    let pid = try mount.daemonPID()
    kill(pid, SIGKILL)
    for _ in 0..<100 where kill(pid, 0) == 0 { usleep(20_000) }
    if spawn("/bin/fusermount3", ["-u", mount.mountpoint]).status != 0 { umount2(mount.mountpoint, Int32(MNT_DETACH)) }
}

/// Multipart uploads still open in a bucket.
func openUploads(_ s3: S3Client, _ bucket: String) async throws -> [MultipartUploadInfo] {
    try await s3.listMultipartUploads(bucket: bucket, prefix: "")
}
