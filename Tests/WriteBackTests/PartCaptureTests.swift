import Foundation
import Platform
import ObjectStore
import Testing

@testable import WriteBack

struct PartCaptureTests {
    static let base = 5 << 20
    let capture = PartCapture(geometry: PartGeometry(base: Int64(base)), buffers: AlignedBuffers(keepPerSize: 8))

    /// Bytes that differ by offset and by `seed`, so a copy from the wrong place or the wrong write shows.
    static func bytes(_ offset: Int, _ count: Int, seed: UInt8 = 0) -> [UInt8] {
        (offset..<(offset + count)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 16) &+ seed }
    }

    @discardableResult
    func write(_ offset: Int, _ count: Int, seed: UInt8 = 0, failing: Int32? = nil) -> Errno? {
        Self.bytes(offset, count, seed: seed).withUnsafeBytes { data in
            capture.write(offset: Int64(offset), data) { _ in failing.map(Errno.init) }
        }
    }

    /// Takes part `p` (base-sized) and returns its bytes, or nil when there is no copy.
    func take(_ p: Int) -> [UInt8]? {
        guard let buffer = capture.take(part: p, count: Self.base) else { return nil }
        return Array(UnsafeRawBufferPointer(start: buffer.pointer, count: Self.base))
    }

    @Test func sequentialWritesLeaveExactCopiesOfWholeParts() {
        for mib in 0..<11 { write(mib << 20, 1 << 20) }
        write(11 << 20, 3)
        #expect(capture.has(1) && capture.has(2))
        #expect(!capture.has(3))  // still being filled
        #expect(take(2) == Self.bytes(Self.base, Self.base))
        #expect(take(1) == Self.bytes(0, Self.base))
        #expect(take(1) == nil)  // a copy is handed out once
        #expect(capture.waiting.isEmpty)
    }

    @Test func oneWriteAcrossSeveralPartsIsSplitAtTheirBoundaries() {
        write(0, 2 * Self.base + 100)
        #expect(take(1) == Self.bytes(0, Self.base))
        #expect(take(2) == Self.bytes(Self.base, Self.base))
        #expect(capture.held == 1)  // part 3 is open with 100 bytes
    }

    @Test func aWriteOverCopiedBytesDropsTheCopy() {
        write(0, Self.base)
        write(Self.base, Self.base)
        #expect(capture.has(1) && capture.has(2))
        write(Self.base + 7, 1, seed: 9)
        #expect(capture.has(1))
        #expect(!capture.has(2))
        #expect(take(2) == nil)
        // The next write from a part's first byte starts a copy again.
        write(2 * Self.base, Self.base)
        #expect(take(3) == Self.bytes(2 * Self.base, Self.base))
    }

    @Test func onlyAWriteAtAPartStartBeginsACopy() {
        write(1 << 20, Self.base)  // from inside part 1 into part 2
        #expect(capture.held == 0)
        write(Self.base + (1 << 20), Self.base - (1 << 20))  // the rest of part 2
        #expect(!capture.has(2))
        write(2 * Self.base, Self.base)  // part 3 from its first byte
        #expect(take(3) == Self.bytes(2 * Self.base, Self.base))
    }

    @Test func aGapAbandonsTheOpenCopy() {
        write(0, 1 << 20)
        write(2 << 20, 1 << 20)
        #expect(capture.held == 0)
    }

    @Test func atMostMaxReadyCopiesWait() {
        let parts = PartCapture.maxReady + 2
        write(0, parts * Self.base)
        for p in 1...PartCapture.maxReady { #expect(capture.has(p)) }
        #expect(!capture.has(PartCapture.maxReady + 1))
        // Once one is taken, the next part written from its start is copied again.
        #expect(take(1) != nil)
        write(parts * Self.base, Self.base)
        #expect(capture.has(parts + 1))
    }

    @Test func aFailedStagingWriteRecordsNothing() {
        #expect(write(0, Self.base, failing: ENOSPC) == Errno(ENOSPC))
        #expect(capture.held == 0)
    }

    @Test func aCopyOfAnotherLengthIsNotHandedOut() {
        write(0, Self.base)
        #expect(capture.take(part: 1, count: Self.base - 1) == nil)
        #expect(capture.has(1))
    }

    @Test func resetRunsItsBodyAndDropsEveryCopy() {
        write(0, Self.base + 10)
        var ran = false
        capture.reset { ran = true }
        #expect(ran)
        #expect(capture.held == 0)
        #expect(capture.waiting.isEmpty)
    }

    /// Through `WriteBack`: parts streamed from copies while the file is open, a rewrite of a copied part and
    /// a truncate all end with the bucket holding what was written, and no copy left behind.
    @Test func uploadsFromCopiesMatchTheFile() async throws {
        try await withWriteBack { wb, store, _ in
            let f = try wb.create(bucket: "b", key: "k", metadata: [:], mtime: Timestamp(seconds: 1))
            wb.openWriter(f)
            var model = [UInt8]()
            func write(_ offset: Int, _ count: Int, seed: UInt8) {
                let bytes = Self.bytes(offset, count, seed: seed)
                let r = bytes.withUnsafeBytes { wb.write(f, offset: Int64(offset), $0, mtime: Timestamp(seconds: 2)) }
                #expect((try? r.get()) == count)
                if model.count < offset + count { model += [UInt8](repeating: 0, count: offset + count - model.count) }
                model.replaceSubrange(offset..<(offset + count), with: bytes)
            }
            for mib in 0..<23 { write(mib << 20, 1 << 20, seed: 1) }
            // Debug builds hash slowly: allow them a minute.
            for _ in 0..<6000 where (store.requests["UploadPart"] ?? 0) < 1 { try await Task.sleep(for: .milliseconds(10)) }
            #expect((store.requests["UploadPart"] ?? 0) >= 1)  // streamed while open
            write(Self.base + 4096, 8192, seed: 2)  // into a part that may be up already
            let cut = (22 << 20) + 5
            #expect((try? wb.truncate(f, to: Int64(cut), mtime: Timestamp(seconds: 3)).get()) != nil)
            model.removeSubrange(cut...)
            write(cut, 3 * Self.base, seed: 3)
            try await wb.commit(f, sync: true)
            wb.closeWriter(f)
            #expect(try await fetch(store, "k") == model)
            #expect(f.capture.held == 0)
        }
    }
}
