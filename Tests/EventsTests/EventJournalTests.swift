import Platform
import Testing
@testable import Events

#if canImport(Glibc)
import Glibc
#endif

/// The journal of accepted events: what a restart replays.
@Suite struct EventJournalTests {
    func directory() -> String {
        var template = Array("/tmp/lakecache-journal-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        return String(cString: p!)
    }

    func event(_ key: String, _ seq: String? = nil) -> ObjectEvent {
        ObjectEvent(kind: .created, name: "ObjectCreated:Put", bucket: "b", key: key, size: 5, etag: "e", sequencer: seq, source: .minio)
    }

    @Test func pendingEventsSurviveAReopenAndDoneOnesDoNot() throws {
        let dir = directory()
        defer { _ = system("rm -rf '\(dir)'") }
        let j = try EventJournal(directory: dir)
        let ids = try j.append([event("a", "01"), event("b\nc \"q\"")]).get()
        _ = try j.append([event("d")]).get()
        j.done(ids[0])
        var st = stat()
        #expect(stat(dir + "/events.journal", &st) == 0 && st.st_mode & 0o777 == 0o600)
        let again = try EventJournal(directory: dir)
        #expect(again.pending.map(\.event.key) == ["b\nc \"q\"", "d"])
        #expect(again.pending[0].event == event("b\nc \"q\""))
        // New ids continue after the old ones.
        let next = try again.append([event("e")]).get()
        #expect(next[0] > again.pending[1].id)
        for (id, _) in again.pending { again.done(id) }
        #expect(again.pendingCount == 0)
        #expect(readTextFile(dir + "/events.journal") == "", "an empty journal is truncated")
    }

    @Test func aTornLastLineIsSkipped() throws {
        let dir = directory()
        defer { _ = system("rm -rf '\(dir)'") }
        let j = try EventJournal(directory: dir)
        _ = try j.append([event("whole")]).get()
        let fd = open(dir + "/events.journal", O_WRONLY | O_APPEND)
        let torn = #"{"id":9,"kind":"created","bucket":"b","ke"#
        _ = torn.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        let reopened = try EventJournal(directory: dir)
        #expect(reopened.pending.map(\.event.key) == ["whole"])
        // The torn tail is cut off: an event accepted now is a line of its own, read back whole.
        _ = try reopened.append([event("after")]).get()
        #expect(try EventJournal(directory: dir).pending.map(\.event.key) == ["whole", "after"])
    }

    @Test func aLongStreamIsCompacted() throws {
        let dir = directory()
        defer { _ = system("rm -rf '\(dir)'") }
        let j = try EventJournal(directory: dir)
        let keep = try j.append([event("kept")]).get()
        let long = String(repeating: "k", count: 1000)
        for i in 0..<6000 {
            let id = try j.append([event(long + "\(i)")]).get()
            j.done(id[0])
        }
        var st = stat()
        #expect(stat(dir + "/events.journal", &st) == 0 && st.st_size < EventJournal.compactAt + 8192, "\(st.st_size) bytes")
        #expect(try EventJournal(directory: dir).pending.map(\.id) == keep)
    }
}
