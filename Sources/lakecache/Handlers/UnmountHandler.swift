import Control
import Platform

#if canImport(Glibc)
import Glibc
#endif

/// `unmount`: unmounts at the kernel, which ends the FUSE loop; the answer says whether it worked.
enum UnmountHandler {
    static func unmount(_ mountpoint: String) -> String {
        if getuid() == 0 {
            if umount2(mountpoint, 0) == 0 { return JSONValue.object([("ok", .bool(true))]).encoded() }
            let e = errno
            let why = e == EBUSY ? "the mountpoint is busy (a process has a file or directory open there); close it and retry" : "\(Errno(e))"
            return ControlHandlers.error("cannot unmount \(mountpoint): \(why)")
        }
        let status = runProcess("/bin/fusermount3", ["-u", mountpoint])
        return status == 0 ? JSONValue.object([("ok", .bool(true))]).encoded()
            : ControlHandlers.error("fusermount3 -u \(mountpoint) failed (is the mountpoint busy?)")
    }
}
