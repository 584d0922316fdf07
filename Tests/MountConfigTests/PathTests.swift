import Testing

@testable import MountConfig

@Suite struct PathTests {
    /// A file with one link per path, lines 2, 4, 6...
    func links(_ paths: String...) -> String {
        var text = "links:\n"
        for (i, path) in paths.enumerated() { text += "  - path: \(path)\n    url: s3://bucket-\(i)x\n" }
        return text
    }

    @Test func siblingsAndPrefixNamesAreFine() throws {
        let config = try #require(parsed(links("a", "ab", "a-b", "b/a", "b/ab", "c/d/e", "c/d2")))
        #expect(config.links.map(\.path) == ["a", "ab", "a-b", "b/a", "b/ab", "c/d/e", "c/d2"])
        #expect(config.links.map(\.line) == [2, 4, 6, 8, 10, 12, 14])
    }

    @Test func normalizedPaths() throws {
        let config = try #require(parsed(links("/a/b/", "c//", "\"/d\"")))
        #expect(config.links.map(\.path) == ["a/b", "c", "d"])
    }

    @Test func samePathTwice() {
        let message = refusal(links("a", "b", "/a/"), line: 6, "link 'a': has the same path as the link at line 2", "a path of its own")
        #expect(message == "lake.yaml:6: link 'a': has the same path as the link at line 2; give each link a path of its own")
        refusal(links("/", "\"\""), line: 4, "link '/': has the same path as the link at line 2")
    }

    @Test func laterLinkInsideEarlier() {
        let message = refusal(links("a", "a/b"), line: 4, "link 'a/b' is inside link 'a' (line 2)", "link paths may not nest")
        #expect(message == "lake.yaml:4: link 'a/b' is inside link 'a' (line 2), but link paths may not nest; move one of them to a path of its own")
        refusal(links("x/y", "a", "a/b/c/d"), line: 6, "link 'a/b/c/d' is inside link 'a' (line 4)")
    }

    @Test func laterLinkContainsEarlier() {
        refusal(links("a/b/c", "q", "a/b"), line: 6, "link 'a/b' contains link 'a/b/c' (line 2)", "may not nest")
        refusal(links("a/b/c", "a"), line: 4, "link 'a' contains link 'a/b/c' (line 2)")
    }

    @Test func rootNestsWithAnything() {
        refusal(links("/", "anything"), line: 4, "link 'anything' is inside link '/' (line 2)", "a link at the mount root ('/') must be the only link")
        refusal(links("deep/er", "x", "/"), line: 6, "link '/' contains link 'deep/er' (line 2)", "must be the only link")
        #expect(parsed(links("/"))?.links.first?.path == "")
    }
}
