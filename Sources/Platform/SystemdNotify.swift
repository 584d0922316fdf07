#if canImport(Glibc)
import Glibc
#endif

/// The systemd notification protocol (`sd_notify(3)`): one datagram of `KEY=value` lines to the unix socket
/// in `NOTIFY_SOCKET`. Spoken directly: it is a dozen lines, not worth libsystemd.
package enum SystemdNotify {
    /// Sends `state` (e.g. `READY=1\nSTATUS=mounted`) if the process runs under a `Type=notify` unit; false
    /// when there is no socket or the send fails (the service manager then simply hears nothing).
    @discardableResult
    package static func send(_ state: String, socket path: String? = getenv("NOTIFY_SOCKET").map { String(cString: $0) }) -> Bool {
        guard let path, !path.isEmpty, path.utf8.count < 108, path.hasPrefix("/") || path.hasPrefix("@") else { return false }
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var name = Array(path.utf8)
        // '@' names a socket in the abstract namespace: a leading NUL, and no terminator counted.
        if name[0] == UInt8(ascii: "@") { name[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { p in p.copyBytes(from: name) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + name.count + (name[0] == 0 ? 0 : 1))
        return Syscall.sendto(fd, Array(state.utf8), address: &address, length: length)
    }
}

extension Syscall {
    /// `sendto` of one datagram to a unix socket address, retrying on EINTR; true when all of it was sent.
    package static func sendto(_ fd: Int32, _ bytes: [UInt8], address: inout sockaddr_un, length: socklen_t) -> Bool {
        while true {
            let n = bytes.withUnsafeBytes { b in
                withUnsafePointer(to: &address) { a in
                    a.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.sendto(fd, b.baseAddress, b.count, Int32(MSG_NOSIGNAL), $0, length) }
                }
            }
            if n >= 0 { return n == bytes.count }
            if errno != EINTR { return false }
        }
    }
}
