import Testing

@testable import MountConfig

@Suite struct RefusalTests {
    @Test func yamlSyntaxErrorsGiveLineAndColumn() {
        let message = refusal("cache-dir: /a\nlinks:\n  - path: a\n    url: s3://bucket-a: oops: x\n", line: 4, "invalid YAML", "mapping values are not allowed")
        #expect(message.hasPrefix("lake.yaml:4:"))
        refusal("links:\n  - path: \"unclosed\n", line: 3, "invalid YAML", "quoted scalar")
        refusal("links: [a, b\n", line: 2, "invalid YAML")
        refusal("a: 1\n---\nb: 2\n", line: 2, "invalid YAML", "another document")
        refusal("links: *nowhere\n", line: 1, "invalid YAML", "undefined alias")
        refusal("cache-dir: a\u{1}b\n", line: 1, "invalid YAML", "control characters")
    }

    @Test func topLevelMustBeAMapping() {
        refusal("- path: a\n  url: s3://bucket-a\n", line: 1, "the top level is a list, not a mapping", "'links:'")
        refusal("just words\n", line: 1, "the top level is 'just words', not a mapping")
        refusal("# nothing but a comment\n", line: 1, "the file is empty", "links:")
    }

    @Test func unknownTopLevelKeysSuggestTheClosest() {
        #expect(refusal("cache_dir: /x\n" + file(), line: 1) == "lake.yaml:1: unknown setting 'cache_dir'; did you mean 'cache-dir'?")
        refusal("memory-cahce: 1G\n" + file(), line: 1, "unknown setting 'memory-cahce'", "did you mean 'memory-cache'?")
        refusal("Read-Only: true\n" + file(), line: 1, "did you mean 'read-only'?")
        refusal("colour: blue\n" + file(), line: 1, "unknown setting 'colour'", "use one of cache-dir, cache-size", "links")
        refusal(file() + "include: \"*.jpg\"\n", line: 4, "'include' is not a setting here", "move it under a link")
    }

    @Test func unknownLinkKeysNameTheLink() {
        let text = """
            links:
              - path: checkpoints
                url: s3://ckpt-bucket/run42
                read_only: true
            """
        #expect(refusal(text, line: 4) == "lake.yaml:4: link 'checkpoints': unknown field 'read_only'; did you mean 'read-only'?")
        refusal(file(link: "sync-intervall: 5m"), line: 4, "link 'data': unknown field 'sync-intervall'", "did you mean 'sync-interval'?")
        refusal(file(link: "imports: lazy"), line: 4, "did you mean 'import'?")
        refusal(file(link: "on_create: lazy"), line: 4, "did you mean 'on-create'?")
        refusal(file(link: "frobnicate: 1"), line: 4, "unknown field 'frobnicate'", "use one of path, url")
        refusal(file(link: "cache-size: 1G"), line: 4, "link 'data': 'cache-size' is not a field here", "mount-wide setting", "top level")
    }

    @Test func wrongTypes() {
        refusal(file(link: "region: [a, b]"), line: 4, "link 'data'", "'region' is a list, not a string", "region: us-east-1")
        refusal(file(link: "read-only: maybe"), line: 4, "'read-only' is 'maybe', not true or false", "read-only: true")
        refusal(file(link: "no-sign-request: {a: 1}"), line: 4, "'no-sign-request' is a mapping")
        refusal(file(link: "url: [s3://x]").replacingOccurrences(of: "    url: s3://bucket-a/prefix\n", with: ""), line: 3, "'url' is a list")
        refusal(file(top: "upload-concurrency: -1"), line: 1, "'upload-concurrency' is '-1', not a whole number from 1 to 256", "upload-concurrency: 8")
        refusal(file(top: "max-concurrency: lots"), line: 1, "'max-concurrency' is 'lots'", "from 1 to 1024")
        refusal(file(top: "fuse-threads: 2.5"), line: 1, "'fuse-threads' is '2.5', not a whole number")
        refusal(file(top: "dir-read-ahead: -3"), line: 1, "'dir-read-ahead'", "from 0 to 100000")
        refusal(file(top: "uid: -1"), line: 1, "'uid' is '-1'", "from 0")
        refusal(file(top: "gid: 4294967296"), line: 1, "'gid'")
        refusal(file(top: "allow-other: 1"), line: 1, "'allow-other' is '1', not true or false")
        refusal(file(top: "cache-dir:"), line: 1, "'cache-dir' is empty", "cache-dir: /var/cache/lakecache")
        refusal(file(top: "cache-dir: [/a]"), line: 1, "'cache-dir' is a list")
        refusal(file(top: "profile: |\n  two\n  lines"), line: 1, "'profile' contains a control character or line break")
        refusal(file(top: "region: us east"), line: 1, "'region' is 'us east', not a region name")
        refusal(file(top: "write-mode: asynk"), line: 1, "'write-mode' is 'asynk', not async or sync", "did you mean 'async'?")
        refusal(file(top: "log-level: verbose"), line: 1, "'log-level' is 'verbose'", "write one of trace, debug, info")
        refusal(file(top: "close-durability: disk"), line: 1, "not device or kernel")
        refusal(file(link: "metadata: lazy"), line: 4, "'metadata' is 'lazy', not exact, listing, summary; write one of exact, listing, summary")
        refusal(file(link: "addressing-style: host"), line: 4, "'addressing-style' is 'host'", "auto, path, virtual")
        refusal(file(link: "on-create: eager"), line: 4, "'on-create' is 'eager', not lazy or preload")
        refusal(file(link: "include: [a, [b]]"), line: 4, "'include' item 2 is a list, not a string")
        refusal(file(link: "exclude: {a: b}"), line: 4, "'exclude' is a mapping, not a string or a list")
        refusal("links:\n  - s3://bucket-a\n", line: 2, "link #1: is 's3://bucket-a', not a mapping", "- path: DIR")
        refusal("1: x\n" + file(), line: 1, "unknown setting '1'")
        refusal("[a]: x\n" + file(), line: 1, "a key is a list, not a name")
    }

    @Test func badSizes() {
        refusal(file(top: "cache-size: 200X"), line: 1, "'cache-size' is '200X', not a size", "K, M, G or T suffix", "cache-size: 200G")
        refusal(file(top: "memory-cache: -1G"), line: 1, "'memory-cache' is '-1G', not a size")
        refusal(file(top: "pin-budget: lots"), line: 1, "'pin-budget' is 'lots', not a size")
        refusal(file(top: "block-size: 3M"), line: 1, "'block-size' is 3.0 MiB, not a power of two", "4M")
        refusal(file(top: "block-size: 64M"), line: 1, "'block-size' is '64M', outside a power of two from 1M to 16M")
        refusal(file(top: "part-size: 1M"), line: 1, "'part-size' is '1M', outside 5M to 5G", "16M")
    }

    @Test func badModes() {
        refusal(file(top: "file-mode: \"0999\""), line: 1, "'file-mode' is '0999', not an octal mode from 0 to 7777", "file-mode: \"0644\"")
        refusal(file(top: "dir-mode: 17777"), line: 1, "'dir-mode' is '17777', not an octal mode")
        refusal(file(top: "file-mode: rw-r--r--"), line: 1, "'file-mode' is 'rw-r--r--'")
        refusal(file(top: "file-mode: -644"), line: 1, "'file-mode' is '-644'")
    }

    @Test func linksListMustExistAndHoldLinks() {
        refusal("cache-dir: /x\n", line: 1, "there is no 'links' list", "add 'links:'")
        refusal("cache-dir: /x\nlinks: []\n", line: 2, "'links' is an empty list", "- path: DIR")
        refusal("cache-dir: /x\nlinks:\n", line: 2, "'links' is empty, not a list")
        refusal("links: s3://bucket-a\n", line: 1, "'links' is 's3://bucket-a', not a list")
        refusal("links:\n  data: {url: s3://bucket-a}\n", line: 1, "'links' is a mapping, not a list")
    }

    @Test func linkNeedsPathAndURL() {
        refusal("links:\n  - url: s3://bucket-a\n", line: 2, "link #1: has no 'path'", "add 'path: DIR'")
        refusal("links:\n  - path: a\n    url: s3://bucket-a\n  - path: b\n", line: 4, "link 'b': has no 'url'", "add 'url: s3://BUCKET[/PREFIX]'")
        refusal("links:\n  - path:\n    url: s3://bucket-a\n", line: 2, "link #1: 'path' is empty, not a path", "path: /")
    }

    @Test func badURLsAndEndpointsUseObjectStoreMessages() {
        let url = { (value: String) in "links:\n  - path: data\n    url: \(value)\n" }
        #expect(refusal(url("http://bucket-a"), line: 3) == "lake.yaml:3: link 'data': invalid bucket URL 'http://bucket-a'; write it as s3://BUCKET or s3://BUCKET/PREFIX")
        refusal(url("s3://AB"), line: 3, "link 'data': invalid bucket name 'AB'", "3 to 63 characters", "s3://BUCKET")
        refusal(url("s3://bucket-a/x//y"), line: 3, "empty path segment")
        refusal(url("s3://"), line: 3, "the bucket name is empty")
        refusal(file(link: "endpoint: minio:9000"), line: 4, "link 'data': invalid endpoint URL 'minio:9000'", "http://HOST[:PORT]")
        refusal(file(link: "endpoint: http://minio:99999"), line: 4, "port '99999' is not a number from 1 to 65535")
        refusal(file(top: "endpoint: https://host/path"), line: 1, "invalid endpoint URL", "a path, query or credentials are not allowed")
    }

    @Test func badGlobsPointAtTheirItem() {
        refusal(file(link: "include: \"train/[ab\""), line: 4, "link 'data': bad 'include' pattern", "unclosed '['", "train/**/*.jpg")
        refusal(file(link: "exclude:\n  - ok/**\n  - \"a**b/c\""), line: 6, "bad 'exclude' pattern", "'**' must be a whole path segment")
        refusal(file(link: "include: \"\""), line: 4, "empty glob pattern")
    }

    @Test func invalidPathSegments() {
        let path = { (value: String) in "links:\n  - path: \(value)\n    url: s3://bucket-a\n" }
        refusal(path("a/../b"), line: 2, "link 'a/../b': 'path' 'a/../b' has a '..' segment", "without '.' or '..'")
        refusal(path("./a"), line: 2, "has a '.' segment")
        refusal(path("a//b"), line: 2, "has an empty segment ('//')", "single slashes")
        refusal(path(String(repeating: "x", count: 256)), line: 2, "has a segment longer than 255 bytes", "shorten")
        refusal(path("\"a\\0b\""), line: 2, "contains a NUL character")
        #expect(parsed(path(String(repeating: "x", count: 255)))?.links.first?.path.count == 255)
    }

    @Test func duplicateKeys() {
        let top = refusal("cache-dir: /a\nlinks: []\ncache-dir: /b\n", line: 3, "duplicate key 'cache-dir' (first at line 1)", "remove one")
        #expect(top == "lake.yaml:3: duplicate key 'cache-dir' (first at line 1); each key may appear once, so remove one of them")
        let text = """
            links:
              - path: a
                url: s3://bucket-a
              - path: b
                url: s3://bucket-b
                # comment
                read-only: true
                "url": s3://bucket-c
            """
        refusal(text, line: 8, "link 'b': duplicate key 'url' (first at line 5)")
        // Different scalars that are the same key to us.
        refusal(file(top: "uid: 1\n'uid': 2"), line: 2, "duplicate key 'uid' (first at line 1)")
        // A flow mapping defeats the line search: the message still names the key and the first line.
        refusal("links: [{path: a, url: s3://bucket-a, path: b}]\n", line: 1, "duplicate key 'path'", "remove or rename")
        // A duplicate the walk never reaches, inside an extension key, is refused all the same.
        refusal("x-a:\n  k: 1\n  k: 2\n" + file(), line: 3, "duplicate key 'k' (first at line 2)")
        // Keys of different links are not duplicates.
        #expect(parsed(file(top: "x-a: &a {read-only: true}", link: "<<: *a\nread-only: false"))?.links.first?.readOnly == false)
    }

    @Test func mergeKeysMustMergeMappings() {
        refusal("x-a: &a [1]\n" + file(link: "<<: *a"), line: 5, "'<<' lists '1', not a mapping")
        refusal(file(link: "<<: nothing"), line: 4, "'<<' merges 'nothing', not a mapping")
    }

    @Test func tooManyLinks() {
        func links(_ n: Int) -> String {
            var text = "links:\n"
            for i in 0..<n { text += "  - {path: l\(i), url: s3://bucket-a}\n" }
            return text
        }
        #expect(parsed(links(10_000))?.links.count == 10_000)
        refusal(links(10_001), line: 10_002, "more than 10000 links", "several mounts")
    }

    @Test func tooLargeText() throws {
        let text = file() + "#" + String(repeating: "x", count: 1 << 20) + "\n"
        do {
            _ = try MountConfig.parse(text, file: "big.yaml")
            Issue.record("parsed a file over 1 MiB")
        } catch {
            #expect(error.message.hasPrefix("big.yaml: the file is \(text.utf8.count) bytes, over the 1 MiB limit;"))
        }
    }

    @Test func aliasExpansionIsBounded() throws {
        // Ten times more keys at each level: 10^8 merged keys from 17 lines.
        var text = "x-0: &a0 {k: v}\n"
        for i in 1...8 { text += "x-\(i): &a\(i)\n  <<: [" + (0..<10).map { _ in "*a\(i - 1)" }.joined(separator: ", ") + "]\n" }
        text += file(link: "<<: *a8")
        #expect(throws: ConfigError("lake.yaml:21: link 'data': the file expands to more than 10000 values through aliases and merge keys; use fewer aliases")) {
            try MountConfig.parse(text, file: "lake.yaml", valueLimit: 10_000)
        }
        // Aliased lists count each time they are used.
        let lists = "x-big: &big [" + Array(repeating: "p", count: 3000).joined(separator: ", ") + "]\n"
            + "links:\n" + (0..<4).map { "  - {path: l\($0), url: s3://bucket-a, include: *big}\n" }.joined()
        #expect(try MountConfig.parse(lists, file: "lake.yaml").links.count == 4)
        #expect(throws: ConfigError("lake.yaml:6: link 'l3': the file expands to more than 10000 values through aliases and merge keys; use fewer aliases")) {
            try MountConfig.parse(lists, file: "lake.yaml", valueLimit: 10_000)
        }
    }
}
