import Foundation
import Testing

import Platform

/// `Type=notify`: the daemon tells a datagram socket the test creates that the mount is live, and that it
/// is stopping.
@Suite(.enabled(if: fuseAvailable, fuseSkipReason))
struct SystemdNotifyTests {
    /// Receives one datagram, or nil after `seconds`.
    func receive(_ fd: Int32, seconds: Int) -> String? {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }

    @Test func readyOnceMountedAndStoppingOnUnmount() async throws {
        try Servers.requireServers()
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let bucket = try await freshBucket(Servers.bench, "notify")
        let m = TestMount(bucket: bucket, endpoint: bench)
        let socketPath = m.cacheDir + "-notify.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd); unlink(socketPath) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { p in p.copyBytes(from: Array(socketPath.utf8)) }
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        try #require(bound == 0, "bind \(socketPath): \(errno)")

        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = socketPath
        let r = spawn(CLITests.binary, ["mount", m.url, m.mountpoint, "--endpoint", bench, "--cache-dir", m.cacheDir], mergeOutput: true, environment: env)
        try #require(r.status == 0, "mount: \(r.stdout)")
        defer { m.stop() }
        let ready = receive(fd, seconds: 10)
        #expect(ready?.contains("READY=1") == true && ready?.contains("STATUS=serving \(m.mountpoint)") == true, "\(ready ?? "nothing")")
        #expect(isMounted(m.mountpoint), "READY=1 came before the mount was live")
        m.stop()
        // STATUS= updates (the uploads pending, as they change) may come first.
        var stopping = receive(fd, seconds: 10)
        while let s = stopping, !s.hasPrefix("STOPPING=1"), s.hasPrefix("STATUS=") { stopping = receive(fd, seconds: 10) }
        #expect(stopping?.hasPrefix("STOPPING=1") == true, "\(stopping ?? "nothing")")
    }
}
