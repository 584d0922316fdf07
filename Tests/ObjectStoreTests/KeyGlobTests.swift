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

    @Test(arguments: ["", "a//b", "x[ab", "a**b/c"]) func badPatternsAreRefused(_ p: String) {
        #expect(throws: ObjectStoreError.self) { try KeyGlob(p) }
    }
}
