#if canImport(Glibc)
import Glibc
#endif

/// The one place this module calls positional I/O syscalls; EINTR is retried here and nowhere else.
package enum Syscall {
    /// `pread` that retries on EINTR. Returns bytes read (0 at end of file) or the errno.
    package static func pread(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ offset: Int64) -> Result<Int, Errno> {
        while true {
            let n = Glibc.pread(fd, buffer, count, off_t(offset))
            if n >= 0 { return .success(n) }
            if errno != EINTR { return .failure(Errno(errno)) }
        }
    }

    /// Reads exactly `count` bytes unless end of file comes first; returns how many were read.
    package static func preadFully(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ offset: Int64) -> Result<Int, Errno> {
        var done = 0
        while done < count {
            switch pread(fd, buffer + done, count - done, offset + Int64(done)) {
            case .success(0): return .success(done)
            case .success(let n): done += n
            case .failure(let e): return .failure(e)
            }
        }
        return .success(done)
    }
}

extension Syscall {
    /// `pwrite` of the whole buffer, retrying on EINTR and short writes; false on any error.
    package static func pwriteFully(_ fd: Int32, _ data: UnsafeRawBufferPointer, _ offset: Int64) -> Bool {
        var done = 0
        while done < data.count {
            let n = Glibc.pwrite(fd, data.baseAddress! + done, data.count - done, off_t(offset + Int64(done)))
            if n > 0 {
                done += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return false
            }
        }
        return true
    }
}

/// A POSIX error number with its message.
package struct Errno: Error, Sendable, Equatable, CustomStringConvertible {
    package var rawValue: Int32
    package init(_ rawValue: Int32) { self.rawValue = rawValue }
    package var description: String { String(cString: strerror(rawValue)) }
}
