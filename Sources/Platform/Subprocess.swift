import CSpawn
#if canImport(Glibc)
import Glibc
#endif

/// What a finished child process printed and how it ended.
package struct ProcessOutcome: Sendable {
    /// The exit status, or nil when a signal ended it (or it was killed at the deadline).
    package var exitStatus: Int32?
    package var stdout: [UInt8]
    package var stderr: [UInt8]
    /// The deadline passed and the child was killed.
    package var timedOut: Bool
}

/// Runs `/bin/sh -c command` with stdin from /dev/null, collects at most `limit` bytes of each output, and
/// kills it after `timeoutSeconds`. Fails with the errno when the process cannot be started.
package func runShellCommand(_ command: String, environment: [String: String], timeoutSeconds: Double, limit: Int = 1 << 20) -> Result<ProcessOutcome, Errno> {
    var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
    guard pipe(&out) == 0 else { return .failure(Errno(errno)) }
    guard pipe(&err) == 0 else {
        let e = errno
        close(out[0]); close(out[1])
        return .failure(Errno(e))
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, out[1], 1)
    posix_spawn_file_actions_adddup2(&actions, err[1], 2)
    CSpawn_file_actions_addclosefrom(&actions, 3)
    // Our ends must not leak into children other threads spawn meanwhile.
    for fd in [out[0], err[0]] { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    let words: [String] = ["/bin/sh", "-c", command]
    let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for p in argv { free(p) }
        for p in envp { free(p) }
    }
    var pid = pid_t()
    let rc = posix_spawn(&pid, "/bin/sh", &actions, nil, argv, envp)
    close(out[1])
    close(err[1])
    guard rc == 0 else {
        close(out[0]); close(err[0])
        return .failure(Errno(rc))
    }
    var outcome = ProcessOutcome(exitStatus: nil, stdout: [], stderr: [], timedOut: false)
    let deadline = monotonicSeconds() + timeoutSeconds
    var fds = [pollfd(fd: out[0], events: Int16(POLLIN), revents: 0), pollfd(fd: err[0], events: Int16(POLLIN), revents: 0)]
    var open = 2
    var buffer = [UInt8](repeating: 0, count: 16 << 10)
    while open > 0 {
        let left = deadline - monotonicSeconds()
        if left <= 0 {
            outcome.timedOut = true
            kill(pid, SIGKILL)
            break
        }
        let n = poll(&fds, 2, Int32(min(left * 1000, 1000)) + 1)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { continue }
        for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
            let result = buffer.withUnsafeMutableBytes { Syscall.read(fds[i].fd, $0.baseAddress!, $0.count) }
            guard case .success(let got) = result, got > 0 else {
                Syscall.close(fds[i].fd)
                fds[i].fd = -1
                open -= 1
                continue
            }
            if i == 0 {
                if outcome.stdout.count < limit { outcome.stdout += buffer[0..<min(got, limit - outcome.stdout.count)] }
            } else if outcome.stderr.count < limit {
                outcome.stderr += buffer[0..<min(got, limit - outcome.stderr.count)]
            }
        }
    }
    for f in fds where f.fd >= 0 { Syscall.close(f.fd) }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    if !outcome.timedOut && (status & 0x7f) == 0 { outcome.exitStatus = (status >> 8) & 0xff }
    return .success(outcome)
}
