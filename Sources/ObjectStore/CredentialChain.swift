import Logging
import Platform
import Synchronization

/// Finds the credentials a mount signs with, in the order the AWS SDKs search:
///
/// 1. `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (`AWS_SESSION_TOKEN`);
/// 2. web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, exchanged at STS (EKS IRSA);
/// 3. the profile (`--profile`, `AWS_PROFILE`, else `default`) in the shared config and credentials files:
///    static keys, `role_arn` with `source_profile`, `credential_source` or `web_identity_token_file`
///    (STS AssumeRole), or `credential_process`;
/// 4. the container endpoint (ECS task roles, EKS Pod Identity);
/// 5. the EC2 instance metadata service (IMDSv2).
///
/// An explicit profile skips 1 and 2, as the AWS CLI's `--profile` does. The first source that is
/// configured is used; if it then fails, the error names it rather than falling through to the next, so a
/// broken role is not silently replaced by an instance's own. Only when nothing is configured does the
/// error list every source tried and why each did not apply. No message carries a secret.
package enum CredentialChain {
    /// Live providers by the settings that chose them: links that share a profile share one provider (and one
    /// refresh thread). Weak, so a provider goes with the last client that uses it.
    private static let providers = Locked<[String: WeakProvider]>([:])

    private final class WeakProvider: @unchecked Sendable {
        weak var provider: CredentialProvider?
        init(_ p: CredentialProvider) { provider = p }
    }

    /// Resolves and fetches credentials; nil with `anonymous`. `region` is where STS calls go.
    package static func resolve(
        profile: String?, region: String, anonymous: Bool, environment: [String: String]
    ) throws(ObjectStoreError) -> CredentialProvider? {
        if anonymous { return nil }
        let key = ([profile ?? "", region] + environment.filter { $0.key.hasPrefix("AWS_") || $0.key == "HOME" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
            .joined(separator: "\u{1}")
        if let existing = providers.withLock({ $0[key]?.provider }) { return existing }
        let provider = try choose(profile: profile, region: region, environment: environment)
        try provider.start()
        providers.withLock { all in
            all = all.filter { $0.value.provider != nil }
            all[key] = WeakProvider(provider)
        }
        return provider
    }

    /// Picks the source without fetching (except the instance metadata probe, which is the only way to
    /// know whether that source exists).
    static func choose(profile: String?, region: String, environment env: [String: String]) throws(ObjectStoreError) -> CredentialProvider {
        var tried: [String] = []
        if profile == nil {
            if let p = try environmentKeys(env) { return p }
            tried.append("environment variables: AWS_ACCESS_KEY_ID is not set")
            if let tokenFile = env.nonEmpty("AWS_WEB_IDENTITY_TOKEN_FILE") {
                guard let role = env.nonEmpty("AWS_ROLE_ARN") else {
                    throw .configuration("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not; set the role to assume (EKS sets both for a service account with an IAM role)")
                }
                return webIdentity(tokenFile: tokenFile, role: role, sessionName: env.nonEmpty("AWS_ROLE_SESSION_NAME"), duration: nil, region: region, env: env, via: "AWS_WEB_IDENTITY_TOKEN_FILE")
            }
            tried.append("web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set")
        }
        let files = AWSSharedConfig(environment: env)
        let explicit = profile ?? env.nonEmpty("AWS_PROFILE")
        let name = explicit ?? "default"
        if files.has(name) {
            if let p = try fromProfile(name, files: files, region: region, env: env, visited: []) { return p }
            if explicit != nil {
                throw .configuration("profile '\(name)' in \(files.paths) has no credentials: give it aws_access_key_id and aws_secret_access_key, role_arn with source_profile, or credential_process")
            }
            tried.append("profile 'default': no credentials in \(files.paths)")
        } else {
            if explicit != nil {
                throw .configuration("profile '\(name)' not found in \(files.paths); add a [\(name)] section (in the config file, [profile \(name)]) or choose another with --profile")
            }
            tried.append("shared files: no [default] profile in \(files.paths)")
        }
        if let container = try ContainerCredentials(environment: env) {
            return CredentialProvider(container)
        }
        tried.append("container endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not set")
        if let imds = InstanceMetadataCredentials(environment: env) {
            let provider = CredentialProvider(imds)
            do {
                try provider.start()
                return provider
            } catch {
                tried.append(error.message)
            }
        } else {
            tried.append("instance metadata: disabled by AWS_EC2_METADATA_DISABLED")
        }
        let list = tried.enumerated().map { "\($0.offset + 1)) \($0.element)" }.joined(separator: "; ")
        throw .configuration("no AWS credentials found; tried \(list). Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, write a profile, run where a role is attached, or pass --no-sign-request for a public bucket")
    }

    private static func environmentKeys(_ env: [String: String]) throws(ObjectStoreError) -> CredentialProvider? {
        guard let id = env["AWS_ACCESS_KEY_ID"], !id.isEmpty else { return nil }
        guard let secret = env["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
            throw .configuration("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both, or use --profile")
        }
        let token = env.nonEmpty("AWS_SESSION_TOKEN")
        return CredentialProvider(static: Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token), source: "environment variables")
    }

    private static func sessionName(_ given: String?) -> String {
        given ?? "lakecache-\(wallClock().seconds)"
    }

    private static func webIdentity(
        tokenFile: String, role: String, sessionName given: String?, duration: Int?, region: String, env: [String: String], via: String
    ) -> CredentialProvider {
        let sts = STSCredentials(url: STSCredentials.endpoint(environment: env, region: region), region: region, caBundle: env.nonEmpty("AWS_CA_BUNDLE"))
        let session = sessionName(given)
        return CredentialProvider(source: "web identity (\(role), token \(tokenFile))") { () throws(ObjectStoreError) in
            // Read on every refresh: the kubelet rotates the projected token.
            guard let text = readTextFile(tokenFile) else {
                throw .configuration("web identity: the token file \(tokenFile) (\(via)) cannot be read")
            }
            return try sts.assumeRoleWithWebIdentity(roleARN: role, sessionName: session, token: text.trimmingWhitespace(), durationSeconds: duration)
        }
    }

    /// The provider a profile describes; nil when the profile holds no credential settings at all.
    private static func fromProfile(
        _ name: String, files: AWSSharedConfig, region: String, env: [String: String], visited: [String]
    ) throws(ObjectStoreError) -> CredentialProvider? {
        let p = files.profile(name)
        let duration: Int?
        if let d = p["duration_seconds"] {
            guard let n = Int(d), n > 0 else { throw .configuration("profile '\(name)': duration_seconds '\(d)' is not a positive number of seconds") }
            duration = n
        } else {
            duration = nil
        }
        // The profile's own region, if the caller has none of its own, is where its STS calls go.
        let stsRegion = p["region"] ?? region
        if let role = p["role_arn"] {
            if p["mfa_serial"] != nil {
                throw .configuration("profile '\(name)' needs an MFA code (mfa_serial), which a daemon cannot prompt for; use a profile without MFA or export temporary credentials")
            }
            if let tokenFile = p["web_identity_token_file"] {
                return webIdentity(tokenFile: tokenFile, role: role, sessionName: p["role_session_name"], duration: duration, region: stsRegion, env: env, via: "profile '\(name)'")
            }
            let base: CredentialProvider
            if let sourceName = p["source_profile"] {
                if sourceName == name {
                    guard let keys = staticKeys(p, name: name, files: files) else {
                        throw .configuration("profile '\(name)' is its own source_profile but has no aws_access_key_id and aws_secret_access_key")
                    }
                    base = keys
                } else {
                    guard !visited.contains(sourceName) else {
                        throw .configuration("profile '\(name)': source_profile '\(sourceName)' leads back to itself (\((visited + [name, sourceName]).joined(separator: " -> ")))")
                    }
                    guard files.has(sourceName) else { throw .configuration("profile '\(name)': source_profile '\(sourceName)' not found in \(files.paths)") }
                    guard let b = try fromProfile(sourceName, files: files, region: region, env: env, visited: visited + [name]) else {
                        throw .configuration("profile '\(name)': source_profile '\(sourceName)' has no credentials")
                    }
                    base = b
                }
            } else if let cs = p["credential_source"] {
                switch cs {
                case "Environment":
                    guard let e = try environmentKeys(env) else {
                        throw .configuration("profile '\(name)': credential_source = Environment but AWS_ACCESS_KEY_ID is not set")
                    }
                    base = e
                case "Ec2InstanceMetadata":
                    guard let imds = InstanceMetadataCredentials(environment: env) else {
                        throw .configuration("profile '\(name)': credential_source = Ec2InstanceMetadata but AWS_EC2_METADATA_DISABLED is set")
                    }
                    base = CredentialProvider(imds)
                case "EcsContainer":
                    guard let c = try ContainerCredentials(environment: env) else {
                        throw .configuration("profile '\(name)': credential_source = EcsContainer but AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI is not set")
                    }
                    base = CredentialProvider(c)
                default:
                    throw .configuration("profile '\(name)': credential_source '\(cs)' is not one of Environment, Ec2InstanceMetadata, EcsContainer")
                }
            } else {
                throw .configuration("profile '\(name)' has role_arn but no source_profile, credential_source or web_identity_token_file to assume it with")
            }
            let sts = STSCredentials(url: STSCredentials.endpoint(environment: env, region: stsRegion), region: stsRegion, caBundle: env.nonEmpty("AWS_CA_BUNDLE"))
            let session = sessionName(p["role_session_name"])
            let external = p["external_id"]
            return CredentialProvider(source: "profile '\(name)' (AssumeRole \(role) with \(base.source))") { () throws(ObjectStoreError) in
                try base.start()
                guard let source = base.current() else { throw .configuration("profile '\(name)': \(base.source) gave no credentials") }
                return try sts.assumeRole(roleARN: role, sessionName: session, externalID: external, durationSeconds: duration, source: source)
            }
        }
        if let keys = staticKeys(p, name: name, files: files) { return keys }
        if p["aws_access_key_id"] != nil || p["aws_secret_access_key"] != nil {
            throw .configuration("profile '\(name)' in \(files.paths) has only one of aws_access_key_id and aws_secret_access_key; give both")
        }
        if let command = p["credential_process"] {
            let process = ProcessCredentials(command: command, profile: name, environment: env)
            return CredentialProvider(process)
        }
        if p["sso_session"] != nil || p["sso_start_url"] != nil {
            throw .configuration("profile '\(name)' signs in with IAM Identity Center (SSO), which lakecache does not read; add credential_process = aws configure export-credentials --profile \(name) --format process")
        }
        return nil
    }

    private static func staticKeys(_ p: [String: String], name: String, files: AWSSharedConfig) -> CredentialProvider? {
        guard let id = p["aws_access_key_id"], !id.isEmpty, let secret = p["aws_secret_access_key"], !secret.isEmpty else { return nil }
        return CredentialProvider(static: Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: p["aws_session_token"]), source: "profile '\(name)' in \(files.paths)")
    }

    /// The region a profile sets (`region` in the config file), for when no option or variable gives one.
    package static func profileRegion(profile: String?, environment env: [String: String]) -> String? {
        let name = profile ?? env.nonEmpty("AWS_PROFILE") ?? "default"
        return AWSSharedConfig(environment: env).profile(name).nonEmpty("region")
    }
}
