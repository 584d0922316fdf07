import Foundation
import Platform
import ObjectStore
import Testing

@testable import WriteBack

/// A WriteBack with 5 MiB parts over an in-memory bucket "b", in a scratch directory removed afterwards.
func withWriteBack(_ body: (WriteBack, InMemoryObjectStore, _ directory: String) async throws -> Void) async throws {
    let dir = NSTemporaryDirectory() + "wb-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let store = InMemoryObjectStore(buckets: ["b"])
    var options = WriteBackOptions(directory: dir)
    options.partSize = 5 << 20
    let wb = try WriteBack(store: store, options: options)
    defer { wb.shutdown() }
    try await body(wb, store, dir)
}

struct StagingWriterTests {

    func staged(_ f: StagedFile, count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let n = out.withUnsafeMutableBytes { buf in f.withDescriptor { Syscall.preadFully($0, buf.baseAddress!, count, 0) } }
        #expect((try? n.get()) == count)
        return out
    }

    /// Queued (aligned) and immediate (unaligned) writes interleave over the same pages; the staging file, a
    /// read after `settle` and the uploaded object all end up as a model that applies them in order.
    @Test func writesApplyInOrderWhateverTheirAlignment() async throws {
        try await withWriteBack { wb, store, _ in
            let f = try wb.create(bucket: "b", key: "k", metadata: [:], mtime: Timestamp(seconds: 1))
            var model = [UInt8]()
            var rng = SystemRandomNumberGenerator()
            func write(_ offset: Int, _ count: Int, _ seed: UInt8) {
                let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7) &+ seed }
                let r = bytes.withUnsafeBytes { wb.write(f, offset: Int64(offset), $0, mtime: Timestamp(seconds: 2)) }
                #expect((try? r.get()) == count)
                if model.count < offset + count { model += [UInt8](repeating: 0, count: offset + count - model.count) }
                model.replaceSubrange(offset..<(offset + count), with: bytes)
            }
            // A sequential stream of whole MiBs (queued) ...
            for i in 0..<12 { write(i << 20, 1 << 20, UInt8(i)) }
            // ... overwritten in place by queued page runs and unaligned pieces at random.
            for i in 0..<200 {
                let page = 4096
                if i % 2 == 0 {
                    write(Int.random(in: 0..<(3000), using: &rng) * page, page * Int.random(in: 1...64, using: &rng), UInt8(truncatingIfNeeded: 100 + i))
                } else {
                    write(Int.random(in: 0..<(12 << 20), using: &rng), Int.random(in: 1...9000, using: &rng), UInt8(truncatingIfNeeded: 50 + i))
                }
            }
            #expect(wb.staging.settle(f) == nil)
            #expect(staged(f, count: model.count) == model)
            try await wb.commit(f, sync: true)
            #expect(try await fetch(store, "k") == model)
        }
    }

    /// A truncate waits for queued writes, so none lands past the new end afterwards.
    @Test func truncateAfterQueuedWritesCutsThem() async throws {
        try await withWriteBack { wb, store, _ in
            let f = try wb.create(bucket: "b", key: "t", metadata: [:], mtime: Timestamp(seconds: 1))
            let mib = [UInt8](repeating: 0xAB, count: 1 << 20)
            for i in 0..<16 { _ = mib.withUnsafeBytes { wb.write(f, offset: Int64(i << 20), $0, mtime: Timestamp(seconds: 2)) } }
            #expect((try? wb.truncate(f, to: 3 << 20, mtime: Timestamp(seconds: 3)).get()) != nil)
            var st = stat()
            #expect(f.withDescriptor { fstat($0, &st) } == 0)
            #expect(st.st_size == 3 << 20)
            try await wb.commit(f, sync: true)
            #expect(try await fetch(store, "t") == [UInt8](repeating: 0xAB, count: 3 << 20))
        }
    }

    /// Blocks reserved ahead of a stream are given back at commit: the staging file holds its size, not more.
    @Test func reservationAheadIsReleasedAtCommit() async throws {
        try await withWriteBack { wb, _, _ in
            let f = try wb.create(bucket: "b", key: "r", metadata: [:], mtime: Timestamp(seconds: 1))
            let mib = [UInt8](repeating: 1, count: 1 << 20)
            for i in 0..<2 { _ = mib.withUnsafeBytes { wb.write(f, offset: Int64(i << 20), $0, mtime: Timestamp(seconds: 2)) } }
            try await wb.commit(f, sync: false)
            var st = stat()
            #expect(f.withDescriptor { fstat($0, &st) } == 0)
            #expect(st.st_size == 2 << 20)
            // st_blocks counts 512-byte units; allow filesystem metadata blocks, not the 64 MiB step.
            #expect(Int(st.st_blocks) * 512 < 4 << 20)
        }
    }
}
