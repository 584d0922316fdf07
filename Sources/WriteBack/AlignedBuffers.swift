import Platform
import ObjectStore
import Synchronization

/// Page-aligned buffers for direct I/O on staging files, kept for reuse by size.
///
/// Two sizes are in use: 1 MiB bounce buffers for writes (one per concurrent writer) and part-sized buffers
/// for uploads (one per part in flight). Reuse matters: fresh pages cost a fault each, which on a virtual
/// machine that backs memory lazily costs more than the copy into them.
final class AlignedBuffers: Sendable {
    /// Addresses by buffer size, as integers: raw pointers are not Sendable.
    private let free = Locked<[Int: [UInt]]>([:])
    private let keep: Int

    init(keepPerSize: Int) { keep = keepPerSize }

    deinit {
        free.withLock { for list in $0.values { for a in list { UnsafeMutableRawPointer(bitPattern: a)!.deallocate() } } }
    }

    /// A buffer of `size` bytes (a multiple of `Syscall.directIOAlignment`), reused if one is free.
    func take(_ size: Int) -> UnsafeMutableRawPointer {
        if let a = free.withLock({ $0[size]?.popLast() }) { return UnsafeMutableRawPointer(bitPattern: a)! }
        return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: Syscall.directIOAlignment)
    }

    func give(_ p: UnsafeMutableRawPointer, _ size: Int) {
        let a = UInt(bitPattern: p)
        let kept = free.withLock { m -> Bool in
            guard m[size, default: []].count < keep else { return false }
            m[size, default: []].append(a)
            return true
        }
        if !kept { p.deallocate() }
    }
}
