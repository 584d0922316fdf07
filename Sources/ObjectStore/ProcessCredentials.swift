import Platform

/// `credential_process` in a profile: a command that prints a JSON credentials document (Version 1).
package struct ProcessCredentials: CredentialFetching {
    package var command: String
    package var profile: String
    package var environment: [String: String]

    package init(command: String, profile: String, environment: [String: String]) {
        self.command = command
        self.profile = profile
        self.environment = environment
    }

    /// What messages call this source (the command itself may hold arguments, so only its program is named).
    package var name: String { "credential_process of profile '\(profile)' (\(command.split(separator: " ").first ?? ""))" }

    /// Runs the command and reads its output; its stderr goes into the error when it fails.
    package func fetch() throws(ObjectStoreError) -> Credentials {
        let outcome: ProcessOutcome
        switch runShellCommand(command, environment: environment, timeoutSeconds: 60) {
        case .success(let o): outcome = o
        case .failure(let e): throw .configuration("\(name) cannot be started: \(e)")
        }
        if outcome.timedOut { throw .configuration("\(name) did not finish within 60 s and was killed") }
        guard outcome.exitStatus == 0 else {
            let status = outcome.exitStatus.map { "exited with status \($0)" } ?? "was killed by a signal"
            let why = CredentialHTTP.reason(outcome.stderr)
            throw .configuration("\(name) \(status)\(why.isEmpty ? "" : ": \(why)")")
        }
        let doc = try CredentialHTTP.decode(outcome.stdout, source: name)
        guard doc.version == 1 else { throw .configuration("\(name) printed a document without \"Version\": 1") }
        return try doc.credentials(from: name)
    }
}
