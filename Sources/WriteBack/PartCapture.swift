import Platform
import ObjectStore
import Synchronization

/// Copies of whole parts a sequential writer just wrote, so their upload needs no read of the staging file.
///
/// Staging writes and part reads share one device: on the test machine a 1 GiB checkpoint moved 1 GiB of
/// writes and 0.75 GiB of part reads before `close()` returned, and reads slowed the writes from 600 to
/// 420 MB/s. A writer that fills a part from its first byte to its last in order leaves a copy here; the
/// upload of that part takes it instead of reading the file.
///
/// The copy always equals the staging file: `WriteBack.write` records and stages under this object's lock,
/// and any write, truncate or cancel that touches a copied range drops the copy. The bytes are copied once:
/// the staging queue writes a captured range to the file from the copy. Only base-sized parts are
/// copied (every part of a file up to `1000 × base`), and at most `maxReady` wait, so the memory it holds is
/// bounded; a part without a copy is read from the file as before.
final class PartCapture: Sendable {
    static let maxReady = 4

    /// How many copies all the files of a write path may hold at once, open ones included.
    ///
    /// With async close a backlog of pending files is the normal state (writers outrun the upload); at 4
    /// copies each, hundreds of them held gigabytes (2,177 MiB with `--memory-cache 256M`). Beyond the
    /// budget a part simply has no copy and is read back from the staging file.
    final class Budget: Sendable {
        let limit: Int
        private let held = Atomic<Int>(0)
        init(limit: Int) { self.limit = max(0, limit) }
        var inUse: Int { held.load(ordering: .relaxed) }
        /// Takes one copy's place if there is room.
        func take() -> Bool {
            while true {
                let now = held.load(ordering: .relaxed)
                guard now < limit else { return false }
                if held.compareExchange(expected: now, desired: now + 1, ordering: .relaxed).exchanged { return true }
            }
        }
        func give(_ n: Int) { if n > 0 { held.subtract(n, ordering: .relaxed) } }
    }

    /// Bytes `range` of the file, just copied into `buffer` (which holds the part starting at `partStart`).
    /// The staging queue writes them from there instead of copying them a second time.
    struct Copy {
        var range: Range<Int64>
        var partStart: Int64
        var buffer: PartBuffer

        /// Where file offset `offset` (inside `range`) sits in the buffer.
        func address(of offset: Int64) -> UnsafeMutableRawPointer { buffer.pointer + Int(offset - partStart) }
    }

    private struct Slot {
        var part: Int
        var buffer: PartBuffer
        var filled: Int
    }

    private struct State {
        /// The part being filled in order, if any.
        var open: Slot?
        /// Complete parts waiting for their upload.
        var ready: [Slot] = []
        /// Copies counted against the budget (open and ready), so that a change gives back the difference.
        var counted = 0
    }

    private let state = Locked(State())
    /// The part numbers in `ready`, under a lock of their own that never takes another, so that the upload
    /// planner can ask while it holds `WriteBack`'s lock.
    private let readyParts = Locked<Set<Int>>([])
    private let geometry: PartGeometry
    private let buffers: AlignedBuffers
    private let capacity: Int
    private let budget: Budget

    init(geometry: PartGeometry, buffers: AlignedBuffers, budget: Budget = Budget(limit: Int.max)) {
        self.geometry = geometry
        self.buffers = buffers
        self.budget = budget
        capacity = Syscall.directIOPadded(Int(geometry.base))
    }

    deinit { budget.give(state.withLock { $0.counted }) }

    /// Records `data` at `offset`, then runs `stage` (the write into the staging file) with the copies just
    /// made; when `stage` fails the file lacks those bytes, so the copies they touched are dropped.
    ///
    /// One lock around both keeps concurrent writers to the same bytes in the same order here as in the file.
    func write(offset: Int64, _ data: UnsafeRawBufferPointer, stage: ([Copy]) -> Errno?) -> Errno? {
        state.withLock { s in
            let copies = data.isEmpty ? [] : record(&s, offset: offset, data)
            let failure = stage(copies)
            if failure != nil {
                drop(&s, overlapping: offset..<(offset + Int64(data.count)))
                s.open = nil
            }
            publish(&s)
            return failure
        }
    }

    /// The copy of `part` if it holds `count` bytes (the part's length now).
    func take(part: Int, count: Int) -> PartBuffer? {
        state.withLock { s in
            guard let i = s.ready.firstIndex(where: { $0.part == part && $0.filled == count }) else { return nil }
            let buffer = s.ready.remove(at: i).buffer
            publish(&s)
            return buffer
        }
    }

    /// Drops every copy: the file was cancelled, or the bucket has what they hold.
    func clear() { reset { () } }

    /// Runs `body` (a truncate) with writes held off, then drops every copy.
    func reset<T>(_ body: () -> T) -> T {
        state.withLock { s in
            let result = body()
            let counted = s.counted
            s = State()
            s.counted = counted
            publish(&s)
            return result
        }
    }

    /// The parts whose copies wait.
    var waiting: Set<Int> { readyParts.withLock { $0 } }

    /// Whether `part` has a copy waiting.
    func has(_ part: Int) -> Bool { readyParts.withLock { $0.contains(part) } }

    /// Makes the set of waiting parts and the budget agree with `s` (call after every change).
    private func publish(_ s: inout State) {
        let now = s.ready.count + (s.open == nil ? 0 : 1)
        if now < s.counted { budget.give(s.counted - now) }
        s.counted = now
        readyParts.withLock { $0 = Set(s.ready.map(\.part)) }
    }

    /// The number of copies held, open one included (for tests).
    var held: Int { state.withLock { $0.ready.count + ($0.open == nil ? 0 : 1) } }

    /// Drops the waiting copies that hold any byte of `range`.
    private func drop(_ s: inout State, overlapping range: Range<Int64>) {
        s.ready.removeAll { slot in
            let start = geometry.start(ofPart: slot.part)
            return range.overlaps(start..<(start + Int64(slot.filled)))
        }
    }

    private func record(_ s: inout State, offset: Int64, _ data: UnsafeRawBufferPointer) -> [Copy] {
        // A write over copied bytes makes those copies stale, and one anywhere but the open copy's end breaks it.
        drop(&s, overlapping: offset..<(offset + Int64(data.count)))
        if let o = s.open, offset != geometry.start(ofPart: o.part) + Int64(o.filled) { s.open = nil }
        var copies: [Copy] = []
        var at = offset
        var done = 0
        while done < data.count {
            if s.open == nil {
                let p = geometry.part(containing: at)
                // Only a write that begins a base-sized part starts a copy.
                guard geometry.start(ofPart: p) == at, geometry.size(ofPart: p) == geometry.base, s.ready.count < Self.maxReady else { break }
                // A copy that replaces none this file held takes a place in the write path's budget.
                if s.ready.count + 1 > s.counted {
                    guard budget.take() else { break }
                    s.counted += 1
                }
                s.open = Slot(part: p, buffer: PartBuffer(pool: buffers, capacity: capacity), filled: 0)
            }
            var o = s.open!
            let n = min(data.count - done, Int(geometry.base) - o.filled)
            (o.buffer.pointer + o.filled).copyMemory(from: data.baseAddress! + done, byteCount: n)
            copies.append(Copy(range: at..<(at + Int64(n)), partStart: geometry.start(ofPart: o.part), buffer: o.buffer))
            o.filled += n
            done += n
            at += Int64(n)
            if o.filled == Int(geometry.base) {
                s.ready.append(o)
                s.open = nil
            } else {
                s.open = o
            }
        }
        return copies
    }
}

/// A pooled part-sized buffer that goes back to the pool when its last holder lets go: the part copy, the
/// upload sending it, and the queued staging writes that read from it.
final class PartBuffer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    private let pool: AlignedBuffers
    private let capacity: Int

    init(pool: AlignedBuffers, capacity: Int) {
        self.pool = pool
        self.capacity = capacity
        pointer = pool.take(capacity)
    }

    deinit { pool.give(pointer, capacity) }
}
