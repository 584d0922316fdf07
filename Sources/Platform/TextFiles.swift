#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole small text file (configuration, credentials); nil when it cannot be opened.
package func readTextFile(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var bytes = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, 4096, f) }
        if n == 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension StringProtocol {
    /// The string without leading and trailing spaces and tabs.
    package func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}

/// The kernel's estimate of memory available to new work without swapping (`MemAvailable` in
/// /proc/meminfo), in bytes; nil without procfs.
package func availableMemory() -> Int64? {
    guard let text = readTextFile("/proc/meminfo") else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2, let kib = Int64(fields[1]) else { return nil }
        return kib * 1024
    }
    return nil
}
