#if canImport(Glibc)
import Platform
import Glibc
#endif

/// AWS credentials. The secret and token never appear in `description`, so logging one is safe.
package struct Credentials: Sendable, Equatable, CustomStringConvertible {
    package var accessKeyID: String
    package var secretAccessKey: String
    package var sessionToken: String?
    /// When temporary credentials stop working (seconds since the epoch); nil for long-lived keys.
    package var expiration: Int64?

    package init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Int64? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    package var description: String {
        "Credentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>\(sessionToken == nil ? "" : ", sessionToken: <redacted>"))"
    }
}

/// The documented JSON shape of temporary credentials, shared by the instance metadata service, the
/// container endpoint and `credential_process` (which says `SessionToken` where the others say `Token`).
struct CredentialDocument: Decodable {
    var version: Int?
    var code: String?
    var message: String?
    var accessKeyID: String?
    var secretAccessKey: String?
    var token: String?
    var sessionToken: String?
    var expiration: String?

    enum CodingKeys: String, CodingKey {
        case version = "Version", code = "Code", message = "Message", accessKeyID = "AccessKeyId"
        case secretAccessKey = "SecretAccessKey", token = "Token", sessionToken = "SessionToken", expiration = "Expiration"
    }

    /// The credentials the document holds; the error says which field is missing or malformed (never a value).
    func credentials(from source: String) throws(ObjectStoreError) -> Credentials {
        guard let id = accessKeyID, !id.isEmpty, let secret = secretAccessKey, !secret.isEmpty else {
            throw .configuration("\(source) answered without AccessKeyId or SecretAccessKey\(message.map { ": \($0)" } ?? "")")
        }
        var expiry: Int64?
        if let expiration {
            guard let t = Timestamp(iso8601: expiration) else {
                throw .configuration("\(source) answered with an Expiration that is not an ISO 8601 time: '\(expiration.prefix(40))'")
            }
            expiry = t.seconds
        }
        return Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token ?? sessionToken, expiration: expiry)
    }
}
