import Platform
import ObjectStore
import ReadCache

/// Read-ahead across the small files of one directory.
///
/// A training epoch reads every file of a dataset in shuffled order with a few threads; each small file costs
/// a round trip to the store, so the threads, not the bandwidth, set the pace (8 threads at 15 ms per GET
/// is about 530 files/s, whatever the link). Once the application has read `trigger` small files of a
/// directory it listed, the other small files of that directory are fetched ahead, in listing order, up to
/// `FilesystemOptions.directoryReadAhead` files beyond what it has read, with the cache's prefetch budget
/// bounding the GETs in flight. Only files that fit a small memory slot take part, so read-ahead never
/// displaces whole blocks, and only names a listing showed, so it never guesses keys.
struct DirectoryReadAhead {
    /// Files chosen to fetch ahead in one directory, with their listing index (to give back what the prefetch
    /// budget refuses).
    struct Batch {
        var directory: String
        var files: [(index: Int, version: ObjectVersion)]
    }

    /// Small files of the directory read from their start.
    var reads = 0
    /// Files handed to the cache's prefetch.
    var issued = 0
    /// The next listing index to consider.
    var cursor = 0
}

extension Filesystem {
    /// Small-file reads in a directory before its other small files are fetched ahead.
    static let directoryReadAheadTrigger = 4
    /// Directories tracked at once; beyond it the table starts over (it holds counters only).
    static let directoryReadAheadTable = 10_000

    /// Records a read of inode `ino` (of `size` bytes) at `offset` and returns the files to fetch ahead, if
    /// any. Reads of anything but a small file from its start return at once.
    func directoryReadAhead(ino: UInt64, link: Link, size: Int64, offset: Int64) -> DirectoryReadAhead.Batch? {
        let limit = options.directoryReadAhead
        guard limit > 0, offset == 0, size <= BlockCache.smallSlotBytes, let path = nodes[ino]?.path else { return nil }
        let dir = Namespace.split(path).parent
        guard let dirRelative = link.relative(namespacePath: dir) else { return nil }
        let staged = overlay.withLock { $0.childNames(of: dir) }
        return listings.withLock { s -> DirectoryReadAhead.Batch? in
            guard let listing = s.listings[dir] else { return nil }
            if s.directoryReads[dir] == nil && s.directoryReads.count >= Self.directoryReadAheadTable { s.directoryReads = [:] }
            var d = s.directoryReads[dir, default: DirectoryReadAhead()]
            d.reads += 1
            defer { s.directoryReads[dir] = d }
            guard d.reads >= Self.directoryReadAheadTrigger else { return nil }
            var out: [(index: Int, version: ObjectVersion)] = []
            while d.cursor < listing.entries.count && d.issued < d.reads + limit {
                let i = d.cursor
                d.cursor += 1
                let e = listing.entries[i]
                guard e.kind == .file, e.size > 0, e.size <= BlockCache.smallSlotBytes, !e.etag.isEmpty else { continue }
                guard !staged.contains(e.name) else { continue }  // written here: read from its staging file
                d.issued += 1
                out.append((i, link.version(key: link.key(Namespace.join(dirRelative, e.name)), etag: e.etag, size: e.size)))
            }
            return out.isEmpty ? nil : DirectoryReadAhead.Batch(directory: dir, files: out)
        }
    }

    /// Starts the fetches `directoryReadAhead` chose; what the prefetch budget refuses is offered again on the
    /// directory's next read.
    func startDirectoryReadAhead(_ batch: DirectoryReadAhead.Batch) {
        for (n, file) in batch.files.enumerated() where cache.prefetch(file.version, blocks: 0..<1) == 0 {
            let unstarted = batch.files.count - n
            listings.withLock { s in
                guard var d = s.directoryReads[batch.directory] else { return }
                d.cursor = min(d.cursor, file.index)
                d.issued = max(0, d.issued - unstarted)
                s.directoryReads[batch.directory] = d
            }
            return
        }
    }
}
