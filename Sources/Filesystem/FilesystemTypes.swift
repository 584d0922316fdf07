import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

/// Mount-wide settings: ownership and modes for objects without POSIX metadata, memory bounds, read-ahead.
/// What differs per link (TTLs, write mode, globs, the metadata policy) is in `LinkPolicy`.
package struct FilesystemOptions: Sendable {
    package var uid: UInt32
    package var gid: UInt32
    package var fileMode: UInt32 = 0o644
    package var dirMode: UInt32 = 0o755
    /// Listings kept in memory, counted in entries; beyond it the least recently used directories are dropped.
    package var maxCachedListingEntries = 2_000_000
    /// Read-ahead window bounds.
    package var initialReadAhead: Int64 = 16 << 20
    package var maximumReadAhead: Int64 = 256 << 20
    /// Small files of a directory fetched ahead of the application once it reads several of them (see
    /// `Filesystem+DirectoryReadAhead.swift`); 0 turns it off, and with it whole-object metadata fetches.
    package var directoryReadAhead = 64
    /// Metadata fetches in flight, per store, that learn listed files' metadata ahead of their lookups.
    package var metadataReadAhead = 64
    /// Sibling directories listed ahead of a walk once it has opened two adjacent ones (see
    /// `Filesystem+ListingReadAhead.swift`); 0 turns it off.
    package var listingReadAhead = 8
    /// Where links whose metadata never expires keep their listing snapshots; nil keeps none.
    package var snapshotDirectory: String?

    package init(uid: UInt32, gid: UInt32) {
        self.uid = uid
        self.gid = gid
    }
}

/// Where the type, mode, owner and mtime of a listed file come from.
///
/// ListObjectsV2 carries no user metadata, so a listing alone cannot tell a symlink or a 0600 file from a
/// plain object. Either way, a path shows the same attributes whether a listing or a lookup reached it.
package enum MetadataPolicy: String, Sendable, CaseIterable {
    /// Each file's own metadata: a listed file whose metadata is not known yet is listed without attributes
    /// (the kernel looks it up), and HEADs of a listing page's files start as the page arrives.
    case exact
    /// The listing is the truth, for datasets of plain objects: files are regular files with the default
    /// mode and owner, and their POSIX metadata is ignored; no HEAD per file.
    case listing
    /// `exact`, with a summary object per directory (`DirectorySummary`) that this mount keeps: a listed
    /// file the summary describes at its listed ETag and size needs no HEAD. Opt-in, since the summaries
    /// are objects in the bucket.
    case summary
}

/// What a file, directory or symlink looks like to `stat`.
package struct FileAttributes: Sendable, Equatable {
    /// Regular files, directories and symlinks, and the special files (FIFOs, sockets, devices) that are
    /// zero-byte objects whose mode metadata names their type, as s3fs stores them.
    package enum Kind: UInt8, Sendable, Equatable {
        case file, directory, symlink, fifo, socket, characterDevice, blockDevice

        /// The kind of an st_mode's type bits; nil for a type lakecache does not know.
        package init?(mode: UInt32) {
            switch mode & UInt32(S_IFMT) {
            case UInt32(S_IFREG): self = .file
            case UInt32(S_IFDIR): self = .directory
            case UInt32(S_IFLNK): self = .symlink
            case UInt32(S_IFIFO): self = .fifo
            case UInt32(S_IFSOCK): self = .socket
            case UInt32(S_IFCHR): self = .characterDevice
            case UInt32(S_IFBLK): self = .blockDevice
            default: return nil
            }
        }

        /// Its st_mode type bits.
        package var typeBits: UInt32 {
            switch self {
            case .file: return UInt32(S_IFREG)
            case .directory: return UInt32(S_IFDIR)
            case .symlink: return UInt32(S_IFLNK)
            case .fifo: return UInt32(S_IFIFO)
            case .socket: return UInt32(S_IFSOCK)
            case .characterDevice: return UInt32(S_IFCHR)
            case .blockDevice: return UInt32(S_IFBLK)
            }
        }

        /// FIFOs, sockets and devices: the kernel serves their opens itself.
        package var isSpecial: Bool { self == .fifo || self == .socket || self == .characterDevice || self == .blockDevice }
    }

    package var ino: UInt64
    package var size: Int64
    package var mtime: Timestamp
    package var uid: UInt32
    package var gid: UInt32
    /// The kind in the top byte and the mode in the low 24 bits: a kind of its own took a padded 8 bytes,
    /// and attributes are kept per node the kernel holds.
    private var kindAndMode: UInt32

    /// What the node is.
    package var kind: Kind {
        get { Kind(rawValue: UInt8(truncatingIfNeeded: kindAndMode >> 24))! }
        set { kindAndMode = UInt32(newValue.rawValue) << 24 | kindAndMode & Self.modeMask }
    }

    /// The mode as it was given (permission bits, with the type bits when the metadata carried them).
    ///
    /// Kept to 24 bits, which hold every st_mode bit there is.
    package var mode: UInt32 {
        get { kindAndMode & Self.modeMask }
        set { kindAndMode = kindAndMode & ~Self.modeMask | newValue & Self.modeMask }
    }

    private static let modeMask: UInt32 = 0x00FF_FFFF
    /// The fields most files never set, out of line: attributes are kept per node the kernel holds.
    private var rare: Rare?

    /// A device's number (`x-amz-meta-rdev`), 0 for everything else.
    package var rdev: UInt64 {
        get { rare?.rdev ?? 0 }
        set { rare = Rare.make(rdev: newValue, ctime: ctime, atime: atime, nlink: nlink) }
    }

    /// The last change of the inode (a chmod, a chown, a rename, a write), kept in memory for the life of
    /// the mount; nil shows the mtime.
    package var ctime: Timestamp? {
        get { rare?.ctime }
        set { rare = Rare.make(rdev: rdev, ctime: newValue, atime: atime, nlink: nlink) }
    }

    /// The access time when one was set explicitly; nil shows the mtime (reads never move it).
    package var atime: Timestamp? {
        get { rare?.atime }
        set { rare = Rare.make(rdev: rdev, ctime: ctime, atime: newValue, nlink: nlink) }
    }

    /// Links to it: 0 once unlinked while open; nil for the usual 1 (2 for a directory).
    package var nlink: UInt32? {
        get { rare?.nlink }
        set { rare = Rare.make(rdev: rdev, ctime: ctime, atime: atime, nlink: newValue) }
    }

    /// Immutable, so copies of the attributes share it safely; a change makes a new one.
    private final class Rare: Sendable, Equatable {
        let rdev: UInt64
        let ctime: Timestamp?
        let atime: Timestamp?
        let nlink: UInt32?

        private init(rdev: UInt64, ctime: Timestamp?, atime: Timestamp?, nlink: UInt32?) {
            self.rdev = rdev
            self.ctime = ctime
            self.atime = atime
            self.nlink = nlink
        }

        static func make(rdev: UInt64, ctime: Timestamp?, atime: Timestamp?, nlink: UInt32?) -> Rare? {
            rdev == 0 && ctime == nil && atime == nil && nlink == nil ? nil : Rare(rdev: rdev, ctime: ctime, atime: atime, nlink: nlink)
        }

        static func == (a: Rare, b: Rare) -> Bool {
            a.rdev == b.rdev && a.ctime == b.ctime && a.atime == b.atime && a.nlink == b.nlink
        }
    }

    package init(ino: UInt64, kind: Kind, size: Int64, mtime: Timestamp, mode: UInt32, uid: UInt32, gid: UInt32, rdev: UInt64 = 0, atime: Timestamp? = nil) {
        self.ino = ino
        self.size = size
        self.mtime = mtime
        kindAndMode = UInt32(kind.rawValue) << 24 | mode & Self.modeMask
        self.uid = uid
        self.gid = gid
        rare = Rare.make(rdev: rdev, ctime: nil, atime: atime, nlink: nil)
    }

    /// The full st_mode, with the file-type bits.
    package var fullMode: UInt32 { kind.typeBits | (mode & 0o7777) }

    /// What stat shows as ctime.
    package var changed: Timestamp { max(ctime ?? mtime, mtime) }
}

/// A lookup answer: attributes and how long the kernel may keep them.
package struct EntryReply: Sendable {
    package var attributes: FileAttributes
    package var ttl: Double
}

/// One directory entry for readdir(plus). `offset` is the cookie of the entry after it.
package struct DirectoryEntry: Sendable {
    package var name: String
    /// Only the inode number is meaningful when `exact` is false.
    package var attributes: FileAttributes
    package var offset: Int
    /// Whether the attributes are the entry's own. An entry whose metadata is not known yet is listed by name
    /// only (no type, no attributes, no lookup reference), so the kernel asks for it with a lookup instead of
    /// caching a guess.
    package var exact = true
    /// How long the kernel may keep the entry (the link's metadata TTL).
    package var ttl: Double = 60
}

/// A failed filesystem operation: the errno for the kernel and a message for the log.
package struct FilesystemError: Error, Sendable, CustomStringConvertible {
    package var errno: Int32
    package var message: String
    package init(_ errno: Int32, _ message: String) {
        self.errno = errno
        self.message = message
    }
    package init(_ error: ObjectStoreError) {
        self.errno = error.errno
        self.message = error.description
    }
    package static func from(_ error: any Error) -> FilesystemError {
        if let e = error as? FilesystemError { return e }
        if let e = error as? ObjectStoreError { return FilesystemError(e) }
        return FilesystemError(EIO, "\(error)")
    }
    package var description: String { "\(message) (errno \(errno))" }
}
