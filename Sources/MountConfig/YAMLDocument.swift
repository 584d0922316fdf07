import Yams

/// The file's YAML tree, with Yams' errors turned into config errors.
struct YAMLDocument {
    /// The root node; nil for an empty document.
    var root: Node?
    /// Placeholder key → the duplicate it replaced (see `compose`).
    var renamedDuplicates: [String: RenamedDuplicate]
    /// The file name, for messages.
    var file: String

    /// A later occurrence of a key, renamed so that Yams composes the file.
    struct RenamedDuplicate {
        /// The key as written.
        var key: String
        /// Where it occurs again.
        var line: Int
        /// Where it occurs first.
        var firstLine: Int
    }

    /// The refusal of a duplicate the walk did not reach (in an `x-` extension key, say): refused all the same.
    var unvisitedDuplicate: ConfigError? {
        guard let d = renamedDuplicates.values.min(by: { $0.line < $1.line }) else { return nil }
        return ConfigError("\(file):\(d.line): duplicate key \(quoted(d.key)) (first at line \(d.firstLine)); each key may appear once, so remove one of them")
    }

    /// Composes `text`.
    ///
    /// Yams refuses a duplicate key before we see the tree, naming only the first occurrence and not the
    /// mapping it is in. So the later occurrence is renamed to a placeholder and the text composed again:
    /// the walk then reports it with its own line and link, in file order with every other problem.
    static func compose(_ text: String, file: String) throws(ConfigError) -> YAMLDocument {
        var text = text
        var renamed: [String: RenamedDuplicate] = [:]
        while true {
            let failure: YamlError
            do {
                return YAMLDocument(root: try Yams.compose(yaml: text), renamedDuplicates: renamed, file: file)
            } catch let error as YamlError {
                failure = error
            } catch {
                throw ConfigError("\(file): cannot read the YAML: \(error); check the file's syntax")
            }
            guard case .duplicatedKeysInMapping(let keys, let context) = failure, let key = keys.first else {
                throw describe(failure, file: file)
            }
            let placeholder = "__lakecache_duplicate_\(renamed.count)__"
            // Each pass composes the whole file again; a file with this many duplicates gets the plain message.
            guard renamed.count < 32,
                  let (edited, line) = renameLaterOccurrence(of: key, after: context.mark, in: text, to: placeholder)
            else {
                throw ConfigError(
                    "\(file):\(context.mark.line): duplicate key \(quoted(key)); each key may appear once in a mapping, so remove or rename one of them")
            }
            text = edited
            renamed[placeholder] = RenamedDuplicate(key: key, line: line, firstLine: context.mark.line)
        }
    }

    /// The text with the next occurrence of block-mapping key `key` after `mark` replaced, and its line; nil
    /// if the text is not laid out that way (flow mappings, complex keys): keys of one block mapping share a
    /// column, and the mapping ends at the first line indented less.
    static func renameLaterOccurrence(of key: String, after mark: Mark, in text: String, to placeholder: String) -> (String, Int)? {
        // CRLF is one Character; line breaks written back as LF keep every line number.
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        guard mark.line >= 1, mark.line < lines.count else { return nil }
        let column = mark.column - 1
        for index in mark.line..<lines.count {
            let line = lines[index]
            let indent = line.prefix { $0 == " " }.count
            let content = line.dropFirst(indent)
            if content.isEmpty || content.hasPrefix("#") { continue }
            if indent < column { return nil }
            guard indent == column else { continue }
            for token in [key, "\"\(key)\"", "'\(key)'"] where content.hasPrefix(token) {
                let rest = content.dropFirst(token.count)
                guard rest.drop(while: { $0 == " " }).hasPrefix(":") else { continue }
                lines[index] = line.prefix(indent) + placeholder[...] + rest
                return (lines.joined(separator: "\n"), index + 1)
            }
        }
        return nil
    }

    /// Yams' problem with libyaml's line and column.
    static func describe(_ error: YamlError, file: String) -> ConfigError {
        let fix = "fix the YAML there (indentation, a ':' after each key, closing quotes and brackets)"
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let during = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return ConfigError("\(file):\(mark.line):\(mark.column): invalid YAML: \(problem)\(during); \(fix)")
        case .reader(let problem, let offset, _, let yaml):
            let (line, column) = position(ofCharacter: offset ?? 0, in: yaml)
            return ConfigError("\(file):\(line):\(column): invalid YAML: \(problem); remove the character or write the value in double quotes with an escape")
        default:
            return ConfigError("\(file): cannot read the YAML: \(error); \(fix)")
        }
    }

    /// 1-based line and column of the character at `offset` (Yams counts reader offsets in characters).
    private static func position(ofCharacter offset: Int, in text: String) -> (Int, Int) {
        var line = 1
        var column = 1
        for (i, c) in text.enumerated() {
            if i >= offset { break }
            if c == "\n" || c == "\r\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }
}
