import ObjectStore
import Platform
import Testing

@testable import WriteBack

/// A CompleteMultipartUpload the store carried out but whose answer never arrived: the retry meets
/// NoSuchUpload, and the key already holding exactly these parts means the upload is done, not started again.
struct LostCompletionTests {
    @Test func aCompletionWhoseAnswerWasLostIsNotUploadedAgain() async throws {
        try await withWriteBack { wb, store, _ in
            let data = patterned((11 << 20) + 7, seed: 21)
            store.loseNextAnswer("CompleteMultipartUpload")
            let f = try wb.create(bucket: "b", key: "k", metadata: [:], mtime: Timestamp(seconds: 1))
            _ = data.withUnsafeBytes { wb.write(f, offset: 0, $0, mtime: Timestamp(seconds: 1)) }
            try await wb.commit(f, sync: false)
            try await durable(wb, f)
            #expect(try await fetch(store, "k") == data)
            let requests = store.requests
            #expect(requests["CompleteMultipartUpload"] == 2, "the lost answer, then the retry: \(requests)")
            #expect(requests["CreateMultipartUpload"] == 1, "a second upload was started: \(requests)")
            #expect(requests["UploadPart"] == 3, "parts were uploaded again: \(requests)")
            #expect(try await store.listMultipartUploads(bucket: "b", prefix: "").isEmpty)
        }
    }

    /// The key changed by someone else between the lost answer and the retry: its ETag is not these parts',
    /// so the file is uploaded again and the bucket ends with the file's bytes.
    @Test func aKeyOverwrittenSinceIsUploadedAgain() async throws {
        try await withWriteBack { wb, store, _ in
            let data = patterned((11 << 20) + 7, seed: 22)
            store.loseNextAnswer("CompleteMultipartUpload")
            // The lost completion is served at once; the retry is held 20 s, so the overwrite below lands
            // between the two.
            store.delayNext("CompleteMultipartUpload", by: .zero)
            store.delayNext("CompleteMultipartUpload", by: .seconds(20))
            let f = try wb.create(bucket: "b", key: "k", metadata: [:], mtime: Timestamp(seconds: 1))
            _ = data.withUnsafeBytes { wb.write(f, offset: 0, $0, mtime: Timestamp(seconds: 1)) }
            try await wb.commit(f, sync: false)
            // Once the lost completion has landed (the key exists only from then). A HEAD, not the contents:
            // copying 11 MiB a poll made this loop take minutes on a loaded machine.
            let deadline = ContinuousClock.now + .seconds(600)
            while (try? await store.headObject(bucket: "b", key: "k")) == nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
            try #require(store.contents(bucket: "b")["k"] == data, "the lost completion never landed")
            store.set(bucket: "b", key: "k", data: [1, 2, 3])
            try await durable(wb, f)
            #expect(try await fetch(store, "k") == data)
            #expect((store.requests["CreateMultipartUpload"] ?? 0) == 2, "\(store.requests)")
        }
    }

    /// Waits until the file is in the bucket: a waiter is told of each failed attempt, and the lost answer
    /// is one.
    func durable(_ wb: WriteBack, _ f: StagedFile) async throws {
        for _ in 0..<200 {
            do { return try await wb.waitDurable(f) } catch { try await Task.sleep(for: .milliseconds(100)) }
        }
        try await wb.waitDurable(f)
    }
}
