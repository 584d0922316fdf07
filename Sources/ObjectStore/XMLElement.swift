import Platform

/// A parsed XML element: just enough of XML for S3 responses (elements, text, entities, CDATA).
///
/// Attributes are ignored and namespace prefixes are stripped, because S3 bodies carry meaning only in
/// element names and text.
package struct XMLElement: Sendable {
    package var name: String
    package var text: String
    package var children: [XMLElement]

    /// The first direct child called `name`.
    package func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }

    /// Every direct child called `name`.
    package func children(_ name: String) -> [XMLElement] { children.filter { $0.name == name } }

    /// Text of the first direct child called `name`.
    package func value(_ name: String) -> String? { child(name)?.text }

    /// Parses a complete document; throws `.malformedResponse` naming the byte offset of the problem.
    package static func parse(_ bytes: [UInt8]) throws(ObjectStoreError) -> XMLElement {
        var parser = XMLByteParser(bytes: bytes)
        return try parser.parseDocument()
    }
}

private struct XMLByteParser {
    let bytes: [UInt8]
    var pos = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ what: String) -> ObjectStoreError {
        ObjectStoreError(.malformedResponse, "malformed XML in response body: \(what) at byte \(pos)")
    }

    mutating func parseDocument() throws(ObjectStoreError) -> XMLElement {
        try skipMisc()
        guard pos < bytes.count, bytes[pos] == UInt8(ascii: "<") else { throw fail("expected a root element") }
        let root = try parseElement(depth: 0)
        try skipMisc()
        guard pos == bytes.count else { throw fail("content after the root element") }
        return root
    }

    /// Skips whitespace, `<?…?>`, comments and DOCTYPE between elements.
    mutating func skipMisc() throws(ObjectStoreError) {
        while pos < bytes.count {
            let c = bytes[pos]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 || c == 0xEF || c == 0xBB || c == 0xBF {
                pos += 1  // whitespace and a UTF-8 byte-order mark
            } else if hasPrefix("<?") {
                try skip(past: "?>")
            } else if hasPrefix("<!--") {
                try skip(past: "-->")
            } else if hasPrefix("<!") {
                try skip(past: ">")
            } else {
                return
            }
        }
    }

    func hasPrefix(_ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        guard pos + n <= bytes.count else { return false }
        let p = s.utf8Start
        for i in 0..<n where bytes[pos + i] != p[i] { return false }
        return true
    }

    mutating func skip(past terminator: StaticString) throws(ObjectStoreError) {
        while pos < bytes.count {
            if hasPrefix(terminator) {
                pos += terminator.utf8CodeUnitCount
                return
            }
            pos += 1
        }
        throw fail("unterminated markup")
    }

    mutating func parseName() throws(ObjectStoreError) -> String {
        let start = pos
        while pos < bytes.count {
            let c = bytes[pos]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 || c == UInt8(ascii: ">") || c == UInt8(ascii: "/") { break }
            pos += 1
        }
        guard pos > start else { throw fail("empty element name") }
        var name = bytes[start..<pos]
        if let colon = name.lastIndex(of: UInt8(ascii: ":")) { name = name[(colon + 1)...] }
        return String(decoding: name, as: UTF8.self)
    }

    mutating func parseElement(depth: Int) throws(ObjectStoreError) -> XMLElement {
        guard depth < 64 else { throw fail("nesting too deep") }
        pos += 1  // '<'
        let name = try parseName()
        // Attributes: skip to the end of the start tag, honouring quotes.
        var quote: UInt8 = 0
        while pos < bytes.count {
            let c = bytes[pos]
            if quote != 0 {
                if c == quote { quote = 0 }
            } else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                quote = c
            } else if c == UInt8(ascii: ">") || c == UInt8(ascii: "/") {
                break
            }
            pos += 1
        }
        guard pos < bytes.count else { throw fail("unterminated start tag <\(name)>") }
        if bytes[pos] == UInt8(ascii: "/") {
            guard pos + 1 < bytes.count, bytes[pos + 1] == UInt8(ascii: ">") else { throw fail("bad empty tag <\(name)/>") }
            pos += 2
            return XMLElement(name: name, text: "", children: [])
        }
        pos += 1  // '>'
        var element = XMLElement(name: name, text: "", children: [])
        var text = [UInt8]()
        while true {
            guard pos < bytes.count else { throw fail("missing </\(name)>") }
            let c = bytes[pos]
            if c != UInt8(ascii: "<") {
                if c == UInt8(ascii: "&") {
                    try parseEntity(into: &text)
                } else {
                    text.append(c)
                    pos += 1
                }
                continue
            }
            if hasPrefix("</") {
                pos += 2
                let closing = try parseName()
                while pos < bytes.count && bytes[pos] != UInt8(ascii: ">") { pos += 1 }
                guard pos < bytes.count, closing == name else { throw fail("</\(closing)> does not close <\(name)>") }
                pos += 1
                element.text = element.children.isEmpty ? String(decoding: text, as: UTF8.self) : ""
                return element
            } else if hasPrefix("<![CDATA[") {
                pos += 9
                let start = pos
                try skip(past: "]]>")
                text += bytes[start..<(pos - 3)]
            } else if hasPrefix("<!--") {
                try skip(past: "-->")
            } else if hasPrefix("<?") {
                try skip(past: "?>")
            } else {
                element.children.append(try parseElement(depth: depth + 1))
            }
        }
    }

    mutating func parseEntity(into out: inout [UInt8]) throws(ObjectStoreError) {
        guard let semi = bytes[pos..<min(bytes.count, pos + 12)].firstIndex(of: UInt8(ascii: ";")) else {
            throw fail("bad entity reference")
        }
        let name = String(decoding: bytes[(pos + 1)..<semi], as: UTF8.self)
        switch name {
        case "amp": out.append(UInt8(ascii: "&"))
        case "lt": out.append(UInt8(ascii: "<"))
        case "gt": out.append(UInt8(ascii: ">"))
        case "quot": out.append(UInt8(ascii: "\""))
        case "apos": out.append(UInt8(ascii: "'"))
        default:
            var scalar: UInt32?
            if name.hasPrefix("#x") || name.hasPrefix("#X") {
                scalar = UInt32(name.dropFirst(2), radix: 16)
            } else if name.hasPrefix("#") {
                scalar = UInt32(name.dropFirst(1), radix: 10)
            }
            guard let value = scalar, let u = Unicode.Scalar(value) else { throw fail("unknown entity &\(name);") }
            out += Array(String(Character(u)).utf8)
        }
        pos = semi + 1
    }
}
