#if canImport(Glibc)
import Glibc
#endif

/// A value behind a mutex that sleeps at once when contended, for state the FUSE threads share.
///
/// The standard library's `Mutex` spins up to 1,000 times (with `pause`, some tens of microseconds on x86)
/// before it blocks on a priority-inheriting futex. With sixteen FUSE threads, the daemon's other threads and
/// the application's on two cores, the holder is often not running, and that spinning took a fifth of all CPU
/// time in a cold small-file epoch (`perf`, 8 reader threads). glibc's plain mutex blocks on the first failed
/// attempt instead, so a waiter gives its core to the holder. Same `withLock` shape as `Mutex`. It costs two
/// allocations, so a lock made per operation and hardly ever contended (a read's join) stays a `Mutex`.
package final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    /// A lock around `value`.
    package init(_ value: Value) {
        self.value = value
        mutex = UnsafeMutablePointer.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        // A default (normal) mutex: no error checks, no spinning, no priority inheritance.
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value, holding the lock.
    @inline(__always)
    package func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
