import ArgumentParser
import Logging
import Platform
import ObjectStore

#if canImport(Glibc)
import Glibc
#endif

/// The `lakecache` command: mount S3 buckets as a cached local filesystem and manage the mounts.
@main
struct LakeCache: AsyncParsableCommand {
    static let version = LakeCacheVersion.current

    static let configuration = CommandConfiguration(
        commandName: "lakecache",
        abstract: "Mount S3-compatible buckets as a local filesystem with a memory and NVMe cache.",
        discussion: """
            Credentials come from the AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, web identity \
            (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), the profile in ~/.aws/credentials and ~/.aws/config \
            (--profile, AWS_PROFILE; roles, credential_process), the container endpoint, then EC2 instance \
            metadata; temporary credentials are refreshed before they expire. TLS is always verified; \
            AWS_CA_BUNDLE names a custom CA.
            """,
        version: version,
        subcommands: [MountCommand.self, UnmountCommand.self, StatusCommand.self, FlushCommand.self, LinksCommand.self, ReloadCommand.self, SyncCommand.self, WarmupCommand.self, JobsCommand.self, PinCommand.self, UnpinCommand.self]
    )
}

/// A failure the CLI reports as one line on stderr, with a specific exit status.
struct CLIFailure: Error, CustomStringConvertible {
    var message: String
    var exitCode: Int32 = 1
    var description: String { message }

    /// Prints `lakecache: MESSAGE` and exits with the failure's status.
    func exit(command: String) -> Never {
        toStderr("lakecache \(command): \(message)\n")
        Glibc.exit(exitCode)
    }

    static func notImplemented(_ what: String) -> CLIFailure {
        CLIFailure(message: "\(what) is not implemented yet in this build", exitCode: 2)
    }
}

/// `--log-level` values, mapped onto swift-log.
enum LogLevelOption: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
    var level: Logger.Level { Logger.Level(rawValue: rawValue)! }
}

/// Sets up swift-log to write to stderr at `level`; called once per process.
func bootstrapLogging(_ level: LogLevelOption) {
    let journal = JournalLogHandler.stderrIsJournal(getenv("JOURNAL_STREAM").map { String(cString: $0) })
    LoggingSystem.bootstrap { label in
        if journal {
            var handler = JournalLogHandler(label: label)
            handler.logLevel = level.level
            return handler
        }
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level.level
        return handler
    }
}
