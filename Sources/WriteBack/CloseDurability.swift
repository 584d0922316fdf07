import Platform

/// What an async `close()` has secured when it returns.
///
/// Both levels survive kill -9 of the daemon: the staged bytes are the kernel's, and the journal record
/// names them. They differ on a power cut or a kernel crash.
package enum CloseDurability: String, Sendable {
    /// The staged bytes and the journal record are on the device (fdatasync) before `close()` returns.
    case device
    /// `close()` returns once the staged bytes are in the page cache and the journal record is written; the
    /// bytes are fdatasynced just after, in the background, and the record is then marked synced. A record
    /// found unsynced after a reboot is reported lost in the power cut, never uploaded.
    case kernel
}

/// The running kernel's boot id, which changes at every boot: a journal record that carries the id of
/// another boot, and was never marked synced, may hold bytes the power cut took.
package enum BootID {
    /// `/proc/sys/kernel/random/boot_id`, trimmed; nil when the file cannot be read (no procfs).
    package static func current(path: String = "/proc/sys/kernel/random/boot_id") -> String? {
        guard let text = readTextFile(path)?.trimmingWhitespace(), !text.isEmpty, !text.contains(" ") else { return nil }
        return text
    }
}
