import ArgumentParser
import Control
import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

/// Resolves a mountpoint argument to the absolute path the daemon registered.
func absoluteMountpoint(_ path: String) -> String {
    guard let r = realpath(path, nil) else { return path }
    defer { free(r) }
    return String(cString: r)
}

/// `lakecache unmount MOUNTPOINT [--force]`.
struct UnmountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmount", abstract: "Unmount and wait for the daemon to finish.")
    @Argument(help: "The mountpoint.") var mountpoint: String
    @Flag(help: "Unmount at once, even with pending uploads (they stay journaled for the next start).") var force = false
    @Option(help: "Seconds to wait for the daemon to exit.") var timeout: Double = 120

    func run() async throws {
        let mp = absoluteMountpoint(mountpoint)
        let socket = ControlPaths.socket(for: mp)
        let pid = ControlClient.send("status", to: socket, timeoutSeconds: 5).map { JSONValue.parse($0)?["pid"]?.number }
        guard case .success(let daemonPID?) = pid else {
            // No daemon answers: a stale mount after a crash, or not a lakecache mount at all.
            guard MountChecks.isMounted(mp) else {
                CLIFailure(message: "\(mountpoint) is not mounted").exit(command: "unmount")
            }
            let rc = getuid() == 0 ? (umount2(mp, 0) == 0 ? 0 : errno) : runProcess("/bin/fusermount3", ["-u", mp])
            guard rc == 0 else {
                CLIFailure(message: "cannot unmount \(mountpoint): \(getuid() == 0 ? "\(Errno(rc))" : "fusermount3 failed"); if it is busy, close the files open there").exit(command: "unmount")
            }
            print("lakecache: unmounted \(mountpoint) (no daemon was running: it had been killed)")
            return
        }
        if !force, case .failure(let f) = UploadProgress.wait(socket: socket, path: "", label: "uploading", timeout: nil) {
            CLIFailure(message: "not unmounted: \(f.message); use --force to unmount now and finish at the next mount").exit(command: "unmount")
        }
        let answer = ControlClient.send(force ? "unmount force" : "unmount", to: socket, timeoutSeconds: Int(timeout))
        switch answer {
        case .success(let text):
            if let error = JSONValue.parse(text)?["error"]?.string {
                CLIFailure(message: error).exit(command: "unmount")
            }
        case .failure(let e):
            CLIFailure(message: "the daemon did not answer (\(e)); try fusermount3 -u \(mountpoint)").exit(command: "unmount")
        }
        // Wait for the daemon to flush and exit, so a following mount finds everything released.
        let deadline = monotonicSeconds() + timeout
        while kill(pid_t(daemonPID), 0) == 0 {
            if monotonicSeconds() > deadline {
                CLIFailure(message: "the daemon (pid \(Int(daemonPID))) is still running after \(Int(timeout)) s").exit(command: "unmount")
            }
            usleep(20_000)
        }
    }
}

/// `lakecache status [MOUNTPOINT] [--json]`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show cache, backend and upload state of a mount (or of every mount).")
    @Argument(help: "The mountpoint (default: every lakecache mount of this user).") var mountpoint: String?
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let sockets = mountpoint.map { [ControlPaths.socket(for: absoluteMountpoint($0))] } ?? ControlPaths.all()
        var reports: [JSONValue] = []
        for socket in sockets {
            switch ControlClient.send("status", to: socket, timeoutSeconds: 10) {
            case .success(let text):
                guard let v = JSONValue.parse(text) else {
                    CLIFailure(message: "the daemon answered with malformed status").exit(command: "status")
                }
                reports.append(v)
            case .failure:
                if mountpoint != nil {
                    CLIFailure(message: "no lakecache daemon serves \(mountpoint!) (not mounted, or the daemon was killed: clear it with fusermount3 -u \(mountpoint!))").exit(command: "status")
                }
                unlink(socket)  // a dead daemon's socket
            }
        }
        if json {
            print((mountpoint != nil ? reports.first! : .array(reports)).encoded(indent: 2))
            return
        }
        if reports.isEmpty { print("no lakecache mounts") }
        for r in reports { print(Self.human(r)) }
    }

    static func human(_ r: JSONValue) -> String {
        func num(_ path: [String]) -> Double {
            var v: JSONValue? = r
            for p in path { v = v?[p] }
            return v?.number ?? 0
        }
        func size(_ b: Double) -> String { ByteSize(bytes: Int64(b)).description }
        let hits = num(["cache", "memory", "hits"])
        let misses = num(["cache", "memory", "misses"])
        let ratio = hits + misses > 0 ? String(format1: 100 * hits / (hits + misses)) + "%" : "-"
        var requests = ""
        if case .object(let fields)? = r["backend"]?["requests"] {
            requests = fields.map { "\($0.0) \(Int($0.1.number ?? 0))" }.joined(separator: ", ")
        }
        return """
            \(r["mountpoint"]?.string ?? "?")  \(r["bucket"].map { "s3://\($0.string ?? "?")/\(r["prefix"]?.string ?? "")" } ?? "config \(r["config"]?.string ?? "?")")  (pid \(Int(num(["pid"]))), up \(Int(num(["uptime_seconds"]))) s)
              memory tier  \(size(num(["cache", "memory", "bytes"]))) of \(size(num(["cache", "memory", "capacity"])))   hits \(Int(hits))  misses \(Int(misses))  hit ratio \(ratio)
              disk tier    \(size(num(["cache", "disk", "bytes"]))) of \(size(num(["cache", "disk", "capacity"])))   hits \(Int(num(["cache", "disk", "hits"])))  corrupt \(Int(num(["cache", "disk", "corrupt_blocks"])))
              backend      \(requests.isEmpty ? "no requests" : requests)
                           in \(size(num(["backend", "bytes_in"])))  out \(size(num(["backend", "bytes_out"])))  errors \(Int(num(["backend", "errors"])))  retries \(Int(num(["backend", "retries"])))
              uploads      pending \(Int(num(["uploads", "pending"])))  failed \(Int(num(["uploads", "failed"])))  close durability \(r["close_durability"]?.string ?? "device")\(lostLines(r))
              namespace    skipped keys \(Int(num(["namespace", "skipped_keys"])))  shadowed files \(Int(num(["namespace", "shadowed_files"])))
            """ + credentialLines(r["credentials"]) + eventLines(r) + linkLines(r)
    }

    /// Objects replay found lost in a power cut (`kernel` close durability), one line each.
    static func lostLines(_ r: JSONValue) -> String {
        guard case .array(let lost)? = r["uploads"]?["lost_in_power_cut"], !lost.isEmpty else { return "" }
        return "\n               LOST IN A POWER CUT (close-durability kernel; write them again): "
            + lost.map { "s3://\($0["bucket"]?.string ?? "?")/\($0["key"]?.string ?? "?")" }.joined(separator: ", ")
    }

    /// Where a one-URL mount's credentials come from, and their expiry and refreshes when they are temporary.
    static func credentialLines(_ c: JSONValue?) -> String {
        guard let c, let source = c["source"]?.string else { return "" }
        var line = "\n  credentials  \(source)"
        if let e = c["expires_in_seconds"]?.number { line += "   expires in \(Int(e)) s  refreshes \(Int(c["refreshes"]?.number ?? 0))" }
        if let error = c["last_refresh_error"]?.string { line += "\n               last refresh failed: \(error)" }
        return line
    }

    /// The events endpoint, when the mount serves one.
    static func eventLines(_ r: JSONValue) -> String {
        guard let e = r["events"] else { return "" }
        func c(_ name: String) -> Int { Int(e["counters"]?[name]?.number ?? 0) }
        var line = "\n  events       \(e["address"]?.string ?? "?")   accepted \(c("accepted"))  applied \(c("applied"))  duplicates \(c("duplicates"))  stale \(c("stale"))  preloaded \(c("preloaded"))  rejected \(Int(e["rejected"]?.number ?? 0))  pending \(Int(e["pending"]?.number ?? 0))"
        if let last = e["last_rejection"]?.string { line += "\n               last refused: \(last)" }
        return line
    }

    /// One line per link of a mount with several (or a config file).
    static func linkLines(_ r: JSONValue) -> String {
        guard r["config"] != nil, case .array(let links)? = r["links"] else { return "" }
        func size(_ b: Double?) -> String { ByteSize(bytes: Int64(b ?? 0)).description }
        return links.map { l in
            let requests = l["backend"]?["requests"].map { v -> Int in
                guard case .object(let f) = v else { return 0 }
                return f.reduce(0) { $0 + Int($1.1.number ?? 0) }
            } ?? 0
            return "\n  link \(l["path"]?.string ?? "?") → \(l["url"]?.string ?? "?")   memory \(size(l["cache"]?["memory_bytes"]?.number))  disk \(size(l["cache"]?["disk_bytes"]?.number))  hits \(Int(l["cache"]?["hits"]?.number ?? 0))  misses \(Int(l["cache"]?["misses"]?.number ?? 0))  requests \(requests)  pending uploads \(Int(l["uploads"]?["pending"]?.number ?? 0))  skipped keys \(Int(l["skipped_keys"]?.number ?? 0))"
        }.joined()
    }
}

extension String {
    /// One decimal place, without Foundation's String(format:).
    init(format1 value: Double) {
        let tenths = Int((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}

/// `lakecache flush PATH... [--timeout SECONDS]`.
struct FlushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flush", abstract: "Wait until every pending upload under PATH is durable in the bucket.")
    @Argument(help: "Files or directories inside a mount.") var paths: [String]
    @Option(help: "Give up after this many seconds.") var timeout: Double?

    func run() async throws {
        for path in paths {
            guard let (mountpoint, relative) = UploadProgress.locate(path) else {
                CLIFailure(message: "\(path) is not inside a lakecache mount").exit(command: "flush")
            }
            switch UploadProgress.wait(socket: ControlPaths.socket(for: mountpoint), path: relative, label: "flush \(path)", timeout: timeout) {
            case .success(let files):
                print("lakecache: \(path): durable\(files > 0 ? " (\(files) file(s) uploaded)" : "")")
            case .failure(let f):
                CLIFailure(message: "\(path): \(f.message)").exit(command: "flush")
            }
        }
    }
}
