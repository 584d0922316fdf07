/// A config file problem: one line naming the file, the place, the thing and the fix.
package struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `<file>:<line>: <what is wrong>; <how to fix>`.
    package var message: String

    /// Keeps the message on one line, whatever the file's values contained.
    package init(_ message: String) {
        self.message = ConfigError.oneLine(message)
    }

    /// The message.
    package var description: String { message }

    /// Control characters escaped: messages go to logs and the mount's one-line error pipe.
    static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// Which part of the file a message is about.
enum Scope {
    /// The top-level mapping.
    case top
    /// A link, by the label messages use for it (`link 'datasets'`, `link #3`).
    case link(String)

    /// "link 'x': " before the problem, so every message names its link.
    var prefix: String {
        switch self {
        case .top: return ""
        case .link(let label): return "\(label): "
        }
    }

    /// The label of a link named by its path (the root as '/'), or by its position when it has none.
    static func link(path: String?, index: Int) -> Scope {
        guard let path else { return .link("link #\(index + 1)") }
        return .link("link \(quoted(path.isEmpty ? "/" : path))")
    }
}

/// A value from the file in quotes, shortened: enough to find it, never a wall of text.
func quoted(_ text: String) -> String {
    let limit = 80
    guard text.count > limit else { return "'\(text)'" }
    return "'\(text.prefix(limit))…'"
}
