import Foundation
import Testing

import Platform
@testable import ObjectStore

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

    /// A datagram socket at `path` for the daemon's notifications.
    func notifySocket(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { p in p.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        try #require(bound == 0, "bind \(path): \(errno)")
        return fd
    }

    /// Mounts `m` with `NOTIFY_SOCKET` naming `socketPath`.
    func mountNotifying(_ m: TestMount, _ socketPath: String) throws {
        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = socketPath
        let r = spawn(CLITests.binary, ["mount", m.url, m.mountpoint, "--endpoint", m.endpoint, "--cache-dir", m.cacheDir] + m.extra, mergeOutput: true, environment: env)
        try #require(r.status == 0, "mount: \(r.stdout)")
    }

    @Test func readyOnceMountedAndStoppingOnUnmount() async throws {
        try Servers.requireServers()
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let bucket = try await freshBucket(Servers.bench, "notify")
        let m = TestMount(bucket: bucket, endpoint: bench)
        let socketPath = m.cacheDir + "-notify.sock"
        let fd = try notifySocket(socketPath)
        defer { close(fd); unlink(socketPath) }
        try mountNotifying(m, socketPath)
        defer { m.stop() }
        let ready = receive(fd, seconds: 10)
        #expect(ready?.contains("READY=1") == true && ready?.contains("STATUS=serving \(m.mountpoint)") == true, "\(ready ?? "nothing")")
        #expect(isMounted(m.mountpoint), "READY=1 came before the mount was live")
        m.stop()
        // Nothing was written, so no STATUS= line names uploads; STOPPING=1 comes last.
        var stopping = receive(fd, seconds: 10)
        while let s = stopping, !s.hasPrefix("STOPPING=1"), s.hasPrefix("STATUS=") {
            #expect(!s.contains("pending,"), "uploads pending with nothing written: \(s)")
            stopping = receive(fd, seconds: 10)
        }
        #expect(stopping?.hasPrefix("STOPPING=1") == true, "\(stopping ?? "nothing")")
    }

    /// The datagrams already queued on `fd`, without waiting.
    func queued(_ fd: Int32) -> [String] {
        var out: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard n > 0 else { return out }
            out.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
    }

    /// Uploads the store refuses (503 on every PUT) until the test lets them through, one and then the
    /// other, so no timing decides what is pending: while `lakecache unmount` waits for them, the daemon's
    /// STATUS= lines name the uploads still pending (two, then one); STOPPING=1 comes after them, with
    /// nothing left journaled, and every byte is in the bucket.
    @Test func statusNamesPendingUploadsWhileUnmountDrains() async throws {
        try Servers.requireServers()
        let bench = try Servers.endpoint("LAKECACHE_TEST_BENCH_ENDPOINT")
        let bucket = try await freshBucket(Servers.bench, "notify-drain")
        let refuse = { (prefix: String) -> [String: Any] in ["action": "503", "op": "PutObject", "key_prefix": prefix, "probability": 1.0] }
        try await BenchControl.setFaults(bucket: bucket, [refuse("f0"), refuse("f1")])
        let m = TestMount(bucket: bucket, endpoint: bench, extra: ["--write-mode", "async"])
        let socketPath = m.cacheDir + "-notify.sock"
        let fd = try notifySocket(socketPath)
        defer { close(fd); unlink(socketPath) }
        try mountNotifying(m, socketPath)
        defer { if isMounted(m.mountpoint) { m.stop() } }
        let ready = receive(fd, seconds: 10)
        #expect(ready?.contains("READY=1") == true, "\(ready ?? "nothing")")

        let files = (0..<2).map { i in ("f\(i).bin", patternBytes(100_000 + i, seed: UInt64(40 + i))) }
        let mountpoint = m.mountpoint
        // open, write, close: async close returns at once (no rename, which would wait for the upload).
        try await offPool { for (name, data) in files { try writeFile(mountpoint + "/" + name, data) } }
        let uploads = try #require(try m.status()["uploads"] as? [String: Any])
        #expect(uploads["pending"] as? Int == 2, "the refused uploads are pending: \(uploads)")
        let pid = try m.daemonPID()
        let beforeStop = queued(fd)
        // The unmount waits for the uploads; the datagrams queue on the socket meanwhile.
        let stopped = Task.detached { m.stop() }
        try await Task.sleep(for: .seconds(5))
        // f0 may land now; f1 stays refused until f0 is in the bucket and a status tick has passed.
        try await BenchControl.setFaults(bucket: bucket, [refuse("f1")])
        var landed = false
        for _ in 0..<240 where !landed {
            landed = (try? await Servers.bench.headObject(bucket: bucket, key: "f0.bin")) != nil
            if !landed { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(landed, "f0 never landed once the store let it through")
        try await Task.sleep(for: .seconds(5))
        try await BenchControl.setFaults(bucket: bucket, [])
        await stopped.value
        #expect(kill(pid, 0) != 0, "the daemon exited")

        var messages: [String] = []
        while let s = receive(fd, seconds: 10) {
            messages.append(s)
            if s.hasPrefix("STOPPING=1") { break }
        }
        let stopping = try #require(messages.firstIndex { $0.hasPrefix("STOPPING=1") }, "no STOPPING=1 in \(beforeStop) then \(messages)")
        let pending = (beforeStop + messages[..<stopping]).filter { $0.hasPrefix("STATUS=serving \(m.mountpoint): ") && $0.contains("upload(s) pending,") }
        #expect(pending.contains { $0.contains(": 2 upload(s) pending, ") }, "no STATUS= line named both pending uploads: \(beforeStop) then \(messages)")
        #expect(messages[..<stopping].contains { $0.contains(": 1 upload(s) pending, ") }, "no STATUS= line during the drain named the one left: \(messages)")
        #expect(!messages[stopping].contains("stay journaled"), "unmount waited, so nothing stays journaled: \(messages[stopping])")

        for (name, data) in files {
            let (bytes, _) = try await get(Servers.bench, GetObjectRequest(bucket: bucket, key: name), capacity: data.count + 1)
            #expect(bytes == data, "\(name) landed byte-exact")
        }
    }
}
