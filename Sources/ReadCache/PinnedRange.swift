/// Bytes of one read, held in up to two cache blocks that stay pinned until `BlockCache.release`.
///
/// A read never exceeds one block, so it touches at most two; two inline segments mean a cache hit
/// allocates nothing.
package struct PinnedRange: @unchecked Sendable {
    package internal(set) var segmentCount = 0
    var slots: (Int32, Int32) = (-1, -1)
    package internal(set) var first: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    package internal(set) var second: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    /// Set when the bytes live in a buffer of their own (a read of part of a disk-tier block); given back by
    /// `BlockCache.release`.
    var privateBuffer: UnsafeMutableRawBufferPointer?

    package init() {}

    package var count: Int { first.count + second.count }

    /// Copies the bytes out (tests and small callers; the FUSE path replies from the segments directly).
    package func copyBytes() -> [UInt8] {
        Array(first) + Array(second)
    }
}
