import Control
import Filesystem
import ObjectStore

/// `links`: every link with its store, policy and state.
enum LinksHandler {
    static func links(_ p: MountDaemon.Parts) -> JSONValue {
        let table = p.filesystem.links.snapshot
        func describe(_ link: Link, state: String) -> JSONValue {
            let policy = link.policy
            let plan = p.builder.plan(link.path)
            return .object([
                ("path", .string("/" + link.path)), ("url", .string("\(link.bucket)")),
                ("endpoint", .string(plan?.s3.endpoint.description ?? "")), ("region", .string(plan?.s3.region ?? "")),
                ("state", .string(state)),
                ("read_only", .bool(policy.readOnly)), ("write_mode", .string(policy.syncClose ? "sync" : "async")),
                ("metadata_ttl", policy.metadataTTL.map { .number($0) } ?? .string("indefinite")),
                ("negative_ttl", policy.negativeTTL.map { .number($0) } ?? .string("indefinite")),
                ("metadata", .string(policy.metadata.rawValue)),
                ("import", .string(policy.preload ? "preload" : "lazy")),
                ("sync_interval", policy.syncInterval.map { .number($0) } ?? .null),
                ("include", .array(policy.filter.include.map { .string($0.pattern) })),
                ("exclude", .array(policy.filter.exclude.map { .string($0.pattern) })),
                ("last_sync", p.background.lastSync(link.path).map { .object([
                    ("new", .number(Double($0.new))), ("changed", .number(Double($0.changed))), ("deleted", .number(Double($0.deleted))),
                    ("unchanged", .number(Double($0.unchanged))), ("seconds", .number(($0.seconds * 1000).rounded() / 1000)),
                ]) } ?? .null),
            ])
        }
        let live = table.links.values.sorted { $0.path < $1.path }.map { describe($0, state: "active") }
        let draining = table.draining.values.sorted { $0.path < $1.path }.map { describe($0, state: "removing (waiting for its uploads and open files)") }
        return .object([("config", p.plan.configFile.map { .string($0) } ?? .null), ("links", .array(live + draining))])
    }
}
