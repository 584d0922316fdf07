import Control
import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

/// Waiting for uploads with progress: a bar on a terminal, plain lines otherwise. Used by flush and unmount.
enum UploadProgress {
    /// Why a wait ended without everything durable.
    struct Failure: Error {
        var message: String
    }

    /// Polls the daemon until nothing matching `path` (relative to the mount root) is pending.
    static func wait(socket: String, path: String, label: String, timeout: Double?) -> Result<Int, Failure> {
        let tty = isatty(2) != 0
        let start = monotonicSeconds()
        var lastLine = 0.0
        var total: Double = 0
        var files = 0
        var first = true
        while true {
            // The first poll retries failed uploads at once; later polls only watch that attempt.
            let verb = first ? "retry" : "pending"
            first = false
            guard case .success(let text) = ControlClient.send(verb + " " + URIEncoding.encode(path, keepSlash: true), to: socket, timeoutSeconds: 10),
                let v = JSONValue.parse(text)
            else {
                return .failure(Failure(message: "the daemon stopped answering; pending uploads stay journaled and resume at the next mount"))
            }
            let pending = Int(v["pending"]?.number ?? 0)
            let bytes = v["pending_bytes"]?.number ?? 0
            let uploaded = v["uploaded_bytes"]?.number ?? 0
            files = max(files, pending)
            total = max(total, bytes)
            if pending == 0 {
                if tty && total > 0 { toStderr("\r\u{1B}[K") }
                return .success(files)
            }
            if case .array(let failures)? = v["failures"], let permanent = failures.first(where: { $0["permanent"]?.boolValue == true }) {
                if tty { toStderr("\n") }
                return .failure(Failure(message: "upload of \(permanent["key"]?.string ?? "?") failed: \(permanent["error"]?.string ?? "?") (it stays journaled and is retried)"))
            }
            let now = monotonicSeconds()
            if let timeout, now - start > timeout {
                if tty { toStderr("\n") }
                return .failure(Failure(message: "\(pending) file(s), \(ByteSize(bytes: Int64(bytes))) still pending after \(Int(timeout)) s; they stay journaled"))
            }
            let done = total - bytes + uploaded
            let fraction = total > 0 ? min(1, done / total) : 0
            if tty {
                let width = 30
                let filled = Int(fraction * Double(width))
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                toStderr("\r\(label) [\(bar)] \(Int(fraction * 100))%  \(ByteSize(bytes: Int64(done))) of \(ByteSize(bytes: Int64(total))), \(pending) file(s) left\u{1B}[K")
            } else if now - lastLine >= 2 {
                printProgress("\(label): \(pending) file(s), \(ByteSize(bytes: Int64(bytes))) pending, \(Int(fraction * 100))% uploaded")
                lastLine = now
            }
            usleep(100_000)
        }
    }

    /// The lakecache mount holding `path`, and the path below its root ("" for the root itself).
    static func locate(_ path: String) -> (mountpoint: String, relative: String)? {
        let absolute = absoluteMountpoint(path)
        guard let text = readTextFile("/proc/self/mountinfo") else { return nil }
        var best: String?
        for line in text.split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2, halves[1].hasPrefix("fuse.lakecache ") else { continue }
            let fields = halves[0].split(separator: " ")
            guard fields.count > 4 else { continue }
            let mp = MountChecks.unescapeMountinfo(String(fields[4]))
            if absolute == mp || absolute.hasPrefix(mp == "/" ? "/" : mp + "/"), mp.count > (best?.count ?? -1) { best = mp }
        }
        guard let best else { return nil }
        let relative = absolute == best ? "" : String(absolute.dropFirst(best == "/" ? 1 : best.count + 1))
        return (best, relative)
    }
}

/// Prints one line of progress to standard output and flushes it: a pipe is block-buffered, and a scheduler
/// that reads the lines as they come would otherwise see them only when the command exits.
func printProgress(_ line: String) {
    print(line)
    fflush(nil)  // every stream: `stdout` is a global Swift 6 will not touch
}

/// Writes progress text to standard error (fd 2) unbuffered.
func toStderr(_ text: String) {
    var t = text
    t.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
