/// Link paths: where in the mount a link appears, and the rule that no link is inside another.
enum LinkPath {
    /// The path without leading or trailing `/` ("" for the root), or what is wrong with it.
    static func normalize(_ text: String) -> Result<String, Problem> {
        guard !text.utf8.contains(0) else { return .failure(Problem(what: "contains a NUL character", fix: "remove it")) }
        var path = Substring(text)
        while path.hasPrefix("/") { path = path.dropFirst() }
        while path.hasSuffix("/") { path = path.dropLast() }
        if path.isEmpty { return .success("") }
        for segment in path.split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty {
                return .failure(Problem(what: "has an empty segment ('//')", fix: "write single slashes between directories, as in datasets/imagenet"))
            }
            if segment == "." || segment == ".." {
                return .failure(Problem(what: "has a '\(segment)' segment", fix: "write the directory without '.' or '..', as in datasets/imagenet"))
            }
            if segment.utf8.count > 255 {
                return .failure(Problem(what: "has a segment longer than 255 bytes", fix: "shorten that directory name"))
            }
        }
        return .success(String(path))
    }

    /// Why a path was refused.
    struct Problem: Error {
        var what: String
        var fix: String
    }

    /// The proper ancestors of a normalized path, the root ("") first: "a/b/c" has "", "a" and "a/b".
    static func ancestors(of path: String) -> [String] {
        guard !path.isEmpty else { return [] }
        var result = [""]
        var index = path.startIndex
        while let slash = path[index...].firstIndex(of: "/") {
            result.append(String(path[..<slash]))
            index = path.index(after: slash)
        }
        return result
    }
}

extension ConfigReader {
    /// Refuses two links at one path and a link inside another, at the later one of the two, naming both.
    ///
    /// Each link checks its ancestors among the earlier links, and whether it is an ancestor of one of them:
    /// O(links × depth), not a comparison of every pair, for files with thousands of links.
    func checkPaths(of links: [LinkSpec]) throws(ConfigError) {
        var byPath: [String: Int] = [:]
        var below: [String: Int] = [:]
        for (i, link) in links.enumerated() {
            let scope = Scope.link(path: link.path, index: i)
            let name = quoted(link.path.isEmpty ? "/" : link.path)
            if let j = byPath[link.path] {
                throw error(link.line, scope, "has the same path as the link at line \(links[j].line)", "give each link a path of its own")
            }
            let ancestors = LinkPath.ancestors(of: link.path)
            if let j = below[link.path] {
                let other = links[j]
                throw error(link.line, .top, "link \(name) contains link \(quoted(other.path)) (line \(other.line)), \(nesting(outer: link.path))", "move one of them to a path of its own")
            }
            for ancestor in ancestors {
                if let j = byPath[ancestor] {
                    let other = links[j]
                    throw error(link.line, .top, "link \(name) is inside link \(quoted(ancestor.isEmpty ? "/" : ancestor)) (line \(other.line)), \(nesting(outer: ancestor))", "move one of them to a path of its own")
                }
            }
            byPath[link.path] = i
            for ancestor in ancestors where below[ancestor] == nil { below[ancestor] = i }
        }
    }

    private func nesting(outer: String) -> String {
        outer.isEmpty ? "but link paths may not nest: a link at the mount root ('/') must be the only link" : "but link paths may not nest"
    }
}
