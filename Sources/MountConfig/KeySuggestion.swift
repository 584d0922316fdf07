/// "Did you mean" for misspelt keys and values.
enum KeySuggestion {
    /// The known word closest to `word`: the same after lowercasing and reading `_` as `-`, else the nearest
    /// within an edit distance of 2; nil when nothing is that close.
    static func closest(to word: String, in known: [String]) -> String? {
        let folded = fold(word)
        if let same = known.first(where: { fold($0) == folded }) { return same }
        var best: (word: String, distance: Int)?
        for candidate in known {
            let d = distance(folded, fold(candidate))
            if d <= 2, d < (best?.distance ?? .max) { best = (candidate, d) }
        }
        return best?.word
    }

    private static func fold(_ word: String) -> [UInt8] {
        Array(word.lowercased().replacingUnderscores().utf8)
    }

    /// Levenshtein distance; keys are short, so the quadratic table is cheap.
    static func distance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        // Beyond the cutoff the exact value does not matter, and a 1 MiB key must not cost a 1 MiB² table.
        if abs(a.count - b.count) > 2 || a.count > 64 || b.count > 64 { return .max }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String { String(map { $0 == "_" ? "-" : $0 }) }
}
