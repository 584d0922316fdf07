import Testing

@testable import MountConfig

/// SplitMix64: a fixed seed gives the same mutations on every run and platform.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct FuzzTests {
    /// Bytes YAML gives meaning to, so mutations reach the parser's corners rather than just misspelling words.
    static let interesting = Array(":-[]{},#&*!|>'\"%@` \n\t\0/\\?<".utf8)

    @Test func mutatedExamplesParseOrFailCleanly() {
        var rng = SeededGenerator(state: 42)
        let original = Array(exampleYAML.utf8)
        var parsedCount = 0
        var refusedCount = 0
        for _ in 0..<400 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
                case 1: bytes.remove(at: i)
                case 2: bytes.insert(Self.interesting.randomElement(using: &rng)!, at: i)
                default: bytes[i] = Self.interesting.randomElement(using: &rng)!
                }
                if bytes.isEmpty { bytes = [UInt8(ascii: "x")] }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            do {
                let config = try MountConfig.parse(text, file: "fuzz.yaml")
                parsedCount += 1
                #expect(!config.links.isEmpty && config.links.count <= 3)
                #expect(config.links.allSatisfy { !$0.path.hasPrefix("/") && !$0.path.hasSuffix("/") })
            } catch {
                refusedCount += 1
                #expect(error.message.hasPrefix("fuzz.yaml:"), "\(error.message)")
                #expect(!error.message.contains("\n"), "\(error.message)")
            }
        }
        #expect(parsedCount + refusedCount == 400)
        // Both outcomes happen: a test where everything is refused would prove nothing about the walk.
        #expect(parsedCount > 20)
        #expect(refusedCount > 20)
    }
}
