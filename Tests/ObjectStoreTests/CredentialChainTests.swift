import Testing

@testable import ObjectStore
import Platform
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The credential chain's choices and errors, from local files and processes only (the network sources are
/// exercised against real servers in IntegrationTests/CredentialTests).
@Suite struct CredentialChainTests {
    /// A directory of its own with the given files; removed by `cleanup`.
    final class Files {
        let dir = "/tmp/lakecache-cred-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        init(_ files: [String: String]) {
            mkdir(dir, 0o700)
            for (name, text) in files { write(name, text) }
        }
        func write(_ name: String, _ text: String) {
            let f = fopen(dir + "/" + name, "w")!
            fputs(text, f)
            fclose(f)
        }
        func path(_ name: String) -> String { dir + "/" + name }
        deinit { _ = runShellCommand("rm -rf '\(dir)'", environment: [:], timeoutSeconds: 10) }
    }

    /// An environment with nothing but the files and no instance metadata (which a CI host might have).
    func env(_ f: Files, _ extra: [String: String] = [:]) -> [String: String] {
        ["HOME": f.dir, "AWS_CONFIG_FILE": f.path("config"), "AWS_SHARED_CREDENTIALS_FILE": f.path("credentials"),
         "AWS_EC2_METADATA_DISABLED": "true", "PATH": "/usr/bin:/bin"].merging(extra) { $1 }
    }

    func resolve(_ profile: String? = nil, _ e: [String: String]) throws(ObjectStoreError) -> Credentials? {
        try CredentialChain.resolve(profile: profile, region: "us-east-1", anonymous: false, environment: e)?.current()
    }

    @Test func profilesFromBothFilesWithTheCredentialsFileWinning() throws {
        let f = Files([
            "credentials": """
                # comment
                [default]
                aws_access_key_id = DEFAULTID
                aws_secret_access_key = defaultsecret

                [training]
                aws_access_key_id=TRAINID
                aws_secret_access_key=trainsecret
                aws_session_token = tok
                """,
            "config": """
                [default]
                region = eu-west-3
                s3 =
                  max_concurrent_requests = 20
                [profile training]
                aws_access_key_id = CONFIGID
                aws_secret_access_key = configsecret
                region = ap-south-1
                [profile keysinconfig]
                aws_access_key_id = CFGONLY
                aws_secret_access_key = cfgsecret
                [sso-session corp]
                sso_region = us-east-1
                """,
        ])
        let e = env(f)
        #expect(try resolve(nil, e)?.accessKeyID == "DEFAULTID")
        #expect(try resolve("training", e) == Credentials(accessKeyID: "TRAINID", secretAccessKey: "trainsecret", sessionToken: "tok"))
        #expect(try resolve(nil, e.merging(["AWS_PROFILE": "training"]) { $1 })?.accessKeyID == "TRAINID")
        #expect(try resolve("keysinconfig", e)?.accessKeyID == "CFGONLY")
        // The nested `s3 =` block is not read as keys of the profile.
        #expect(AWSSharedConfig(environment: e).profile("default")["max_concurrent_requests"] == nil)
        #expect(!AWSSharedConfig(environment: e).has("corp"))
        #expect(throws: ObjectStoreError.self) { try resolve("missing", e) }
        // Regions: the profile's, when neither an option nor a variable gives one.
        #expect(try S3Configuration.resolve(endpoint: nil, region: nil, profile: nil, anonymous: false, environment: e).region == "eu-west-3")
        #expect(try S3Configuration.resolve(endpoint: nil, region: nil, profile: "training", anonymous: false, environment: e).region == "ap-south-1")
        #expect(try S3Configuration.resolve(endpoint: nil, region: nil, profile: "training", anonymous: false, environment: e.merging(["AWS_REGION": "us-west-2"]) { $1 }).region == "us-west-2")
    }

    @Test func environmentKeysComeFirstUnlessAProfileIsNamed() throws {
        let f = Files(["credentials": "[default]\naws_access_key_id = FILEID\naws_secret_access_key = s\n[other]\naws_access_key_id = OTHERID\naws_secret_access_key = s\n"])
        let e = env(f, ["AWS_ACCESS_KEY_ID": "ENVID", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "envtoken"])
        let c = try resolve(nil, e)
        #expect(c?.accessKeyID == "ENVID" && c?.sessionToken == "envtoken")
        #expect(try resolve("other", e)?.accessKeyID == "OTHERID")
        #expect(throws: ObjectStoreError.self) { try resolve(nil, env(f, ["AWS_ACCESS_KEY_ID": "ENVID"])) }
    }

    @Test func misconfiguredRolesNameTheProfileAndTheFix() {
        let f = Files([
            "config": """
                [profile orphan]
                role_arn = arn:aws:iam::123456789012:role/r
                [profile loop-a]
                role_arn = arn:aws:iam::123456789012:role/r
                source_profile = loop-b
                [profile loop-b]
                role_arn = arn:aws:iam::123456789012:role/r
                source_profile = loop-a
                [profile mfa]
                role_arn = arn:aws:iam::123456789012:role/r
                source_profile = loop-a
                mfa_serial = arn:aws:iam::123456789012:mfa/me
                [profile sso]
                sso_session = corp
                sso_account_id = 123456789012
                [profile badsource]
                role_arn = arn:aws:iam::123456789012:role/r
                credential_source = Somewhere
                [profile half]
                aws_access_key_id = ONLYID
                """,
        ])
        let e = env(f)
        func message(_ profile: String, _ env: [String: String]) -> String {
            do {
                _ = try resolve(profile, env)
                return "resolved"
            } catch {
                return error.message
            }
        }
        #expect(message("orphan", e).contains("no source_profile, credential_source or web_identity_token_file"))
        #expect(message("loop-a", e).contains("leads back to itself"))
        #expect(message("mfa", e).contains("MFA"))
        #expect(message("sso", e).contains("credential_process = aws configure export-credentials --profile sso"))
        #expect(message("badsource", e).contains("Environment, Ec2InstanceMetadata, EcsContainer"))
        #expect(message("half", e).contains("only one of aws_access_key_id and aws_secret_access_key"))
        let web = env(f, ["AWS_WEB_IDENTITY_TOKEN_FILE": f.path("token")])
        do {
            _ = try resolve(nil, web)
            Issue.record("resolved web identity without a role")
        } catch {
            #expect(error.message.contains("AWS_ROLE_ARN"))
        }
    }

    @Test func credentialProcessOutputIsReadAndItsFailuresExplained() throws {
        let f = Files([:])
        f.write("good.sh", "echo '{\"Version\": 1, \"AccessKeyId\": \"PROCID\", \"SecretAccessKey\": \"procsecret\", \"SessionToken\": \"proctoken\", \"Expiration\": \"2099-01-01T00:00:00Z\"}'\n")
        f.write("fails.sh", "echo 'the SSO session has expired; run aws sso login' >&2\nexit 3\n")
        f.write("garbled.sh", "echo 'topsecret-not-json'\n")
        f.write("badtime.sh", "echo '{\"Version\": 1, \"AccessKeyId\": \"A\", \"SecretAccessKey\": \"topsecret\", \"Expiration\": \"tomorrow\"}'\n")
        f.write("noversion.sh", "echo '{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"topsecret\"}'\n")
        var config = ""
        for name in ["good", "fails", "garbled", "badtime", "noversion"] {
            config += "[profile \(name)]\ncredential_process = /bin/sh \(f.path(name + ".sh"))\n"
        }
        f.write("config", config)
        let e = env(f)
        let c = try resolve("good", e)
        #expect(c == Credentials(accessKeyID: "PROCID", secretAccessKey: "procsecret", sessionToken: "proctoken", expiration: 4_070_908_800))
        func message(_ profile: String) -> String {
            do {
                _ = try resolve(profile, e)
                return "resolved"
            } catch {
                return error.message
            }
        }
        #expect(message("fails").contains("exited with status 3: the SSO session has expired"))
        for bad in ["garbled", "badtime", "noversion"] {
            let m = message(bad)
            #expect(m.contains("credential_process of profile '\(bad)'"), "\(m)")
            #expect(!m.contains("topsecret"), "a secret reached the message: \(m)")
        }
    }

    @Test func aPlainHTTPContainerEndpointOffTheHostIsRefused() {
        let f = Files([:])
        #expect(throws: ObjectStoreError.self) {
            try resolve(nil, env(f, ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.0.0.5/creds"]))
        }
        #expect(ContainerCredentials.allowedPlainHTTP("http://127.0.0.1:8080/x"))
        #expect(ContainerCredentials.allowedPlainHTTP("http://169.254.170.23/v1/credentials"))
        #expect(ContainerCredentials.allowedPlainHTTP("http://[fd00:ec2::23]/v1/credentials"))
        #expect(!ContainerCredentials.allowedPlainHTTP("http://169.254.170.2.evil.example/"))
        #expect(!ContainerCredentials.allowedPlainHTTP("https://anything/"))
    }

    @Test func refreshStartsWellBeforeExpiry() {
        #expect(CredentialProvider.refreshLead(lifetime: 3600) == 300)
        #expect(CredentialProvider.refreshLead(lifetime: 900) == 300)
        #expect(CredentialProvider.refreshLead(lifetime: 6) == 2)
        #expect(CredentialProvider.refreshLead(lifetime: 0.3) == 0.5)
    }

    @Test func aProviderKeepsItsCredentialsWhenARefreshFails() throws {
        let calls = Counter()
        let provider = CredentialProvider(source: "test") { () throws(ObjectStoreError) in
            let n = calls.next()
            if n > 1 { throw .configuration("the source is down") }
            return Credentials(accessKeyID: "K\(n)", secretAccessKey: "s", sessionToken: "t", expiration: Int64(wallClock().seconds) + 2)
        }
        try provider.start()
        #expect(provider.current()?.accessKeyID == "K1")
        let deadline = monotonicSeconds() + 20
        while provider.refreshStats.lastError == nil && monotonicSeconds() < deadline { usleep(50_000) }
        #expect(provider.refreshStats.lastError == "the source is down")
        #expect(provider.current()?.accessKeyID == "K1")
    }

    final class Counter: Sendable {
        private let value = Atomic<Int>(0)
        func next() -> Int { value.add(1, ordering: .relaxed).newValue }
    }
}
