import Platform

/// The EC2 instance profile's credentials from the instance metadata service, IMDSv2 first.
///
/// A session token is PUT for first, and every GET carries it. A service that does not know tokens (404,
/// 405) is asked without one unless `AWS_EC2_METADATA_V1_DISABLED` says not to; a 403 means the instance
/// has metadata turned off and is final.
package struct InstanceMetadataCredentials: CredentialFetching {
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else the IPv4 or IPv6 (`…_ENDPOINT_MODE=IPv6`) address.
    package var endpoint: String
    package var timeoutMilliseconds: Int
    package var attempts: Int
    package var allowV1: Bool

    /// Settings from the environment; nil when `AWS_EC2_METADATA_DISABLED` is true.
    package init?(environment env: [String: String]) {
        if env["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true" { return nil }
        var e = env["AWS_EC2_METADATA_SERVICE_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (env["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"]?.lowercased() == "ipv6" ? "http://[fd00:ec2::254]" : "http://169.254.169.254")
        while e.hasSuffix("/") { e.removeLast() }
        endpoint = e
        timeoutMilliseconds = Int((Double(env["AWS_METADATA_SERVICE_TIMEOUT"] ?? "") ?? 1) * 1000)
        attempts = max(1, Int(env["AWS_METADATA_SERVICE_NUM_ATTEMPTS"] ?? "") ?? 1)
        allowV1 = env["AWS_EC2_METADATA_V1_DISABLED"]?.lowercased() != "true"
    }

    /// What messages call this source.
    package var name: String { "instance metadata (\(endpoint))" }

    /// Fetches the instance profile's current credentials.
    package func fetch() throws(ObjectStoreError) -> Credentials {
        let token = try sessionToken()
        let roles = try get("/latest/meta-data/iam/security-credentials/", token: token)
        guard roles.status == 200 else {
            if roles.status == 404 { throw .configuration("\(name): no IAM role is attached to this instance (attach an instance profile)") }
            throw .configuration("\(name): listing the instance's role answered HTTP \(roles.status) \(CredentialHTTP.reason(roles.body))")
        }
        let role = CredentialHTTP.reason(roles.body)
        guard !role.isEmpty, !role.contains("/") else { throw .configuration("\(name): the instance's role name is empty or malformed") }
        let answer = try get("/latest/meta-data/iam/security-credentials/\(URIEncoding.encode(role))", token: token)
        guard answer.status == 200 else {
            throw .configuration("\(name): the credentials of role \(role) answered HTTP \(answer.status) \(CredentialHTTP.reason(answer.body))")
        }
        let doc = try CredentialHTTP.decode(answer.body, source: name)
        if let code = doc.code, code != "Success" {
            throw .configuration("\(name): the credentials of role \(role) are not available (\(code)\(doc.message.map { ": \($0)" } ?? ""))")
        }
        return try doc.credentials(from: name)
    }

    private func sessionToken() throws(ObjectStoreError) -> String? {
        var request = HTTPRequest(method: "PUT", url: endpoint + "/latest/api/token", headers: [(name: "X-aws-ec2-metadata-token-ttl-seconds", value: "21600")])
        request.connectTimeoutMilliseconds = timeoutMilliseconds
        request.timeoutMilliseconds = timeoutMilliseconds
        let r = try send(request, what: "the IMDSv2 session token")
        switch r.status {
        case 200:
            let token = CredentialHTTP.reason(r.body)
            guard !token.isEmpty else { throw .configuration("\(name): the IMDSv2 session token is empty") }
            return token
        case 403:
            throw .configuration("\(name): the metadata service refused a session token (403); instance metadata is disabled on this instance")
        case 400, 404, 405:
            guard allowV1 else {
                throw .configuration("\(name): the service does not hand out IMDSv2 session tokens (HTTP \(r.status)) and AWS_EC2_METADATA_V1_DISABLED forbids IMDSv1")
            }
            return nil
        default:
            throw .configuration("\(name): the IMDSv2 session token request answered HTTP \(r.status)")
        }
    }

    private func get(_ path: String, token: String?) throws(ObjectStoreError) -> HTTPResponse {
        var request = HTTPRequest(method: "GET", url: endpoint + path, headers: token.map { [(name: "X-aws-ec2-metadata-token", value: $0)] } ?? [])
        request.connectTimeoutMilliseconds = timeoutMilliseconds
        request.timeoutMilliseconds = timeoutMilliseconds
        return try send(request, what: path)
    }

    private func send(_ request: HTTPRequest, what: String) throws(ObjectStoreError) -> HTTPResponse {
        try CredentialHTTP.send(request, caBundle: nil, attempts: attempts) { "\(name): not reachable for \(what) (\($0))" }
    }
}
