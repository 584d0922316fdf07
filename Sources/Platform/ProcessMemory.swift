import CLinux

#if canImport(Glibc)
import Glibc
#endif

/// This process's memory, for `status`: what the kernel holds resident, and what of it is live heap.
package enum ProcessMemory {
    /// Resident bytes (VmRSS), and the peak (VmHWM); nil when /proc cannot be read.
    package static func resident() -> (bytes: Int64, peak: Int64)? {
        guard let text = readTextFile("/proc/self/status") else { return nil }
        var rss: Int64?
        var hwm: Int64?
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let kib = Int64(fields[1]) else { continue }
            if fields[0] == "VmRSS:" { rss = kib * 1024 }
            if fields[0] == "VmHWM:" { hwm = kib * 1024 }
        }
        guard let rss, let hwm else { return nil }
        return (rss, hwm)
    }

    /// Bytes malloc has handed out and not had back, over every arena.
    ///
    /// Unlike the resident size it does not count freed memory an arena keeps, so it shows what the daemon's
    /// own structures hold, to the byte, whatever the allocator's fragmentation.
    package static func heapInUse() -> Int64 { Int64(clamping: CLinux_heap_in_use()) }
}
