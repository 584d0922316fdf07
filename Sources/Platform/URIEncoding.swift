/// Percent-encoding exactly as SigV4 canonicalisation requires (RFC 3986 unreserved set).
package enum URIEncoding {
    @inline(__always)
    private static func isUnreserved(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Encodes every byte outside the unreserved set; with `keepSlash`, `/` stays literal (object key paths).
    package static func encode(_ string: String, keepSlash: Bool = false) -> String {
        let hex: [UInt8] = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        out.reserveCapacity(string.utf8.count)
        for c in string.utf8 {
            if isUnreserved(c) || (keepSlash && c == UInt8(ascii: "/")) {
                out.append(c)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(c >> 4)])
                out.append(hex[Int(c & 0x0f)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes percent-encoded UTF-8 bytes; nil for a bad escape or bytes that are not UTF-8.
    package static func decode(bytes: ArraySlice<UInt8>) -> String? {
        bytes.withUnsafeBufferPointer { b in
            guard b.contains(UInt8(ascii: "%")) else { return String(validating: b, as: UTF8.self) }
            var out = [UInt8]()
            out.reserveCapacity(b.count)
            var i = 0
            while i < b.count {
                if b[i] == UInt8(ascii: "%") {
                    guard i + 2 < b.count, let h = hexValue(b[i + 1]), let l = hexValue(b[i + 2]) else { return nil }
                    out.append(h << 4 | l)
                    i += 3
                } else {
                    out.append(b[i])
                    i += 1
                }
            }
            return String(validating: out, as: UTF8.self)
        }
    }

    /// Decodes `%XX` escapes (and `+` as space when `plusIsSpace`); nil for malformed input.
    package static func decode(_ string: String, plusIsSpace: Bool = false) -> String? {
        var out = [UInt8]()
        var it = Array(string.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%") {
                guard it.count >= 2, let h = hexValue(it.removeFirst()), let l = hexValue(it.removeFirst()) else { return nil }
                out.append(h << 4 | l)
            } else if plusIsSpace && c == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else {
                out.append(c)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    /// The value of one hexadecimal digit (either case), or nil.
    package static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
