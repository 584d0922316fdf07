#if canImport(Glibc)
import Platform
import Glibc
#endif

/// AWS credentials. The secret and token never appear in `description`, so logging one is safe.
package struct Credentials: Sendable, Equatable, CustomStringConvertible {
    package var accessKeyID: String
    package var secretAccessKey: String
    package var sessionToken: String?

    package init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    package var description: String {
        "Credentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>\(sessionToken == nil ? "" : ", sessionToken: <redacted>"))"
    }
}

/// Where credentials come from, in the order the AWS CLI uses: environment, then the shared credentials file.
package enum CredentialSource {
    /// Resolves credentials; nil with `anonymous`. Throws a configuration error naming the file or variable to fix.
    package static func resolve(
        profile: String?, anonymous: Bool, environment: [String: String]
    ) throws(ObjectStoreError) -> Credentials? {
        if anonymous { return nil }
        let env = environment
        if profile == nil, let id = env["AWS_ACCESS_KEY_ID"], !id.isEmpty {
            guard let secret = env["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
                throw .configuration("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both, or use --profile")
            }
            let token = env["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
        }
        let name = profile ?? env["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        let path = env["AWS_SHARED_CREDENTIALS_FILE"] ?? ((env["HOME"] ?? "/root") + "/.aws/credentials")
        guard let text = readTextFile(path) else {
            if profile != nil || env["AWS_PROFILE"] != nil {
                throw .configuration("profile '\(name)' requested but the credentials file \(path) cannot be read; create it or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
            }
            throw .configuration("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, write \(path), or pass --no-sign-request for a public bucket")
        }
        let sections = parseINI(text)
        guard let section = sections[name] else {
            throw .configuration("profile '\(name)' not found in \(path); add a [\(name)] section or choose another with --profile")
        }
        guard let id = section["aws_access_key_id"], let secret = section["aws_secret_access_key"] else {
            throw .configuration("profile '\(name)' in \(path) lacks aws_access_key_id or aws_secret_access_key")
        }
        return Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: section["aws_session_token"])
    }

    /// Parses the INI dialect of ~/.aws/credentials: `[name]` sections, `key = value` lines, `#`/`;` comments.
    package static func parseINI(_ text: String) -> [String: [String: String]] {
        var result: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                var name = String(line.dropFirst().dropLast()).trimmingWhitespace()
                if name.hasPrefix("profile ") { name = String(name.dropFirst(8)).trimmingWhitespace() }
                current = name
                result[name, default: [:]] = result[name] ?? [:]
                continue
            }
            guard let section = current, let eq = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<eq]).trimmingWhitespace().lowercased()
            let value = String(line[line.index(after: eq)...]).trimmingWhitespace()
            result[section, default: [:]][key] = value
        }
        return result
    }
}

