/// One HTTP request as the server read it: whole, with its body.
package struct HTTPServerRequest: Sendable {
    package var method: String
    /// The request target: path and query.
    package var uri: String
    /// Header names in lower case.
    package var headers: [String: String]
    package var body: [UInt8]

    package init(method: String, uri: String, headers: [String: String], body: [UInt8]) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
    }

    /// The target without its query.
    package var path: Substring { uri.prefix { $0 != "?" } }
}

/// An answer: status, headers, body, and whether the connection may serve another request.
package struct HTTPReply: Sendable {
    package var status: Int
    package var headers: [(String, String)]
    package var body: [UInt8]
    package var contentType: String
    package var keepAlive: Bool

    package init(status: Int, body: [UInt8], contentType: String, headers: [(String, String)] = [], keepAlive: Bool = false) {
        self.status = status
        self.body = body
        self.contentType = contentType
        self.headers = headers
        self.keepAlive = keepAlive
    }
}

/// What answers the requests of an `HTTPServer`; the server only moves bytes and bounds them.
package protocol HTTPResponder: Sendable {
    /// The largest body accepted; longer ones get `tooLarge` before they are read in full.
    var maxBody: Int { get }
    /// An answer decided from the head alone (a missing token), so that the body is never read; nil to go on.
    func precheck(_ head: HTTPServerRequest) -> HTTPReply?
    /// The answer to a body over `maxBody`.
    func tooLarge(_ detail: String) -> HTTPReply
    /// The answer to a whole request; never throws, every failure is a status.
    func respond(_ request: HTTPServerRequest) async -> HTTPReply
}
