import CFuse
import Filesystem
import Platform
import ObjectStore
import ReadCache

#if canImport(Glibc)
import Glibc
#endif

extension FuseBridge {
    /// The low-level operation table. Unset operations get libfuse's defaults (ENOSYS).
    static func operations() -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.`init` = { userdata, conn in
            guard let conn, let userdata else { return }
            let bridge = Unmanaged<FuseBridge>.fromOpaque(userdata).takeUnretainedValue()
            bridge.configure(conn.pointee.capable, &conn.pointee)
        }
        ops.lookup = { req, parent, name in
            let r = FuseRequest(req!, .lookup)
            FuseBridge.from(req).filesystem.lookup(parent: UInt64(parent), name: String(cString: name!)) { result in
                switch result {
                case .success(let e): r.entry(e)
                case .failure(let e): r.error(e)
                }
            }
        }
        ops.forget = { req, ino, n in
            FuseBridge.from(req).filesystem.forget(UInt64(ino), count: n)
            fuse_reply_none(req)
        }
        ops.forget_multi = { req, count, forgets in
            let fs = FuseBridge.from(req).filesystem
            for i in 0..<count {
                let f = forgets![i]
                fs.forget(UInt64(f.ino), count: f.nlookup)
            }
            fuse_reply_none(req)
        }
        ops.getattr = { req, ino, _ in
            let r = FuseRequest(req!, .getattr)
            FuseBridge.from(req).filesystem.getattr(UInt64(ino)) { r.attrOrError($0) }
        }
        ops.opendir = { req, ino, fi in
            let r = FuseRequest(req!, .opendir)
            let info = FileInfoBox(fi!)
            FuseBridge.from(req).filesystem.opendir(UInt64(ino)) { result in
                switch result {
                case .success(let handle):
                    info.raw.pointee.fh = handle
                    fuse_reply_open(r.raw, info.raw)
                    r.finished()
                case .failure(let e): r.error(e)
                }
            }
        }
        ops.readdir = { req, _, size, off, fi in
            FuseBridge.from(req).readdir(FuseRequest(req!, .readdir), handle: fi!.pointee.fh, size: size, offset: Int(off), plus: false)
        }
        ops.readdirplus = { req, _, size, off, fi in
            FuseBridge.from(req).readdir(FuseRequest(req!, .readdirplus), handle: fi!.pointee.fh, size: size, offset: Int(off), plus: true)
        }
        ops.releasedir = { req, _, fi in
            let r = FuseRequest(req!, .releasedir)
            FuseBridge.from(req).filesystem.releasedir(fi!.pointee.fh)
            r.error(0)
        }
        ops.open = { req, ino, fi in
            let r = FuseRequest(req!, .open)
            let info = FileInfoBox(fi!)
            FuseBridge.from(req).filesystem.open(UInt64(ino), flags: CFuse_fi_flags(fi)) { result in
                switch result {
                case .success(let o):
                    info.raw.pointee.fh = o.handle
                    CFuse_fi_set_keep_cache(info.raw, o.keepCache ? 1 : 0)
                    CFuse_fi_set_direct_io(info.raw, o.directIO ? 1 : 0)
                    // A read-only open has nothing to commit at close: its FLUSH would be a round trip
                    // that answers at once (a shuffled epoch pays one per file).
                    CFuse_fi_set_noflush(info.raw, o.flushes ? 0 : 1)
                    fuse_reply_open(r.raw, info.raw)
                    r.finished()
                case .failure(let e): r.error(e)
                }
            }
        }
        ops.read = { req, _, size, off, fi in
            let r = FuseRequest(req!, .read)
            FuseBridge.from(req).filesystem.read(fi!.pointee.fh, offset: Int64(off), size: size) { result in
                switch result {
                case .success(let bytes): replyData(r, bytes)
                case .failure(let e): r.error(e)
                }
            }
        }
        ops.release = { req, _, fi in
            let r = FuseRequest(req!, .release)
            FuseBridge.from(req).filesystem.release(handle: fi!.pointee.fh)
            r.error(0)
        }
        ops.statfs = { req, _ in
            let r = FuseRequest(req!, .statfs)
            let s = FuseBridge.from(req).filesystem.statfs()
            var st = statvfs()
            st.f_bsize = UInt(s.blockSize)
            st.f_frsize = UInt(s.blockSize)
            st.f_blocks = fsblkcnt_t(s.blocks)
            st.f_bfree = fsblkcnt_t(s.free)
            st.f_bavail = fsblkcnt_t(s.free)
            st.f_files = fsfilcnt_t(s.files)
            st.f_ffree = fsfilcnt_t(s.freeFiles)
            st.f_favail = fsfilcnt_t(s.freeFiles)
            st.f_namemax = UInt(s.nameMax)
            fuse_reply_statfs(req, &st)
            r.finished()
        }
        ops.getxattr = { req, ino, name, size in
            let r = FuseRequest(req!, .getxattr)
            let wanted = String(cString: name!)
            FuseBridge.from(req).filesystem.xattrs(UInt64(ino)) { result in
                switch result {
                case .failure(let e): r.error(e)
                case .success(let attrs):
                    guard let value = attrs[wanted] else { return r.error(ENODATA) }
                    replyXattr(r, Array(value.utf8), size: size)
                }
            }
        }
        ops.listxattr = { req, ino, size in
            let r = FuseRequest(req!, .listxattr)
            FuseBridge.from(req).filesystem.xattrs(UInt64(ino)) { result in
                switch result {
                case .failure(let e): r.error(e)
                case .success(let attrs):
                    var bytes: [UInt8] = []
                    for n in attrs.keys.sorted() { bytes += Array(n.utf8) + [0] }
                    replyXattr(r, bytes, size: size)
                }
            }
        }
        ops.access = { req, ino, mask in
            let r = FuseRequest(req!, .access)
            let ctx = fuse_req_ctx(req)!.pointee
            r.error(FuseBridge.from(req).filesystem.access(UInt64(ino), mask: mask, uid: ctx.uid, gid: ctx.gid))
        }
        addWriteOperations(&ops)
        return ops
    }

    /// Negotiates the connection: async reads, readdirplus, parallel directory operations, 1 MiB requests.
    func configure(_ capable: UInt32, _ conn: inout fuse_conn_info) {
        var want = conn.want
        // ATOMIC_O_TRUNC: open(O_TRUNC) arrives as one open, not a setattr that would upload an empty object first.
        for cap in [FUSE_CAP_ASYNC_READ, FUSE_CAP_READDIRPLUS, FUSE_CAP_PARALLEL_DIROPS, FUSE_CAP_ATOMIC_O_TRUNC] where capable & UInt32(cap) != 0 {
            want |= UInt32(cap)
        }
        // Always readdirplus: `ls -l` then needs no lookup per entry.
        want &= ~UInt32(FUSE_CAP_READDIRPLUS_AUTO)
        // The cache decides when pages go stale (ETag changes), not mtime comparisons.
        want &= ~UInt32(FUSE_CAP_AUTO_INVAL_DATA)
        conn.want = want
        conn.max_write = UInt32(options.maxIO)
        conn.max_read = UInt32(options.maxIO)
        conn.max_readahead = UInt32(options.maxIO)
        conn.max_background = 64
        conn.congestion_threshold = 48
    }

    func readdir(_ r: FuseRequest, handle: UInt64, size: Int, offset: Int, plus: Bool) {
        filesystem.readdir(handle, offset: offset) { [self] result in
            switch result {
            case .failure(let e): r.error(e)
            case .success(let entries):
                let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
                defer { buffer.deallocate() }
                var used = 0
                var packed = 0
                for e in entries {
                    var st = stat(e.attributes)
                    // Not known yet: the name and number only (DT_UNKNOWN), so that the kernel looks it up.
                    if !e.exact { st.st_mode = 0 }
                    let need: Int
                    if plus {
                        var param = fuse_entry_param()
                        param.ino = fuse_ino_t(e.attributes.ino)
                        param.generation = 1
                        param.attr = st
                        // "." and "..", and entries without attributes, must not take lookup references: a
                        // node id of 0 tells the kernel to cache nothing for the entry.
                        if e.name == "." || e.name == ".." || !e.exact { param.ino = 0 }
                        param.attr_timeout = e.ttl
                        param.entry_timeout = e.ttl
                        need = fuse_add_direntry_plus(r.raw, buffer + used, size - used, e.name, &param, off_t(e.offset))
                    } else {
                        need = fuse_add_direntry(r.raw, buffer + used, size - used, e.name, &st, off_t(e.offset))
                    }
                    if need > size - used { break }
                    used += need
                    packed += 1
                }
                if plus { filesystem.entriesReturned(handle, entries.prefix(packed)) }
                fuse_reply_buf(r.raw, buffer, used)
                r.finished()
            }
        }
    }
}

struct FileInfoBox: @unchecked Sendable {
    let raw: UnsafeMutablePointer<fuse_file_info>
    init(_ raw: UnsafeMutablePointer<fuse_file_info>) { self.raw = raw }
}

/// Replies with the bytes of a read, straight from cache blocks or the staged-read buffer (no copy in user
/// space).
func replyData(_ r: FuseRequest, _ bytes: ReadBytes) {
    withUnsafeTemporaryAllocation(of: iovec.self, capacity: 2) { iov in
        iov[0] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.first.baseAddress), iov_len: bytes.first.count)
        iov[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.second.baseAddress), iov_len: bytes.second.count)
        fuse_reply_iov(r.raw, iov.baseAddress, Int32(max(bytes.segmentCount, 1)))
    }
    r.finished()
}

func replyXattr(_ r: FuseRequest, _ bytes: [UInt8], size: Int) {
    if size == 0 {
        fuse_reply_xattr(r.raw, bytes.count)
    } else if size < bytes.count {
        return r.error(ERANGE)
    } else {
        _ = bytes.withUnsafeBytes { fuse_reply_buf(r.raw, $0.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count) }
    }
    r.finished()
}
