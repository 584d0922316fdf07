import Control
import Platform
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Accepted events, on disk before the sender hears 2xx, so a daemon killed afterwards applies them at its
/// next start.
///
/// `CACHE_DIR/events.journal`, mode 0600: one JSON line per accepted event (`id`, the event), written and
/// fdatasync'd before the reply, and a `{"done":ID}` line once it is applied (not synced: applying an
/// event twice is harmless, since every event is checked against the bucket). Once nothing is pending the
/// file is truncated.
package final class EventJournal: Sendable {
    package let path: String
    private let directory: String
    private struct State {
        var fd: Int32
        var next: Int64
        var pending: [Int64: ObjectEvent]
        var bytes: Int64
        /// Bytes the pending events' lines take: what a compaction keeps.
        var live: Int64
        /// Each pending event's line length, so `done` need not encode it again.
        var lineBytes: [Int64: Int64]
    }
    private let state: Locked<State>

    /// Opens (or creates) the journal in `directory` and reads what an earlier run left pending.
    package init(directory: String) throws(SystemError) {
        path = directory + "/events.journal"
        self.directory = directory
        var pending: [Int64: ObjectEvent] = [:]
        var lineBytes: [Int64: Int64] = [:]
        var next: Int64 = 1
        // Bytes up to the end of the last whole line: a torn tail is cut off, so the next line does not join it.
        var whole: Int64 = 0
        if let text = readTextFile(path) {
            whole = Int64(text.utf8.lastIndex(of: UInt8(ascii: "\n")).map { text.utf8.distance(from: text.utf8.startIndex, to: $0) + 1 } ?? 0)
            for line in text.split(separator: "\n") {
                // A torn last line (killed mid-write, before the reply) was never acknowledged: skipped.
                guard let v = JSONValue.parse(String(line)) else { continue }
                if let done = v["done"]?.number {
                    pending.removeValue(forKey: Int64(done))
                    lineBytes.removeValue(forKey: Int64(done))
                } else if let id = v["id"]?.number, let e = Self.event(v) {
                    pending[Int64(id)] = e
                    lineBytes[Int64(id)] = Int64(line.utf8.count + 1)
                    next = max(next, Int64(id) + 1)
                }
            }
        }
        let fd: Int32
        switch Syscall.open(path, O_WRONLY | O_CREAT | O_APPEND, mode: 0o600) {
        case .success(let f): fd = f
        case .failure(let e): throw SystemError("cannot open the events journal \(path): \(e); check the cache directory's permissions and free space")
        }
        fchmod(fd, 0o600)
        let size = (try? Syscall.fileSize(fd).get()) ?? 0
        if size > whole { _ = Syscall.ftruncate(fd, whole) }
        state = Locked(State(fd: fd, next: next, pending: pending, bytes: min(size, whole), live: lineBytes.values.reduce(0, +), lineBytes: lineBytes))
    }

    deinit { state.withLock { Syscall.close($0.fd) } }

    /// Events accepted earlier and not applied, oldest first.
    package var pending: [(id: Int64, event: ObjectEvent)] {
        state.withLock { $0.pending.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
    }

    /// Appends the events and makes them durable; their ids, or the error (the request then gets a 5xx).
    package func append(_ events: [ObjectEvent]) -> Result<[Int64], SystemError> {
        state.withLock { s in
            var ids: [Int64] = []
            var text = ""
            var lengths: [Int64] = []
            for e in events {
                let line = Self.line(id: s.next, e) + "\n"
                ids.append(s.next)
                lengths.append(Int64(line.utf8.count))
                text += line
                s.next += 1
            }
            let written = text.withUTF8 { Syscall.writeAll(s.fd, UnsafeRawBufferPointer($0)) }.flatMap { Syscall.fdatasync(s.fd) }
            if case .failure(let e) = written {
                // Nothing of a failed write may stay: the next line must start on a line of its own.
                _ = Syscall.ftruncate(s.fd, s.bytes)
                return .failure(SystemError("cannot write the events journal \(path): \(e)"))
            }
            s.bytes += Int64(text.utf8.count)
            s.live += Int64(text.utf8.count)
            for (i, id) in ids.enumerated() {
                s.pending[id] = events[i]
                s.lineBytes[id] = lengths[i]
            }
            return .success(ids)
        }
    }

    /// Records that event `id` was applied; truncates the file once nothing is pending.
    package func done(_ id: Int64) {
        state.withLock { s in
            guard s.pending.removeValue(forKey: id) != nil else { return }
            s.live -= s.lineBytes.removeValue(forKey: id) ?? 0
            if s.pending.isEmpty {
                _ = Syscall.ftruncate(s.fd, 0)
                s.bytes = 0
                s.live = 0
                return
            }
            var text = "{\"done\":\(id)}\n"
            if case .failure = text.withUTF8({ Syscall.writeAll(s.fd, UnsafeRawBufferPointer($0)) }) {
                // Not recorded: the event is applied again after a restart, which is harmless.
                _ = Syscall.ftruncate(s.fd, s.bytes)
                return
            }
            s.bytes += Int64(text.utf8.count)
            // A steady stream of events may never leave it empty: rewrite it with only what is pending, once
            // that is less than half of the file.
            if s.bytes > max(Self.compactAt, 2 * s.live) { compact(&s) }
        }
    }

    /// The size past which `done` rewrites the journal.
    static let compactAt: Int64 = 4 << 20

    /// Replaces the file with the pending events alone (written and synced under a temporary name, then
    /// renamed over it, so a crash leaves one whole journal or the other).
    private func compact(_ s: inout State) {
        var text = ""
        for (id, e) in s.pending.sorted(by: { $0.key < $1.key }) { text += Self.line(id: id, e) + "\n" }
        let tmp = path + ".tmp"
        guard case .success(let fd) = Syscall.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, mode: 0o600) else { return }
        let written = text.withUTF8 { Syscall.writeAll(fd, UnsafeRawBufferPointer($0)) }.flatMap { Syscall.fdatasync(fd) }
        guard case .success = written, rename(tmp, path) == 0 else {
            Syscall.close(fd)
            unlink(tmp)
            return
        }
        // The rename must be durable before appends go to the new file: else a crash brings the old one back
        // without them.
        if case .success(let dir) = Syscall.open(directory, O_RDONLY | O_DIRECTORY) {
            _ = Syscall.fsync(dir)
            Syscall.close(dir)
        }
        Syscall.close(s.fd)
        s.fd = fd
        s.bytes = Int64(text.utf8.count)
        s.live = s.bytes
    }

    /// Events accepted and not yet applied.
    package var pendingCount: Int { state.withLock { $0.pending.count } }

    package static func line(id: Int64, _ e: ObjectEvent) -> String {
        var fields: [(String, JSONValue)] = [
            ("id", .number(Double(id))), ("kind", .string(e.kind.rawValue)), ("name", .string(e.name)),
            ("bucket", .string(e.bucket)), ("key", .string(e.key)), ("source", .string(e.source.rawValue)),
        ]
        if let size = e.size { fields.append(("size", .number(Double(size)))) }
        if let etag = e.etag { fields.append(("etag", .string(etag))) }
        if let seq = e.sequencer { fields.append(("sequencer", .string(seq))) }
        return JSONValue.object(fields).encoded()
    }

    package static func event(_ v: JSONValue) -> ObjectEvent? {
        guard let kind = v["kind"]?.string.flatMap(ObjectEvent.Kind.init(rawValue:)), let bucket = v["bucket"]?.string, let key = v["key"]?.string else { return nil }
        return ObjectEvent(
            kind: kind, name: v["name"]?.string ?? "", bucket: bucket, key: key, size: v["size"]?.number.map { Int64($0) },
            etag: v["etag"]?.string, sequencer: v["sequencer"]?.string,
            source: v["source"]?.string.flatMap(ObjectEvent.Source.init(rawValue:)) ?? .aws)
    }
}
