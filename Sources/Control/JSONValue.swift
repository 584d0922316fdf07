import FoundationEssentials

/// A JSON value of any shape, for the control protocol and the object-store event formats, whose fields
/// vary by verb and by sender. Text goes through FoundationEssentials' `JSONEncoder` and `JSONDecoder`.
///
/// Objects keep their fields in the order they are built; the encoder writes keys sorted (its dictionaries
/// do not keep an order), so the text of a value is deterministic.
package indirect enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    package static func == (a: JSONValue, b: JSONValue) -> Bool { a.encoded() == b.encoded() }

    package subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields.first { $0.0 == key }?.1 }
        return nil
    }

    package var number: Double? { if case .number(let n) = self { return n } else { return nil } }
    package var string: String? { if case .string(let s) = self { return s } else { return nil } }
    /// The elements of an array; nil for anything else.
    package var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    package var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }

    /// Compact JSON text, or indented (by the encoder's two spaces) when `indent` is given.
    package func encoded(indent: Int? = nil) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = indent == nil ? [.sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        // Every case encodes (non-finite numbers as null), so this cannot fail.
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    /// Nesting past this is refused before decoding: the decoder recurses once per level, and parses run on
    /// small task stacks with hostile input (the events endpoint).
    static let maxDepth = 64
    /// Text longer than this is refused unread.
    static let maxBytes = 16 << 20

    /// Parses JSON text; nil if it is not valid JSON, nests deeper than `maxDepth` or is over `maxBytes`.
    package static func parse(_ text: String) -> JSONValue? {
        parse(Array(text.utf8))
    }

    /// Parses JSON bytes; nil if they are not valid JSON, nest too deep or are too long.
    package static func parse(_ bytes: [UInt8]) -> JSONValue? {
        guard bytes.count <= maxBytes, depthWithinLimit(bytes) else { return nil }
        return try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    /// Whether brackets outside strings nest at most `maxDepth` deep (the text's validity is the decoder's job).
    static func depthWithinLimit(_ bytes: [UInt8]) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        for b in bytes {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maxDepth { return false }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return true
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    package init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: Key.self) {
            // Sorted: the decoder hands keys over in no particular order.
            self = .object(try object.allKeys.sorted { $0.stringValue < $1.stringValue }.map { ($0.stringValue, try object.decode(JSONValue.self, forKey: $0)) })
            return
        }
        if var array = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !array.isAtEnd { items.append(try array.decode(JSONValue.self)) }
            self = .array(items)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let b = try? single.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? single.decode(Double.self) {
            self = .number(n)
        } else {
            self = .string(try single.decode(String.self))
        }
    }

    package func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .number(let n):
            var c = encoder.singleValueContainer()
            // Counts and sizes print as integers, not 5.0.
            if n.isFinite && n == n.rounded() && abs(n) < 1e15 {
                try c.encode(Int64(n))
            } else if n.isFinite {
                try c.encode(n)
            } else {
                try c.encodeNil()
            }
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .object(let fields):
            var c = encoder.container(keyedBy: Key.self)
            for (k, v) in fields { try c.encode(v, forKey: Key(k)) }
        }
    }
}
