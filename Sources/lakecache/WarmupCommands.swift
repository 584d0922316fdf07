import ArgumentParser
import Control
import Platform

#if canImport(Glibc)
import Glibc
#endif

/// `lakecache warmup PATH... [--file LIST] [--threads N] [--bandwidth RATE] [--wait | --background] [--json]`.
struct WarmupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warmup", abstract: "Fetch files into the disk cache ahead of the job that reads them.",
        discussion: """
            The warmup runs as a job inside the daemon and outlives this command. It yields to the applications' \
            own reads. Exit status 0 means everything asked for is cached; otherwise each failure is named.
            """)
    @Argument(help: "Files or directories (recursively) inside a lakecache mount.") var paths: [String] = []
    @Option(name: .customLong("file"), help: "Read one path per line from LIST ('-' for standard input).") var list: String?
    @Option(help: "Blocks fetched at once.") var threads: Int = 8
    @Option(help: "Cap the warmup's download rate, such as 200M (bytes per second).") var bandwidth: String?
    @Flag(help: "Keep the data in the memory tier too, not only on disk.") var memory = false
    @Flag(help: "Wait for the job, with progress (the default).") var wait = false
    @Flag(help: "Print the job id and return at once.") var background = false
    @Flag(help: "Report how much is cached, fetching nothing; exit 0 only if all of it is.") var check = false
    @Flag(help: "Drop the files from both cache tiers.") var evict = false
    @Flag(help: "Print JSON (JSON lines of progress while waiting).") var json = false

    func validate() throws {
        if paths.isEmpty && list == nil { throw ValidationError("give paths inside a mount, or --file LIST") }
        if wait && background { throw ValidationError("--wait and --background exclude each other") }
        if check && evict { throw ValidationError("--check and --evict exclude each other") }
        if !(1...256).contains(threads) { throw ValidationError("--threads must be between 1 and 256") }
        if let bandwidth, Self.rate(bandwidth) == nil {
            throw ValidationError("invalid --bandwidth '\(bandwidth)': expected bytes per second such as 100M or 1G")
        }
    }

    static func rate(_ text: String) -> Int64? {
        var t = text
        if t.hasSuffix("/s") { t.removeLast(2) }
        return ByteCount.parse(t).flatMap { $0 > 0 ? $0 : nil }
    }

    func run() async throws {
        var all = paths
        if let list { all += readList(list) }
        let groups = MountLocator.group(all, command: "warmup")
        var ok = true
        for (mountpoint, relatives) in groups {
            ok = runOne(mountpoint, relatives) && ok
        }
        if !ok { Glibc.exit(1) }
    }

    private func readList(_ list: String) -> [String] {
        let text: String?
        if list == "-" {
            text = (try? Syscall.readToEnd(0).get()).map { String(decoding: $0, as: UTF8.self) }
        } else {
            text = readTextFile(list)
        }
        guard let text else { CLIFailure(message: "cannot read the list \(list): \(Errno.current)").exit(command: "warmup") }
        return text.split(separator: "\n").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// Warms, checks or evicts the paths of one mount; false when something failed or is not cached.
    private func runOne(_ mountpoint: String, _ relatives: [String]) -> Bool {
        var arguments: [String] = []
        if check { arguments.append("mode=check") }
        if evict { arguments.append("mode=evict") }
        arguments.append("threads=\(threads)")
        if let bandwidth, let r = Self.rate(bandwidth) { arguments.append("bandwidth=\(r)") }
        if memory { arguments.append("memory") }
        // A long list travels as a private file the daemon reads, not as one enormous request line.
        var listFile: String?
        if relatives.count > 64 {
            listFile = writePrivateList(relatives)
            arguments.append("list=\(listFile!)")
            arguments.append("--")
        } else {
            arguments.append("--")
            arguments += relatives
        }
        defer { if let listFile { unlink(listFile) } }
        let v = askDaemon(mountpoint, "warmup", arguments, command: "warmup", timeout: check || evict ? 3600 : 60)
        if check { return reportCheck(mountpoint, v) }
        if evict { return reportEvict(mountpoint, v) }
        guard let id = v["id"]?.string else { CLIFailure(message: "the daemon started no job").exit(command: "warmup") }
        if background {
            print(json ? JSONValue.object([("id", .string(id)), ("mountpoint", .string(mountpoint))]).encoded() : id)
            return true
        }
        return JobFollower(mountpoint: mountpoint, id: id, json: json, label: "warming").follow()
    }

    private func writePrivateList(_ relatives: [String]) -> String {
        var template = Array("/tmp/lakecache-warmup-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { CLIFailure(message: "cannot write the path list to /tmp: \(Errno.current)").exit(command: "warmup") }
        let path = String(cString: template)
        var text = relatives.joined(separator: "\n") + "\n"
        let written = text.withUTF8 { Syscall.writeAll(fd, UnsafeRawBufferPointer($0)) }
        close(fd)
        guard case .success = written else { CLIFailure(message: "cannot write the path list to \(path): \(Errno.current)").exit(command: "warmup") }
        return path
    }

    private func reportCheck(_ mountpoint: String, _ v: JSONValue) -> Bool {
        func n(_ k: String) -> Int64 { Int64(v[k]?.number ?? 0) }
        let failures = JobFollower.failures(v)
        let complete = n("cached_bytes") >= n("bytes") && n("cached_files") >= n("files") && failures.isEmpty
        if json {
            print(v.encoded())
        } else {
            let percent = n("bytes") > 0 ? 100 * Double(n("cached_bytes")) / Double(n("bytes")) : 100
            print("lakecache: \(n("cached_files")) of \(n("files")) files cached, \(ByteCount.format(n("cached_bytes"))) of \(ByteCount.format(n("bytes"))) (\(String(format1: percent))%)")
            if case .array(let missing)? = v["not_cached"], !missing.isEmpty {
                for m in missing.compactMap(\.string) { print("  not cached: \(join(mountpoint, m))") }
                if n("files") - n("cached_files") > Int64(missing.count) { print("  ... and \(n("files") - n("cached_files") - Int64(missing.count)) more") }
            }
        }
        JobFollower.printFailures(failures, mountpoint: mountpoint, command: "warmup")
        return complete
    }

    private func reportEvict(_ mountpoint: String, _ v: JSONValue) -> Bool {
        let failures = JobFollower.failures(v)
        if json {
            print(v.encoded())
        } else {
            print("lakecache: evicted \(Int(v["files"]?.number ?? 0)) files, \(ByteCount.format(Int64(v["bytes"]?.number ?? 0))) from both tiers")
        }
        JobFollower.printFailures(failures, mountpoint: mountpoint, command: "warmup")
        return failures.isEmpty
    }
}

/// The path a user would type for `path` (relative to the mount root, with a leading slash).
func join(_ mountpoint: String, _ path: String) -> String {
    mountpoint == "/" ? path : mountpoint + path
}

/// Follows a warmup job to its end: a progress bar on a terminal, JSON lines with `--json`, a line every
/// few seconds otherwise.
struct JobFollower {
    var mountpoint: String
    var id: String
    var json: Bool
    var label: String

    /// Polls until the job ends; true when it is done with nothing failed.
    func follow() -> Bool {
        let tty = isatty(2) != 0 && !json
        // Plain lines start after 2 s: a short job prints only its summary.
        var lastLine = monotonicSeconds()
        var lastJSON = ""
        let interval: useconds_t = json ? 500_000 : 200_000
        while true {
            let asked = monotonicSeconds()
            // The daemon answers as soon as the job ends, or after the interval.
            let v = askDaemon(mountpoint, "job", [id, String(interval / 1000)], command: "warmup", timeout: 10)
            let state = v["state"]?.string ?? "?"
            let running = state == "running" || state == "listing"
            if json {
                let line = v.encoded()
                if line != lastJSON || !running { printProgress(line) }
                lastJSON = line
            } else if tty {
                toStderr("\r" + Self.bar(v, label: label) + "\u{1B}[K")
            } else if monotonicSeconds() - lastLine >= 2 && running {
                printProgress(Self.bar(v, label: label, width: 0))
                lastLine = monotonicSeconds()
            }
            if !running {
                if tty { toStderr("\n") }
                return finish(v, state: state)
            }
            // A daemon from before the wait answers at once: poll at the interval all the same.
            let waited = monotonicSeconds() - asked
            if waited < Double(interval) / 2e6 { usleep(interval - useconds_t(waited * 1e6)) }
        }
    }

    private func finish(_ v: JSONValue, state: String) -> Bool {
        func n(_ k: String) -> Int64 { Int64(v[k]?.number ?? 0) }
        let failures = Self.failures(v)
        if !json {
            let seconds = v["seconds"]?.number ?? 0
            let rate = seconds > 0 ? ByteCount.format(Int64(Double(n("bytes_fetched")) / seconds)) + "/s" : "-"
            print("lakecache: \(state == "done" ? "cached" : state): \(n("files_done")) of \(n("files")) files, \(ByteCount.format(n("bytes_done"))) of \(ByteCount.format(n("bytes"))) in \(String(format1: seconds)) s (\(ByteCount.format(n("bytes_fetched"))) fetched, \(rate))")
        }
        Self.printFailures(failures, mountpoint: mountpoint, command: "warmup")
        if state == "cancelled" && !json { toStderr("lakecache warmup: job \(id) was cancelled\n") }
        return state == "done" && failures.isEmpty
    }

    /// `label [#####.....] 45%  1.2 GiB of 2.6 GiB  120/400 files  210 MiB/s  ETA 7 s`; no bar when `width` is 0.
    static func bar(_ v: JSONValue, label: String, width: Int = 30) -> String {
        func n(_ k: String) -> Int64 { Int64(v[k]?.number ?? 0) }
        if v["state"]?.string == "listing" { return "\(label): listing \(v["paths"]?.array?.first?.string ?? "")…" }
        let fraction = n("bytes") > 0 ? min(1, Double(n("bytes_done")) / Double(n("bytes"))) : (n("files") == n("files_done") ? 1 : 0)
        var parts = ["\(label)"]
        if width > 0 {
            let filled = Int(fraction * Double(width))
            parts.append("[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]")
        }
        parts.append("\(Int(fraction * 100))%")
        parts.append("\(ByteCount.format(n("bytes_done"))) of \(ByteCount.format(n("bytes")))")
        parts.append("\(n("files_done"))/\(n("files")) files")
        parts.append(ByteCount.format(n("rate_bytes_per_second")) + "/s")
        if let eta = v["eta_seconds"]?.number { parts.append("ETA \(Int(eta)) s") }
        return parts.joined(separator: "  ")
    }

    static func failures(_ v: JSONValue) -> [(path: String, reason: String)] {
        guard case .array(let list)? = v["failures"] else { return [] }
        return list.map { ($0["path"]?.string ?? "?", $0["reason"]?.string ?? "?") }
    }

    /// One line per failure on stderr (the first 20), naming the path as the user sees it.
    static func printFailures(_ failures: [(path: String, reason: String)], mountpoint: String, command: String) {
        for f in failures.prefix(20) { toStderr("lakecache \(command): \(join(mountpoint, f.path)): \(f.reason)\n") }
        if failures.count > 20 { toStderr("lakecache \(command): ... and \(failures.count - 20) more failures (lakecache jobs --json lists them all)\n") }
    }
}

/// Maps paths given on the command line to their mounts, reading the mount table once.
enum MountLocator {
    /// Paths grouped by the lakecache mount holding them (relative to its root); exits naming a path that
    /// is in no lakecache mount.
    static func group(_ paths: [String], command: String) -> [(String, [String])] {
        var order: [String] = []
        var groups: [String: [String]] = [:]
        let mounts = lakecacheMounts()
        let cwd = currentDirectory()
        for p in paths {
            var absolute = lexicallyAbsolute(p, cwd: cwd)
            var found = locate(absolute, in: mounts)
            if found == nil {
                // A symbolic link on the way (such as /data -> /mnt/lake): resolve it.
                absolute = absoluteMountpoint(p)
                found = locate(absolute, in: mounts)
            }
            guard let (mp, relative) = found else { CLIFailure(message: "\(p) is not inside a lakecache mount").exit(command: command) }
            if groups[mp] == nil { order.append(mp) }
            groups[mp, default: []].append(relative)
        }
        return order.map { ($0, groups[$0]!) }
    }

    static func lakecacheMounts() -> [String] {
        guard let text = readTextFile("/proc/self/mountinfo") else { return [] }
        var out: [String] = []
        for line in text.split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2, halves[1].hasPrefix("fuse.lakecache ") else { continue }
            let fields = halves[0].split(separator: " ")
            if fields.count > 4 { out.append(MountChecks.unescapeMountinfo(String(fields[4]))) }
        }
        return out
    }

    static func locate(_ absolute: String, in mounts: [String]) -> (String, String)? {
        var best: String?
        for mp in mounts where absolute == mp || absolute.hasPrefix(mp == "/" ? "/" : mp + "/") {
            if mp.count > (best?.count ?? -1) { best = mp }
        }
        guard let best else { return nil }
        return (best, absolute == best ? "" : String(absolute.dropFirst(best == "/" ? 1 : best.count + 1)))
    }

    static func currentDirectory() -> String {
        guard let p = getcwd(nil, 0) else { return "/" }
        defer { free(p) }
        return String(cString: p)
    }

    /// `path` made absolute against `cwd`, with `.`, `..` and doubled slashes removed, touching nothing.
    static func lexicallyAbsolute(_ path: String, cwd: String) -> String {
        var parts: [Substring] = []
        for c in ((path.hasPrefix("/") ? "" : cwd + "/") + path).split(separator: "/") {
            if c == "." { continue }
            if c == ".." { _ = parts.popLast(); continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }
}

/// `lakecache jobs [MOUNTPOINT] [--json]`, `lakecache jobs cancel ID`, `lakecache jobs wait ID`.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "List, follow or cancel warmup jobs.",
        subcommands: [JobsList.self, JobsCancel.self, JobsWait.self], defaultSubcommand: JobsList.self)
}

/// The sockets of the user's mounts, and the one whose daemon runs job `id`.
enum JobLookup {
    static func mountpoint(of id: String, command: String) -> String {
        for socket in ControlPaths.all() {
            guard case .success(let text) = ControlClient.send(ControlRequest.line("job", [id]), to: socket, timeoutSeconds: 5),
                let v = JSONValue.parse(text), v["error"] == nil,
                case .success(let status) = ControlClient.send("status", to: socket, timeoutSeconds: 5),
                let mp = JSONValue.parse(status)?["mountpoint"]?.string
            else { continue }
            return mp
        }
        CLIFailure(message: "no mount of this user runs warmup job \(id); lakecache jobs lists them").exit(command: command)
    }
}

/// `lakecache jobs [MOUNTPOINT] [--json]`.
struct JobsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List warmup jobs: state, files, bytes, rate, failures.")
    @Argument(help: "The mountpoint (default: every lakecache mount of this user).") var mountpoint: String?
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        var mounts: [String] = []
        if let mountpoint { mounts = [mountpoint] } else {
            for socket in ControlPaths.all() {
                if case .success(let s) = ControlClient.send("status", to: socket, timeoutSeconds: 5), let mp = JSONValue.parse(s)?["mountpoint"]?.string { mounts.append(mp) }
            }
        }
        var all: [JSONValue] = []
        for mp in mounts {
            guard case .array(let jobs)? = askDaemon(mp, "jobs", command: "jobs")["jobs"] else { continue }
            all += jobs.map { j in
                guard case .object(var fields) = j else { return j }
                fields.insert(("mountpoint", .string(mp)), at: 1)
                return .object(fields)
            }
        }
        if json { return print(JSONValue.object([("jobs", .array(all))]).encoded(indent: 2)) }
        if all.isEmpty { return print("no warmup jobs") }
        print("ID           STATE      FILES          BYTES                    RATE        FAILED  PATHS")
        for j in all {
            func n(_ k: String) -> Int64 { Int64(j[k]?.number ?? 0) }
            func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
            let paths: [String]
            if case .array(let p)? = j["paths"] { paths = p.compactMap(\.string).map { join(j["mountpoint"]?.string ?? "", $0) } } else { paths = [] }
            print(pad(j["id"]?.string ?? "?", 13) + pad(j["state"]?.string ?? "?", 11) + pad("\(n("files_done"))/\(n("files"))", 15)
                + pad("\(ByteCount.format(n("bytes_done"))) of \(ByteCount.format(n("bytes")))", 25)
                + pad(ByteCount.format(n("rate_bytes_per_second")) + "/s", 12) + pad("\(JobFollower.failures(j).count)", 8) + paths.joined(separator: " "))
        }
    }
}

/// `lakecache jobs cancel ID`.
struct JobsCancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a warmup job; what it cached stays cached.")
    @Argument(help: "The job id, as warmup --background printed it.") var id: String

    func run() async throws {
        let mp = JobLookup.mountpoint(of: id, command: "jobs cancel")
        _ = askDaemon(mp, "cancel", [id], command: "jobs cancel")
        print("lakecache: cancelled job \(id) on \(mp)")
    }
}

/// `lakecache jobs wait ID [--json]`.
struct JobsWait: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wait", abstract: "Follow a warmup job to its end, with progress.")
    @Argument(help: "The job id.") var id: String
    @Flag(help: "Print JSON lines of progress.") var json = false

    func run() async throws {
        let mp = JobLookup.mountpoint(of: id, command: "jobs wait")
        if !JobFollower(mountpoint: mp, id: id, json: json, label: "warming").follow() { Glibc.exit(1) }
    }
}

/// `lakecache pin PATH...`.
struct PinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin", abstract: "Warm files and keep them in the disk tier through eviction, within the pin budget.")
    @Argument(help: "Files or directories inside a lakecache mount.") var paths: [String]
    @Flag(help: "Print JSON lines of progress.") var json = false

    func run() async throws {
        var ok = true
        for (mp, relatives) in MountLocator.group(paths, command: "pin") {
            let v = askDaemon(mp, "pin", relatives, command: "pin")
            guard let id = v["id"]?.string else { CLIFailure(message: "the daemon started no job").exit(command: "pin") }
            ok = JobFollower(mountpoint: mp, id: id, json: json, label: "pinning").follow() && ok
        }
        if !ok { Glibc.exit(1) }
    }
}

/// `lakecache unpin PATH...`.
struct UnpinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpin", abstract: "Let pinned files be evicted again.")
    @Argument(help: "Files or directories inside a lakecache mount.") var paths: [String]

    func run() async throws {
        for (mp, relatives) in MountLocator.group(paths, command: "unpin") {
            let v = askDaemon(mp, "unpin", relatives, command: "unpin")
            print("lakecache: unpinned \(Int(v["unpinned"]?.number ?? 0)) files on \(mp)")
        }
    }
}
