import CLinux

#if canImport(Glibc)
import Glibc
#endif

/// File-level syscalls for staging files and the journal; EINTR is retried here and nowhere else.
extension Syscall {
    /// Retries `body` while it fails with EINTR; returns its result or the errno.
    @inline(__always)
    private static func retrying(_ body: () -> Int32) -> Result<Int32, Errno> {
        while true {
            let r = body()
            if r >= 0 { return .success(r) }
            if errno != EINTR { return .failure(Errno(errno)) }
        }
    }

    /// The `O_DIRECT` open flag (hidden behind `_GNU_SOURCE` in Glibc).
    package static let directIOFlag: Int32 = CLinux_o_direct()

    /// The alignment used for direct I/O (buffer addresses, file offsets, lengths): a page, which covers the
    /// logical block size of common devices. One that wants more answers EINVAL, and callers fall back to the
    /// page cache.
    package static let directIOAlignment = 4096

    /// `n` rounded up to `directIOAlignment`.
    package static func directIOPadded(_ n: Int) -> Int {
        (n + directIOAlignment - 1) / directIOAlignment * directIOAlignment
    }

    /// Whether `p` may be the buffer of a direct transfer.
    package static func isDirectIOAligned(_ p: UnsafeRawPointer?) -> Bool {
        Int(bitPattern: p) % directIOAlignment == 0
    }

    /// `open(2)` with O_CLOEXEC added.
    package static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o600) -> Result<Int32, Errno> {
        retrying { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    package static func close(_ fd: Int32) {
        // Linux closes the descriptor even when close reports EINTR; retrying could close a reused number.
        _ = Glibc.close(fd)
    }

    package static func ftruncate(_ fd: Int32, _ size: Int64) -> Result<Void, Errno> {
        retrying { Glibc.ftruncate(fd, off_t(size)) }.map { _ in () }
    }

    package static func fdatasync(_ fd: Int32) -> Result<Void, Errno> {
        retrying { Glibc.fdatasync(fd) }.map { _ in () }
    }

    package static func fsync(_ fd: Int32) -> Result<Void, Errno> {
        retrying { Glibc.fsync(fd) }.map { _ in () }
    }

    /// Starts writeback of a range without waiting, so a later fdatasync has little left to do.
    package static func startWriteback(_ fd: Int32, offset: Int64, length: Int64) {
        _ = retrying { CLinux_start_writeback(fd, offset, length) }
    }

    /// Reserves disk blocks for a range without changing the file size (`fallocate` with KEEP_SIZE).
    package static func reserve(_ fd: Int32, offset: Int64, length: Int64) -> Result<Void, Errno> {
        retrying { CLinux_reserve(fd, offset, length) }.map { _ in () }
    }

    package static func rename(_ from: String, _ to: String) -> Result<Void, Errno> {
        retrying { Glibc.rename(from, to) }.map { _ in () }
    }

    package static func unlink(_ path: String) -> Result<Void, Errno> {
        retrying { Glibc.unlink(path) }.map { _ in () }
    }

    /// fsyncs a directory so that names created or renamed in it survive a power cut.
    package static func syncDirectory(_ path: String) -> Result<Void, Errno> {
        open(path, O_RDONLY | O_DIRECTORY).flatMap { fd in
            defer { close(fd) }
            return fsync(fd)
        }
    }

    /// The names in a directory, without "." and ".."; empty if it cannot be opened.
    package static func listDirectory(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// `fstat` size of an open file.
    package static func fileSize(_ fd: Int32) -> Result<Int64, Errno> {
        var st = stat()
        return retrying { fstat(fd, &st) }.map { _ in Int64(st.st_size) }
    }

    /// Writes a whole small file with fsync, then renames it into place and fsyncs the directory.
    package static func writeFileAtomically(_ path: String, _ bytes: [UInt8], directory: String) -> Result<Void, Errno> {
        let temporary = path + ".tmp"
        return open(temporary, O_WRONLY | O_CREAT | O_TRUNC).flatMap { fd -> Result<Void, Errno> in
            defer { close(fd) }
            let ok = bytes.withUnsafeBytes { pwriteFully(fd, $0, 0) }
            guard ok else { return .failure(Errno(errno == 0 ? EIO : errno)) }
            return fsync(fd)
        }
        .flatMap { rename(temporary, path) }
        .flatMap { syncDirectory(directory) }
    }
}
