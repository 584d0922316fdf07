import Foundation
import ObjectStore
import ReadCache
import WriteBack

@testable import Filesystem

/// A filesystem of one link over bucket `b` of `store`, as the engine suites drive it: a 16 MiB memory tier of
/// 1 MiB blocks, no disk tier, and a write path in a fresh temporary directory when `writable`.
func engineFilesystem(
    store: InMemoryObjectStore, policy: LinkPolicy, writable: Bool = false, options: FilesystemOptions = FilesystemOptions(uid: 1000, gid: 1000)
) throws -> Filesystem {
    var config = BlockCacheConfiguration()
    config.blockSize = 1 << 20
    config.memoryBytes = 16 << 20
    let cache = BlockCache(store: store, configuration: config, disk: nil)
    var writeBack: WriteBack?
    if writable {
        let dir = NSTemporaryDirectory() + "lakecache-fs-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        writeBack = try WriteBack(store: store, options: WriteBackOptions(directory: dir))
    }
    return Filesystem(store: store, cache: cache, writeBack: writeBack, bucket: BucketURL(bucket: "b", prefix: ""), policy: policy, options: options)
}

/// Every entry of directory `ino` but `.` and `..`, read 100 at a time as the kernel pages readdir; with
/// `returned`, each page is reported as handed to the kernel (readdirplus).
func listAll(_ fs: Filesystem, _ ino: UInt64, returned: Bool = false) async throws -> [DirectoryEntry] {
    let handle = try await withCheckedContinuation { c in fs.opendir(ino) { c.resume(returning: $0) } }.get()
    defer { fs.releasedir(handle) }
    var all: [DirectoryEntry] = []
    while true {
        let page = try await withCheckedContinuation { c in fs.readdir(handle, offset: all.count, limit: 100) { c.resume(returning: $0) } }.get()
        if page.isEmpty { break }
        if returned { fs.entriesReturned(handle, page[...]) }
        all += page
    }
    return Array(all.dropFirst(2))
}
