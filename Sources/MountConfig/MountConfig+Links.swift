import ObjectStore
import Yams

/// Link fields that only the top level takes, and where they go instead.
private let mountOnlyKeys: [String: String] = Dictionary(
    uniqueKeysWithValues: (mountKeys + ["links"]).map { ($0, "it is a mount-wide setting: move it to the top level of the file") })

/// Every key a link takes, for suggestions.
private let linkKeys = ["path", "url"] + LinkFields.keys + ["include", "exclude", "on-create"]

extension ConfigReader {
    /// The `links:` list, each link with the file's defaults applied.
    func links(_ e: Entry, defaults: LinkFields) throws(ConfigError) -> [LinkSpec] {
        let fix = "write each link as '- path: DIR' with 'url: s3://BUCKET[/PREFIX]' under it"
        guard case .sequence(let sequence) = e.value else {
            throw error(e.line, .top, "'links' is \(describe(e.value)), not a list", fix)
        }
        guard !sequence.isEmpty else { throw error(e.line, .top, "'links' is an empty list", fix) }
        guard sequence.count <= MountConfig.maxLinks else {
            let line = sequence[MountConfig.maxLinks].mark?.line ?? e.line
            throw error(line, .top, "more than \(MountConfig.maxLinks) links", "split them across several mounts")
        }
        var result: [LinkSpec] = []
        result.reserveCapacity(sequence.count)
        for (i, node) in sequence.enumerated() {
            try spend(1, line: node.mark?.line ?? e.line)
            result.append(try link(node, index: i, defaults: defaults))
        }
        return result
    }

    /// One link entry.
    private func link(_ node: Node, index: Int, defaults: LinkFields) throws(ConfigError) -> LinkSpec {
        let line = node.mark?.line ?? 0
        guard case .mapping(let mapping) = node else {
            throw error(line, .link(path: nil, index: index), "is \(describe(node)), not a mapping", "write each link as '- path: DIR' with 'url: s3://BUCKET[/PREFIX]' under it")
        }
        // Named by its path before anything is checked, so that every message says which link it is about.
        let scope = Scope.link(path: writtenPath(mapping), index: index)
        var fields = LinkFields()
        var path: String?
        var url: BucketURL?
        var include: [KeyGlob] = []
        var exclude: [KeyGlob] = []
        var onCreate: String?
        let entries = try entries(of: mapping, scope)
        for e in entries {
            if try read(e, into: &fields, scope) { continue }
            switch e.key {
            case "path": path = try linkPath(e, scope)
            case "url":
                let text = try string(e, scope, example: "s3://BUCKET/PREFIX")
                do {
                    url = try BucketURL(parsing: text)
                } catch {
                    throw self.error(e.line, scope, withoutUsage(error.message), "write it as s3://BUCKET or s3://BUCKET/PREFIX")
                }
            case "include": include = try globs(e, scope)
            case "exclude": exclude = try globs(e, scope)
            case "on-create": onCreate = try choice(e, scope, ["lazy", "preload"])
            default: throw unknownKey(e, scope, known: linkKeys, elsewhere: mountOnlyKeys)
            }
        }
        guard let path else {
            throw error(line, scope, "has no 'path'", "add 'path: DIR', the directory in the mount where the bucket appears ('/' for the mount root)")
        }
        guard let url else { throw error(line, scope, "has no 'url'", "add 'url: s3://BUCKET[/PREFIX]', what appears at '\(path)'") }
        let p = fields.inheriting(defaults)
        var spec = LinkSpec(path: path, url: url, line: line)
        spec.endpoint = p.endpoint
        spec.region = p.region
        spec.profile = p.profile
        spec.noSignRequest = p.noSignRequest
        spec.addressingStyle = p.addressingStyle
        spec.readOnly = p.readOnly
        spec.writeMode = p.writeMode
        spec.metadataTTL = p.metadataTTL
        spec.negativeTTL = p.negativeTTL
        spec.metadata = p.metadata
        spec.importMode = p.importMode
        spec.syncInterval = p.syncInterval
        spec.include = include
        spec.exclude = exclude
        spec.onCreate = onCreate
        spec.ownKeys = Set(entries.map(\.key))
        return spec
    }

    /// The link's path for its name in messages: normalized when valid, as written otherwise.
    private func writtenPath(_ mapping: Node.Mapping) -> String? {
        for (key, value) in mapping where key.string == "path" {
            guard case .scalar(let scalar) = value, !value.isNull else { return nil }
            if case .success(let path) = LinkPath.normalize(scalar.string) { return path }
            return scalar.string
        }
        return nil
    }

    private func linkPath(_ e: Entry, _ scope: Scope) throws(ConfigError) -> String {
        let fix = "write the directory in the mount, as in path: datasets/imagenet, or path: / for the mount root"
        let text = try scalar(e, scope, expected: "a path", fix: fix)
        switch LinkPath.normalize(text) {
        case .success(let path): return path
        case .failure(let problem): throw error(e.line, scope, "'path' \(quoted(text)) \(problem.what)", problem.fix)
        }
    }

    private func globs(_ e: Entry, _ scope: Scope) throws(ConfigError) -> [KeyGlob] {
        var result: [KeyGlob] = []
        for (text, line) in try strings(e, scope, example: "\"train/**\", \"*.jpg\"") {
            do {
                result.append(try KeyGlob(text))
            } catch {
                throw self.error(line, scope, "bad '\(e.key)' pattern: \(error.message)", "fix the pattern: * and ? within a name, [a-z] classes, ** as a whole segment (train/**/*.jpg)")
            }
        }
        return result
    }
}
