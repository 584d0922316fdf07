import Platform
import CCrypto
import MD5Lanes

/// The eight lanes of one `LaneHasher` drain: the buffer each hashes, how far it got, and its MD5 state.
///
/// Every lane present has at least one whole block left when `advance` runs: `finishCompleted` pads and
/// finishes a lane as soon as less than a block remains, so the eight-lane kernel never runs over a lane
/// whose state must not move.
struct LaneSet {
    private struct Lane {
        var bytes: UnsafeRawBufferPointer
        var offset: Int
        var done: @Sendable ([UInt8]) -> Void
        var fullBlocksLeft: Int { (bytes.count - offset) / 64 }
    }

    static let width = 8
    private static let initial: [UInt32] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476]

    private var lanes = [Lane?](repeating: nil, count: LaneSet.width)
    /// A, B, C and D of the eight lanes, 32 words in the layout `md5Compress8` takes.
    private let state = UnsafeMutablePointer<UInt32>.allocate(capacity: 4 * LaneSet.width)
    private let pointers = UnsafeMutablePointer<UnsafeRawPointer>.allocate(capacity: LaneSet.width)
    /// What an idle lane reads; its result is never used.
    private let idle = UnsafeMutableRawPointer.allocate(byteCount: LaneHasher.chunkBlocks * 64, alignment: 64)
    /// One lane's state, or the padded last blocks of a buffer.
    private let single = UnsafeMutablePointer<UInt32>.allocate(capacity: 4)
    private let tail = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 64)

    init() {
        idle.initializeMemory(as: UInt8.self, repeating: 0, count: LaneHasher.chunkBlocks * 64)
    }

    func deallocate() {
        state.deallocate()
        pointers.deallocate()
        idle.deallocate()
        single.deallocate()
        tail.deallocate()
    }

    var hasFreeLane: Bool { lanes.contains { $0 == nil } }
    var isEmpty: Bool { lanes.allSatisfy { $0 == nil } }

    mutating func add(_ bytes: UnsafeRawBufferPointer, _ done: @escaping @Sendable ([UInt8]) -> Void) {
        guard let i = lanes.firstIndex(where: { $0 == nil }) else { preconditionFailure("no free lane") }
        lanes[i] = Lane(bytes: bytes, offset: 0, done: done)
        for w in 0..<4 { state[w * LaneSet.width + i] = Self.initial[w] }
    }

    /// Hashes up to `maxBlocks` blocks of every lane: all lanes together, or libcrypto's block function when
    /// only one is busy (eight lanes cost the same as one, and OpenSSL's assembly beats the one-lane kernel:
    /// 600 against 495 MB/s).
    mutating func advance(maxBlocks: Int) {
        var busy = 0
        var last = 0
        var blocks = maxBlocks
        for i in 0..<LaneSet.width {
            guard let lane = lanes[i] else { continue }
            busy += 1
            last = i
            blocks = min(blocks, lane.fullBlocksLeft)
        }
        guard busy > 0, blocks > 0 else { return }
        if busy == 1 {
            load(lane: last)
            CCrypto_md5_blocks(single, lanes[last]!.bytes.baseAddress! + lanes[last]!.offset, blocks)
            store(lane: last)
        } else {
            for i in 0..<LaneSet.width {
                if let lane = lanes[i] {
                    pointers[i] = lane.bytes.baseAddress! + lane.offset
                } else {
                    pointers[i] = UnsafeRawPointer(idle)
                }
            }
            md5Compress8(state, pointers, blocks: blocks)
        }
        for i in 0..<LaneSet.width where lanes[i] != nil { lanes[i]!.offset += blocks * 64 }
    }

    /// Pads and finishes every lane with less than a block left, and hands each its digest.
    mutating func finishCompleted() {
        for i in 0..<LaneSet.width {
            guard let lane = lanes[i], lane.fullBlocksLeft == 0 else { continue }
            let rest = lane.bytes.count - lane.offset
            if rest > 0 { tail.copyMemory(from: lane.bytes.baseAddress! + lane.offset, byteCount: rest) }
            // RFC 1321 padding: 0x80, zeros to 56 mod 64, then the length in bits, little-endian.
            let blocks = rest < 56 ? 1 : 2
            tail.storeBytes(of: 0x80, toByteOffset: rest, as: UInt8.self)
            (tail + rest + 1).initializeMemory(as: UInt8.self, repeating: 0, count: blocks * 64 - 8 - rest - 1)
            tail.storeBytes(of: (UInt64(lane.bytes.count) &* 8).littleEndian, toByteOffset: blocks * 64 - 8, as: UInt64.self)
            load(lane: i)
            CCrypto_md5_blocks(single, tail, blocks)
            var digest = [UInt8](repeating: 0, count: 16)
            for w in 0..<4 {
                for b in 0..<4 { digest[w * 4 + b] = UInt8(truncatingIfNeeded: single[w] >> (8 * UInt32(b))) }
            }
            lanes[i] = nil
            lane.done(digest)
        }
    }

    private func load(lane i: Int) {
        for w in 0..<4 { single[w] = state[w * LaneSet.width + i] }
    }

    private func store(lane i: Int) {
        for w in 0..<4 { state[w * LaneSet.width + i] = single[w] }
    }
}
