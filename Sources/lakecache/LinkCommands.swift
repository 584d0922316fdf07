import ArgumentParser
import Control
import Platform

#if canImport(Glibc)
import Glibc
#endif

/// Sends one request to the daemon of `mountpoint` and returns its JSON answer, or exits with a clear line.
func askDaemon(_ mountpoint: String, _ verb: String, _ arguments: [String] = [], command: String, timeout: Int = 30) -> JSONValue {
    let mp = absoluteMountpoint(mountpoint)
    switch ControlClient.send(ControlRequest.line(verb, arguments), to: ControlPaths.socket(for: mp), timeoutSeconds: timeout) {
    case .success(let text):
        guard let v = JSONValue.parse(text) else { CLIFailure(message: "the daemon answered with malformed JSON").exit(command: command) }
        if let error = v["error"]?.string { CLIFailure(message: error).exit(command: command) }
        return v
    case .failure:
        CLIFailure(message: "no lakecache daemon serves \(mountpoint) (not mounted, or the daemon was killed: clear it with lakecache unmount \(mountpoint))").exit(command: command)
    }
}

/// `lakecache links MOUNTPOINT [--json]`.
struct LinksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "links", abstract: "List the links of a mount with their policy and state.")
    @Argument(help: "The mountpoint.") var mountpoint: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let v = askDaemon(mountpoint, "links", command: "links")
        if json { return print(v.encoded(indent: 2)) }
        if let file = v["config"]?.string { print("config: \(file)") }
        guard case .array(let links)? = v["links"] else { return }
        for l in links {
            func s(_ k: String) -> String { l[k]?.string ?? (l[k]?.number.map { String(format1: $0) + " s" } ?? "-") }
            var policy = [l["read_only"] == .bool(true) ? "read-only" : "read-write, \(s("write_mode")) close", "metadata-ttl \(s("metadata_ttl"))", "metadata \(s("metadata"))"]
            if s("import") == "preload" { policy.append("preload") }
            if let every = l["sync_interval"]?.number { policy.append("sync every \(String(format1: every)) s") }
            if case .array(let inc)? = l["include"], !inc.isEmpty { policy.append("include " + inc.compactMap(\.string).joined(separator: ",")) }
            if case .array(let exc)? = l["exclude"], !exc.isEmpty { policy.append("exclude " + exc.compactMap(\.string).joined(separator: ",")) }
            print("\(s("path"))  →  \(s("url"))  at \(s("endpoint"))  [\(s("state"))]")
            print("    " + policy.joined(separator: "; "))
        }
    }
}

/// `lakecache reload MOUNTPOINT`.
struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload", abstract: "Reread the mount's config file and change its links without a remount.",
        discussion: "A file that fails validation changes nothing. A removed link disappears once its uploads are durable and its files closed.")
    @Argument(help: "The mountpoint.") var mountpoint: String

    func run() async throws {
        let v = askDaemon(mountpoint, "reload", command: "reload", timeout: 120)
        func list(_ k: String) -> String {
            guard case .array(let a)? = v[k], !a.isEmpty else { return "none" }
            return a.compactMap(\.string).joined(separator: " ")
        }
        print("lakecache: reloaded \(mountpoint): added \(list("added")); removed \(list("removed")); changed \(list("changed"))")
    }
}

/// `lakecache sync PATH... [--json]`.
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync", abstract: "Re-list the links under PATH and show what changed in the bucket since the mount last looked.")
    @Argument(help: "Paths inside a mount (a directory, a link, or the mountpoint for every link).") var paths: [String]
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        for path in paths {
            guard let (mountpoint, relative) = UploadProgress.locate(path) else {
                CLIFailure(message: "\(path) is not inside a lakecache mount").exit(command: "sync")
            }
            let v = askDaemon(mountpoint, "sync", [relative], command: "sync", timeout: 3600)
            if json {
                print(v.encoded())
                continue
            }
            func n(_ k: String) -> Int { Int(v[k]?.number ?? 0) }
            print("lakecache: \(path): \(n("new")) new, \(n("changed")) changed, \(n("deleted")) deleted, \(n("unchanged")) unchanged (\(n("objects")) objects, \(String(format1: v["seconds"]?.number ?? 0)) s)")
        }
    }
}
