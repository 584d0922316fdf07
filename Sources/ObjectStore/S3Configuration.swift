import Platform

/// An S3 endpoint: scheme, host and optional port, without path.
package struct Endpoint: Sendable, Equatable, CustomStringConvertible {
    package var scheme: String
    package var host: String
    package var port: Int?

    /// Parses `http(s)://host[:port][/]`; anything else is a configuration error that names the input.
    package init(parsing text: String) throws(ObjectStoreError) {
        let hint = "expected http://HOST[:PORT] or https://HOST[:PORT]"
        var rest = Substring(text)
        if rest.hasPrefix("https://") {
            scheme = "https"
            rest = rest.dropFirst(8)
        } else if rest.hasPrefix("http://") {
            scheme = "http"
            rest = rest.dropFirst(7)
        } else {
            throw .configuration("invalid endpoint URL '\(text)': \(hint)")
        }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        if rest.contains(where: { "/?#@ ".contains($0) }) {
            throw .configuration("invalid endpoint URL '\(text)': a path, query or credentials are not allowed; \(hint)")
        }
        var hostPart = rest
        var portPart: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .configuration("invalid endpoint URL '\(text)': unclosed IPv6 address") }
            hostPart = rest[...close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() } else if !after.isEmpty {
                throw .configuration("invalid endpoint URL '\(text)': \(hint)")
            }
        } else if let colon = rest.lastIndex(of: ":") {
            hostPart = rest[..<colon]
            portPart = rest[rest.index(after: colon)...]
        }
        guard !hostPart.isEmpty else { throw .configuration("invalid endpoint URL '\(text)': the host is empty; \(hint)") }
        host = String(hostPart)
        if let portPart {
            guard let p = Int(portPart), (1...65535).contains(p) else {
                throw .configuration("invalid endpoint URL '\(text)': port '\(portPart)' is not a number from 1 to 65535")
            }
            port = p
        }
    }

    package init(scheme: String, host: String, port: Int? = nil) {
        self.scheme = scheme
        self.host = host
        self.port = port
    }

    /// The Host header value: the port is included only when it is not the scheme's default.
    package func hostHeader(host: String? = nil) -> String {
        let h = host ?? self.host
        guard let port, !(scheme == "https" && port == 443), !(scheme == "http" && port == 80) else { return h }
        return "\(h):\(port)"
    }

    package var description: String { "\(scheme)://\(hostHeader())" }

    /// Whether this is AWS itself, where virtual-hosted addressing is the norm.
    package var isAWS: Bool { host.hasSuffix(".amazonaws.com") || host.hasSuffix(".amazonaws.com.cn") }
}

/// Path-style (`host/bucket/key`) or virtual-hosted (`bucket.host/key`) requests.
package enum AddressingStyle: String, Sendable, CaseIterable {
    /// Virtual-hosted on AWS for DNS-safe bucket names, path-style elsewhere (MinIO, Ceph, local servers).
    case auto
    case path
    case virtual
}

/// Whether the SHA-256 of the body is part of the signature.
package enum PayloadSigning: String, Sendable, CaseIterable {
    /// Signed over plain http unless the body carries Content-MD5 (the server then checks integrity);
    /// `UNSIGNED-PAYLOAD` over https, where TLS protects the body.
    case auto
    case signed
    case unsigned
}

/// Everything an `S3Client` needs to reach a backend.
package struct S3Configuration: Sendable {
    package var endpoint: Endpoint
    package var region: String
    /// Signs requests; nil means anonymous requests (`--no-sign-request`).
    package var credentials: CredentialProvider?
    package var addressing: AddressingStyle = .auto
    package var payloadSigning: PayloadSigning = .auto
    package var transport = TransportOptions()
    package var retry = RetryPolicy()

    /// A configuration that signs with fixed credentials (or none).
    package init(endpoint: Endpoint, region: String, credentials: Credentials?) {
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials.map { CredentialProvider(static: $0, source: "explicit credentials") }
    }

    /// A configuration that signs with what `provider` hands out.
    package init(endpoint: Endpoint, region: String, provider: CredentialProvider?) {
        self.endpoint = endpoint
        self.region = region
        self.credentials = provider
    }

    /// Resolves endpoint, region, credentials and CA bundle from explicit options, then the environment.
    ///
    /// Endpoint: option, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, then the AWS regional endpoint.
    /// Region: option, `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, then us-east-1.
    /// Credentials: `CredentialChain`.
    package static func resolve(
        endpoint: String?, region: String?, profile: String?, anonymous: Bool, environment: [String: String]
    ) throws(ObjectStoreError) -> S3Configuration {
        let resolvedRegion = region ?? environment.nonEmpty("AWS_REGION") ?? environment.nonEmpty("AWS_DEFAULT_REGION")
            ?? CredentialChain.profileRegion(profile: profile, environment: environment) ?? "us-east-1"
        guard !resolvedRegion.isEmpty, resolvedRegion.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
            throw .configuration("invalid region '\(resolvedRegion)': expected a name such as us-east-1")
        }
        let url = endpoint ?? environment.nonEmpty("AWS_ENDPOINT_URL_S3") ?? environment.nonEmpty("AWS_ENDPOINT_URL") ?? "https://s3.\(resolvedRegion).amazonaws.com"
        let parsed = try Endpoint(parsing: url)
        if let ca = environment.nonEmpty("AWS_CA_BUNDLE"), readTextFile(ca) == nil {
            throw .configuration("AWS_CA_BUNDLE points to \(ca), which cannot be read; fix the path or unset it")
        }
        let provider = try CredentialChain.resolve(profile: profile, region: resolvedRegion, anonymous: anonymous, environment: environment)
        var config = S3Configuration(endpoint: parsed, region: resolvedRegion, provider: provider)
        config.transport.caBundle = environment.nonEmpty("AWS_CA_BUNDLE")
        return config
    }
}

/// Bounded exponential backoff with full jitter.
package struct RetryPolicy: Sendable {
    /// Attempts in total, including the first.
    package var maxAttempts = 6
    package var baseDelayNanoseconds: UInt64 = 50_000_000
    /// Throttling backs off from a larger base, as S3 asks.
    package var slowDownBaseDelayNanoseconds: UInt64 = 500_000_000
    package var maxDelayNanoseconds: UInt64 = 10_000_000_000

    package init() {}

    /// The delay before attempt `attempt + 1` after `attempt` attempts failed with `error`; nil means give up.
    package func delay(
        after attempt: Int, error: ObjectStoreError, idempotent: Bool, random: (UInt64) -> UInt64 = { UInt64.random(in: 0...$0) }
    ) -> UInt64? {
        guard attempt < maxAttempts, error.isRetryable else { return nil }
        if !idempotent {
            // The request may have taken effect; retry only when the server says it did not, or it never left.
            let safe: Bool
            switch error.kind {
            case .slowDown, .serverError: safe = true
            case .transport(let code, _): safe = code == 7 || code == 6
            default: safe = false
            }
            guard safe else { return nil }
        }
        let base = error.kind == .slowDown ? slowDownBaseDelayNanoseconds : baseDelayNanoseconds
        let ceiling = min(maxDelayNanoseconds, base << UInt64(min(attempt - 1, 20)))
        return random(ceiling)
    }
}
