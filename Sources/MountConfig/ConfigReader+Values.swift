import Platform
import Yams

/// Typed values. Each reader takes the scalar's text, whatever tag YAML resolved, and checks it itself:
/// YAML 1.1 would otherwise read `0644` as 420 and `1:30` as 90.
extension ConfigReader {
    /// The text of a non-empty scalar.
    func scalar(_ e: Entry, _ scope: Scope, expected: String, fix: String) throws(ConfigError) -> String {
        guard case .scalar(let scalar) = e.value, !e.value.isNull else {
            throw error(e.line, scope, "'\(e.key)' is \(describe(e.value)), not \(expected)", fix)
        }
        return scalar.string
    }

    /// A non-empty string without control characters: every string here ends up in a path, a header, a
    /// C string or a log line, and a block scalar's trailing newline is never meant.
    func string(_ e: Entry, _ scope: Scope, example: String) throws(ConfigError) -> String {
        let fix = "write a single value, as in \(e.key): \(example)"
        let text = try scalar(e, scope, expected: "a string", fix: fix)
        guard !text.isEmpty else { throw error(e.line, scope, "'\(e.key)' is empty", fix) }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw error(e.line, scope, "'\(e.key)' contains a control character or line break", fix)
        }
        return text
    }

    /// true/false (yes/no and on/off too, as YAML 1.1 readers expect).
    func bool(_ e: Entry, _ scope: Scope) throws(ConfigError) -> Bool {
        let fix = "write \(e.key): true or \(e.key): false"
        let text = try scalar(e, scope, expected: "true or false", fix: fix)
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(e.line, scope, "'\(e.key)' is \(quoted(text)), not true or false", fix)
        }
    }

    /// A whole number in `range`.
    func integer<T: FixedWidthInteger>(_ e: Entry, _ scope: Scope, _ range: ClosedRange<T>, example: T) throws(ConfigError) -> T {
        let wanted = range.upperBound == .max ? "a whole number from \(range.lowerBound)" : "a whole number from \(range.lowerBound) to \(range.upperBound)"
        let fix = "write \(wanted), as in \(e.key): \(example)"
        let text = try scalar(e, scope, expected: wanted, fix: fix)
        guard let value = T(text.trimmingWhitespaceAndNewlines()), range.contains(value) else {
            throw error(e.line, scope, "'\(e.key)' is \(quoted(text)), not \(wanted)", fix)
        }
        return value
    }

    /// A byte count (`200G`, `512M`, a plain number of bytes) in `range`.
    func size(_ e: Entry, _ scope: Scope, _ range: ClosedRange<Int64> = 0...Int64.max, example: String, rule: String? = nil) throws(ConfigError) -> Int64 {
        let fix = "write a number of bytes with an optional K, M, G or T suffix, as in \(e.key): \(example)"
        let text = try scalar(e, scope, expected: "a size", fix: fix)
        guard let bytes = ByteCount.parse(text) else {
            throw error(e.line, scope, "'\(e.key)' is \(quoted(text)), not a size", fix)
        }
        guard range.contains(bytes) else {
            let limits = "\(ByteCount.format(range.lowerBound)) to \(ByteCount.format(range.upperBound))"
            throw error(e.line, scope, "'\(e.key)' is \(quoted(text)), outside \(rule ?? limits)", "use a size such as \(example)")
        }
        return bytes
    }

    /// An octal permission mode: `"0644"`, `0644`, `644` or `0o644`, at most 7777.
    func mode(_ e: Entry, _ scope: Scope, example: String) throws(ConfigError) -> UInt32 {
        let fix = "write octal digits, as in \(e.key): \"\(example)\""
        let text = try scalar(e, scope, expected: "an octal mode", fix: fix)
        var digits = Substring(text.trimmingWhitespaceAndNewlines())
        if digits.hasPrefix("0o") || digits.hasPrefix("0O") { digits = digits.dropFirst(2) }
        guard !digits.isEmpty, digits.allSatisfy({ ("0"..."7").contains($0) }), digits.count <= 6,
              let mode = UInt32(digits, radix: 8), mode <= 0o7777
        else {
            throw error(e.line, scope, "'\(e.key)' is \(quoted(text)), not an octal mode from 0 to 7777", fix)
        }
        return mode
    }

    /// One of `choices`, suggesting the closest on a typo.
    func choice(_ e: Entry, _ scope: Scope, _ choices: [String]) throws(ConfigError) -> String {
        let list = choices.count == 2 ? "\(choices[0]) or \(choices[1])" : choices.joined(separator: ", ")
        let fix = "write one of \(list)"
        let text = try scalar(e, scope, expected: list, fix: fix)
        guard choices.contains(text) else {
            let hint = KeySuggestion.closest(to: text, in: choices).map { "did you mean '\($0)'?" } ?? fix
            throw error(e.line, scope, "'\(e.key)' is \(quoted(text)), not \(list)", hint)
        }
        return text
    }

    /// `indefinite`, or a duration of zero or more seconds.
    func ttl(_ e: Entry, _ scope: Scope) throws(ConfigError) -> TTL {
        let fix = "write seconds (60), a duration such as 30s, 5m, 2h or 1d, or indefinite"
        let text = try scalar(e, scope, expected: "a duration", fix: fix)
        if text == "indefinite" { return .indefinite }
        guard let seconds = Durations.seconds(text) else {
            throw error(e.line, scope, "'\(e.key)' is \(quoted(text)), not a duration", fix)
        }
        return .seconds(seconds)
    }

    /// A duration longer than zero, in seconds.
    func interval(_ e: Entry, _ scope: Scope) throws(ConfigError) -> Double {
        let fix = "write seconds (30) or a duration such as 30s, 5m or 1h"
        let text = try scalar(e, scope, expected: "a duration", fix: fix)
        guard let seconds = Durations.seconds(text) else {
            throw error(e.line, scope, "'\(e.key)' is \(quoted(text)), not a duration", fix)
        }
        guard seconds > 0 else { throw error(e.line, scope, "'\(e.key)' is \(quoted(text)), not longer than zero", fix) }
        return seconds
    }

    /// A list of strings with the line of each; a single string is a one-element list.
    func strings(_ e: Entry, _ scope: Scope, example: String) throws(ConfigError) -> [(text: String, line: Int)] {
        let fix = "write a string or a list of strings, as in \(e.key): [\(example)]"
        switch e.value {
        case .scalar:
            return [(try scalar(e, scope, expected: "a string", fix: fix), e.line)]
        case .sequence(let sequence):
            try spend(sequence.count, line: e.line, scope)
            var result: [(text: String, line: Int)] = []
            for (i, item) in sequence.enumerated() {
                let line = item.mark?.line ?? e.line
                guard case .scalar(let scalar) = item, !item.isNull else {
                    throw error(line, scope, "'\(e.key)' item \(i + 1) is \(describe(item)), not a string", fix)
                }
                result.append((scalar.string, line))
            }
            return result
        default:
            throw error(e.line, scope, "'\(e.key)' is \(describe(e.value)), not a string or a list", fix)
        }
    }
}
