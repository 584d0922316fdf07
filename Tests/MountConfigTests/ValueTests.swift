import ObjectStore
import Testing

@testable import MountConfig

@Suite struct ValueTests {
    @Test(arguments: [
        ("60", 60.0), ("0", 0), ("1.5", 1.5), ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("0.5m", 30),
        ("\"90\"", 90),
    ])
    func durations(_ written: String, _ seconds: Double) throws {
        let config = try #require(parsed(file(top: "metadata-ttl: \(written)\nnegative-ttl: \(written)")))
        #expect(config.settings.metadataTTL == .seconds(seconds))
        #expect(config.links[0].negativeTTL == .seconds(seconds))
    }

    @Test func indefiniteTTL() throws {
        #expect(parsed(file(link: "metadata-ttl: indefinite"))?.links[0].metadataTTL == .indefinite)
    }

    @Test(arguments: ["-5", "forever", "5w", "1:30", "inf", "nan", "0x10", "s", "1..5", "[5]"])
    func badDurations(_ written: String) {
        refusal(file(link: "metadata-ttl: \(written)"), line: 4, "link 'data': 'metadata-ttl' is", "30s, 5m, 2h or 1d, or indefinite")
    }

    @Test func syncIntervalMustBePositive() throws {
        #expect(parsed(file(link: "sync-interval: 90s"))?.links[0].syncInterval == 90)
        #expect(parsed(file(link: "sync-interval: 0.25"))?.links[0].syncInterval == 0.25)
        refusal(file(link: "sync-interval: 0"), line: 4, "'sync-interval' is '0', not longer than zero", "30s")
        refusal(file(link: "sync-interval: indefinite"), line: 4, "'sync-interval' is 'indefinite', not a duration")
    }

    @Test(arguments: [
        ("200G", Int64(200) << 30), ("512M", 512 << 20), ("1048576", 1 << 20), ("1.5G", 3 << 29), ("64KiB", 64 << 10),
        ("\"2T\"", 2 << 40), ("0", 0), ("10b", 10),
    ])
    func sizes(_ written: String, _ bytes: Int64) throws {
        let settings = try #require(parsed(file(top: "cache-size: \(written)\nmemory-cache: \(written)\npin-budget: \(written)"))?.settings)
        #expect(settings.cacheSize == bytes)
        #expect(settings.memoryCache == bytes)
        #expect(settings.pinBudget == bytes)
    }

    @Test func blockAndPartSizeBounds() throws {
        #expect(parsed(file(top: "block-size: 1M\npart-size: 5M"))?.settings.blockSize == 1 << 20)
        #expect(parsed(file(top: "block-size: 16777216\npart-size: 5G"))?.settings.partSize == 5 << 30)
    }

    @Test(arguments: [("0644", UInt32(0o644)), ("\"0755\"", 0o755), ("644", 0o644), ("0o600", 0o600), ("7777", 0o7777), ("0", 0)])
    func modes(_ written: String, _ mode: UInt32) throws {
        let settings = try #require(parsed(file(top: "file-mode: \(written)\ndir-mode: \(written)"))?.settings)
        #expect(settings.fileMode == mode)
        #expect(settings.dirMode == mode)
    }

    @Test func booleanSpellings() throws {
        for (written, value) in [("true", true), ("False", false), ("yes", true), ("no", false), ("on", true), ("\"off\"", false)] {
            #expect(parsed(file(link: "read-only: \(written)"))?.links[0].readOnly == value, "\(written)")
        }
    }

    @Test func singleStringIncludeIsOneElementList() throws {
        let link = try #require(parsed(file(link: "include: \"train/**\"\nexclude: '*.tmp'"))?.links.first)
        #expect(link.include == [try KeyGlob("train/**")])
        #expect(link.exclude == [try KeyGlob("*.tmp")])
        #expect(link.include[0].matches("train/a/b.jpg") && !link.include[0].matches("val/a.jpg"))
        #expect(link.exclude[0].matches("x/y.tmp"))
    }

    @Test func blockListInclude() throws {
        let link = try #require(parsed(file(link: "include:\n  - a/**\n  - b/*.csv\nexclude: []"))?.links.first)
        #expect(link.include.map(\.pattern) == ["a/**", "b/*.csv"])
        #expect(link.exclude.isEmpty)
    }

    @Test func durationParser() {
        #expect(Durations.seconds("2h") == 7200)
        #expect(Durations.seconds(" 10s ") == 10)
        #expect(Durations.seconds("1e3") == nil)
        #expect(Durations.seconds("") == nil)
        #expect(Durations.seconds("-1") == nil)
    }

    @Test func suggestions() {
        #expect(KeySuggestion.closest(to: "read_only", in: ["read-only", "region"]) == "read-only")
        #expect(KeySuggestion.closest(to: "regoin", in: ["read-only", "region"]) == "region")
        #expect(KeySuggestion.closest(to: "READ-ONLY", in: ["read-only"]) == "read-only")
        #expect(KeySuggestion.closest(to: "colour", in: ["read-only", "region"]) == nil)
        #expect(KeySuggestion.distance(Array("kitten".utf8), Array("sitting".utf8)) == 3)
    }

    @Test func messagesStayOnOneLine() {
        #expect(ConfigError("a\nb\u{0}c\td").message == "a\\nb\\u{0}c\\td")
        let message = refusal(file(link: "region: \"a\\nb\""), line: 4)
        #expect(message.contains("'region' contains a control character or line break"))
    }
}
