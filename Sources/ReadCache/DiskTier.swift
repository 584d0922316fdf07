import Logging
import Platform
import ObjectStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The NVMe tier: one file per block under `DIR/blocks`, reused across restarts while the ETag matches.
///
/// File layout: a 4 KiB header (magic, data length, the object identity, an XXH64 per sub-block) then the
/// data. The identity in the header makes a hash collision between file names harmless; the checksums make
/// a torn or corrupted block a miss, never wrong bytes. A checksum per sub-block (64 KiB, or 1/256 of a
/// larger block) lets a small read load and verify only the sub-blocks it touches (`readRange`), not the
/// whole block. Blocks of the first format (one checksum, `LCBLK001`) are still read whole. Writes go to a temporary name and are renamed in,
/// so a crash leaves either the old state or the whole block. Blocks are written and read with `O_DIRECT`
/// where the filesystem allows it: the write-behind's copy into the page cache was 18% of the daemon's CPU
/// during a cold sequential read, and every block took page-cache memory a second time.
package final class DiskTier: @unchecked Sendable {
    static let headerSize = 4096
    /// One checksum of the whole data at offset 16; read whole only.
    static let magicWhole: UInt64 = 0x4C43_424C_4B30_3031  // "LCBLK001"
    /// Sub-block checksums from `checksumOffset`, the sub-block size's log2 at offset 28.
    static let magic: UInt64 = 0x4C43_424C_4B30_3032  // "LCBLK002"
    static let identityOffset = 32
    static let checksumOffset = 2048
    static let maxSubBlocks = (headerSize - checksumOffset) / 8

    /// The sub-block size for a block of `length` bytes: 64 KiB, or larger so that 256 checksums cover it.
    package static func subBlockSize(forBlock length: Int) -> Int {
        var size = 64 << 10
        while size * maxSubBlocks < length { size <<= 1 }
        return size
    }

    struct Entry {
        var bytes: Int64
        var lastUse: UInt64
        /// The object, once written or read in this run (its strings are the cache's own): `usage(by:)`
        /// attributes bytes to links with it. Blocks found at start are unattributed until used.
        var object: ObjectVersion? = nil
    }

    struct DiskKey: Hashable {
        var object: UInt64
        var index: Int64
    }

    package let directory: String
    package let capacity: Int64
    package let freeSpaceFloor: Int64
    private let pool: IOThreadPool
    private let rangePool: IOThreadPool
    private let logger: Logger
    private let state = Locked<(entries: [DiskKey: Entry], used: Int64, clock: UInt64, lastFreeCheck: Int64, lowSpace: Bool)>(([:], 0, 0, 0, false))
    /// Objects kept through eviction (`lakecache pin`), by object id, with the path they were pinned for.
    private let pins = Locked<[UInt64: String]>([:])
    /// Bytes pinned objects may hold at most.
    package let pinBudget: Int64

    package let hits = Atomic<Int>(0)
    package let misses = Atomic<Int>(0)
    /// Reads served from part of a block (`readRange`).
    package let rangeReads = Atomic<Int>(0)
    package let corrupt = Atomic<Int>(0)
    package let writeSkips = Atomic<Int>(0)
    package let evictions = Atomic<Int>(0)
    /// Cleared the first time the cache filesystem refuses `O_DIRECT` (tmpfs, some FUSE or network filesystems).
    private let directIO = Atomic<Bool>(true)

    /// Opens (creating with mode 0700) and indexes the tier. Existing blocks are kept.
    package init(directory: String, capacity: Int64, freeSpaceFloor: Int64, pinBudget: Int64? = nil, ioThreads: Int = 2, logger: Logger = Logger(label: "lakecache.disk")) throws(SystemError) {
        self.directory = directory
        self.capacity = capacity
        self.pinBudget = pinBudget ?? capacity / 2
        self.freeSpaceFloor = freeSpaceFloor
        self.logger = logger
        self.pool = IOThreadPool(threads: ioThreads, name: "disk-tier")
        // Their own threads: a small read must not wait behind whole-block loads and write-behinds.
        self.rangePool = IOThreadPool(threads: 4, name: "disk-range")
        for d in [directory, directory + "/blocks"] where mkdir(d, 0o700) != 0 && errno != EEXIST {
            throw SystemError("cannot create cache directory \(d): \(Errno(errno)); choose another with --cache-dir", errno: Errno(errno))
        }
        scan()
        loadPins()
    }

    package func shutdown() {
        pool.shutdown()
        rangePool.shutdown()
    }

    /// Whether blocks are still written and read with `O_DIRECT` (false once the filesystem refused it).
    package var usesDirectIO: Bool { directIO.load(ordering: .relaxed) }

    /// Bytes held and blocks indexed.
    package var usage: (bytes: Int64, blocks: Int) { state.withLock { ($0.used, $0.entries.count) } }

    func path(_ key: DiskKey) -> String {
        let hex = String(key.object, radix: 16)
        let padded = String(repeating: "0", count: 16 - hex.count) + hex
        return "\(directory)/blocks/\(padded.prefix(2))/\(padded)-\(key.index).blk"
    }

    private func scan() {
        var entries: [DiskKey: Entry] = [:]
        var used: Int64 = 0
        let blocks = directory + "/blocks"
        for sub in Syscall.listDirectory(blocks) where sub.count == 2 {
            for name in Syscall.listDirectory(blocks + "/" + sub) {
                let full = blocks + "/" + sub + "/" + name
                if name.hasSuffix(".tmp") {
                    unlink(full)  // an interrupted write
                    continue
                }
                guard name.hasSuffix(".blk"), let dash = name.firstIndex(of: "-"),
                    let object = UInt64(name[..<dash], radix: 16),
                    let index = Int64(name[name.index(after: dash)...].dropLast(4))
                else { continue }
                var st = stat()
                guard stat(full, &st) == 0 else { continue }
                entries[DiskKey(object: object, index: index)] = Entry(bytes: Int64(st.st_size), lastUse: UInt64(st.st_mtim.tv_sec))
                used += Int64(st.st_size)
            }
        }
        let maxUse = entries.values.map(\.lastUse).max() ?? 0
        state.withLock { $0 = (entries, used, maxUse + 1, 0, false) }
    }

    /// Bytes held, by the group `classify` puts each block's object in (nil: not known in this run).
    package func usage(by classify: (ObjectVersion?) -> String?) -> [String: Int64] {
        let objects = state.withLock { s in s.entries.values.map { ($0.object, $0.bytes) } }
        var out: [String: Int64] = [:]
        for (object, bytes) in objects {
            out[classify(object) ?? "\u{0}", default: 0] += bytes
        }
        return out
    }

    /// Whether the block is indexed (it may still fail verification when read).
    package func contains(_ key: BlockKey) -> Bool {
        state.withLock { $0.entries[DiskKey(object: key.object.id, index: key.index)] != nil }
    }

    /// Reads and verifies a block into `buffer` on a disk thread; `completion` gets the length or nil on a miss.
    ///
    /// `readable` is how many bytes from `buffer.baseAddress` may be written: a page-aligned buffer with room
    /// for the length rounded up to a page is read with `O_DIRECT`, straight from the device into the buffer.
    package func read(_ key: BlockKey, into buffer: UnsafeMutableRawBufferPointer, readable: Int, completion: @escaping (Int?) -> Void) {
        pool.submit { [self] in
            let n = readNow(key, into: buffer, readable: readable)
            if n == nil { misses.add(1, ordering: .relaxed) } else { hits.add(1, ordering: .relaxed) }
            completion(n)
        }
    }

    private func readNow(_ key: BlockKey, into buffer: UnsafeMutableRawBufferPointer, readable: Int) -> Int? {
        // The header lives on the disk thread's stack: a disk hit allocates nothing for it.
        withUnsafeTemporaryAllocation(byteCount: Self.headerSize, alignment: Syscall.directIOAlignment) { readNow(key, into: buffer, readable: readable, header: $0) }
    }

    private func readNow(_ key: BlockKey, into buffer: UnsafeMutableRawBufferPointer, readable: Int, header: UnsafeMutableRawBufferPointer) -> Int? {
        let direct = Syscall.isDirectIOAligned(buffer.baseAddress) && readable >= Syscall.directIOPadded(buffer.count)
        return load(key, into: buffer.baseAddress!, capacity: readable, direct: direct, maxLength: buffer.count, header: header) { h in 0..<h.length }?.count
    }

    /// Opens block `key`, checks its header, reads the bytes `span` picks (sub-block edges, or all the data;
    /// nil: not this way) into `buffer` and verifies them. Returns the span read, or nil on a miss; a damaged
    /// block (a header of another identity or longer than `maxLength`, short data, a checksum) is dropped.
    /// `direct`: the caller's buffer allows `O_DIRECT` (page-aligned, room for the span padded to a page).
    private func load(
        _ key: BlockKey, into buffer: UnsafeMutableRawPointer, capacity: Int, direct directAllowed: Bool, maxLength: Int,
        header: UnsafeMutableRawBufferPointer, span: (Header) -> Range<Int>?
    ) -> Range<Int>? {
        let dk = DiskKey(object: key.object.id, index: key.index)
        let p = path(dk)
        let direct = directIO.load(ordering: .relaxed) && directAllowed
        /// Direct I/O refused (EINVAL): a miss this time, the page cache from now on.
        func refused(_ e: Errno) -> Bool {
            guard direct, e.rawValue == EINVAL else { return false }
            directIO.store(false, ordering: .relaxed)
            return true
        }
        let fd: Int32
        switch Syscall.open(p, O_RDONLY | (direct ? Syscall.directIOFlag : 0)) {
        case .success(let f): fd = f
        case .failure(let e):
            if !refused(e) { forget(dk) }
            return nil
        }
        defer { Syscall.close(fd) }
        switch Syscall.preadFully(fd, header.baseAddress!, Self.headerSize, 0) {
        case .success(Self.headerSize): break
        case .failure(let e) where refused(e): return nil
        default:
            discard(dk, p, "short header")
            return nil
        }
        guard let h = Header(header, identity: Self.identity(key)), h.length <= maxLength else {
            discard(dk, p, "header mismatch")
            return nil
        }
        guard let range = span(h) else { return nil }
        // Direct reads ask for whole pages; the file ends at the data, so the padding reads as end of file.
        let ask = direct ? Syscall.directIOPadded(range.count) : range.count
        guard ask <= capacity else { return nil }
        switch Syscall.preadFully(fd, buffer, ask, Int64(Self.headerSize + range.lowerBound)) {
        case .success(let got) where got >= range.count: break
        case .failure(let e) where refused(e): return nil
        default:
            discard(dk, p, "truncated data")
            return nil
        }
        guard h.verifies(UnsafeRawBufferPointer(start: buffer, count: range.count), from: range.lowerBound, to: range.upperBound, header: UnsafeRawBufferPointer(header)) else {
            discard(dk, p, "checksum mismatch")
            return nil
        }
        touched(dk, key)
        return range
    }

    private func touched(_ dk: DiskKey, _ key: BlockKey) {
        state.withLock { s in
            s.clock += 1
            s.entries[dk]?.lastUse = s.clock
            if s.entries[dk]?.object == nil { s.entries[dk]?.object = key.object }
        }
    }

    /// A block file's header, checked against the identity of the block it should hold.
    struct Header {
        var length: Int
        /// Nil for a block of the first format (one checksum of the whole data).
        var subBlock: Int?

        init?(_ header: UnsafeMutableRawBufferPointer, identity: [UInt8]) {
            let magic = header.load(fromByteOffset: 0, as: UInt64.self)
            // A damaged header may hold any value: no arithmetic on it may trap.
            guard let length = Int(exactly: header.load(fromByteOffset: 8, as: UInt64.self)), length <= 1 << 40 else { return nil }
            self.length = length
            let idLength = Int(header.load(fromByteOffset: 24, as: UInt32.self))
            let room = magic == DiskTier.magic ? DiskTier.checksumOffset - DiskTier.identityOffset : DiskTier.headerSize - DiskTier.identityOffset
            guard magic == DiskTier.magic || magic == DiskTier.magicWhole, idLength == identity.count, idLength <= room,
                identity.withUnsafeBytes({ memcmp($0.baseAddress!, header.baseAddress! + DiskTier.identityOffset, idLength) == 0 })
            else { return nil }
            if magic == DiskTier.magic {
                let shift = Int(header.load(fromByteOffset: 28, as: UInt32.self))
                guard shift >= 12, shift < 40, (length + (1 << shift) - 1) >> shift <= DiskTier.maxSubBlocks else { return nil }
                subBlock = 1 << shift
            }
        }

        /// Whether the block's bytes `[from, to)`, held in `data` from its start, match their checksums.
        /// `from` and `to` are sub-block edges (`to` may be the end of the data). A block of the first format
        /// verifies only whole.
        func verifies(_ data: UnsafeRawBufferPointer, from: Int, to: Int, header: UnsafeRawBufferPointer) -> Bool {
            guard let subBlock else {
                return from == 0 && to == length && XXHash64.hash(UnsafeRawBufferPointer(rebasing: data[0..<length])) == header.load(fromByteOffset: 16, as: UInt64.self)
            }
            var start = from
            while start < to {
                let end = min(start + subBlock, length)
                let sum = header.load(fromByteOffset: DiskTier.checksumOffset + (start / subBlock) * 8, as: UInt64.self)
                guard XXHash64.hash(UnsafeRawBufferPointer(rebasing: data[(start - from)..<(end - from)])) == sum else { return false }
                start = end
            }
            return true
        }
    }

    /// Reads and verifies only the sub-blocks of a block that `[offset, offset + count)` touches, on a
    /// range thread, into `buffer` (page-aligned, `capacity` bytes: room for `count` plus two sub-blocks).
    /// `completion` gets where the asked bytes start in `buffer`, or nil: no such block, a block of the first
    /// format, a range past its end, or damage (the block is then dropped, as a whole read would).
    package func readRange(_ key: BlockKey, offset: Int, count: Int, into buffer: UnsafeMutableRawPointer, capacity: Int, completion: @escaping (Int?) -> Void) {
        rangePool.submit { [self] in
            let start = withUnsafeTemporaryAllocation(byteCount: Self.headerSize, alignment: Syscall.directIOAlignment) {
                readRangeNow(key, offset: offset, count: count, into: buffer, capacity: capacity, header: $0)
            }
            if start != nil { rangeReads.add(1, ordering: .relaxed) }
            completion(start)
        }
    }

    private func readRangeNow(_ key: BlockKey, offset: Int, count: Int, into buffer: UnsafeMutableRawPointer, capacity: Int, header: UnsafeMutableRawBufferPointer) -> Int? {
        let span = load(key, into: buffer, capacity: capacity, direct: Syscall.isDirectIOAligned(buffer), maxLength: Int.max, header: header) { h in
            guard let sub = h.subBlock, count > 0, offset + count <= h.length else { return nil }
            return (offset / sub * sub)..<min(h.length, (offset + count + sub - 1) / sub * sub)
        }
        return span.map { offset - $0.lowerBound }
    }

    private func discard(_ key: DiskKey, _ path: String, _ why: String) {
        corrupt.add(1, ordering: .relaxed)
        logger.warning("disk-tier block dropped and refetched", metadata: ["file": "\(path)", "reason": "\(why)"])
        unlink(path)
        forget(key)
    }

    // MARK: - Pins

    var pinsFile: String { directory + "/pins" }

    private func loadPins() {
        guard let text = readTextFile(pinsFile) else { return }
        var out: [UInt64: String] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t", maxSplits: 1)
            guard f.count == 2, let id = UInt64(f[0], radix: 16) else { continue }
            out[id] = URIEncoding.decode(String(f[1])) ?? String(f[1])
        }
        pins.withLock { $0 = out }
    }

    private func savePins(_ p: [UInt64: String]) {
        let text = p.sorted { $0.key < $1.key }.map { String($0.key, radix: 16) + "\t" + URIEncoding.encode($0.value, keepSlash: true) + "\n" }.joined()
        _ = Syscall.writeFileAtomically(pinsFile, Array(text.utf8), directory: directory)
    }

    /// Keeps the blocks of `objects` through eviction (they are fetched first by the caller); refused when
    /// the pinned bytes would pass the pin budget. Pins survive restarts (`CACHE_DIR/pins`).
    package func pin(_ objects: [(object: ObjectVersion, path: String)]) -> Result<Void, SystemError> {
        let adding = objects.filter { o in pins.withLock { $0[o.object.id] == nil } }.reduce(Int64(0)) { $0 + $1.object.size }
        let now = pinnedBytes
        guard now + adding <= pinBudget else {
            return .failure(SystemError("pinning \(ByteCount.format(adding)) more would pass the pin budget (\(ByteCount.format(now)) of \(ByteCount.format(pinBudget)) pinned); unpin something or raise --pin-budget"))
        }
        let all = pins.withLock { p -> [UInt64: String] in
            for o in objects { p[o.object.id] = o.path }
            return p
        }
        savePins(all)
        return .success(())
    }

    /// Lets go of the pins of paths at or below `path` ("" is every pin); returns how many.
    @discardableResult
    package func unpin(below path: String) -> Int {
        let (n, all) = pins.withLock { p -> (Int, [UInt64: String]) in
            let gone = p.filter { path.isEmpty || $0.value == path || $0.value.hasPrefix(path + "/") }.map(\.key)
            for k in gone { p.removeValue(forKey: k) }
            return (gone.count, p)
        }
        if n > 0 { savePins(all) }
        return n
    }

    /// Bytes of pinned objects on the disk tier now.
    package var pinnedBytes: Int64 {
        let pinned = pins.withLock { $0 }
        guard !pinned.isEmpty else { return 0 }
        return state.withLock { s in s.entries.reduce(Int64(0)) { $0 + (pinned[$1.key.object] != nil ? $1.value.bytes : 0) } }
    }

    /// Pinned objects (by the path they were pinned for).
    package var pinnedCount: Int { pins.withLock { $0.count } }

    /// Whether `object` is pinned.
    package func isPinned(_ object: ObjectVersion) -> Bool { pins.withLock { $0[object.id] != nil } }

    /// Drops every block of `object` (it changed or was deleted in the bucket); returns the bytes freed.
    @discardableResult
    package func remove(_ object: ObjectVersion, blockSize: Int) -> Int64 {
        guard object.size > 0 else { return 0 }
        var freed: Int64 = 0
        for index in 0...((object.size - 1) / Int64(blockSize)) {
            let dk = DiskKey(object: object.id, index: index)
            let gone = state.withLock { s -> Int64? in
                guard let e = s.entries.removeValue(forKey: dk) else { return nil }
                s.used -= e.bytes
                return e.bytes
            }
            if let gone {
                unlink(path(dk))
                freed += gone
            }
        }
        return freed
    }

    private func forget(_ key: DiskKey) {
        state.withLock { s in
            if let e = s.entries.removeValue(forKey: key) { s.used -= e.bytes }
        }
    }

    static func identity(_ key: BlockKey) -> [UInt8] {
        Array("\(key.object.bucket)\u{0}\(key.object.key)\u{0}\(key.object.etag)".utf8)
    }

    /// Writes a block behind a fill, on a disk thread; `done` runs when `data` may be released.
    ///
    /// `readable` is how many bytes from `data.baseAddress` may be read: when `data` starts on a page and
    /// `readable` covers its length rounded up to a page, the block is written with `O_DIRECT` (the padding
    /// is cut off again by `ftruncate`). Skipped (never failing a read) when the identity is too long, space is
    /// below the floor, or the write fails.
    package func write(_ key: BlockKey, from data: UnsafeRawBufferPointer, readable: Int, done: @escaping (_ written: Bool) -> Void) {
        pool.submit { [self] in
            done(writeNow(key, data, readable: readable))
        }
    }

    private func writeNow(_ key: BlockKey, _ data: UnsafeRawBufferPointer, readable: Int) -> Bool {
        let dk = DiskKey(object: key.object.id, index: key.index)
        let identity = Self.identity(key)
        let size = Int64(Self.headerSize + data.count)
        guard identity.count <= Self.checksumOffset - Self.identityOffset, makeRoom(size) else {
            writeSkips.add(1, ordering: .relaxed)
            return false
        }
        let p = path(dk)
        let dir = String(p[..<p.lastIndex(of: "/")!])
        let tmp = p + ".tmp"
        let direct = directIO.load(ordering: .relaxed) && Syscall.isDirectIOAligned(data.baseAddress) && readable >= Syscall.directIOPadded(data.count)
        var written = writeFile(tmp, dir: dir, identity: identity, data: data, direct: direct)
        if direct, case .failure(let e) = written, e.rawValue == EINVAL {
            // The filesystem has no direct I/O: this and every later block go through the page cache.
            directIO.store(false, ordering: .relaxed)
            logger.info("cache directory does not support O_DIRECT; disk-tier writes go through the page cache", metadata: ["dir": "\(directory)"])
            written = writeFile(tmp, dir: dir, identity: identity, data: data, direct: false)
        }
        guard case .success = written, case .success = Syscall.rename(tmp, p) else {
            // ENOSPC and friends: the block simply is not cached.
            unlink(tmp)
            writeSkips.add(1, ordering: .relaxed)
            state.withLock { s in
                s.lowSpace = true
                s.used -= size
            }
            return false
        }
        state.withLock { s in
            // `makeRoom` already counted `size` in `used`; a replaced entry gives its bytes back.
            s.clock += 1
            if let old = s.entries[dk] { s.used -= old.bytes }
            s.entries[dk] = Entry(bytes: size, lastUse: s.clock, object: key.object)
        }
        return true
    }

    /// Creates `tmp` and writes header and data. A direct write sends the data padded to whole pages, then
    /// cuts the file to size.
    private func writeFile(_ tmp: String, dir: String, identity: [UInt8], data: UnsafeRawBufferPointer, direct: Bool) -> Result<Void, Errno> {
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { return .failure(Errno(errno)) }
        let padded = direct ? Syscall.directIOPadded(data.count) : data.count
        let fd: Int32
        switch Syscall.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | (direct ? Syscall.directIOFlag : 0), mode: 0o600) {
        case .success(let f): fd = f
        case .failure(let e): return .failure(e)
        }
        defer { Syscall.close(fd) }
        // The header buffer is page-aligned so that the same code serves direct I/O.
        let wrote = withUnsafeTemporaryAllocation(byteCount: Self.headerSize, alignment: Syscall.directIOAlignment) { header in
            writeBlock(fd, header: header, identity: identity, data: data, padded: padded)
        }
        if let e = wrote { return .failure(e) }
        if padded != data.count, case .failure(let e) = Syscall.ftruncate(fd, Int64(Self.headerSize + data.count)) { return .failure(e) }
        return .success(())
    }

    /// Fills the header (magic, length, identity, sub-block checksums) and writes header and data; nil on
    /// success.
    private func writeBlock(_ fd: Int32, header: UnsafeMutableRawBufferPointer, identity: [UInt8], data: UnsafeRawBufferPointer, padded: Int) -> Errno? {
        header.initializeMemory(as: UInt8.self, repeating: 0)
        let sub = Self.subBlockSize(forBlock: data.count)
        header.storeBytes(of: Self.magic, toByteOffset: 0, as: UInt64.self)
        header.storeBytes(of: UInt64(data.count), toByteOffset: 8, as: UInt64.self)
        header.storeBytes(of: UInt32(identity.count), toByteOffset: 24, as: UInt32.self)
        header.storeBytes(of: UInt32(sub.trailingZeroBitCount), toByteOffset: 28, as: UInt32.self)
        identity.withUnsafeBytes { (header.baseAddress! + Self.identityOffset).copyMemory(from: $0.baseAddress!, byteCount: identity.count) }
        var start = 0
        while start < data.count {
            let end = min(start + sub, data.count)
            let sum = XXHash64.hash(UnsafeRawBufferPointer(rebasing: data[start..<end]))
            header.storeBytes(of: sum, toByteOffset: Self.checksumOffset + (start / sub) * 8, as: UInt64.self)
            start = end
        }
        let body = UnsafeRawBufferPointer(start: data.baseAddress, count: padded)
        guard Syscall.pwriteFully(fd, UnsafeRawBufferPointer(header), 0), Syscall.pwriteFully(fd, body, Int64(Self.headerSize)) else {
            return Errno(errno)
        }
        return nil
    }

    /// Evicts least-recently-used blocks until `size` more bytes fit under the capacity and above the
    /// free-space floor, then reserves them (counted in `used`); false means the block is not cached.
    private func makeRoom(_ size: Int64) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let needCheck = state.withLock { s -> Bool in
            let check = s.lowSpace || Int64(now.tv_sec) != s.lastFreeCheck
            if check { s.lastFreeCheck = Int64(now.tv_sec) }
            return check
        }
        if needCheck {
            var vfs = statvfs()
            let low = statvfs(directory, &vfs) == 0 && Int64(vfs.f_bavail) * Int64(vfs.f_frsize) - size < freeSpaceFloor
            state.withLock { $0.lowSpace = low }
        }
        // Check, evict and reserve under one lock, so concurrent writers cannot overshoot together.
        let (victims, fits) = state.withLock { s -> ([DiskKey], Bool) in
            guard s.used + size > capacity || s.lowSpace else {
                s.used += size
                return ([], true)
            }
            // Free a batch (a twentieth, at least what is needed) so eviction is not paid on every write.
            let want = max(size + max(0, s.used + size - capacity), capacity / 20)
            var freed: Int64 = 0
            var out: [DiskKey] = []
            // Pinned objects stay; the rest go least recently used first.
            let pinned = pins.withLock { $0 }
            for (k, e) in s.entries.sorted(by: { $0.value.lastUse < $1.value.lastUse }) where freed < want && pinned[k.object] == nil {
                out.append(k)
                freed += e.bytes
            }
            for k in out {
                if let e = s.entries.removeValue(forKey: k) { s.used -= e.bytes }
            }
            let fits = s.used + size <= capacity && !s.lowSpace
            if fits { s.used += size }
            return (out, fits)
        }
        for k in victims { unlink(path(k)) }
        evictions.add(victims.count, ordering: .relaxed)
        if fits { return true }
        // Below the free-space floor: the unlinks may have been enough.
        var vfs = statvfs()
        guard statvfs(directory, &vfs) == 0, Int64(vfs.f_bavail) * Int64(vfs.f_frsize) - size >= freeSpaceFloor else { return false }
        return state.withLock { s in
            s.lowSpace = false
            guard s.used + size <= capacity else { return false }
            s.used += size
            return true
        }
    }
}
