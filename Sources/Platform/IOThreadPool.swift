import CLinux
import DequeModule
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A few dedicated threads for blocking disk work (disk-tier `pread`/`pwrite`, reading and hashing upload
/// parts), so neither FUSE workers nor the network thread ever wait on the NVMe device, and the cooperative
/// pool is never blocked.
package final class IOThreadPool: @unchecked Sendable {
    /// Jobs carry raw buffers between threads by design; the pool hands each to exactly one thread.
    private struct Job: @unchecked Sendable { let run: () -> Void }
    private let jobs = Locked(Deque<Job>())
    private let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    private let stopping = Atomic<Bool>(false)
    private var threads: [pthread_t] = []
    package let queued = Atomic<Int>(0)

    private let niceness: Int32

    /// Starts `count` threads; a positive `niceness` lowers their CPU priority (see `setpriority(2)`), so
    /// their work takes the CPU the application leaves idle first.
    package init(threads count: Int, name: String, niceness: Int32 = 0) {
        self.niceness = niceness
        sem_init(semaphore, 0, 0)
        for _ in 0..<max(1, count) {
            var t = pthread_t()
            let box = Unmanaged.passRetained(self).toOpaque()
            let rc = pthread_create(&t, nil, { arg in
                let pool = Unmanaged<IOThreadPool>.fromOpaque(arg!).takeRetainedValue()
                if pool.niceness != 0 { _ = CLinux_set_thread_niceness(pool.niceness) }
                pool.work()
                return nil
            }, box)
            precondition(rc == 0, "cannot start \(name) thread: \(rc)")
            threads.append(t)
        }
    }

    /// Runs `job` on a pool thread.
    package func submit(_ job: @escaping () -> Void) {
        let item = Job(run: job)
        jobs.withLock { $0.append(item) }
        queued.add(1, ordering: .relaxed)
        sem_post(semaphore)
    }

    /// Finishes queued jobs, then stops the threads.
    package func shutdown() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for _ in threads { sem_post(semaphore) }
        for t in threads { pthread_join(t, nil) }
    }

    private func work() {
        while true {
            while sem_wait(semaphore) != 0 && errno == EINTR {}
            if let job = jobs.withLock({ $0.popFirst() }) {
                queued.subtract(1, ordering: .relaxed)
                job.run()
            } else if stopping.load(ordering: .acquiring) {
                return
            }
        }
    }
}
