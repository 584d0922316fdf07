#if canImport(Glibc)
import Glibc
#endif

/// The write end of the self-pipe the signal handler writes to (set once, before handlers are installed).
nonisolated(unsafe) private var signalPipeWrite: Int32 = -1

/// Turns SIGTERM, SIGINT and SIGHUP into a call on a dedicated thread.
///
/// libfuse's own handlers only set an exit flag, which a multithreaded loop notices at its next request;
/// an idle mount would ignore `systemctl stop`. The handler here writes one byte to a pipe (async-signal
/// safe), and the watcher thread runs `onSignal` (the daemon unmounts the kernel side, which ends the loop).
enum SignalWatcher {
    static func install(_ onSignal: @escaping (Int32) -> Void) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        signalPipeWrite = fds[1]
        let readEnd = fds[0]
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                var byte = UInt8(truncatingIfNeeded: sig)
                _ = write(signalPipeWrite, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(sig, &action, nil)
        }
        signal(SIGPIPE, SIG_IGN)
        startDetachedThread {
            var byte: UInt8 = 0
            while true {
                let n = read(readEnd, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                onSignal(Int32(byte))
            }
        }
    }
}

import Platform
import ObjectStore
