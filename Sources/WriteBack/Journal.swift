import Platform
import ObjectStore
import Synchronization

/// One pending object as the journal keeps it: enough to finish its upload after a crash.
///
/// `committed` records were acknowledged by `close()` and must reach the bucket. `open` records exist only so
/// that a multipart upload started for a file still being written can be found and aborted after a crash.
package struct JournalRecord: Sendable, Equatable {
    package enum State: String, Sendable { case open, committed }

    package var id: String
    /// The store's name ("" for a one-URL mount's, and in records written before stores had names).
    package var store: String = ""
    package var bucket: String
    package var key: String
    package var state: State
    package var size: Int64
    package var uploadID: String?
    /// Parts known uploaded when the record was written (ListParts is the authority on replay).
    package var parts: [CompletedPart]
    package var metadata: [String: String]
    /// Wall-clock seconds when the record was first written.
    package var created: Int64
    /// The boot id while the staged bytes were only in the page cache (`kernel` durability, before the
    /// background fdatasync); nil once they are on the device. Replay after a reboot does not upload such a
    /// record: the power cut may have taken some of the bytes.
    package var unsyncedBoot: String? = nil
}

/// The crash-safe list of pending objects: one small file per record, replaced atomically.
///
/// Each record file is written to a temporary name, fsynced, renamed into place and the directory fsynced,
/// so after a crash a record is either the old one or the new one, never torn. A SHA-256 over the body
/// rejects anything damaged on the device.
package final class Journal: Sendable {
    package let directory: String
    /// Record writes are serialized, and each takes its snapshot inside, so an older state never lands last.
    private let writing = Locked(())

    package init(directory: String) {
        self.directory = directory
    }

    func path(_ id: String) -> String { directory + "/" + id + ".rec" }

    /// Writes the record `snapshot` returns, taken while no other record write or removal runs; nothing when
    /// it returns nil (the record was dropped meanwhile, so a late rewrite never brings it back).
    package func write(_ snapshot: () -> JournalRecord?) -> Result<Void, Errno> {
        writing.withLock { _ in
            guard let record = snapshot() else { return .success(()) }
            return Syscall.writeFileAtomically(path(record.id), Array(Self.encode(record).utf8), directory: directory)
        }
    }

    /// Deletes a record; the directory is not fsynced, since replaying a finished record only re-uploads it.
    package func remove(_ id: String) {
        writing.withLock { _ in _ = Syscall.unlink(path(id)) }
    }

    /// Moves a record aside under `suffix` (`.damaged`, `.lost`), where replay no longer reads it.
    package func setAside(_ id: String, suffix: String) {
        writing.withLock { _ in _ = Syscall.rename(path(id), path(id) + suffix) }
    }

    /// Every readable record, and the names of record files that failed their checksum.
    ///
    /// Taken under the write lock: removing a leftover `.tmp` must never race a record write in progress.
    package func load() -> (records: [JournalRecord], damaged: [String]) {
        writing.withLock { _ in loadUnlocked() }
    }

    private func loadUnlocked() -> (records: [JournalRecord], damaged: [String]) {
        var records: [JournalRecord] = []
        var damaged: [String] = []
        for name in Syscall.listDirectory(directory) {
            if name.hasSuffix(".tmp") {
                _ = Syscall.unlink(directory + "/" + name)  // an interrupted record write
                continue
            }
            guard name.hasSuffix(".rec") else { continue }
            guard let text = readTextFile(directory + "/" + name), let record = Self.decode(text) else {
                damaged.append(name)
                continue
            }
            records.append(record)
        }
        return (records.sorted { $0.created < $1.created }, damaged)
    }

    // MARK: - Format: "name value" lines, values URI-encoded, the last line a SHA-256 of the others.

    static func encode(_ r: JournalRecord) -> String {
        var lines = [
            "lakecache-journal 1", "id \(r.id)", "bucket \(URIEncoding.encode(r.bucket))", "key \(URIEncoding.encode(r.key))",
            "state \(r.state.rawValue)", "size \(r.size)", "created \(r.created)",
        ]
        if !r.store.isEmpty { lines.append("store \(URIEncoding.encode(r.store))") }
        if let u = r.uploadID { lines.append("upload \(URIEncoding.encode(u))") }
        // Only records of unsynced bytes carry the line, so a synced record reads the same to older builds.
        if let boot = r.unsyncedBoot { lines.append("unsynced \(URIEncoding.encode(boot))") }
        for (k, v) in r.metadata.sorted(by: { $0.key < $1.key }) { lines.append("meta \(URIEncoding.encode(k)) \(URIEncoding.encode(v))") }
        for p in r.parts { lines.append("part \(p.partNumber) \(URIEncoding.encode(p.etag))") }
        let body = lines.joined(separator: "\n") + "\n"
        return body + "sha256 " + Digest.hex(Digest.sha256(Array(body.utf8))) + "\n"
    }

    static func decode(_ text: String) -> JournalRecord? {
        var all = text.split(separator: "\n", omittingEmptySubsequences: false)
        while all.last == "" { all.removeLast() }
        guard let last = all.popLast(), last.hasPrefix("sha256 ") else { return nil }
        let body = all.joined(separator: "\n") + "\n"
        guard Digest.hex(Digest.sha256(Array(body.utf8))) == String(last.dropFirst(7)) else { return nil }
        var r = JournalRecord(id: "", bucket: "", key: "", state: .open, size: 0, uploadID: nil, parts: [], metadata: [:], created: 0)
        let lines = body.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == "lakecache-journal 1" else { return nil }
        for line in lines.dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 2 else { return nil }
            switch f[0] {
            case "id": r.id = f[1]
            case "store": r.store = URIEncoding.decode(f[1]) ?? ""
            case "bucket": r.bucket = URIEncoding.decode(f[1]) ?? ""
            case "key": r.key = URIEncoding.decode(f[1]) ?? ""
            case "state": r.state = JournalRecord.State(rawValue: f[1]) ?? .open
            case "size": r.size = Int64(f[1]) ?? -1
            case "created": r.created = Int64(f[1]) ?? 0
            case "upload": r.uploadID = URIEncoding.decode(f[1])
            case "unsynced": r.unsyncedBoot = URIEncoding.decode(f[1])
            case "meta" where f.count == 3: r.metadata[URIEncoding.decode(f[1]) ?? ""] = URIEncoding.decode(f[2]) ?? ""
            case "part" where f.count == 3: r.parts.append(CompletedPart(partNumber: Int(f[1]) ?? 0, etag: URIEncoding.decode(f[2]) ?? ""))
            default: return nil
            }
        }
        return r.id.isEmpty || r.bucket.isEmpty || r.size < 0 ? nil : r
    }
}
