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

    /// Streaming `read` (a pipe, standard input) that retries on EINTR; 0 at end of input.
    package static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Result<Int, Errno> {
        while true {
            let n = Glibc.read(fd, buffer, count)
            if n >= 0 { return .success(n) }
            if errno != EINTR { return .failure(Errno(errno)) }
        }
    }

    /// Reads `fd` to its end.
    package static func readToEnd(_ fd: Int32) -> Result<[UInt8], Errno> {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            switch chunk.withUnsafeMutableBytes({ read(fd, $0.baseAddress!, $0.count) }) {
            case .success(0): return .success(bytes)
            case .success(let n): bytes += chunk[..<n]
            case .failure(let e): return .failure(e)
            }
        }
    }

    /// Streaming `write` of the whole buffer, retrying on EINTR and short writes.
    package static func writeAll(_ fd: Int32, _ data: UnsafeRawBufferPointer) -> Result<Void, Errno> {
        var done = 0
        while done < data.count {
            let n = Glibc.write(fd, data.baseAddress! + done, data.count - done)
            if n > 0 {
                done += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return .failure(Errno(n < 0 ? errno : EIO))
            }
        }
        return .success(())
    }
}

/// A POSIX error number with its message.
package struct Errno: Error, Sendable, Equatable, CustomStringConvertible {
    package var rawValue: Int32
    package init(_ rawValue: Int32) { self.rawValue = rawValue }
    package var description: String { String(cString: strerror(rawValue)) }
    /// The calling thread's `errno` now.
    package static var current: Errno { Errno(errno) }
}
