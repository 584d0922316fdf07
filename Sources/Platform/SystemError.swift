/// A local resource (a directory, a socket, a file) that could not be set up: what, why, and the errno.
///
/// Not an object-store error: a cache or control failure names the local thing and its fix.
package struct SystemError: Error, Sendable, CustomStringConvertible {
    package var message: String
    package var errno: Errno?

    package init(_ message: String, errno: Errno? = nil) {
        self.message = message
        self.errno = errno
    }

    package var description: String { message }
}
