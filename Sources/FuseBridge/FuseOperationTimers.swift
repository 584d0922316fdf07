import CoreMetrics
import Platform

/// The kernel requests timed for `lakecache_fuse_operation_duration_seconds`, one histogram each.
enum FuseOperation: Int, CaseIterable {
    case lookup, getattr, setattr, readlink, mknod, mkdir, unlink, rmdir, symlink, rename, link, open, read, write, flush
    case release, fsync, opendir, readdir, readdirplus, releasedir, statfs, setxattr, getxattr, listxattr, removexattr
    case access, create

    var name: String { "\(self)" }
}

/// One swift-metrics timer per operation, made when the bridge is, so a request only looks one up by index.
///
/// Without a metrics backend bootstrapped (no `--metrics-address`), these are swift-metrics' no-op timers.
final class FuseOperationTimers: Sendable {
    private let timers: [CoreMetrics.Timer]

    init() {
        timers = FuseOperation.allCases.map {
            CoreMetrics.Timer(label: "lakecache_fuse_operation_duration_seconds", dimensions: [("operation", $0.name)])
        }
    }

    subscript(_ op: FuseOperation) -> CoreMetrics.Timer { timers[op.rawValue] }
}
