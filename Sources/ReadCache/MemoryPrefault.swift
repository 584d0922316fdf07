import Platform
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Commits the memory tier's pages once, in the background, in the order slots are first handed out, so a
/// cold read never pays for the first touch of a fresh slot (a page fault and the kernel zeroing the page:
/// a quarter to a third of the daemon's CPU on a cold read of a fresh mount).
///
/// It runs at the lowest CPU priority, a chunk at a time, only once the cache has served no read (hit or
/// miss) and started no fill (for a read, a prefetch or a warmup) for a second, counting from the mount (a
/// fill touches its own slot anyway, and committing pages no read needs yet takes CPU from the reads that
/// are running, warm ones included: on two cores, a small-file epoch started at once after the mount shared
/// them with the commit of a 2 GiB tier), and stops when the cache goes. The pages it commits
/// count towards RSS, as they would once reads had used every slot; `--memory-cache` bounds them either way.
final class MemoryPrefault: @unchecked Sendable {
    /// One `madvise` call's span: short enough that stopping waits for little.
    static let chunk = 16 << 20
    /// `MADV_POPULATE_WRITE` (Linux 5.14): faults the range in writable without touching it from user space.
    private static let populateWrite: Int32 = 23

    /// How often the idle check runs (and `cancel` is heard) while committing waits.
    static let tick: UInt32 = 100_000
    /// Time with no read and no fill started before committing goes on, also after the mount: a second, so
    /// that the LISTs and lookups that start a workload, which read no block yet, are not taken for idle time.
    static let quiet: Duration = .seconds(1)
    private let thread: IOThreadPool
    private let stop = Atomic<Bool>(false)
    private let demand = Atomic<Int>(0)
    /// Bytes committed so far.
    let committed = Atomic<Int>(0)

    /// A read (hit or miss) or a fill: committing pauses.
    @inline(__always) func noteDemand() { demand.add(1, ordering: .relaxed) }

    /// Reads and fills noted so far.
    var demandCount: Int { demand.load(ordering: .relaxed) }

    /// Starts committing `regions` (base and length, in the order slots are taken), taking from each in
    /// proportion to its size.
    init(regions: [(base: UnsafeMutableRawPointer, length: Int)]) {
        thread = IOThreadPool(threads: 1, name: "memory-prefault", niceness: 19)
        let total = regions.reduce(0) { $0 + $1.length }
        thread.submit { [self] in
            var done = regions.map { _ in 0 }
            // The mount counts as demand: the workload that usually follows it at once starts with LISTs
            // and lookups, not block reads.
            var gate = PrefaultGate(quiet: Self.quiet, demand: demand.load(ordering: .relaxed), start: .now)
            while !stop.load(ordering: .relaxed) {
                guard gate.mayCommit(demand: demand.load(ordering: .relaxed), now: .now) else {
                    usleep(Self.tick)
                    continue
                }
                var progressed = false
                for (i, r) in regions.enumerated() where done[i] < r.length {
                    // Each round takes a chunk of the largest region and a proportional share of the others.
                    let share = max(Self.page, Self.chunk * r.length / max(total, 1) / Self.page * Self.page)
                    let n = min(share, r.length - done[i])
                    guard Self.commit(r.base + done[i], n) else { return }
                    done[i] += n
                    committed.add(n, ordering: .relaxed)
                    progressed = true
                }
                if !progressed { return }
            }
        }
    }

    /// Stops after the chunk in progress and waits for the thread.
    func cancel() {
        stop.store(true, ordering: .relaxed)
        thread.shutdown()
    }

    /// Commits a range; true when the kernel did it. Without `MADV_POPULATE_WRITE` (before 5.14) nothing is
    /// done: touching the pages from here would race with fills writing into the same slots.
    private static func commit(_ base: UnsafeMutableRawPointer, _ length: Int) -> Bool {
        madvise(base, length, populateWrite) == 0
    }

    private static let page = Int(sysconf(Int32(_SC_PAGESIZE)))
}
