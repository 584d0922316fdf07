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
            let data = pattern(slot, seed: 3)
            data.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: slot) }
            let object = ObjectVersion(bucket: "b", key: "t", etag: "\"e\"", size: Int64(slot))
            let key = BlockKey(object: object, index: 0)
            #expect(await write(disk, key, UnsafeRawBufferPointer(buffer), readable: slot))
            #expect(truncate(disk.path(DiskTier.DiskKey(object: object.id, index: 0)), off_t(DiskTier.headerSize + slot - 5000)) == 0)
            #expect(await read(disk, key, into: buffer, readable: slot) == nil)
            #expect(disk.corrupt.load(ordering: .relaxed) == 1)
            #expect(!disk.contains(key))
        }
    }
}
