import Platform
import CLinux
import DequeModule
import MD5Lanes
import Synchronization

/// MD5 of several buffers at once: up to eight advance side by side in SIMD lanes on one thread.
///
/// An upload keeps several parts in flight, and MD5 is the costliest step of sending one (OpenSSL's runs at
/// about 600 MB/s per core and cannot be split within a buffer). Eight lanes hashed together measured
/// 3.4 GB/s on one core of the test machine. A buffer submitted while others are being hashed takes a free
/// lane at the next chunk boundary, so parts that arrive one after another still share the work. A buffer
/// alone in the hasher runs the one-lane kernel. Without AVX2 every buffer goes to libcrypto instead.
package final class LaneHasher: Sendable {
    /// Whether the lane kernels can run on this CPU.
    package static let lanesAvailable = CLinux_cpu_has_avx2() != 0

    /// Blocks (64 bytes) a lane advances between looks at the queue: small enough that a newcomer waits
    /// little, large enough that the bookkeeping is noise.
    static let chunkBlocks = 1024

    private struct Job: @unchecked Sendable {
        var bytes: UnsafeRawBufferPointer
        var done: @Sendable ([UInt8]) -> Void
    }

    private struct Queue {
        var pending = Deque<Job>()
        var draining = false
    }

    private let queue = Locked(Queue())
    private let thread: IOThreadPool
    private let useLanes: Bool

    /// - Parameters:
    ///   - niceness: the hashing thread's niceness; uploads hash at a low priority so writers keep the CPU.
    ///   - lanes: false forces libcrypto (tests compare the two).
    package init(name: String, niceness: Int32 = 0, lanes: Bool = LaneHasher.lanesAvailable) {
        thread = IOThreadPool(threads: 1, name: name, niceness: niceness)
        useLanes = lanes && Self.lanesAvailable
    }

    /// Hashes `bytes`, which must stay valid and unchanged until `done` runs (on the hashing thread).
    package func md5(_ bytes: UnsafeRawBufferPointer, done: @escaping @Sendable ([UInt8]) -> Void) {
        let start = queue.withLock { q -> Bool in
            q.pending.append(Job(bytes: bytes, done: done))
            if q.draining { return false }
            q.draining = true
            return true
        }
        if start { thread.submit { [self] in drain() } }
    }

    /// Hashes `bytes` and returns its MD5.
    package func md5(_ bytes: UnsafeRawBufferPointer) async -> [UInt8] {
        await withCheckedContinuation { c in md5(bytes) { c.resume(returning: $0) } }
    }

    /// Runs until the queue is empty and every lane finished.
    private func drain() {
        guard useLanes else {
            while let job = queue.withLock({ q -> Job? in
                if let j = q.pending.popFirst() { return j }
                q.draining = false
                return nil
            }) {
                job.done(Digest.md5(job.bytes))
            }
            return
        }
        var lanes = LaneSet()
        defer { lanes.deallocate() }
        while true {
            let more = queue.withLock { q -> Bool in
                while lanes.hasFreeLane, let j = q.pending.popFirst() { lanes.add(j.bytes, j.done) }
                if lanes.isEmpty { q.draining = false }
                return !lanes.isEmpty
            }
            guard more else { return }
            lanes.finishCompleted()  // buffers shorter than a block
            lanes.advance(maxBlocks: Self.chunkBlocks)
            lanes.finishCompleted()
        }
    }
}
