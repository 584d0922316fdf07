import Foundation
import Logging
import ObjectStore
import Platform
import ReadCache
import Synchronization
import Testing
import WriteBack

@testable import Filesystem

#if canImport(Glibc)
import Glibc
#endif

/// A staging file's read or write refused by the kernel reaches the application with the rate-limited
/// warning every other failure gets, naming the operation, the path and the cause.
@Suite struct StagingFailureTests {
    let store = InMemoryObjectStore(buckets: ["b"])
    let log = CapturedLog()

    func makeFS() throws -> Filesystem {
        var config = BlockCacheConfiguration()
        config.blockSize = 1 << 20
        config.memoryBytes = 16 << 20
        let cache = BlockCache(store: store, configuration: config, disk: nil)
        let dir = NSTemporaryDirectory() + "lakecache-fs-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let writeBack = try WriteBack(store: store, options: WriteBackOptions(directory: dir))
        let sink = log
        let logger = Logger(label: "lakecache.fs.test") { _ in CapturingHandler(log: sink) }
        return Filesystem(store: store, cache: cache, writeBack: writeBack, bucket: BucketURL(bucket: "b", prefix: ""), options: FilesystemOptions(uid: 0, gid: 0), logger: logger)
    }

    func create(_ fs: Filesystem, _ name: String) async throws -> UInt64 {
        try await withCheckedContinuation { c in
            fs.create(parent: 1, name: name, mode: 0o644, flags: O_RDWR | O_CREAT, caller: Caller(uid: 0, gid: 0)) { c.resume(returning: $0) }
        }.get().1.handle
    }

    // The kernel never sends a negative offset, so pread(2) refusing one (EINVAL) is a staging-file error
    // that needs no broken disk.
    @Test func aFailedStagingReadIsLoggedAsAWarning() async throws {
        let fs = try makeFS()
        let handle = try await create(fs, "r.bin")
        let result = await withCheckedContinuation { c in fs.read(handle, offset: -1, size: 10) { c.resume(returning: $0.map { $0.copyBytes() }) } }
        guard case .failure(let e) = result else { Issue.record("a read at offset -1 succeeded"); return }
        #expect(e.errno == EINVAL)
        let warnings = log.warnings
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.first?["operation"] == "read" && warnings.first?["path"] == "/r.bin", "\(warnings)")
        #expect(warnings.first?["cause"]?.contains("cannot read the staging file") == true, "\(warnings)")
        fs.release(handle: handle)
    }

    // An offset past the largest file the staging filesystem holds: the block reservation or pwrite(2)
    // refuses it (EFBIG or EINVAL), as a real device error would be refused.
    @Test func aFailedStagingWriteIsLoggedAsAWarning() async throws {
        let fs = try makeFS()
        let handle = try await create(fs, "w.bin")
        let bytes: [UInt8] = [1, 2, 3, 4]
        let result = bytes.withUnsafeBytes { fs.write(handle, offset: 1 << 62, data: $0) }
        guard case .failure(let e) = result else { Issue.record("a write at 4 EiB succeeded"); return }
        let warnings = log.warnings
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.first?["operation"] == "write" && warnings.first?["path"] == "/w.bin", "\(warnings)")
        #expect(warnings.first?["errno"] == "\(e.errno)", "\(warnings)")
        fs.release(handle: handle)
    }
}

/// The warnings a logger was given, as their metadata rendered to strings.
final class CapturedLog: Sendable {
    private let entries = Mutex<[[String: String]]>([])
    func add(_ metadata: [String: String]) { entries.withLock { $0.append(metadata) } }
    var warnings: [[String: String]] { entries.withLock { $0 } }
}

/// Records warnings and worse into a `CapturedLog`.
struct CapturingHandler: LogHandler {
    let log: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        guard level >= .warning else { return }
        log.add((metadata ?? [:]).mapValues { "\($0)" })
    }
}
