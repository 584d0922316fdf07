#if canImport(Glibc)
import Platform
import Glibc
#endif

extension Timestamp {
    /// Parses ISO 8601 as S3 listings use it: `2009-10-12T17:50:30.000Z`.
    package init?(iso8601 text: String) {
        let b = Array(text.utf8)
        guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
            b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"),
            let year = Self.number(b[0..<4]), let month = Self.number(b[5..<7]), let day = Self.number(b[8..<10]),
            let hour = Self.number(b[11..<13]), let minute = Self.number(b[14..<16]), let second = Self.number(b[17..<19])
        else { return nil }
        var nanos: Int32 = 0
        var i = 19
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, let d = Self.digit(b[i]) {
                if digits < 9 { nanos = nanos * 10 + Int32(d) }
                digits += 1
                i += 1
            }
            // More than nine digits are cut, not scaled: `digits..<9` would trap (the fuzzer's find: a
            // listing with a long fraction crashed the daemon).
            if digits < 9 { for _ in digits..<9 { nanos *= 10 } }
        }
        guard i < b.count, b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "+") else { return nil }
        guard let seconds = Self.epoch(year: year, month: month, day: day, hour: hour, minute: minute, second: second) else { return nil }
        self.init(seconds: seconds, nanoseconds: nanos)
    }

    /// Parses an RFC 7231 HTTP date: `Wed, 12 Oct 2009 17:50:00 GMT`.
    package init?(httpDate text: String) {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT",
            let day = Int(parts[1]), let year = Int(parts[3]),
            let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].firstIndex(of: String(parts[2]))
        else { return nil }
        let hms = parts[4].split(separator: ":")
        guard hms.count == 3, let h = Int(hms[0]), let m = Int(hms[1]), let s = Int(hms[2]),
            let seconds = Self.epoch(year: year, month: month + 1, day: day, hour: h, minute: m, second: s)
        else { return nil }
        self.init(seconds: seconds)
    }

    private static func digit(_ c: UInt8) -> Int? {
        c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") ? Int(c - UInt8(ascii: "0")) : nil
    }

    private static func number(_ bytes: ArraySlice<UInt8>) -> Int? {
        var v = 0
        for c in bytes {
            guard let d = digit(c) else { return nil }
            v = v * 10 + d
        }
        return v
    }

    private static func epoch(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Int64? {
        guard (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        var t = tm()
        t.tm_year = Int32(year - 1900)
        t.tm_mon = Int32(month - 1)
        t.tm_mday = Int32(day)
        t.tm_hour = Int32(hour)
        t.tm_min = Int32(minute)
        t.tm_sec = Int32(second)
        return Int64(timegm(&t))
    }
}
