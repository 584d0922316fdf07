import CFuse
import Filesystem
import Platform
import ObjectStore
import WriteBack

#if canImport(Glibc)
import Glibc
#endif

extension FuseBridge {
    /// Adds the write and namespace operations to the table.
    static func addWriteOperations(_ ops: inout fuse_lowlevel_ops) {
        ops.create = { req, parent, name, mode, fi in
            let r = FuseRequest(req!, .create)
            let info = FileInfoBox(fi!)
            FuseBridge.from(req).filesystem.create(parent: UInt64(parent), name: String(cString: name!), mode: mode, flags: CFuse_fi_flags(fi), caller: FuseBridge.caller(req)) { result in
                switch result {
                case .success(let (entry, open)):
                    var e = entryParam(entry)
                    info.raw.pointee.fh = open.handle
                    CFuse_fi_set_direct_io(info.raw, open.directIO ? 1 : 0)
                    fuse_reply_create(r.raw, &e, info.raw)
                    r.finished()
                case .failure(let e): r.error(e)
                }
            }
        }
        ops.write = { req, _, buf, size, off, fi in
            let r = FuseRequest(req!, .write)
            let fs = FuseBridge.from(req).filesystem
            let ctx = fuse_req_ctx(req)!.pointee
            switch fs.write(fi!.pointee.fh, offset: Int64(off), data: UnsafeRawBufferPointer(start: buf, count: size), pid: ctx.pid, uid: ctx.uid) {
            case .success(let n):
                fuse_reply_write(req, n)
                r.finished()
            case .failure(let e): r.error(e)
            }
        }
        ops.flush = { req, _, fi in
            let r = FuseRequest(req!, .flush)
            let pid = fuse_req_ctx(req)!.pointee.pid
            FuseBridge.from(req).filesystem.flush(fi!.pointee.fh, pid: pid) { r.error($0?.errno ?? 0) }
        }
        ops.fsync = { req, _, _, fi in
            let r = FuseRequest(req!, .fsync)
            FuseBridge.from(req).filesystem.fsync(fi!.pointee.fh) { r.error($0?.errno ?? 0) }
        }
        ops.setattr = { req, ino, attr, toSet, fi in
            let r = FuseRequest(req!, .setattr)
            var c = AttributeChanges()
            let st = attr!.pointee
            if toSet & FUSE_SET_ATTR_SIZE != 0 { c.size = Int64(st.st_size) }
            if toSet & FUSE_SET_ATTR_MODE != 0 { c.mode = st.st_mode & 0o7777 }
            if toSet & FUSE_SET_ATTR_UID != 0 { c.uid = st.st_uid }
            if toSet & FUSE_SET_ATTR_GID != 0 { c.gid = st.st_gid }
            if toSet & FUSE_SET_ATTR_MTIME_NOW != 0 {
                c.mtime = wallClock()
            } else if toSet & FUSE_SET_ATTR_MTIME != 0 {
                c.mtime = Timestamp(seconds: Int64(st.st_mtim.tv_sec), nanoseconds: Int32(st.st_mtim.tv_nsec))
            }
            // An atime set explicitly (utimensat, touch -a, tar -x) is stored; reads never move it.
            if toSet & FUSE_SET_ATTR_ATIME_NOW != 0 {
                c.atime = wallClock()
            } else if toSet & FUSE_SET_ATTR_ATIME != 0 {
                c.atime = Timestamp(seconds: Int64(st.st_atim.tv_sec), nanoseconds: Int32(st.st_atim.tv_nsec))
            }
            guard c.size != nil || c.mode != nil || c.uid != nil || c.gid != nil || c.mtime != nil || c.atime != nil else {
                FuseBridge.from(req).filesystem.getattr(UInt64(ino)) { r.attrOrError($0) }
                return
            }
            // The handle of an ftruncate keeps the policy it was opened with.
            FuseBridge.from(req).filesystem.setattr(UInt64(ino), c, handle: fi.map { $0.pointee.fh }) { r.attrOrError($0) }
        }
        ops.mkdir = { req, parent, name, mode in
            let r = FuseRequest(req!, .mkdir)
            FuseBridge.from(req).filesystem.mkdir(parent: UInt64(parent), name: String(cString: name!), mode: mode, caller: FuseBridge.caller(req)) { r.entryOrError($0) }
        }
        ops.symlink = { req, link, parent, name in
            let r = FuseRequest(req!, .symlink)
            FuseBridge.from(req).filesystem.symlink(target: String(cString: link!), parent: UInt64(parent), name: String(cString: name!), caller: FuseBridge.caller(req)) { r.entryOrError($0) }
        }
        ops.readlink = { req, ino in
            let r = FuseRequest(req!, .readlink)
            FuseBridge.from(req).filesystem.readlink(UInt64(ino)) { result in
                switch result {
                case .success(let target):
                    fuse_reply_readlink(r.raw, target)
                    r.finished()
                case .failure(let e): r.error(e)
                }
            }
        }
        ops.unlink = { req, parent, name in
            let r = FuseRequest(req!, .unlink)
            FuseBridge.from(req).filesystem.unlink(parent: UInt64(parent), name: String(cString: name!)) { r.doneOrError($0) }
        }
        ops.rmdir = { req, parent, name in
            let r = FuseRequest(req!, .rmdir)
            FuseBridge.from(req).filesystem.rmdir(parent: UInt64(parent), name: String(cString: name!)) { r.doneOrError($0) }
        }
        ops.rename = { req, parent, name, newParent, newName, flags in
            let r = FuseRequest(req!, .rename)
            FuseBridge.from(req).filesystem.rename(
                parent: UInt64(parent), name: String(cString: name!), newParent: UInt64(newParent), newName: String(cString: newName!), flags: flags
            ) { r.doneOrError($0) }
        }
        ops.setxattr = { req, ino, name, value, size, flags in
            let r = FuseRequest(req!, .setxattr)
            let text = String(decoding: UnsafeRawBufferPointer(start: value, count: size), as: UTF8.self)
            FuseBridge.from(req).filesystem.setxattr(UInt64(ino), name: String(cString: name!), value: text, flags: flags) { r.doneOrError($0) }
        }
        ops.removexattr = { req, ino, name in
            let r = FuseRequest(req!, .removexattr)
            FuseBridge.from(req).filesystem.setxattr(UInt64(ino), name: String(cString: name!), value: nil, flags: 0) { r.doneOrError($0) }
        }
        // Object storage has no hard links and no device or FIFO nodes.
        ops.link = { req, _, _, _ in FuseRequest(req!, .link).error(EPERM) }
        ops.mknod = { req, parent, name, mode, rdev in
            let r = FuseRequest(req!, .mknod)
            FuseBridge.from(req).filesystem.mknod(parent: UInt64(parent), name: String(cString: name!), mode: mode, rdev: UInt64(rdev), caller: FuseBridge.caller(req)) { result in
                switch result {
                case .success(let e): r.entry(e)
                case .failure(let e): r.error(e)
                }
            }
        }
    }

    static func caller(_ req: fuse_req_t?) -> Caller {
        let ctx = fuse_req_ctx(req)!.pointee
        return Caller(uid: ctx.uid, gid: ctx.gid, umask: ctx.umask)
    }
}

func entryParam(_ reply: EntryReply) -> fuse_entry_param {
    var e = fuse_entry_param()
    e.ino = fuse_ino_t(reply.attributes.ino)
    e.generation = 1
    e.attr = stat(reply.attributes)
    e.attr_timeout = reply.ttl
    e.entry_timeout = reply.ttl
    return e
}

extension FuseRequest {
    func entryOrError(_ result: Result<EntryReply, FilesystemError>) {
        switch result {
        case .success(let e): entry(e)
        case .failure(let e): error(e)
        }
    }

    func doneOrError(_ result: Result<Void, FilesystemError>) {
        switch result {
        case .success: error(0)
        case .failure(let e): error(e)
        }
    }
}

extension FuseRequest {
    func attrOrError(_ result: Result<EntryReply, FilesystemError>) {
        switch result {
        case .success(let e): attr(e)
        case .failure(let e): error(e)
        }
    }
}
