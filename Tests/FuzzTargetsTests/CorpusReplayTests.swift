import Foundation
import Testing

@testable import FuzzTargets

/// Every input in `Fuzz/corpus/` (seeds, and whatever once crashed a parser) goes through its parsers again.
@Suite struct CorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    @Test(arguments: FuzzTargets.all) func corpusReplaysWithoutACrash(target: String) throws {
        let dir = Self.corpus.appendingPathComponent(target)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix(".") }
        #expect(files.count >= 3, "the \(target) corpus has seeds")
        for name in files {
            let data = try Data(contentsOf: dir.appendingPathComponent(name))
            data.withUnsafeBytes { FuzzTargets.run(target, $0) }
        }
    }
}
