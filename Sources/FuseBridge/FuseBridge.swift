import CFuse
import Filesystem
import Logging
import Platform
import ObjectStore
import ReadCache
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Settings of the kernel connection.
package struct FuseOptions: Sendable {
    package var mountpoint: String
    package var fsName: String
    package var allowOther = false
    package var readOnly = false
    /// Worker threads of the multithreaded loop (each with its own /dev/fuse clone).
    package var threads = 16
    /// Largest read or write request, bounded by libfuse's 1 MiB buffers.
    package var maxIO = 1 << 20

    package init(mountpoint: String, fsName: String) {
        self.mountpoint = mountpoint
        self.fsName = fsName
    }
}

/// Connects a `Filesystem` to the kernel through libfuse's low-level API.
///
/// Decodes requests, owns each `fuse_req_t` until its one reply, and replies from whichever thread finishes
/// the work. FUSE workers only ever take locks briefly; misses continue on network or disk threads.
package final class FuseBridge: @unchecked Sendable {
    package let filesystem: Filesystem
    let options: FuseOptions
    let logger: Logger
    /// Latency histograms of the kernel's requests, by operation.
    let timers = FuseOperationTimers()
    private var session: OpaquePointer?

    package init(filesystem: Filesystem, options: FuseOptions, logger: Logger = Logger(label: "lakecache.fuse")) {
        self.filesystem = filesystem
        self.options = options
        self.logger = logger
    }

    /// Creates the session and mounts; throws a message that names the mountpoint and the fix.
    package func mount() throws(FilesystemError) {
        var mountOptions = ["fsname=\(options.fsName)", "subtype=lakecache", "default_permissions", "max_read=\(options.maxIO)"]
        if options.allowOther { mountOptions.append("allow_other") }
        if options.readOnly { mountOptions.append("ro") }
        let argv = ["lakecache", "-o", mountOptions.joined(separator: ",")]
        var cargs = argv.map { strdup($0) }
        defer { for p in cargs { free(p) } }
        var args = cargs.withUnsafeMutableBufferPointer { CFuse_args_init(Int32(argv.count), $0.baseAddress) }
        var ops = FuseBridge.operations()
        let me = Unmanaged.passUnretained(self).toOpaque()
        guard let se = fuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size, me) else {
            fuse_opt_free_args(&args)
            throw FilesystemError(EINVAL, "libfuse refused the mount options \(mountOptions.joined(separator: ","))")
        }
        fuse_opt_free_args(&args)
        guard fuse_session_mount(se, options.mountpoint) == 0 else {
            fuse_session_destroy(se)
            throw FilesystemError(EIO, "cannot mount on \(options.mountpoint): the kernel refused (is it in use, or is allow_other not permitted in /etc/fuse.conf?)")
        }
        session = se
        let seBox = SessionBox(se)
        // Never from inside a request handler: the kernel may hold locks the notification needs.
        filesystem.setNotifier(KernelNotifier(
            inode: { ino in startDetachedThread { fuse_lowlevel_notify_inval_inode(seBox.raw, fuse_ino_t(ino), 0, 0) } },
            entry: { parent, name in
                startDetachedThread {
                    _ = name.withCString { fuse_lowlevel_notify_inval_entry(seBox.raw, fuse_ino_t(parent), $0, name.utf8.count) }
                }
            }))
    }

    /// Serves requests until the kernel side is unmounted (signals are the daemon's business, not ours).
    package func serve() -> Int32 {
        guard let se = session else { return -1 }
        let rc = CFuse_session_loop_mt(se, 1, UInt32(options.threads))
        return rc
    }

    /// Unmounts and frees the session; call after `serve()` returned.
    package func unmount() {
        guard let se = session else { return }
        fuse_session_unmount(se)
        fuse_session_destroy(se)
        session = nil
    }

    static func from(_ req: fuse_req_t?) -> FuseBridge {
        Unmanaged<FuseBridge>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
    }
}

struct SessionBox: @unchecked Sendable {
    let raw: OpaquePointer
    init(_ raw: OpaquePointer) { self.raw = raw }
}
