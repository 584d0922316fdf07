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
        let trimmed = text.trimmingWhitespace()
        var number = Substring(trimmed)
        var multiplier: Double = 1
        let k = 1024.0
        let units: [(String, Double)] = [("KiB", k), ("MiB", k * k), ("GiB", k * k * k), ("TiB", k * k * k * k),
                                         ("K", k), ("M", k * k), ("G", k * k * k), ("T", k * k * k * k), ("B", 1)]
        for (suffix, value) in units where number.uppercased().hasSuffix(suffix.uppercased()) {
            number = number.dropLast(suffix.count)
            multiplier = value
            break
        }
        guard let value = Double(number.trimmingWhitespace()), value >= 0, value.isFinite, value * multiplier < 9.0e18 else {
            throw CLIFailure(message: "invalid size '\(text)': expected a number with an optional K, M, G or T suffix, such as 200G", exitCode: 64)
        }
        return Int64(value * multiplier)
    }

    var description: String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(bytes)
        var i = 0
        while v >= 1024 && i < units.count - 1 {
            v /= 1024
            i += 1
        }
        return i == 0 ? "\(bytes) B" : "\(Double(Int(v * 10)) / 10) \(units[i])"
    }
}

import ArgumentParser
import Platform
import ObjectStore
