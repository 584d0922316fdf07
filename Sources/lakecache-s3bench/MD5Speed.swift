import ArgumentParser
import Platform
import ObjectStore

/// Hashes the same buffers with libcrypto one at a time and with `LaneHasher` side by side; prints both rates.
///
/// The upload path's MD5 cost on this CPU, without any I/O: what `docs/architecture.md` quotes.
struct MD5Speed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "md5", abstract: "MD5 speed: libcrypto against the SIMD lanes, on one core.")
    @Option(help: "Bytes per buffer.") var size = 16 << 20
    @Option(help: "Buffers hashed together.") var buffers = 8
    @Option(help: "Rounds over the buffers.") var rounds = 4

    func run() async throws {
        let bufs = (0..<buffers).map { i -> UnsafeMutableRawBufferPointer in
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
            for j in stride(from: 0, to: size, by: 8) { b.storeBytes(of: UInt64(j &* 2654435761 &+ i), toByteOffset: j, as: UInt64.self) }
            return b
        }
        defer { bufs.forEach { $0.deallocate() } }
        let total = Double(size * buffers * rounds)
        var start = monotonicSeconds()
        for _ in 0..<rounds { for b in bufs { _ = Digest.md5(UnsafeRawBufferPointer(b)) } }
        let libcrypto = total / (monotonicSeconds() - start) / 1e6
        let hasher = LaneHasher(name: "md5-speed")
        start = monotonicSeconds()
        for _ in 0..<rounds {
            await withTaskGroup(of: Void.self) { group in
                for b in bufs {
                    nonisolated(unsafe) let bytes = UnsafeRawBufferPointer(b)
                    group.addTask { _ = await hasher.md5(bytes) }
                }
            }
        }
        let lanes = total / (monotonicSeconds() - start) / 1e6
        print("{\"workload\":\"md5\",\"buffers\":\(buffers),\"size\":\(size),\"libcrypto_mb_per_s\":\(Int(libcrypto)),\"lanes_mb_per_s\":\(Int(lanes)),\"lanes_available\":\(LaneHasher.lanesAvailable)}")
    }
}
