import FoundationEssentials
import Platform
import Synchronization

/// Blocking HTTP for credential sources (STS, instance metadata, the container endpoint).
///
/// These calls are rare (at mount and once per credential lifetime), so they share one transport per CA
/// bundle and block the calling thread, which is the mount's startup or a provider's refresh thread.
enum CredentialHTTP {
    private static let transports = Locked<[String: CurlTransport]>([:])

    /// Sends `request` up to `attempts` times until an answer arrives; when none does, throws the
    /// configuration error `unreachable` makes of the last transport failure's message.
    static func send(
        _ request: HTTPRequest, caBundle: String?, attempts: Int = 1, unreachable: (String) -> String
    ) throws(ObjectStoreError) -> HTTPResponse {
        var last = ""
        for _ in 0..<max(1, attempts) {
            switch fetch(request, caBundle: caBundle) {
            case .success(let r): return r
            case .failure(let f): last = S3Client.error(from: f).message
            }
        }
        throw .configuration(unreachable(last))
    }

    /// Sends `request` once and waits for the answer.
    private static func fetch(_ request: HTTPRequest, caBundle: String?) -> Result<HTTPResponse, TransportFailure> {
        let transport = transports.withLock { all -> CurlTransport in
            if let t = all[caBundle ?? ""] { return t }
            var options = TransportOptions()
            options.caBundle = caBundle
            options.maxConcurrentTransfers = 4
            options.receiveBufferBytes = 64 << 10
            options.sendBufferBytes = 64 << 10
            let t = CurlTransport(options: options)
            all[caBundle ?? ""] = t
            return t
        }
        let box = ResultBox<Result<HTTPResponse, TransportFailure>>()
        transport.submit(request, sink: .collect(limit: 1 << 20)) { box.set($0) }
        return box.get()
    }

    /// Decodes a JSON credentials document; the error names `source` and never quotes the body.
    static func decode(_ body: [UInt8], source: String) throws(ObjectStoreError) -> CredentialDocument {
        do {
            return try JSONDecoder().decode(CredentialDocument.self, from: Data(body))
        } catch {
            throw .configuration("\(source) answered with a body that is not a JSON credentials document (\(body.count) bytes)")
        }
    }

    /// The first line of an error body, cut short, for messages (credential endpoints put the reason there).
    static func reason(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(300), as: UTF8.self)
        let line = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).first.map(String.init) ?? ""
        return line.trimmingWhitespace()
    }
}
