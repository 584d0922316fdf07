import Platform

/// The AWS CLI's shared files: `~/.aws/config` (`AWS_CONFIG_FILE`) and `~/.aws/credentials`
/// (`AWS_SHARED_CREDENTIALS_FILE`), read the way the CLI reads them.
///
/// In the config file a profile is `[profile NAME]` (or `[default]`); in the credentials file it is `[NAME]`.
/// Where both files set a key for the same profile, the credentials file wins.
package struct AWSSharedConfig: Sendable {
    package var configPath: String
    package var credentialsPath: String
    /// Profiles of the config file, by name.
    package var config: [String: [String: String]]
    /// Profiles of the credentials file, by name.
    package var credentials: [String: [String: String]]

    /// Reads both files; a missing file is an empty one.
    package init(environment env: [String: String]) {
        let home = env.nonEmpty("HOME") ?? "/root"
        configPath = env.nonEmpty("AWS_CONFIG_FILE") ?? home + "/.aws/config"
        credentialsPath = env.nonEmpty("AWS_SHARED_CREDENTIALS_FILE") ?? home + "/.aws/credentials"
        credentials = readTextFile(credentialsPath).map { Self.parseINI($0) } ?? [:]
        var profiles: [String: [String: String]] = [:]
        let sections: [String: [String: String]] = readTextFile(configPath).map { Self.parseINI($0) } ?? [:]
        for (section, keys) in sections {
            if section == "default" {
                profiles["default"] = keys
            } else if section.hasPrefix("profile ") {
                profiles[String(section.dropFirst(8)).trimmingWhitespace()] = keys
            }
            // `[sso-session …]` and `[services …]` sections are not profiles.
        }
        config = profiles
    }

    /// Whether either file has the profile.
    package func has(_ name: String) -> Bool { config[name] != nil || credentials[name] != nil }

    /// The profile's keys from both files, the credentials file winning.
    package func profile(_ name: String) -> [String: String] {
        (config[name] ?? [:]).merging(credentials[name] ?? [:]) { $1 }
    }

    /// The files as a message names them.
    package var paths: String { "\(credentialsPath) and \(configPath)" }

    /// Parses the INI dialect of the AWS files: `[name]` sections, `key = value` lines, `#`/`;` comments.
    /// Indented lines under a key with an empty value are that key's sub-settings (`s3 =` then
    /// `  max_concurrent_requests = 20`) and are skipped, so they do not pass for profile keys.
    package static func parseINI(_ text: String) -> [String: [String: String]] {
        var result: [String: [String: String]] = [:]
        var current: String?
        var nested = false
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if nested, rawLine.first == " " || rawLine.first == "\t" { continue }
            nested = false
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = String(line.dropFirst().dropLast()).trimmingWhitespace()
                current = name
                result[name, default: [:]] = result[name] ?? [:]
                continue
            }
            guard let section = current, let eq = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<eq]).trimmingWhitespace().lowercased()
            let value = String(line[line.index(after: eq)...]).trimmingWhitespace()
            if value.isEmpty { nested = true }
            result[section, default: [:]][key] = value
        }
        return result
    }
}
