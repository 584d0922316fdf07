import Logging
import Platform

#if canImport(Glibc)
import Glibc
#endif

/// Log lines for journald (stderr under systemd, `JOURNAL_STREAM` naming it): no timestamp or colour, which the
/// journal adds itself, and a `<N>` syslog priority prefix, which it turns into the entry's priority.
struct JournalLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        let tail = fields.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        var line = "<\(Self.priority(event.level))>\(label): \(event.message)\(tail)\n"
        // One write per line, so lines of concurrent threads never interleave.
        _ = line.withUTF8 { Syscall.writeAll(2, UnsafeRawBufferPointer($0)) }
    }

    /// Whether stderr is the journal stream `value` names (`DEVICE:INODE`, as systemd sets `JOURNAL_STREAM`).
    ///
    /// The variable is inherited: a child of a service whose stderr was redirected elsewhere (a file, a
    /// terminal) still has it, so it counts only when it names the stderr this process has, as
    /// `systemd.exec(5)` advises.
    static func stderrIsJournal(_ value: String?) -> Bool {
        guard let value else { return false }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == device && UInt64(st.st_ino) == inode
    }

    /// syslog priorities, as `sd-daemon(3)` prefixes them.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }
}
