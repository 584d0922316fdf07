import Foundation
import Testing

@testable import MountConfig

@Suite struct LoadTests {
    /// A fresh path under the temporary directory, removed after `body`.
    func withTemporaryPath(_ body: (String) throws -> Void) rethrows {
        let path = NSTemporaryDirectory() + "lakecache-config-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try body(path)
    }

    @Test func loadsAFileAndNamesItInMessages() throws {
        try withTemporaryPath { path in
            try exampleYAML.write(toFile: path, atomically: true, encoding: .utf8)
            let config = try MountConfig.load(path: path)
            #expect(config.file == path)
            #expect(config.links.map(\.path) == ["datasets/imagenet", "checkpoints", "models"])

            try (exampleYAML + "bogus: 1\n").write(toFile: path, atomically: true, encoding: .utf8)
            #expect(throws: ConfigError("\(path):29: unknown setting 'bogus'; use one of " + (mountKeys + LinkFields.keys + ["links"]).joined(separator: ", "))) {
                try MountConfig.load(path: path)
            }
        }
    }

    @Test func missingFile() {
        let path = "/nonexistent-lakecache-dir/lake.yaml"
        #expect(throws: ConfigError("\(path): cannot read the config file: No such file or directory; check the --config path")) {
            try MountConfig.load(path: path)
        }
    }

    @Test func directoryIsNotAConfigFile() {
        let path = NSTemporaryDirectory()
        #expect(throws: ConfigError("\(path): the config file is not a regular file; check the --config path")) {
            try MountConfig.load(path: path)
        }
    }

    @Test func tooLargeFile() throws {
        try withTemporaryPath { path in
            let bytes = Data(repeating: UInt8(ascii: "#"), count: (1 << 20) + 1)
            try bytes.write(to: URL(fileURLWithPath: path))
            do {
                _ = try MountConfig.load(path: path)
                Issue.record("loaded a file over 1 MiB")
            } catch let error as ConfigError {
                #expect(error.message == "\(path): the config file is 1048577 bytes, over the 1 MiB limit; check the --config path, or split the mount")
            }
        }
    }

    @Test func exactlyOneMiBIsRead() throws {
        try withTemporaryPath { path in
            var text = file()
            text += "#" + String(repeating: "x", count: (1 << 20) - text.utf8.count - 2) + "\n"
            #expect(text.utf8.count == 1 << 20)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            #expect(try MountConfig.load(path: path).links.count == 1)
        }
    }
}
