import Control
import Filesystem
import ObjectStore
import Platform
import WriteBack

/// The control verbs of a mount, one handler each.
enum ControlHandlers {
    static func register(on router: ControlRouter, _ parts: MountDaemon.Parts) {
        router.register("status") { _ in StatusHandler.status(parts).encoded() }
        router.register("pending") { r in PendingHandler.pending(parts, path: r.arguments.first ?? "", retry: false).encoded() }
        router.register("retry") { r in PendingHandler.pending(parts, path: r.arguments.first ?? "", retry: true).encoded() }
        router.register("unmount") { _ in UnmountHandler.unmount(parts.plan.mountpoint) }
        router.register("links") { _ in LinksHandler.links(parts).encoded() }
        router.register("reload") { _ in ReloadHandler.reload(parts) }
        router.register("sync") { r in SyncHandler.sync(parts, paths: r.arguments) }
        router.register("warmup") { r in WarmupHandler.warmup(parts, r.arguments) }
        router.register("job") { r in WarmupHandler.job(parts, r.arguments) }
        router.register("jobs") { _ in WarmupHandler.jobs(parts) }
        router.register("cancel") { r in WarmupHandler.cancel(parts, r.arguments) }
        router.register("pin") { r in WarmupHandler.pin(parts, r.arguments) }
        router.register("unpin") { r in WarmupHandler.unpin(parts, r.arguments) }
    }

    static func error(_ message: String) -> String { JSONValue.object([("error", .string(message))]).encoded() }

    static func n(_ v: Int) -> JSONValue { .number(Double(v)) }
    static func n64(_ v: Int64) -> JSONValue { .number(Double(v)) }

    /// Runs async work from a control thread (each connection has its own) and waits for it.
    static func wait<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let box = ResultBox<T>()
        Task {
            box.set(await body())
        }
        return box.get()
    }
}
