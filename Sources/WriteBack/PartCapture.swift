import ObjectStore
import Synchronization

/// Copies of whole parts a sequential writer just wrote, so their upload needs no read of the staging file.
///
/// Staging writes and part reads share one device: on the test machine a 1 GiB checkpoint moved 1 GiB of
/// writes and 0.75 GiB of part reads before `close()` returned, and reads slowed the writes from 600 to
/// 420 MB/s. A writer that fills a part from its first byte to its last in order leaves a copy here; the
/// upload of that part takes it instead of reading the file.
///
/// The copy always equals the staging file: `WriteBack.write` stages and records under this object's lock,
/// and any write, truncate or cancel that touches a copied range drops the copy. Only base-sized parts are
/// copied (every part of a file up to `1000 × base`), and at most `maxReady` wait, so the memory it holds is
/// bounded; a part without a copy is read from the file as before.
final class PartCapture: Sendable {
    static let maxReady = 4

    private struct Slot {
        var part: Int
        var buffer: UnsafeMutableRawPointer
        var filled: Int
    }

    private struct State: @unchecked Sendable {
        /// The part being filled in order, if any.
        var open: Slot?
        /// Complete parts waiting for their upload.
        var ready: [Slot] = []
    }

    private let state = Mutex(State())
    /// The part numbers in `ready`, under a lock of their own that never takes another, so that the upload
    /// planner can ask while it holds `WriteBack`'s lock.
    private let readyParts = Mutex<Set<Int>>([])
    private let geometry: PartGeometry
    private let buffers: AlignedBuffers
    private let capacity: Int

    init(geometry: PartGeometry, buffers: AlignedBuffers) {
        self.geometry = geometry
        self.buffers = buffers
        capacity = Syscall.directIOPadded(Int(geometry.base))
    }

    deinit { clear() }

    /// Runs `stage` (the write into the staging file) and, when it succeeds, records `data` at `offset`.
    ///
    /// One lock around both keeps concurrent writers to the same bytes in the same order here as in the file.
    func write(offset: Int64, _ data: UnsafeRawBufferPointer, stage: () -> Errno?) -> Errno? {
        var freed: [UnsafeMutableRawPointer] = []
        let failure = state.withLock { s -> Errno? in
            let failure = stage()
            if failure == nil, !data.isEmpty {
                record(&s, offset: offset, data, freed: &freed)
                publish(s)
            }
            return failure
        }
        for p in freed { buffers.give(p, capacity) }
        return failure
    }

    /// The copy of `part` if it holds `count` bytes (the part's length now); the caller owns the buffer and
    /// gives it back with `give`.
    func take(part: Int, count: Int) -> UnsafeMutableRawPointer? {
        state.withLock { s in
            guard let i = s.ready.firstIndex(where: { $0.part == part && $0.filled == count }) else { return nil }
            let buffer = s.ready.remove(at: i).buffer
            publish(s)
            return buffer
        }
    }

    /// Gives back a buffer `take` returned.
    func give(_ buffer: UnsafeMutableRawPointer) { buffers.give(buffer, capacity) }

    /// Drops every copy: the file was cancelled, or the bucket has what they hold.
    func clear() { reset { () } }

    /// Runs `body` (a truncate) with writes held off, then drops every copy.
    func reset<T>(_ body: () -> T) -> T {
        let (result, freed) = state.withLock { s -> (T, [UnsafeMutableRawPointer]) in
            let result = body()
            var out = s.ready.map(\.buffer)
            if let o = s.open { out.append(o.buffer) }
            s = State()
            publish(s)
            return (result, out)
        }
        for p in freed { buffers.give(p, capacity) }
        return result
    }

    /// The parts whose copies wait.
    var waiting: Set<Int> { readyParts.withLock { $0 } }

    /// Whether `part` has a copy waiting.
    func has(_ part: Int) -> Bool { readyParts.withLock { $0.contains(part) } }

    private func publish(_ s: State) { readyParts.withLock { $0 = Set(s.ready.map(\.part)) } }

    /// The number of copies held, open one included (for tests).
    var held: Int { state.withLock { $0.ready.count + ($0.open == nil ? 0 : 1) } }

    private func record(_ s: inout State, offset: Int64, _ data: UnsafeRawBufferPointer, freed: inout [UnsafeMutableRawPointer]) {
        let end = offset + Int64(data.count)
        // A write over copied bytes makes those copies stale.
        s.ready.removeAll { slot in
            let start = geometry.start(ofPart: slot.part)
            let stale = offset < start + Int64(slot.filled) && end > start
            if stale { freed.append(slot.buffer) }
            return stale
        }
        if let o = s.open, offset != geometry.start(ofPart: o.part) + Int64(o.filled) {
            freed.append(o.buffer)
            s.open = nil
        }
        var at = offset
        var done = 0
        while done < data.count {
            if s.open == nil {
                let p = geometry.part(containing: at)
                // Only a write that begins a base-sized part starts a copy.
                guard geometry.start(ofPart: p) == at, geometry.size(ofPart: p) == geometry.base, s.ready.count < Self.maxReady else { return }
                s.open = Slot(part: p, buffer: buffers.take(capacity), filled: 0)
            }
            var o = s.open!
            let n = min(data.count - done, Int(geometry.base) - o.filled)
            (o.buffer + o.filled).copyMemory(from: data.baseAddress! + done, byteCount: n)
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
    }
}
