import Logging
import Platform
import Synchronization

/// One request on the control socket: a verb and its arguments (URI-encoded on the wire).
package struct ControlRequest: Sendable {
    package var verb: String
    package var arguments: [String]

    /// Parses `verb arg arg…`; arguments are percent-decoded.
    package init(line: String) {
        let words = line.split(separator: " ").map(String.init)
        verb = words.first ?? ""
        arguments = words.dropFirst().map { URIEncoding.decode($0) ?? $0 }
    }

    /// The line that carries `verb` and `arguments`.
    package static func line(_ verb: String, _ arguments: [String] = []) -> String {
        ([verb] + arguments.map { URIEncoding.encode($0, keepSlash: true) }).joined(separator: " ")
    }
}

/// Dispatches control requests to one handler per verb.
package final class ControlRouter: Sendable {
    package typealias Handler = @Sendable (ControlRequest) -> String

    private struct Routes { var handlers: [String: Handler] = [:] }
    private let routes = Locked(Routes())
    private let logger: Logger

    package init(logger: Logger) { self.logger = logger }

    /// Adds the handler of `verb`.
    package func register(_ verb: String, _ handler: @escaping Handler) {
        routes.withLock { $0.handlers[verb] = handler }
    }

    /// Answers one request line: the handler's answer, or an error naming the verbs there are.
    package func handle(_ line: String) -> String {
        let request = ControlRequest(line: line)
        guard let handler = routes.withLock({ $0.handlers[request.verb] }) else {
            let verbs = routes.withLock { $0.handlers.keys.sorted() }.joined(separator: ", ")
            return JSONValue.object([("error", .string("unknown command '\(request.verb)'; the daemon answers \(verbs)"))]).encoded()
        }
        let answer = handler(request)
        // status and pending are polled every few seconds: not worth a log line each.
        if !["status", "pending", "retry"].contains(request.verb) {
            let failed = JSONValue.parse(answer)?["error"]?.string
            logger.info("control request", metadata: ["verb": "\(request.verb)", "outcome": "\(failed ?? "ok")"])
        }
        return answer
    }
}
