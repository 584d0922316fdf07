import Foundation
import Platform
import ObjectStore
import Testing

@testable import ReadCache

@Suite struct DiskTierTests {
    let slot = 64 << 10

    func write(_ disk: DiskTier, _ key: BlockKey, _ data: UnsafeRawBufferPointer, readable: Int) async -> Bool {
        await withCheckedContinuation { c in disk.write(key, from: data, readable: readable) { c.resume(returning: $0) } }
    }

    func read(_ disk: DiskTier, _ key: BlockKey, into buffer: UnsafeMutableRawBufferPointer, readable: Int) async -> Int? {
        await withCheckedContinuation { c in disk.read(key, into: buffer, readable: readable) { c.resume(returning: $0) } }
    }

    /// Whether the filesystem under `dir` accepts O_DIRECT at all (tmpfs did not before Linux 6.6).
    func directIOWorks(in dir: String) -> Bool {
        let probe = dir + "/probe"
        guard case .success(let fd) = Syscall.open(probe, O_WRONLY | O_CREAT | Syscall.directIOFlag) else { return false }
        Syscall.close(fd)
        unlink(probe)
        return true
    }

    /// A fresh tier in a scratch directory and a page-aligned slot-sized buffer, all removed afterwards.
    func withTier(_ body: (DiskTier, UnsafeMutableRawBufferPointer, String) async throws -> Void) async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let disk = try DiskTier(directory: dir, capacity: 1 << 30, freeSpaceFloor: 0)
        defer { disk.shutdown() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: slot, alignment: 4096)
        defer { buffer.deallocate() }
        try await body(disk, buffer, dir)
    }

    /// Writes a slot-sized patterned block of object `key` through `buffer`; returns its key, the path of its
    /// file and its bytes.
    func writeSlot(_ disk: DiskTier, _ buffer: UnsafeMutableRawBufferPointer, key name: String, seed: UInt64) async -> (BlockKey, String, [UInt8]) {
        let data = pattern(slot, seed: seed)
        data.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: slot) }
        let object = ObjectVersion(bucket: "b", key: name, etag: "\"e\"", size: Int64(slot))
        let key = BlockKey(object: object, index: 0)
        #expect(await write(disk, key, UnsafeRawBufferPointer(buffer), readable: slot))
        return (key, disk.path(DiskTier.DiskKey(object: object.id, index: 0)), data)
    }

    @Test func unalignedLengthsRoundTripThroughDirectIO() async throws {
        try await withTier { disk, buffer, dir in
            let object = ObjectVersion(bucket: "b", key: "k", etag: "\"e\"", size: Int64(slot) * 8)
            for (i, length) in [1, 4095, 4096, 4097, slot - 100, slot].enumerated() {
                let data = pattern(length, seed: UInt64(length))
                data.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: length) }
                let key = BlockKey(object: object, index: Int64(i))
                #expect(await write(disk, key, UnsafeRawBufferPointer(rebasing: buffer[0..<length]), readable: slot))
                // The padding written for direct I/O is cut off again: the file is header plus data.
                var st = stat()
                #expect(stat(disk.path(DiskTier.DiskKey(object: object.id, index: Int64(i))), &st) == 0)
                #expect(Int(st.st_size) == DiskTier.headerSize + length)
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
                let n = await read(disk, key, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]), readable: slot)
                #expect(n == length)
                #expect(Array(buffer[0..<length]) == data, "length \(length)")
            }
            #expect(disk.usesDirectIO == directIOWorks(in: dir))
            #expect(disk.corrupt.load(ordering: .relaxed) == 0)
        }
    }

    @Test func anUnalignedBufferGoesThroughThePageCache() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let disk = try DiskTier(directory: dir, capacity: 1 << 30, freeSpaceFloor: 0)
        defer { disk.shutdown() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: slot + 64, alignment: 4096)
        defer { buffer.deallocate() }
        let shifted = UnsafeMutableRawBufferPointer(rebasing: buffer[16..<(16 + 5000)])
        let data = pattern(5000, seed: 7)
        data.withUnsafeBytes { shifted.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: 5000) }
        let key = BlockKey(object: ObjectVersion(bucket: "b", key: "u", etag: "\"e\"", size: 5000), index: 0)
        #expect(await write(disk, key, UnsafeRawBufferPointer(shifted), readable: 5000))
        shifted.initializeMemory(as: UInt8.self, repeating: 0)
        #expect(await read(disk, key, into: shifted, readable: 5000) == 5000)
        #expect(Array(shifted) == data)
    }

    @Test func aTruncatedBlockIsAMissNotShortData() async throws {
        try await withTier { disk, buffer, _ in
            let (key, path, _) = await writeSlot(disk, buffer, key: "t", seed: 3)
            #expect(truncate(path, off_t(DiskTier.headerSize + slot - 5000)) == 0)
            #expect(await read(disk, key, into: buffer, readable: slot) == nil)
            #expect(disk.corrupt.load(ordering: .relaxed) == 1)
            #expect(!disk.contains(key))
        }
    }

    func readRange(_ disk: DiskTier, _ key: BlockKey, offset: Int, count: Int, into buffer: UnsafeMutableRawPointer, capacity: Int) async -> Int? {
        await withCheckedContinuation { c in disk.readRange(key, offset: offset, count: count, into: buffer, capacity: capacity) { c.resume(returning: $0) } }
    }

    /// A 4 MiB block written once; reads of parts of it at every kind of edge give the block's bytes.
    @Test func rangesOfABlockReadOnlyTheirSubBlocks() async throws {
        try await withTier { disk, _, _ in
            let length = (4 << 20) - 1000  // a tail block: the last sub-block is short
            let data = pattern(length, seed: 11)
            let block = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 4096)
            defer { block.deallocate() }
            data.withUnsafeBytes { block.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: length) }
            let key = BlockKey(object: ObjectVersion(bucket: "b", key: "r", etag: "\"e\"", size: Int64(length)), index: 0)
            #expect(await write(disk, key, UnsafeRawBufferPointer(rebasing: block[0..<length]), readable: 4 << 20))
            let sub = DiskTier.subBlockSize(forBlock: 4 << 20)
            #expect(sub == 64 << 10)
            let capacity = (1 << 20) + 2 * sub
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
            defer { buffer.deallocate() }
            for (offset, count) in [(0, 1), (0, sub), (sub - 1, 2), (12_345, 4096), (sub * 7, 1 << 20), (length - 1, 1), (length - 70_000, 70_000), (length - (1 << 20), 1 << 20)] {
                guard let start = await readRange(disk, key, offset: offset, count: count, into: buffer, capacity: capacity) else {
                    Issue.record("range \(offset)+\(count) not served")
                    continue
                }
                #expect(Array(UnsafeRawBufferPointer(start: buffer + start, count: count)) == Array(data[offset..<(offset + count)]), "range \(offset)+\(count)")
            }
            #expect(await readRange(disk, key, offset: length - 10, count: 11, into: buffer, capacity: capacity) == nil, "past the end of the data")
            #expect(disk.rangeReads.load(ordering: .relaxed) == 8 && disk.corrupt.load(ordering: .relaxed) == 0)
        }
    }

    /// One flipped byte in sub-block 5: a range that touches it is a miss and drops the block; the whole-block
    /// read sees the damage too.
    @Test func aDamagedSubBlockIsAMissAndDropsTheBlock() async throws {
        try await withTier { disk, _, _ in
            let length = 1 << 20
            let data = pattern(length, seed: 12)
            let block = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 4096)
            defer { block.deallocate() }
            data.withUnsafeBytes { block.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: length) }
            let object = ObjectVersion(bucket: "b", key: "d", etag: "\"e\"", size: Int64(length))
            let key = BlockKey(object: object, index: 0)
            #expect(await write(disk, key, UnsafeRawBufferPointer(block), readable: length))
            let path = disk.path(DiskTier.DiskKey(object: object.id, index: 0))
            let fd = open(path, O_RDWR)
            var byte: UInt8 = 0
            #expect(pread(fd, &byte, 1, off_t(DiskTier.headerSize + 5 * (64 << 10) + 100)) == 1)
            byte ^= 0x40
            #expect(pwrite(fd, &byte, 1, off_t(DiskTier.headerSize + 5 * (64 << 10) + 100)) == 1)
            close(fd)
            let capacity = 512 << 10
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
            defer { buffer.deallocate() }
            #expect(await readRange(disk, key, offset: 0, count: 4096, into: buffer, capacity: capacity) == 0, "sub-block 0 is intact")
            #expect(await readRange(disk, key, offset: 5 * (64 << 10) - 10, count: 200, into: buffer, capacity: capacity) == nil)
            #expect(disk.corrupt.load(ordering: .relaxed) == 1 && !disk.contains(key))
        }
    }

    /// Header fields no write would leave (a length with the top bit set, one near the largest integer, an
    /// absurd sub-block size): a miss that drops the block, never a trap.
    @Test func aHeaderWithImpossibleValuesIsAMiss() async throws {
        // (offset, value, width): the length is 8 bytes at 8, the sub-block size's log2 4 bytes at 28.
        for (offset, value, width) in [(8, UInt64.max, 8), (8, UInt64(Int.max) - 3, 8), (8, 1 << 41, 8), (28, 63, 4), (28, 3, 4)] {
            try await withTier { disk, buffer, _ in
                let (key, path, _) = await writeSlot(disk, buffer, key: "h", seed: 14)
                let fd = open(path, O_RDWR)
                var v = value  // little-endian: the low `width` bytes are the field
                #expect(pwrite(fd, &v, width, off_t(offset)) == width)
                close(fd)
                let part = UnsafeMutableRawPointer.allocate(byteCount: slot, alignment: 4096)
                defer { part.deallocate() }
                #expect(await readRange(disk, key, offset: 0, count: 100, into: part, capacity: slot) == nil)
                #expect(!disk.contains(key), "field at \(offset) = \(value)")
            }
        }
    }

    /// A block of the first format (one checksum of the whole data), as an older build left it: read whole,
    /// never in part.
    @Test func aBlockOfTheFirstFormatIsStillReadWhole() async throws {
        try await withTier { disk, buffer, dir in
            let data = pattern(slot, seed: 13)
            let object = ObjectVersion(bucket: "b", key: "old", etag: "\"e\"", size: Int64(slot))
            let key = BlockKey(object: object, index: 0)
            let identity = DiskTier.identity(key)
            var header = [UInt8](repeating: 0, count: DiskTier.headerSize)
            header.withUnsafeMutableBytes { h in
                h.storeBytes(of: DiskTier.magicWhole, toByteOffset: 0, as: UInt64.self)
                h.storeBytes(of: UInt64(slot), toByteOffset: 8, as: UInt64.self)
                h.storeBytes(of: data.withUnsafeBytes { XXHash64.hash($0) }, toByteOffset: 16, as: UInt64.self)
                h.storeBytes(of: UInt32(identity.count), toByteOffset: 24, as: UInt32.self)
                identity.withUnsafeBytes { (h.baseAddress! + 32).copyMemory(from: $0.baseAddress!, byteCount: identity.count) }
            }
            let path = disk.path(DiskTier.DiskKey(object: object.id, index: 0))
            try FileManager.default.createDirectory(atPath: String(path[..<path.lastIndex(of: "/")!]), withIntermediateDirectories: true)
            try Data(header + data).write(to: URL(fileURLWithPath: path))
            // A new tier indexes the file as an older build's restart would.
            let again = try DiskTier(directory: dir, capacity: 1 << 30, freeSpaceFloor: 0)
            defer { again.shutdown() }
            #expect(again.contains(key))
            let part = UnsafeMutableRawPointer.allocate(byteCount: slot, alignment: 4096)
            defer { part.deallocate() }
            #expect(await readRange(again, key, offset: 0, count: 100, into: part, capacity: slot) == nil)
            #expect(again.contains(key), "not damage: the block stays for a whole read")
            #expect(await read(again, key, into: buffer, readable: slot) == slot)
            #expect(Array(buffer) == data)
            #expect(again.corrupt.load(ordering: .relaxed) == 0)
        }
    }
}
