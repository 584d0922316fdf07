/// Durations as people write them in a config file: `90`, `1.5`, `30s`, `5m`, `2h`, `1d`.
enum Durations {
    /// Seconds, or nil when `text` is not a non-negative finite duration.
    static func seconds(_ text: String) -> Double? {
        var number = Substring(text.trimmingWhitespaceAndNewlines())
        var unit = 1.0
        if let last = number.last, let scale = scales[last] {
            unit = scale
            number = number.dropLast()
        }
        // Double(_:) also takes "inf", "nan" and hex floats: none of them is a duration anyone means.
        guard number.contains(where: \.isASCIIDigit), number.allSatisfy({ $0.isASCIIDigit || $0 == "." }),
              number.filter({ $0 == "." }).count <= 1, let value = Double(number)
        else { return nil }
        let seconds = value * unit
        return seconds.isFinite ? seconds : nil
    }

    /// What the suffixes mean.
    private static let scales: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
}

extension Character {
    /// 0-9 only: `isNumber` also accepts other scripts' digits and fractions.
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension String {
    /// Without surrounding spaces, tabs and line breaks (a YAML block scalar keeps its final newline).
    func trimmingWhitespaceAndNewlines() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
