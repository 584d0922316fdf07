import Testing

@testable import ObjectStore

@Suite struct KeyGlobTests {
    func glob(_ p: String) throws -> KeyGlob { try KeyGlob(p) }

    @Test func segmentsStarsAndClasses() throws {
        #expect(try glob("train/*.jpg").matches("train/a.jpg"))
        #expect(try !glob("train/*.jpg").matches("train/sub/a.jpg"))
        #expect(try glob("train/**/*.jpg").matches("train/sub/deeper/a.jpg"))
        #expect(try glob("train/**/*.jpg").matches("train/a.jpg"), "** matches zero segments")
        #expect(try glob("f?.bin").matches("d/f1.bin"), "a pattern without / matches in any directory")
        #expect(try glob("[a-c]x").matches("bx") && !glob("[a-c]x").matches("dx"))
        #expect(try glob("[!a]x").matches("bx") && !glob("[!a]x").matches("ax"))
        #expect(try glob("**/tmp/**").matches("a/tmp/b/c") && glob("**/tmp/**").matches("tmp/x"))
        #expect(try !glob("*.jpg").matches("a.jpeg"))
        #expect(try glob("a*b*c").matches("axxbyyc") && !glob("a*b*c").matches("axxbyy"))
    }

    @Test func directoriesUnderIncludeAndExclude() throws {
        let filter = KeyFilter(include: [try glob("train/**/*.jpg")], exclude: [try glob("train/tmp/**")])
        #expect(filter.admits(directory: "train"))
        #expect(filter.admits(directory: "train/cats"))
        #expect(!filter.admits(directory: "val"), "nothing below val can match the include")
        #expect(!filter.admits(directory: "train/tmp"), "everything below is excluded")
        #expect(filter.admits(file: "train/cats/1.jpg"))
        #expect(!filter.admits(file: "train/cats/1.txt"))
        #expect(!filter.admits(file: "train/tmp/1.jpg"))
        #expect(KeyFilter().admits(file: "anything") && KeyFilter().admits(directory: "any"))
    }

    /// Found by the fuzzer: matching backtracked over every way to split the path between `**` segments,
    /// so 30 of them against a 60-segment key did not finish in 20 minutes.
    @Test func manyDoubleStarsMatchInLinearSteps() throws {
        let pattern = (0..<30).map { _ in "**/s*" }.joined(separator: "/") + "/x"
        let path = (0..<60).map { _ in "sss" }.joined(separator: "/")
        #expect(try !glob(pattern).matches(path))
        #expect(try glob(pattern).matches(path + "/x"))
        #expect(try glob("**/**/**/a").matches("a") && glob("a/**/**").matches("a"))
        #expect(try !glob(pattern).matchesEverythingBelow(path))
        // The random reference: the same answers as a naive backtracking matcher on small cases.
        var rng = SystemRandomNumberGenerator()
        let pieces = ["**", "*", "a", "b", "a*", "?"]
        for _ in 0..<500 {
            let p = (0..<Int.random(in: 1...5, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined(separator: "/")
            let k = (0..<Int.random(in: 1...5, using: &rng)).map { _ in ["a", "b", "ab", "ba"].randomElement(using: &rng)! }.joined(separator: "/")
            guard p.contains("/") else { continue }
            #expect(try glob(p).matches(k) == naive(p.split(separator: "/").map(String.init)[...], k.split(separator: "/").map(String.init)[...]), "\(p) vs \(k)")
        }
    }

    /// Backtracking reference for `manyDoubleStarsMatchInLinearSteps` (segments `*`, `?`, literals, `a*`).
    func naive(_ p: ArraySlice<String>, _ k: ArraySlice<String>) -> Bool {
        guard let first = p.first else { return k.isEmpty }
        if first == "**" { return (0...k.count).contains { naive(p.dropFirst(), k.dropFirst($0)) } }
        guard let seg = k.first else { return false }
        let ok: Bool
        switch first {
        case "*": ok = true
        case "?": ok = seg.count == 1
        case "a*": ok = seg.hasPrefix("a")
        default: ok = seg == first
        }
        return ok && naive(p.dropFirst(), k.dropFirst())
    }

    @Test(arguments: ["", "a//b", "x[ab", "a**b/c"]) func badPatternsAreRefused(_ p: String) {
        #expect(throws: ObjectStoreError.self) { try KeyGlob(p) }
    }
}
