import Foundation
import Testing

import Platform
@testable import ObjectStore

@Suite("LaneHasher: MD5 in SIMD lanes agrees with libcrypto")
struct LaneHasherTests {
    /// Deterministic bytes, different for every buffer.
    static func buffer(_ count: Int, seed: UInt64) -> UnsafeMutableRawBufferPointer {
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 64)
        var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        for i in 0..<count {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            b[i] = UInt8(truncatingIfNeeded: x)
        }
        return UnsafeMutableRawBufferPointer(start: b.baseAddress, count: count)
    }

    /// Hashes `sizes` all submitted at once (so they share lanes and finish at different times) and checks
    /// each against libcrypto.
    static func check(_ sizes: [Int], lanes: Bool = true) async {
        let hasher = LaneHasher(name: "test-md5", lanes: lanes)
        let buffers = sizes.enumerated().map { buffer($0.element, seed: UInt64($0.offset + 1)) }
        defer { buffers.forEach { $0.deallocate() } }
        let results = await withTaskGroup(of: (Int, [UInt8]).self) { group in
            for (i, b) in buffers.enumerated() {
                nonisolated(unsafe) let bytes = UnsafeRawBufferPointer(b)
                group.addTask { (i, await hasher.md5(bytes)) }
            }
            var out = [Int: [UInt8]]()
            for await (i, d) in group { out[i] = d }
            return out
        }
        for (i, b) in buffers.enumerated() {
            #expect(results[i] == Digest.md5(UnsafeRawBufferPointer(b)), "size \(sizes[i])")
        }
    }

    @Test("RFC 1321 test vectors")
    func vectors() async {
        let hasher = LaneHasher(name: "test-md5")
        for (text, hex) in [("", "d41d8cd98f00b204e9800998ecf8427e"), ("abc", "900150983cd24fb0d6963f7d28e17f72"),
                            ("12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                             "57edf4a22be3c955ac49da2e2107b67a")] {
            let bytes = Array(text.utf8)
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
            defer { copy.deallocate() }
            copy.copyBytes(from: bytes)
            let digest = await hasher.md5(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(copy)[0..<bytes.count]))
            #expect(Digest.hex(digest) == hex, "MD5(\"\(text)\")")
        }
    }

    @Test("Lengths around the padding boundaries, alone and side by side")
    func paddingBoundaries() async {
        let sizes = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 121, 127, 128, 129, 1000]
        for size in sizes { await Self.check([size]) }
        await Self.check(sizes)
    }

    @Test("Buffers of different lengths share lanes and finish at different chunks")
    func mixedLengths() async {
        let chunk = LaneHasher.chunkBlocks * 64
        await Self.check([chunk, chunk + 7, 3 * chunk + 100, 5, 2 * chunk - 1, 16 << 20, 200_000, chunk * 2, 64, 9 * chunk + 55, 1 << 20, 3])
    }

    @Test("More buffers than lanes: later ones take lanes as earlier ones finish")
    func moreThanEightLanes() async {
        await Self.check((0..<21).map { 100_000 + $0 * 37_000 })
    }

    @Test("The libcrypto path gives the same digests")
    func withoutLanes() async {
        await Self.check([0, 63, 64, 65, 300_000], lanes: false)
    }
}
