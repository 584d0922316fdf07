#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole small text file (configuration, credentials); nil when it cannot be opened.
package func readTextFile(_ path: String) -> String? {
    readFileBytes(path).map { String(decoding: $0, as: UTF8.self) }
}

/// Reads a whole file's bytes; nil when it cannot be opened.
package func readFileBytes(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var bytes = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n == 0 { break }
        bytes += chunk[0..<n]
    }
    return bytes
}

extension StringProtocol {
    /// The string without leading and trailing spaces and tabs.
    package func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}

/// `MemTotal` and `MemAvailable` (the kernel's estimate of memory new work can take without swapping) of
/// /proc/meminfo, in bytes; nil without procfs.
package func memoryInfo() -> (total: Int64, available: Int64)? {
    guard let text = readTextFile("/proc/meminfo") else { return nil }
    var total: Int64?
    var available: Int64?
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2, let kib = Int64(fields[1]) else { continue }
        if fields[0] == "MemTotal:" { total = kib * 1024 }
        if fields[0] == "MemAvailable:" { available = kib * 1024 }
    }
    guard let total, let available else { return nil }
    return (total, available)
}
