import Platform

/// Credentials from the container endpoint: ECS task roles (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`) and
/// EKS Pod Identity (`AWS_CONTAINER_CREDENTIALS_FULL_URI` with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`).
package struct ContainerCredentials: CredentialFetching {
    package var url: String
    /// Read again on every fetch: EKS rotates the token file.
    package var tokenFile: String?
    package var token: String?
    package var caBundle: String?

    /// Settings from the environment; nil when neither URI variable is set. A FULL_URI over plain http must
    /// point at a loopback or the ECS/EKS link-local address, as the SDKs require, so that a token is never
    /// sent in the clear across a network.
    package init?(environment env: [String: String]) throws(ObjectStoreError) {
        if let relative = env.nonEmpty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            url = "http://169.254.170.2" + (relative.hasPrefix("/") ? relative : "/" + relative)
        } else if let full = env.nonEmpty("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            guard full.hasPrefix("https://") || Self.allowedPlainHTTP(full) else {
                throw .configuration("AWS_CONTAINER_CREDENTIALS_FULL_URI=\(full) is plain http to a host that is neither a loopback address nor 169.254.170.2/169.254.170.23; use https or a local endpoint")
            }
            url = full
        } else {
            return nil
        }
        tokenFile = env.nonEmpty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        token = env.nonEmpty("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        caBundle = env.nonEmpty("AWS_CA_BUNDLE")
    }

    /// What messages call this source.
    package var name: String { "the container credentials endpoint \(url)" }

    static func allowedPlainHTTP(_ url: String) -> Bool {
        guard url.hasPrefix("http://") else { return false }
        var host = url.dropFirst(7).prefix { $0 != "/" }
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = host[host.index(after: host.startIndex)..<close]
            return host == "::1" || host.lowercased() == "fd00:ec2::23"
        }
        host = host.prefix { $0 != ":" }
        return host == "localhost" || host.hasPrefix("127.") || host == "169.254.170.2" || host == "169.254.170.23"
    }

    /// Fetches the role's current credentials.
    package func fetch() throws(ObjectStoreError) -> Credentials {
        var headers: [(name: String, value: String)] = []
        var auth = token
        if let tokenFile {
            guard let text = readTextFile(tokenFile) else {
                throw .configuration("\(name): the authorization token file \(tokenFile) (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) cannot be read")
            }
            auth = text.trimmingWhitespace()
        }
        if let auth {
            guard !auth.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                throw .configuration("\(name): the authorization token holds a line break; fix AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)")
            }
            headers.append((name: "Authorization", value: auth))
        }
        var request = HTTPRequest(method: "GET", url: url, headers: headers)
        request.connectTimeoutMilliseconds = 2_000
        request.timeoutMilliseconds = 5_000
        // One retry, as the SDKs make: the agent may be starting with the task.
        let response = try CredentialHTTP.send(request, caBundle: caBundle, attempts: 2) { "\(name): not reachable (\($0))" }
        guard response.status == 200 else {
            let why = (try? CredentialHTTP.decode(response.body, source: name))?.message ?? CredentialHTTP.reason(response.body)
            let hint = response.status == 401 || response.status == 403 ? "; check AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)" : ""
            throw .configuration("\(name) answered HTTP \(response.status)\(why.isEmpty ? "" : ": \(why)")\(hint)")
        }
        return try CredentialHTTP.decode(response.body, source: name).credentials(from: name)
    }
}
