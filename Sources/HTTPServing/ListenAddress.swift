import Platform

/// Where an endpoint listens: `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (host 127.0.0.1).
package struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses the option's text; the error names the text and shows the form.
    package static func parse(_ text: String, option: String = "--events-address") throws(SystemError) -> ListenAddress {
        func bad(_ why: String) -> SystemError {
            SystemError("invalid \(option) '\(text)': \(why); expected HOST:PORT, e.g. 127.0.0.1:8089 (or :8089 for 127.0.0.1)")
        }
        var host = "127.0.0.1"
        var portText = Substring(text)
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw bad("an IPv6 address needs its closing ']'") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw bad("no port after the IPv6 address") }
            portText = rest.dropFirst()
            guard host.contains(":") else { throw bad("'\(host)' is not an IPv6 address") }
        } else if let colon = text.lastIndex(of: ":") {
            let h = text[..<colon]
            guard !h.contains(":") else { throw bad("write an IPv6 address in brackets, [::1]:8089") }
            if !h.isEmpty { host = String(h) }
            portText = text[text.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port) else { throw bad("the port must be a number from 0 to 65535") }
        guard host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "/") }), !host.isEmpty else { throw bad("'\(host)' is not a host name or address") }
        return ListenAddress(host: host, port: port)
    }

    package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether it listens beyond this machine (anything but a loopback address).
    package var isLoopback: Bool {
        host == "localhost" || host == "::1" || (host.hasPrefix("127.") && host.utf8.allSatisfy { $0 == UInt8(ascii: ".") || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) })
    }
}
