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
            let why = e == EBUSY ? "the mountpoint is busy: \(holders(of: mountpoint)); close those and retry" : "\(Errno(e))"
            return ControlHandlers.error("cannot unmount \(mountpoint): \(why)")
        }
        let status = runProcess("/bin/fusermount3", ["-u", mountpoint])
        return status == 0 ? JSONValue.object([("ok", .bool(true))]).encoded()
            : ControlHandlers.error("fusermount3 -u \(mountpoint) failed; the mountpoint is busy: \(holders(of: mountpoint))")
    }

    /// The processes that keep a mount busy (an open file, or a working directory, inside it), from
    /// `/proc/*/fd` and `/proc/*/cwd`: "pid 123 (python3: cwd), pid 456 (bash: 2 files)".
    static func holders(of mountpoint: String) -> String {
        let inside = { (p: String) in p == mountpoint || p.hasPrefix(mountpoint + "/") }
        var out: [String] = []
        for entry in Syscall.listDirectory("/proc") {
            guard let pid = Int32(entry), pid != getpid() else { continue }
            var what: [String] = []
            if let cwd = readLink("/proc/\(pid)/cwd"), inside(cwd) { what.append("cwd") }
            let files = Syscall.listDirectory("/proc/\(pid)/fd").filter { fd in readLink("/proc/\(pid)/fd/\(fd)").map(inside) ?? false }.count
            if files > 0 { what.append(files == 1 ? "1 file" : "\(files) files") }
            guard !what.isEmpty else { continue }
            let comm = readTextFile("/proc/\(pid)/comm")?.trimmingWhitespace() ?? "?"
            out.append("pid \(pid) (\(comm): \(what.joined(separator: ", ")))")
        }
        return out.isEmpty ? "no process of this host holds it (a bind mount or another namespace may)" : "held by " + out.joined(separator: ", ")
    }

    static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
