/// The sequential detector of one open file: decides which blocks to prefetch after each read.
///
/// A read that starts where the previous one ended (give or take the kernel's reordering of async reads)
/// extends a streak; each such read doubles the window, up to `maximum`. Anything else is random access and
/// switches prefetch off until a new streak builds.
package struct ReadAhead: Sendable {
    package var initialWindow: Int64
    package var maximumWindow: Int64
    private var expected: Int64 = -1
    private var window: Int64 = 0

    package init(initialWindow: Int64, maximumWindow: Int64) {
        self.initialWindow = initialWindow
        self.maximumWindow = maximumWindow
    }

    /// The current window in bytes (0 when prefetch is off).
    package var currentWindow: Int64 { window }

    /// Records a read; returns the block range to prefetch, if any.
    package mutating func record(offset: Int64, length: Int, blockSize: Int, objectSize: Int64) -> Range<Int64>? {
        let bs = Int64(blockSize)
        let sequential = expected >= 0 && abs(offset - expected) <= bs
        expected = offset + Int64(length)
        if offset == 0 && expected >= 0 && window == 0 {
            // A read from the start is the usual beginning of a streak: start small at once.
            window = initialWindow
        } else if sequential {
            window = window == 0 ? initialWindow : min(window * 2, maximumWindow)
        } else {
            window = 0
            return nil
        }
        // The whole window every time: the cache skips blocks already resident or in flight, and blocks the
        // prefetch budget refused last time are asked for again.
        let from = ((offset + Int64(length) + bs - 1) / bs) * bs
        let until = min(objectSize, offset + Int64(length) + window)
        guard until > from else { return nil }
        return (from / bs)..<((until + bs - 1) / bs)
    }
}
