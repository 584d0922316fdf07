import Platform
import ObjectStore
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

/// The POSIX attributes an object's user metadata carries (`x-amz-meta-mode`, `-uid`, `-gid`, `-mtime`, as
/// s3fs, rclone and goofys write them), parsed once.
///
/// A listing entry keeps this instead of the metadata dictionary: it is all `stat` needs, and a few words
/// instead of a dictionary per entry.
struct PosixMetadata: Sendable, Equatable {
    /// Decimal st_mode with its file-type bits, when the metadata has one.
    var mode: UInt32?
    var uid: UInt32?
    var gid: UInt32?
    var mtime: Timestamp?
    /// A device's number, `x-amz-meta-rdev` as s3fs writes it.
    var rdev: UInt64?
    /// The access time, when one was set explicitly (`x-amz-meta-atime`).
    var atime: Timestamp?

    /// An object without POSIX metadata: it shows the mount's defaults.
    static let plain = PosixMetadata()

    init(mode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil, mtime: Timestamp? = nil) {
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.mtime = mtime
    }

    init(_ metadata: [String: String]) {
        mode = metadata["mode"].flatMap { UInt32($0) }
        uid = metadata["uid"].flatMap { UInt32($0) }
        gid = metadata["gid"].flatMap { UInt32($0) }
        if let t = metadata["mtime"].flatMap({ Double($0) }), t.isFinite, t >= 0 {
            mtime = Timestamp(seconds: Int64(t), nanoseconds: Int32((t - t.rounded(.down)) * 1e9))
        }
        rdev = metadata["rdev"].flatMap { UInt64($0) }
        atime = metadata["atime"].flatMap { MetadataTime.parse($0) }
    }

    /// The file type the mode names, for an object (a directory's type comes from its key, never its mode):
    /// a regular file, a symlink, or a special file; a directory's or an unknown type bits make a file.
    var objectKind: FileAttributes.Kind {
        guard let mode, let kind = FileAttributes.Kind(mode: mode), kind != .directory else { return .file }
        return kind
    }
}
