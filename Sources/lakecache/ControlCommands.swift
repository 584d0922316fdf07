import ArgumentParser

/// `lakecache unmount MOUNTPOINT [--force]`.
struct UnmountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmount", abstract: "Unmount, waiting for pending uploads unless --force.")
    @Argument(help: "The mountpoint.") var mountpoint: String
    @Flag(help: "Unmount at once; pending uploads stay journaled for the next start.") var force = false

    func run() async throws { CLIFailure.notImplemented("unmount").exit(command: "unmount") }
}

/// `lakecache status [MOUNTPOINT] [--json]`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show cache, backend and upload state of a mount.")
    @Argument(help: "The mountpoint (default: every lakecache mount).") var mountpoint: String?
    @Flag(help: "Print JSON.") var json = false

    func run() async throws { CLIFailure.notImplemented("status").exit(command: "status") }
}

/// `lakecache flush PATH... [--timeout SECONDS]`.
struct FlushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flush", abstract: "Wait until every pending upload under PATH is durable in the bucket.")
    @Argument(help: "Files or directories inside a mount.") var paths: [String]
    @Option(help: "Give up after this many seconds.") var timeout: Double?

    func run() async throws { CLIFailure.notImplemented("flush").exit(command: "flush") }
}
