/// Byte counts as people write them: `512M`, `200G`, `1.5T`, `64KiB` or a plain number (powers of 1024).
package enum ByteCount {
    /// The count, or nil if `text` is not a size.
    package static func parse(_ text: String) -> Int64? {
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
        guard let value = Double(number.trimmingWhitespace()), value >= 0, value.isFinite, value * multiplier < 9.0e18 else { return nil }
        return Int64(value * multiplier)
    }

    /// `1.5 GiB`, `512 B`.
    package static func format(_ bytes: Int64) -> String {
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
