import CFuse
import CoreMetrics
import Filesystem
import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

/// A kernel request awaiting exactly one reply. libfuse allows the reply from any thread.
///
/// It carries its operation's timer and its arrival time, so the reply records the request's latency;
/// a reply made with a `fuse_reply_*` call of its own is followed by `finished()`.
struct FuseRequest: @unchecked Sendable {
    let raw: fuse_req_t
    private let timer: CoreMetrics.Timer
    private let start: UInt64

    init(_ raw: fuse_req_t, _ op: FuseOperation) {
        self.raw = raw
        timer = FuseBridge.from(raw).timers[op]
        start = monotonicNanoseconds()
    }

    /// Records the latency; call once, after the reply.
    func finished() {
        timer.recordNanoseconds(Int64(monotonicNanoseconds() &- start))
    }

    func error(_ errno: Int32) {
        fuse_reply_err(raw, errno)
        finished()
    }

    func error(_ e: FilesystemError) { error(e.errno) }

    func entry(_ reply: EntryReply) {
        var e = entryParam(reply)
        fuse_reply_entry(raw, &e)
        finished()
    }

    func attr(_ reply: EntryReply) {
        var st = stat(reply.attributes)
        fuse_reply_attr(raw, &st, reply.ttl)
        finished()
    }
}

/// Converts attributes to `struct stat`.
func stat(_ a: FileAttributes) -> stat {
    var st = Glibc.stat()
    st.st_ino = ino_t(a.ino)
    st.st_mode = a.fullMode
    st.st_nlink = nlink_t(a.nlink ?? (a.kind == .directory ? 2 : 1))
    st.st_uid = a.uid
    st.st_gid = a.gid
    st.st_size = off_t(a.size)
    st.st_blksize = 1 << 20
    st.st_blocks = blkcnt_t((a.size + 511) / 512)
    st.st_rdev = dev_t(a.rdev)
    let ts = timespec(tv_sec: Int(a.mtime.seconds), tv_nsec: Int(a.mtime.nanoseconds))
    let changed = a.changed
    st.st_mtim = ts
    st.st_ctim = timespec(tv_sec: Int(changed.seconds), tv_nsec: Int(changed.nanoseconds))
    // Kept only when set explicitly (no write per read): the modification time stands in otherwise.
    st.st_atim = a.atime.map { timespec(tv_sec: Int($0.seconds), tv_nsec: Int($0.nanoseconds)) } ?? ts
    return st
}
