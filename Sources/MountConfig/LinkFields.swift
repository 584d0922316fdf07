import ObjectStore

/// The fields a link may set and the top level may set for every link; each means what `MountSettings`' does.
struct LinkFields {
    var endpoint: String?
    var region: String?
    var profile: String?
    var noSignRequest: Bool?
    var addressingStyle: String?
    var readOnly: Bool?
    var writeMode: WriteMode?
    var metadataTTL: TTL?
    var negativeTTL: TTL?
    var metadata: String?
    var importMode: ImportMode?
    var syncInterval: Double?

    /// Their keys, for suggestions.
    static let keys = [
        "endpoint", "region", "profile", "no-sign-request", "addressing-style", "read-only", "write-mode",
        "metadata-ttl", "negative-ttl", "metadata", "import", "sync-interval",
    ]

    /// A link's own value where it sets one, else the file's default.
    func inheriting(_ defaults: LinkFields) -> LinkFields {
        LinkFields(
            endpoint: endpoint ?? defaults.endpoint, region: region ?? defaults.region,
            profile: profile ?? defaults.profile, noSignRequest: noSignRequest ?? defaults.noSignRequest,
            addressingStyle: addressingStyle ?? defaults.addressingStyle, readOnly: readOnly ?? defaults.readOnly,
            writeMode: writeMode ?? defaults.writeMode, metadataTTL: metadataTTL ?? defaults.metadataTTL,
            negativeTTL: negativeTTL ?? defaults.negativeTTL, metadata: metadata ?? defaults.metadata,
            importMode: importMode ?? defaults.importMode, syncInterval: syncInterval ?? defaults.syncInterval)
    }
}

extension ConfigReader {
    /// Reads `e` into `fields` if it is one of the shared fields; false if it is not.
    func read(_ e: Entry, into fields: inout LinkFields, _ scope: Scope) throws(ConfigError) -> Bool {
        switch e.key {
        case "endpoint":
            let text = try string(e, scope, example: "https://s3.example.com")
            do {
                _ = try Endpoint(parsing: text)
            } catch {
                throw self.error(e.line, scope, withoutUsage(error.message), "write it as http://HOST[:PORT] or https://HOST[:PORT]")
            }
            fields.endpoint = text
        case "region":
            let text = try string(e, scope, example: "us-east-1")
            guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
                throw error(e.line, scope, "'region' is \(quoted(text)), not a region name", "write it as in region: us-east-1")
            }
            fields.region = text
        case "profile": fields.profile = try string(e, scope, example: "default")
        case "no-sign-request": fields.noSignRequest = try bool(e, scope)
        case "addressing-style": fields.addressingStyle = try choice(e, scope, AddressingStyle.allCases.map(\.rawValue))
        case "read-only": fields.readOnly = try bool(e, scope)
        case "write-mode": fields.writeMode = WriteMode(rawValue: try choice(e, scope, ["async", "sync"]))
        case "metadata-ttl": fields.metadataTTL = try ttl(e, scope)
        case "negative-ttl": fields.negativeTTL = try ttl(e, scope)
        case "metadata": fields.metadata = try choice(e, scope, ["exact", "listing", "summary"])
        case "import": fields.importMode = ImportMode(rawValue: try choice(e, scope, ["lazy", "preload"]))
        case "sync-interval": fields.syncInterval = try interval(e, scope)
        default: return false
        }
        return true
    }
}
