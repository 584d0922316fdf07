import ObjectStore
import Platform
import ReadCache
import Synchronization
import WriteBack

/// Open files and directories, by handle number.
final class HandleTable: Sendable {
    /// An open file: the version it reads, its read-ahead, or the staged file it reads and writes.
    struct FileHandle {
        var ino: UInt64
        /// The link as it was at open: its policy (write mode) holds for this handle until release.
        var link: Link
        var version: ObjectVersion
        var readAhead: ReadAhead
        /// Set when the file's bytes come from a staging file (written here) rather than the block cache.
        var staged: StagedFile?
        var writable = false
        var append = false
        /// The thread that last wrote through this handle, and its process (Tgid), learned when the thread
        /// changes: a flush from another process is not the writer's close. The process is kept because
        /// the thread may be gone by the time a child's flush arrives (a writer thread that exited).
        var writerPid: Int32?
        var writerProcess: Int32?
        /// Whether an unprivileged write already cleared the set-ID bits (one look per handle, not per write).
        var privilegesChecked = false
    }

    /// An open directory and the listing it pages through.
    struct DirectoryHandle {
        var ino: UInt64
        /// The directory's path when it was opened (listings are cached by path).
        var path: String
        /// Where the directory's entries come from: a link (and the directory's listing prefix in it), or
        /// nil for a synthetic directory above links.
        var link: Link?
        var prefix: String
        var listing: Listing
        /// The directory's metadata summary (`summary` policy), read with the listing's first page; nil
        /// before then, or when it could not be read.
        var summary: DirectorySummary?
        var summaryRead = false
    }

    struct State {
        var files: [UInt64: FileHandle] = [:]
        var directories: [UInt64: DirectoryHandle] = [:]
        var next: UInt64 = 1

        mutating func add(_ h: FileHandle) -> UInt64 {
            defer { next += 1 }
            files[next] = h
            return next
        }

        mutating func add(_ h: DirectoryHandle) -> UInt64 {
            defer { next += 1 }
            directories[next] = h
            return next
        }

        /// Whether some handle has inode `ino` open.
        func isOpen(_ ino: UInt64) -> Bool { files.values.contains { $0.ino == ino } }

        /// Records metadata learned for `path` in the listings of open handles of its directory.
        mutating func learn(_ path: String, etag: String, posix: PosixMetadata) {
            let (dir, name) = Namespace.split(path)
            // Handle ids first, in an array of their own: a loop over the dictionary (or its keys) would hold
            // its storage, and the write below would then copy the handle's whole listing.
            let handles = directories.compactMap { $0.value.path == dir ? $0.key : nil }
            for handle in handles {
                guard let i = directories[handle]!.listing.position(of: name) else { continue }
                let e = directories[handle]!.listing.entries[i]
                guard e.etag == etag, e.kind != .directory else { continue }
                directories[handle]!.listing.setPosix(posix, at: i)
            }
        }
    }

    private let state = Locked(State())

    func withLock<R>(_ body: (inout State) -> R) -> R { state.withLock { body(&$0) } }

    subscript(file handle: UInt64) -> FileHandle? { state.withLock { $0.files[handle] } }

    var openFiles: Int { state.withLock { $0.files.count } }
}
