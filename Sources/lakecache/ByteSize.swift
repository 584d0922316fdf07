/// A byte count written as `512M`, `200G`, `1.5T` or a plain number (powers of 1024).
struct ByteSize: ExpressibleByArgument, Equatable, CustomStringConvertible {
    var bytes: Int64

    init(bytes: Int64) { self.bytes = bytes }

    init?(argument: String) {
        guard let parsed = try? Self.parse(argument) else { return nil }
        bytes = parsed
    }

    /// Parses a size; the error says what was wrong with it.
    static func parse(_ text: String) throws(CLIFailure) -> Int64 {
        guard let bytes = ByteCount.parse(text) else {
            throw CLIFailure(message: "invalid size '\(text)': expected a number with an optional K, M, G or T suffix, such as 200G", exitCode: 64)
        }
        return bytes
    }

    var description: String { ByteCount.format(bytes) }
}

import ArgumentParser
import Platform
import ObjectStore
