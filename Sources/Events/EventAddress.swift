import HTTPServing
import Platform

#if canImport(Glibc)
import Glibc
#endif

/// Where the events endpoint listens.
package typealias EventAddress = ListenAddress

/// The shared secret of the events endpoint, from a file only its owner can read.
package enum EventToken {
    /// Reads the token (the first line, trimmed); refuses a file others can read, or an empty one.
    package static func load(_ path: String) throws(SystemError) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw SystemError("cannot read the events token file \(path): \(Errno(errno)); create it with a random token (openssl rand -hex 32 > \(path); chmod 600 \(path))")
        }
        guard st.st_mode & 0o077 == 0 else {
            throw SystemError("the events token file \(path) can be read by others (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 \(path)")
        }
        guard let text = readTextFile(path) else { throw SystemError("cannot read the events token file \(path); check its permissions") }
        let token = String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "").trimmingWhitespace()
        guard token.utf8.count >= 16 else {
            throw SystemError("the events token in \(path) is \(token.isEmpty ? "empty" : "shorter than 16 characters"); write a random one: openssl rand -hex 32 > \(path)")
        }
        return token
    }
}
