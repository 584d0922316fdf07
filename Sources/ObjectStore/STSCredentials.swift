import Platform

/// STS AssumeRole and AssumeRoleWithWebIdentity over the Query API.
package struct STSCredentials: Sendable {
    /// `https://sts.REGION.amazonaws.com`, or `AWS_ENDPOINT_URL_STS`/`AWS_ENDPOINT_URL`; a path is kept.
    package var url: String
    package var region: String
    package var caBundle: String?

    package init(url: String, region: String, caBundle: String?) {
        self.url = url
        self.region = region
        self.caBundle = caBundle
    }

    /// The endpoint STS calls go to, from the environment the SDKs read.
    package static func endpoint(environment env: [String: String], region: String) -> String {
        return env.nonEmpty("AWS_ENDPOINT_URL_STS") ?? env.nonEmpty("AWS_ENDPOINT_URL") ?? "https://sts.\(region).amazonaws.com"
    }

    /// Exchanges an OIDC token (EKS IRSA's projected service-account token) for role credentials; unsigned.
    package func assumeRoleWithWebIdentity(roleARN: String, sessionName: String, token: String, durationSeconds: Int?) throws(ObjectStoreError) -> Credentials {
        var form = [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", roleARN), ("RoleSessionName", sessionName), ("WebIdentityToken", token)]
        if let durationSeconds { form.append(("DurationSeconds", String(durationSeconds))) }
        return try call("AssumeRoleWithWebIdentity", roleARN: roleARN, form: form, signedWith: nil)
    }

    /// Assumes `roleARN` with the source credentials, signing the call with them.
    package func assumeRole(roleARN: String, sessionName: String, externalID: String?, durationSeconds: Int?, source: Credentials) throws(ObjectStoreError) -> Credentials {
        var form = [("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", roleARN), ("RoleSessionName", sessionName)]
        if let externalID { form.append(("ExternalId", externalID)) }
        if let durationSeconds { form.append(("DurationSeconds", String(durationSeconds))) }
        return try call("AssumeRole", roleARN: roleARN, form: form, signedWith: source)
    }

    private func call(_ action: String, roleARN: String, form: [(String, String)], signedWith source: Credentials?) throws(ObjectStoreError) -> Credentials {
        let what = "STS \(action) of \(roleARN) at \(url)"
        var rest = Substring(url)
        let scheme = rest.hasPrefix("https://") ? "https://" : "http://"
        guard rest.hasPrefix(scheme) else { throw .configuration("\(what): the STS endpoint must be an http:// or https:// URL") }
        rest = rest.dropFirst(scheme.count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let endpoint = try Endpoint(parsing: scheme + rest[..<slash])
        var path = String(rest[slash...])
        while path.hasSuffix("/") { path.removeLast() }
        path += "/"
        let body = Array(form.map { "\(URIEncoding.encode($0.0))=\(URIEncoding.encode($0.1))" }.joined(separator: "&").utf8)
        var headers: [(name: String, value: String)] = [
            (name: "content-type", value: "application/x-www-form-urlencoded; charset=utf-8"), (name: "host", value: endpoint.hostHeader()),
        ]
        if let source {
            SigV4Signer(credentials: source, region: region, service: "sts").sign(
                method: "POST", encodedPath: path, query: [], headers: &headers, payloadHash: Digest.hex(Digest.sha256(body)), time: Int64(wallClock().seconds))
        }
        var request = HTTPRequest(method: "POST", url: "\(endpoint)\(path)", headers: headers, body: .bytes(body))
        request.connectTimeoutMilliseconds = 5_000
        request.timeoutMilliseconds = 30_000
        let response = try CredentialHTTP.send(request, caBundle: caBundle) { "\(what) failed: \($0)" }
        let root = try? XMLElement.parse(response.body)
        guard response.status == 200 else {
            let error = root?.child("Error")
            let code = error?.value("Code") ?? "HTTP \(response.status)"
            let message = error?.value("Message").map { ": \($0)" } ?? ""
            throw .configuration("\(what) was refused: \(code)\(message)")
        }
        guard let c = root?.child("\(action)Result")?.child("Credentials"),
            let id = c.value("AccessKeyId"), let secret = c.value("SecretAccessKey"), let token = c.value("SessionToken")
        else { throw .configuration("\(what) answered without credentials") }
        let expiration = c.value("Expiration").flatMap { Timestamp(iso8601: $0) }?.seconds
        return Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token, expiration: expiration)
    }
}
