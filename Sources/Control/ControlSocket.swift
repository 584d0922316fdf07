import Logging
import Platform
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where a mount's control socket lives: one per mountpoint, in a directory only its owner can enter.
package enum ControlPaths {
    /// `/run/lakecache` for root, `$XDG_RUNTIME_DIR/lakecache` or `/tmp/lakecache-UID` otherwise.
    package static func directory() -> String {
        if getuid() == 0 { return "/run/lakecache" }
        if let xdg = getenv("XDG_RUNTIME_DIR") { return String(cString: xdg) + "/lakecache" }
        return "/tmp/lakecache-\(getuid())"
    }

    /// The socket of `mountpoint` (an absolute path); named by hash because socket paths are short.
    package static func socket(for mountpoint: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in mountpoint.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0100_0000_01b3
        }
        return directory() + "/" + String(h, radix: 16) + ".sock"
    }

    /// Every socket present (for `status` without a mountpoint).
    package static func all() -> [String] {
        Syscall.listDirectory(directory()).filter { $0.hasSuffix(".sock") }.map { directory() + "/" + $0 }.sorted()
    }
}

/// The daemon side: a unix socket (mode 0600) answering one command per connection, each connection on a
/// thread of its own, so that a long `sync` or `reload` does not hold up `status`.
package final class ControlServer: @unchecked Sendable {
    package typealias Handler = @Sendable (String) -> String
    let path: String
    private let handler: Handler
    private var fd: Int32 = -1
    private var thread = pthread_t()
    private let logger: Logger
    /// Requests being answered: `stop` waits for them, so that an `unmount`'s own answer and log line are
    /// not cut off by the exit it sets going.
    private let answering = Atomic<Int>(0)

    package init(path: String, logger: Logger, handler: @escaping Handler) {
        self.path = path
        self.logger = logger
        self.handler = handler
    }

    /// Binds the socket; fails with a message naming the path.
    package func start() throws(SystemError) {
        let dir = String(path[..<path.lastIndex(of: "/")!])
        if mkdir(dir, 0o700) != 0 && errno != EEXIST {
            throw SystemError("cannot create control directory \(dir): \(Errno(errno))", errno: Errno(errno))
        }
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("cannot create control socket: \(Errno(errno))", errno: Errno(errno)) }
        unlink(path)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw SystemError("control socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        // The socket is created private: no window in which others could connect.
        let old = umask(0o177)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        umask(old)
        guard rc == 0, listen(fd, 16) == 0 else { throw SystemError("cannot bind control socket \(path): \(Errno(errno))", errno: Errno(errno)) }
        chmod(path, 0o600)
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { arg in
            Unmanaged<ControlServer>.fromOpaque(arg!).takeRetainedValue().acceptLoop()
            return nil
        }, box)
    }

    /// Takes no more requests, then waits up to `seconds` for those being answered.
    ///
    /// Bounded: a `flush` or `jobs wait` still waiting must not hold the unmount up for long.
    package func stop(waitingUpTo seconds: Double = 5) {
        unlink(path)
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
        let deadline = monotonicSeconds() + seconds
        while answering.load(ordering: .acquiring) > 0 && monotonicSeconds() < deadline { usleep(10_000) }
    }

    private func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            let handler = self.handler
            answering.add(1, ordering: .relaxed)
            startDetachedThread { [self] in
                defer { answering.subtract(1, ordering: .releasing) }
                let request = readLine(client)
                var out = handler(request) + "\n"
                out.withUTF8 { buf in
                    var done = 0
                    while done < buf.count {
                        let n = write(client, buf.baseAddress! + done, buf.count - done)
                        if n < 0 && errno == EINTR { continue }
                        if n <= 0 { break }
                        done += n
                    }
                }
                close(client)
            }
        }
    }
}

/// Reads up to a newline, end of file or 64 KiB from a socket or pipe, retrying on EINTR.
package func readLine(_ fd: Int32) -> String {
    var bytes: [UInt8] = []
    var c: UInt8 = 0
    while bytes.count < 65_536 {
        let n = read(fd, &c, 1)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 || c == 0x0A { break }
        bytes.append(c)
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The CLI side: sends one command and returns the answer.
package enum ControlClient {
    package static func send(_ command: String, to path: String, timeoutSeconds: Int = 0) -> Result<String, Errno> {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(Errno(errno)) }
        defer { close(fd) }
        if timeoutSeconds > 0 {
            var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return .failure(Errno(ENAMETOOLONG)) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else { return .failure(Errno(errno)) }
        var line = command + "\n"
        _ = line.withUTF8 { write(fd, $0.baseAddress, $0.count) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 65_536) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return .failure(Errno(errno)) }
            if n == 0 { break }
            out += buf[0..<n]
        }
        return .success(String(decoding: out, as: UTF8.self).trimmingWhitespace())
    }
}
