import CSpawn
import Control
import Platform

#if canImport(Glibc)
import Glibc
#endif

/// The parent half of `mount` without --foreground: starts the daemon and relays its readiness.
enum Daemonizer {
    /// Spawns this binary again with `--daemon-ready-fd 3` and waits for "ok" or an error line on that pipe.
    static func spawnAndWait() -> Int32 {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            CLIFailure(message: "cannot create a pipe: \(Errno(errno))").exit(command: "mount")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Close the read end first: if pipe() returned 3 and 4, the dup2 below puts the write end on 3.
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // The daemon outlives us: it must not hold on to descriptors it never asked for.
        CSpawn_file_actions_addclosefrom(&actions, 4)
        let args = Array(CommandLine.arguments.dropFirst()) + ["--daemon-ready-fd", "3"]
        let argv = (["lakecache"] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, "/proc/self/exe", &actions, nil, argv, environ)
        close(fds[1])
        guard rc == 0 else {
            CLIFailure(message: "cannot start the daemon: \(Errno(rc))").exit(command: "mount")
        }
        let line = readLine(fds[0])
        close(fds[0])
        if line == "ok" { return 0 }
        if line.hasPrefix("error ") {
            let rest = line.dropFirst(6)
            let code = Int32(rest.prefix { $0 != " " }) ?? 1
            let message = String(rest.drop { $0 != " " }.dropFirst())
            CLIFailure(message: message, exitCode: code).exit(command: "mount")
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        CLIFailure(message: "the daemon exited before the mount was live (status \(status)); run with --foreground to see its log").exit(command: "mount")
    }

    /// Reports a failure to the waiting parent (or stderr in the foreground) and exits.
    static func report(_ failure: CLIFailure, to fd: Int32?) -> Never {
        if let fd {
            var line = "error \(failure.exitCode) \(failure.message.replacingNewlines())\n"
            _ = line.withUTF8 { write(fd, $0.baseAddress, $0.count) }
            Glibc.exit(failure.exitCode)
        }
        failure.exit(command: "mount")
    }

    /// Tells the parent the mount is live, then sends this daemon's output to its log file.
    static func signalReady(_ fd: Int32, logFile: String) {
        let log = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if log >= 0 {
            dup2(log, 1)
            dup2(log, 2)
            close(log)
        }
        var line = "ok\n"
        _ = line.withUTF8 { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}

extension String {
    func replacingNewlines() -> String { String(map { $0 == "\n" ? " " : $0 }) }
}

