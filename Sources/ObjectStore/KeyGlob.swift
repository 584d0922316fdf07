import Platform

/// A glob over `/`-separated key paths: `*` and `?` within a segment, `[abc]`, `[a-z]` and `[!a]` classes,
/// and `**` as a whole segment for any number of segments (`train/**/*.jpg`, `**/tmp/**`).
///
/// Patterns are matched against a key relative to a link's prefix. A pattern without a `/` matches in any
/// directory (`*.tmp` is `**/*.tmp`), as `.gitignore` and rsync filters do.
package struct KeyGlob: Sendable, Equatable, CustomStringConvertible {
    package let pattern: String
    private let segments: [[UInt8]]

    /// Parses a pattern; the error names it and what is wrong.
    package init(_ pattern: String) throws(ObjectStoreError) {
        self.pattern = pattern
        guard !pattern.isEmpty else { throw .configuration("empty glob pattern") }
        guard !pattern.utf8.contains(0) else { throw .configuration("glob '\(pattern)' contains a NUL byte") }
        var text = Substring(pattern)
        while text.hasPrefix("/") { text = text.dropFirst() }
        while text.hasSuffix("/") { text = text.dropLast() }
        var parts = text.split(separator: "/", omittingEmptySubsequences: false).map { Array($0.utf8) }
        guard !parts.contains(where: \.isEmpty) else { throw .configuration("glob '\(pattern)' has an empty segment ('//')") }
        for p in parts where p != Self.doubleStar {
            if p.count >= 2 && p.contains(UInt8(ascii: "*")) && Self.containsDoubleStar(p) {
                throw .configuration("glob '\(pattern)': '**' must be a whole path segment, as in a/**/b")
            }
            if let problem = Self.classProblem(p) { throw .configuration("glob '\(pattern)': \(problem)") }
        }
        if !pattern.contains("/") && parts != [Self.doubleStar] { parts.insert(Self.doubleStar, at: 0) }
        // `**/**` is `**`.
        segments = parts.enumerated().filter { i, p in !(p == Self.doubleStar && i > 0 && parts[i - 1] == Self.doubleStar) }.map(\.1)
    }

    package var description: String { pattern }

    private static let doubleStar = Array("**".utf8)

    private static func containsDoubleStar(_ p: [UInt8]) -> Bool {
        for i in 1..<p.count where p[i] == UInt8(ascii: "*") && p[i - 1] == UInt8(ascii: "*") { return true }
        return false
    }

    /// An unclosed `[`, which would otherwise silently match a literal bracket.
    private static func classProblem(_ p: [UInt8]) -> String? {
        var i = 0
        while i < p.count {
            if p[i] == UInt8(ascii: "[") {
                guard let (_, next) = matchClass(p[...], i, 0) else { return "unclosed '[' character class" }
                i = next
                continue
            }
            i += 1
        }
        return nil
    }

    /// Whether the whole relative key matches.
    package func matches(_ path: String) -> Bool {
        let parts = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map(Array.init)
        return Self.match(segments[...], parts[...])
    }

    /// Whether some key below directory `dir` (relative, without a trailing `/`) could match: a listing
    /// shows the directory only then, under an include pattern.
    package func couldMatchBelow(_ dir: String) -> Bool {
        if dir.isEmpty { return true }
        let parts = dir.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map(Array.init)
        return Self.prefixMatch(segments[...], parts[...])
    }

    /// Whether every key below directory `dir` matches (`tmp/**`, `**/cache/**`): an exclude pattern then
    /// hides the directory itself.
    package func matchesEverythingBelow(_ dir: String) -> Bool {
        guard segments.last == Self.doubleStar else { return false }
        let parts = dir.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map(Array.init)
        return Self.match(segments.dropLast()[...], parts[...])
    }

    /// Segment by segment, keeping the set of path positions the pattern so far can reach: linear in
    /// pattern × path however many `**` there are (backtracking over them is exponential).
    private static func match(_ pattern: ArraySlice<[UInt8]>, _ path: ArraySlice<[UInt8]>) -> Bool {
        let n = path.count
        var reach = [Bool](repeating: false, count: n + 1)
        reach[0] = true
        var next = reach
        for p in pattern {
            var any = false
            if p == doubleStar {
                for j in 0...n {
                    any = any || reach[j]
                    next[j] = any
                }
            } else {
                next[0] = false
                for j in 0..<n {
                    let ok = reach[j] && matchSegment(p[...], path[path.startIndex + j][...])
                    next[j + 1] = ok
                    any = any || ok
                }
            }
            guard any else { return false }
            swap(&reach, &next)
        }
        return reach[n]
    }

    /// The directory's segments are all consumed by a prefix of the pattern, which still has segments left.
    private static func prefixMatch(_ pattern: ArraySlice<[UInt8]>, _ dir: ArraySlice<[UInt8]>) -> Bool {
        guard let first = pattern.first else { return false }
        if first == doubleStar { return true }
        guard let segment = dir.first else { return true }
        guard matchSegment(first[...], segment[...]) else { return false }
        return prefixMatch(pattern.dropFirst(), dir.dropFirst())
    }

    private static func matchSegment(_ p: ArraySlice<UInt8>, _ s: ArraySlice<UInt8>) -> Bool {
        var pi = p.startIndex
        var si = s.startIndex
        var starP: Int?
        var starS = 0
        while si < s.endIndex {
            if pi < p.endIndex {
                let c = p[pi]
                if c == UInt8(ascii: "*") {
                    starP = pi
                    starS = si
                    pi += 1
                    continue
                }
                if c == UInt8(ascii: "?") {
                    pi += 1
                    si += 1
                    continue
                }
                if c == UInt8(ascii: "["), let (matched, next) = matchClass(p, pi, s[si]) {
                    if matched {
                        pi = next
                        si += 1
                        continue
                    }
                } else if c == s[si] {
                    pi += 1
                    si += 1
                    continue
                }
            }
            guard let sp = starP else { return false }
            pi = sp + 1
            starS += 1
            si = starS
        }
        while pi < p.endIndex && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.endIndex
    }

    /// Matches one byte against the class starting at `start` (`[`); returns the result and the index after
    /// the class, or nil if it is not a class (no closing bracket).
    private static func matchClass(_ p: ArraySlice<UInt8>, _ start: Int, _ c: UInt8) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < p.endIndex && (p[i] == UInt8(ascii: "!") || p[i] == UInt8(ascii: "^")) {
            negate = true
            i += 1
        }
        var matched = false
        var first = true
        while i < p.endIndex {
            if p[i] == UInt8(ascii: "]") && !first { return (matched != negate, i + 1) }
            first = false
            if i + 2 < p.endIndex && p[i + 1] == UInt8(ascii: "-") && p[i + 2] != UInt8(ascii: "]") {
                if p[i] <= c && c <= p[i + 2] { matched = true }
                i += 3
            } else {
                if p[i] == c { matched = true }
                i += 1
            }
        }
        return nil
    }
}

/// Which keys of a link are shown and fetched: those that match an include pattern (all, when there is
/// none) and no exclude pattern.
package struct KeyFilter: Sendable, Equatable {
    package var include: [KeyGlob]
    package var exclude: [KeyGlob]
    /// File names never shown in any directory, whatever the globs say: lakecache's own objects (the
    /// metadata summaries of a `summary` link). Not part of the user's globs, so not reported as theirs.
    package var hiddenNames: Set<String> = []

    package init(include: [KeyGlob] = [], exclude: [KeyGlob] = [], hiddenNames: Set<String> = []) {
        self.include = include
        self.exclude = exclude
        self.hiddenNames = hiddenNames
    }

    /// Everything passes.
    package var isEmpty: Bool { include.isEmpty && exclude.isEmpty && hiddenNames.isEmpty }

    /// Whether the object at `path` (relative to the link) is part of the namespace.
    package func admits(file path: String) -> Bool {
        if isEmpty { return true }
        if !hiddenNames.isEmpty && hides(path) { return false }
        if !include.isEmpty && !include.contains(where: { $0.matches(path) }) { return false }
        return !exclude.contains { $0.matches(path) }
    }

    /// Whether the last part of `path` is a hidden name; compared as bytes in place, since every lookup and
    /// every listed entry of every link asks.
    private func hides(_ path: String) -> Bool {
        let bytes = path.utf8
        let start = bytes.lastIndex(of: UInt8(ascii: "/")).map { bytes.index(after: $0) } ?? bytes.startIndex
        let name = bytes[start...]
        return hiddenNames.contains { $0.utf8.elementsEqual(name) }
    }

    /// Whether the directory at `path` (relative to the link) is shown: some key below it could be admitted.
    package func admits(directory path: String) -> Bool {
        if isEmpty || path.isEmpty { return true }
        if !include.isEmpty && !include.contains(where: { $0.couldMatchBelow(path) }) { return false }
        return !exclude.contains { $0.matches(path) || $0.matchesEverythingBelow(path) }
    }
}
