import Testing

@testable import ReadCache

/// The disk tier's checksum against the reference implementation's values (python-xxhash 3, XXH64):
/// short inputs, the 32-byte stripe loop, a tail of every length class, and a seed.
@Suite struct XXHash64Tests {
    func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { XXHash64.hash($0, seed: seed) }
    }

    @Test func matchesTheReferenceImplementation() {
        #expect(hash([]) == 0xef46_db37_51d8_e999)
        #expect(hash(Array("a".utf8)) == 0xd24e_c4f1_a98c_6e5b)
        #expect(hash(Array("abc".utf8)) == 0x44bc_2cf5_ad77_0999)
        #expect(hash(Array("Nobody inspects the spammish repetition".utf8)) == 0xfbce_a83c_8a37_8bf1)
        #expect(hash(Array((0..<256).map { UInt8($0) }) + Array((0..<256).map { UInt8($0) }) + Array((0..<256).map { UInt8($0) })
            + Array((0..<256).map { UInt8($0) }) + Array((0..<256).map { UInt8($0) })) == 0xafc1_84ad_7938_a354)
        #expect(hash((0..<37).map { UInt8($0) }, seed: 2_654_435_761) == 0x0e53_29d5_5320_6fe8)
    }
}
