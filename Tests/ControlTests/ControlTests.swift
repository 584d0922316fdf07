import Foundation
import Synchronization
import Testing

@testable import Control

@Suite struct JSONValueTests {
    @Test func roundTripsNestedValues() throws {
        let v: JSONValue = .object([
            ("name", .string("a \"quoted\" \\ path\n\u{01}é")), ("n", .number(42)), ("f", .number(1.5)), ("neg", .number(-3)),
            ("ok", .bool(true)), ("none", .null), ("list", .array([.number(1), .string("x"), .object([])])),
        ])
        for indent in [nil, 2] as [Int?] {
            let text = v.encoded(indent: indent)
            let back = try #require(JSONValue.parse(text), "could not parse \(text)")
            #expect(back == v)
            // Foundation agrees it is JSON.
            #expect(try JSONSerialization.jsonObject(with: Data(text.utf8)) is [String: Any])
        }
        #expect(v["n"]?.number == 42)
        #expect(v["name"]?.string?.hasPrefix("a \"quoted\"") == true)
    }

    @Test(arguments: ["", "{", "{\"a\":}", "tru", "\"unterminated", "{\"a\" 1}", "1 2", "[1,,2]", "{\"a\":1,,}"])
    func rejectsMalformed(_ text: String) {
        #expect(JSONValue.parse(text) == nil)
    }

    /// FoundationEssentials' decoder takes one trailing comma (`[1,]`), as JSON5 does; nothing we parse
    /// depends on refusing it.
    @Test func aTrailingCommaIsTaken() {
        #expect(JSONValue.parse("[1,]") == .array([.number(1)]))
    }
}

@Suite struct ControlSocketTests {
    @Test func serverAnswersOneCommandPerConnection() throws {
        let path = NSTemporaryDirectory() + "lakecache-ctl-\(UUID().uuidString.prefix(6)).sock"
        let server = ControlServer(path: path, logger: .init(label: "test")) { command in
            JSONValue.object([("echo", .string(command))]).encoded()
        }
        try server.start()
        defer { server.stop() }
        var st = stat()
        #expect(stat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600, "the control socket must be private to its owner")
        for command in ["status", "unmount force"] {
            let answer = try ControlClient.send(command, to: path, timeoutSeconds: 5).get()
            #expect(JSONValue.parse(answer)?["echo"]?.string == command)
        }
    }

    /// `stop` returns only once the request being answered is answered: an `unmount` handler's log line
    /// and reply are not cut off by the exit the unmount sets going.
    @Test func stopWaitsForTheRequestBeingAnswered() async throws {
        let path = NSTemporaryDirectory() + "lakecache-ctl-\(UUID().uuidString.prefix(6)).sock"
        final class Flags: Sendable {
            let entered = Atomic<Bool>(false)
            let answered = Atomic<Bool>(false)
        }
        let flags = Flags()
        let server = ControlServer(path: path, logger: .init(label: "test")) { _ in
            flags.entered.store(true, ordering: .releasing)
            usleep(300_000)
            flags.answered.store(true, ordering: .releasing)
            return JSONValue.object([("ok", .bool(true))]).encoded()
        }
        try server.start()
        let client = Task.detached { try? ControlClient.send("unmount", to: path, timeoutSeconds: 30).get() }
        for _ in 0..<3000 where !flags.entered.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
        let entered = flags.entered.load(ordering: .acquiring)
        #expect(entered, "the request never reached its handler")
        server.stop()
        let answered = flags.answered.load(ordering: .acquiring)
        #expect(answered, "stop returned while a request was being answered")
        #expect(await client.value.flatMap { JSONValue.parse($0)?["ok"] } != nil, "the reply was cut off")
    }

    @Test func missingSocketIsAnError() {
        #expect(throws: Errno.self) { try ControlClient.send("status", to: "/nonexistent/x.sock").get() }
    }

    @Test func socketPathsAreStableAndPrivate() {
        #expect(ControlPaths.socket(for: "/mnt/lake") == ControlPaths.socket(for: "/mnt/lake"))
        #expect(ControlPaths.socket(for: "/mnt/lake") != ControlPaths.socket(for: "/mnt/lake2"))
        #expect(ControlPaths.socket(for: "/mnt/lake").hasPrefix(ControlPaths.directory() + "/"))
    }
}

import Platform

@Suite struct JSONValueLimitTests {
    @Test func deepNestingIsRefusedNotRecursedInto() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(JSONValue.parse(deep) == nil)
        let ok = String(repeating: "[", count: JSONValue.maxDepth) + "1" + String(repeating: "]", count: JSONValue.maxDepth)
        #expect(JSONValue.parse(ok) != nil)
        let over = "[" + ok + "]"
        #expect(JSONValue.parse(over) == nil)
        // Brackets inside strings do not count.
        #expect(JSONValue.parse("[\"" + String(repeating: "[", count: 1000) + "\"]") != nil)
    }

    @Test func surrogatePairsDecodeToOneScalar() {
        #expect(JSONValue.parse(#""a\ud83d\ude00b""#)?.string == "a\u{1F600}b")
        #expect(JSONValue.parse(#""\u00e9""#)?.string == "é")
        #expect(JSONValue.parse(#""\ud83d""#) == nil, "a lone surrogate is refused")
    }
}
