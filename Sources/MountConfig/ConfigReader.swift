import Yams

/// One `key: value` of a mapping, as the walk sees it.
struct Entry {
    /// The key as written.
    var key: String
    /// The value node.
    var value: Node
    /// Line of the key: where messages about this field point.
    var line: Int
}

/// The walk over the YAML tree: the file name for messages, and the bounds that keep a hostile file cheap.
final class ConfigReader {
    /// The file name that starts every message.
    let file: String
    /// Placeholder key → the duplicate it stands for (see `YAMLDocument.compose`).
    private let renamedDuplicates: [String: YAMLDocument.RenamedDuplicate]
    /// Keys and list items left to visit: aliases and merge keys can make a small file expand exponentially.
    private var budget: Int
    /// The budget at the start, for the message.
    private let valueLimit: Int

    /// A reader for one document of `file`; `valueLimit` is far above what a 1 MiB file can spell out.
    init(file: String, renamedDuplicates: [String: YAMLDocument.RenamedDuplicate], valueLimit: Int = 1_000_000) {
        self.file = file
        self.renamedDuplicates = renamedDuplicates
        self.budget = valueLimit
        self.valueLimit = valueLimit
    }

    /// `<file>:<line>: [link 'x': ]<what>; <fix>`.
    func error(_ line: Int, _ scope: Scope, _ what: String, _ fix: String) -> ConfigError {
        ConfigError("\(file):\(line): \(scope.prefix)\(what); \(fix)")
    }

    /// Counts `n` visited nodes against the budget.
    func spend(_ n: Int, line: Int, _ scope: Scope = .top) throws(ConfigError) {
        budget -= n
        guard budget >= 0 else {
            throw error(line, scope, "the file expands to more than \(valueLimit) values through aliases and merge keys", "use fewer aliases")
        }
    }

    /// The entries of a mapping, merge keys (`<<: *defaults`) resolved, duplicates refused.
    ///
    /// Keys written in the mapping win over merged ones, and earlier merged mappings over later ones, as
    /// YAML's merge key specifies. `origin` is the line of the outermost merge key, where a blowup is reported.
    func entries(of mapping: Node.Mapping, _ scope: Scope, depth: Int = 0, origin: Int? = nil) throws(ConfigError) -> [Entry] {
        var written: [Entry] = []
        var merged: [Entry] = []
        var seen: [String: Int] = [:]
        for (key, value) in mapping {
            let line = key.mark?.line ?? 0
            try spend(1, line: origin ?? line, scope)
            if case .scalar = key, key.isMergeKey {
                merged += try mergedEntries(value, scope, line: origin ?? line, depth: depth)
                continue
            }
            guard case .scalar(let scalar) = key, !key.isNull else {
                throw error(line, scope, "a key is \(describe(key)), not a name", "write keys as plain names such as 'read-only'")
            }
            if let duplicate = renamedDuplicates[scalar.string] {
                throw error(line, scope, "duplicate key \(quoted(duplicate.key)) (first at line \(seen[duplicate.key] ?? duplicate.firstLine))", "each key may appear once, so remove one of them")
            }
            if let first = seen[scalar.string] {
                throw error(line, scope, "duplicate key \(quoted(scalar.string)) (first at line \(first))", "each key may appear once, so remove one of them")
            }
            seen[scalar.string] = line
            written.append(Entry(key: scalar.string, value: value, line: line))
        }
        for entry in merged where seen[entry.key] == nil {
            seen[entry.key] = entry.line
            written.append(entry)
        }
        return written
    }

    /// The entries a merge key brings in: one mapping, or a list of them.
    private func mergedEntries(_ value: Node, _ scope: Scope, line: Int, depth: Int) throws(ConfigError) -> [Entry] {
        // Aliases cannot form cycles, but a chain of merges can be as long as the file: keep the recursion shallow.
        guard depth < 32 else {
            throw error(line, scope, "merge keys ('<<') nest more than 32 deep", "merge fewer levels of anchors")
        }
        switch value {
        case .mapping(let mapping):
            return try entries(of: mapping, scope, depth: depth + 1, origin: line)
        case .sequence(let sequence):
            var result: [Entry] = []
            for item in sequence {
                guard case .mapping(let mapping) = item else {
                    throw error(line, scope, "'<<' lists \(describe(item)), not a mapping", "merge only mappings, as in <<: [*defaults, *more]")
                }
                result += try entries(of: mapping, scope, depth: depth + 1, origin: line)
            }
            return result
        default:
            throw error(line, scope, "'<<' merges \(describe(value)), not a mapping", "merge a mapping's anchor, as in <<: *defaults")
        }
    }

    /// An unknown key, with the closest known one, or where the key belongs if it is known elsewhere.
    func unknownKey(_ entry: Entry, _ scope: Scope, known: [String], elsewhere: [String: String]) -> ConfigError {
        let kind = if case .top = scope { "setting" } else { "field" }
        if let hint = elsewhere[entry.key] {
            return error(entry.line, scope, "\(quoted(entry.key)) is not a \(kind) here", hint)
        }
        if let suggestion = KeySuggestion.closest(to: entry.key, in: known) {
            return error(entry.line, scope, "unknown \(kind) \(quoted(entry.key))", "did you mean '\(suggestion)'?")
        }
        return error(entry.line, scope, "unknown \(kind) \(quoted(entry.key))", "use one of \(known.joined(separator: ", "))")
    }
}

/// An ObjectStore message without its "expected ..." usage tail, which the config's own fix replaces.
func withoutUsage(_ message: String) -> String {
    for separator in [": expected ", "; expected "] {
        if let range = message.range(of: separator) { return String(message[..<range.lowerBound]) }
    }
    return message
}

/// A node as a message shows it: the value itself for a scalar, its kind otherwise.
func describe(_ node: Node) -> String {
    switch node {
    case .scalar(let scalar):
        return node.isNull ? "empty" : quoted(scalar.string)
    case .sequence: return "a list"
    case .mapping: return "a mapping"
    case .alias: return "an alias"
    }
}

extension Node {
    /// A plain `~`, `null` or nothing: YAML's no-value (a quoted "null" is a string).
    var isNull: Bool { tag.rawValue == Tag.Name.null.rawValue }
    /// A plain `<<` key.
    var isMergeKey: Bool { tag.rawValue == Tag.Name.merge.rawValue }
}
