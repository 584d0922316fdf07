import Platform
import CCurl
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Connection and timeout settings for the HTTP transport.
package struct TransportOptions: Sendable {
    /// Transfers running at once; more wait in a queue.
    package var maxConcurrentTransfers = 64
    package var connectTimeoutMilliseconds = 10_000
    /// A transfer slower than `lowSpeedLimitBytes` per second for `lowSpeedTimeSeconds` is abandoned (and retried).
    package var lowSpeedLimitBytes = 1
    package var lowSpeedTimeSeconds = 30
    /// libcurl's per-transfer receive and send buffers.
    package var receiveBufferBytes = 512 << 10
    package var sendBufferBytes = 512 << 10
    /// CA bundle path (`AWS_CA_BUNDLE`); nil uses the system store. Verification is always on.
    package var caBundle: String?

    package init() {}
}

/// Runs HTTP transfers on a libcurl multi handle driven by one dedicated thread.
///
/// Other threads hand transfers in through a locked queue and `curl_multi_wakeup`; completions run on the
/// network thread. Connections are pooled by the multi handle and reused across transfers.
package final class CurlTransport: @unchecked Sendable {
    private struct Incoming {
        var ready: [CurlTransfer] = []
        var delayed: [(deadline: UInt64, transfer: CurlTransfer)] = []
        var stopping = false
    }

    private let options: TransportOptions
    private let multi: UnsafeMutableRawPointer
    private let incoming = Locked(Incoming())
    private let activeCount = Atomic<Int>(0)
    private var thread = pthread_t()
    private let stopped = Locked(false)

    // Network-thread state.
    private var waiting: [CurlTransfer] = []
    private var waitingHead = 0
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    private var idleHandles: [UnsafeMutableRawPointer] = []

    private static let globalInit: Bool = {
        curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK
    }()

    package init(options: TransportOptions) {
        precondition(Self.globalInit, "curl_global_init failed")
        self.options = options
        guard let m = curl_multi_init() else { fatalError("curl_multi_init failed: out of memory") }
        multi = m
        _ = CCurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, options.maxConcurrentTransfers * 2)
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            let me = Unmanaged<CurlTransport>.fromOpaque(arg!).takeRetainedValue()
            me.run()
            return nil
        }, box)
        precondition(rc == 0, "cannot start the network thread: \(Errno(rc))")
    }

    /// Transfers currently on the wire (not queued).
    package var transfersInFlight: Int { activeCount.load(ordering: .relaxed) }

    /// Queues `request`; `completion` runs on the network thread, possibly after `delayNanoseconds`.
    package func submit(
        _ request: HTTPRequest, sink: ResponseSink, delayNanoseconds: UInt64 = 0,
        completion: @escaping (Result<HTTPResponse, TransportFailure>) -> Void
    ) {
        let transfer = CurlTransfer(request: request, sink: sink, completion: completion)
        let accepted = incoming.withLock { state -> Bool in
            if state.stopping { return false }
            if delayNanoseconds == 0 {
                state.ready.append(transfer)
            } else {
                state.delayed.append((Self.now() + delayNanoseconds, transfer))
            }
            return true
        }
        guard accepted else {
            completion(.failure(TransportFailure(curlCode: -1, message: "the HTTP client is shut down", overflow: false)))
            return
        }
        curl_multi_wakeup(multi)
    }

    /// Stops the network thread; queued and running transfers fail as cancelled. Waits for the thread.
    package func shutdown() {
        let first = stopped.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        incoming.withLock { $0.stopping = true }
        curl_multi_wakeup(multi)
        pthread_join(thread, nil)
    }

    private static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    private func run() {
        var stillRunning: Int32 = 0
        while true {
            let (stopping, nextDeadline) = takeIncoming()
            if stopping { break }
            startWaiting()
            curl_multi_perform(multi, &stillRunning)
            reapFinished()
            startWaiting()
            var timeout: Int32 = 1000
            if let deadline = nextDeadline {
                let now = Self.now()
                timeout = deadline <= now ? 0 : Int32(min(UInt64(1000), (deadline - now) / 1_000_000 + 1))
            }
            curl_multi_poll(multi, nil, 0, timeout, nil)
        }
        cancelAll()
    }

    /// Moves newly submitted and due delayed transfers to the waiting queue.
    private func takeIncoming() -> (Bool, UInt64?) {
        let now = Self.now()
        return incoming.withLock { state in
            waiting.append(contentsOf: state.ready)
            state.ready.removeAll(keepingCapacity: true)
            var next: UInt64?
            if !state.delayed.isEmpty {
                var keep: [(deadline: UInt64, transfer: CurlTransfer)] = []
                for item in state.delayed {
                    if item.deadline <= now {
                        waiting.append(item.transfer)
                    } else {
                        keep.append(item)
                        next = min(next ?? item.deadline, item.deadline)
                    }
                }
                state.delayed = keep
            }
            return (state.stopping, next)
        }
    }

    private func startWaiting() {
        while active.count < options.maxConcurrentTransfers && waitingHead < waiting.count {
            let transfer = waiting[waitingHead]
            waitingHead += 1
            let easy: UnsafeMutableRawPointer
            if let reused = idleHandles.popLast() {
                curl_easy_reset(reused)
                easy = reused
            } else {
                guard let fresh = curl_easy_init() else {
                    transfer.completion(.failure(TransportFailure(curlCode: -1, message: "curl_easy_init failed", overflow: false)))
                    continue
                }
                easy = fresh
            }
            transfer.configure(easy, options: options)
            active[easy] = transfer
            curl_multi_add_handle(multi, easy)
        }
        if waitingHead == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingHead = 0
        } else if waitingHead > 1024 {
            waiting.removeFirst(waitingHead)
            waitingHead = 0
        }
        activeCount.store(active.count, ordering: .relaxed)
    }

    private func reapFinished() {
        var queued: Int32 = 0
        while let msg = curl_multi_info_read(multi, &queued) {
            guard CCurl_msg_kind(msg) == CURLMSG_DONE, let easy = CCurl_msg_easy(msg) else { continue }
            let code = CCurl_msg_result(msg)
            curl_multi_remove_handle(multi, easy)
            guard let transfer = active.removeValue(forKey: easy) else { continue }
            idleHandles.append(easy)
            var firstByte: curl_off_t = 0, total: curl_off_t = 0
            _ = CCurl_easy_getinfo_off(easy, CURLINFO_STARTTRANSFER_TIME_T, &firstByte)
            _ = CCurl_easy_getinfo_off(easy, CURLINFO_TOTAL_TIME_T, &total)
            transfer.timing = HTTPTiming(firstByteMicroseconds: Int64(firstByte), totalMicroseconds: Int64(total))
            transfer.finish(code: code)
        }
        activeCount.store(active.count, ordering: .relaxed)
    }

    private func cancelAll() {
        let cancelled = TransportFailure(curlCode: -1, message: "the HTTP client is shutting down", overflow: false)
        for (easy, transfer) in active {
            curl_multi_remove_handle(multi, easy)
            curl_easy_cleanup(easy)
            transfer.completion(.failure(cancelled))
        }
        active.removeAll()
        let leftovers = incoming.withLock { state -> [CurlTransfer] in
            defer {
                state.ready.removeAll()
                state.delayed.removeAll()
            }
            return state.ready + state.delayed.map(\.transfer)
        }
        for transfer in waiting[waitingHead...] + leftovers { transfer.completion(.failure(cancelled)) }
        waiting.removeAll()
        for easy in idleHandles { curl_easy_cleanup(easy) }
        idleHandles.removeAll()
        curl_multi_cleanup(multi)
    }
}
