import ExtrasBase64
import Control
import HTTPServing
import Logging
import Platform
import Synchronization

/// One HTTP request to the events endpoint, as the server read it.
package typealias EventRequest = HTTPServerRequest

/// The answer: a status, extra headers, and a JSON body.
package struct EventReply: Sendable, Equatable {
    package var status: Int
    package var headers: [(String, String)] = []
    package var body: String

    package init(_ status: Int, _ body: JSONValue, headers: [(String, String)] = []) {
        self.status = status
        self.headers = headers
        self.body = body.encoded()
    }

    static func refusal(_ r: EventRejection) -> EventReply {
        var reply = EventReply(r.status, .object([("error", .string(r.counter)), ("reason", .string(r.reason))]))
        if r.status == 401 { reply.headers = [("WWW-Authenticate", "Basic realm=\"lakecache events\"")] }
        if r.status == 405 { reply.headers = [("Allow", "POST, HEAD, GET")] }
        if r.status == 503 { reply.headers = [("Retry-After", "5")] }
        return reply
    }

    package static func == (a: EventReply, b: EventReply) -> Bool {
        a.status == b.status && a.body == b.body && a.headers.elementsEqual(b.headers) { $0 == $1 }
    }

    /// The reply as the server sends it; only accepted POSTs keep their connection.
    func http(keepAlive: Bool) -> HTTPReply {
        HTTPReply(status: status, body: Array(body.utf8), contentType: "application/json", headers: headers, keepAlive: keepAlive)
    }
}

extension EventEndpoint: HTTPResponder {
    package var maxBody: Int { EventParser.maxBody }

    package func precheck(_ head: HTTPServerRequest) -> HTTPReply? {
        head.method == "POST" && !authorized(head) ? refuse(.unauthorized).http(keepAlive: false) : nil
    }

    package func tooLarge(_ detail: String) -> HTTPReply {
        refuse(EventRejection(413, "too_large", detail)).http(keepAlive: false)
    }

    package func respond(_ request: HTTPServerRequest) async -> HTTPReply {
        await handle(request).http(keepAlive: request.method == "POST")
    }
}

/// What the events endpoint does with a request, apart from HTTP framing: authenticate, parse, verify an
/// SNS signature, hand the events to the service, and say what happened. The server only moves bytes.
package final class EventEndpoint: Sendable {
    private let service: EventService
    private let token: [UInt8]
    private let logger: Logger
    private let warnedUnverified = Atomic<Bool>(false)

    /// `token` is the shared secret every POST carries (Bearer, Basic password, or `?token=`).
    package init(service: EventService, token: String, logger: Logger) {
        self.service = service
        self.token = Array(token.utf8)
        self.logger = logger
    }

    /// Handles one request; never throws: every failure is a status and a reason.
    package func handle(_ r: EventRequest) async -> EventReply {
        switch r.method {
        case "HEAD", "GET":
            // MinIO probes its webhook target with a HEAD before it sends events.
            return EventReply(200, .object([("service", .string("lakecache events"))]))
        case "POST":
            break
        default:
            return refuse(EventRejection(405, "method", "\(r.method) is not served here: POST events to this endpoint"))
        }
        guard authorized(r) else {
            return refuse(.unauthorized)
        }
        let message: EventMessage
        do { message = try EventParser.parse(r.body, snsType: r.headers["x-amz-sns-message-type"]) } catch { return refuse(error) }
        switch message {
        case .test:
            service.counters.add("test_events")
            logger.info("events: s3:TestEvent received; the notification configuration reaches this mount")
            return EventReply(200, .object([("accepted", .number(0)), ("test", .bool(true))]))
        case .records(let events):
            return await accept(events)
        case .sns(let envelope):
            return await sns(envelope)
        }
    }

    /// Counts and logs a refusal; the reply that says it.
    func refuse(_ r: EventRejection) -> EventReply {
        service.counters.refused(r)
        if r.status == 401 || r.status == 403 {
            logger.warning("events: request refused", metadata: ["status": "\(r.status)", "reason": "\(r.reason)"])
        } else {
            logger.info("events: request refused", metadata: ["status": "\(r.status)", "reason": "\(r.reason)"])
        }
        return .refusal(r)
    }

    private func accept(_ events: [ObjectEvent]) async -> EventReply {
        do {
            let a = try await service.accept(events)
            return EventReply(200, .object([
                ("accepted", .number(Double(a.accepted))), ("duplicates", .number(Double(a.duplicates))),
                ("stale", .number(Double(a.stale))), ("outside", .number(Double(a.outside))),
            ]))
        } catch {
            return refuse(error)
        }
    }

    private func sns(_ e: SNSEnvelope) async -> EventReply {
        switch await service.verifier.verify(e) {
        case .verified:
            break
        case .invalid(let why):
            return refuse(EventRejection(403, "bad_signature", "SNS message \(e.messageID) refused: \(why)"))
        case .unverifiable(let why):
            if service.verifier.mode == .required {
                // A 5xx: SNS retries, and the certificate may be reachable by then.
                return refuse(EventRejection(502, "unverifiable", "\(why); the message was not accepted (--events-sns-verify=required). Allow HTTPS to sns.REGION.amazonaws.com, or use --events-sns-verify=when-reachable"))
            }
            service.counters.add("unverified")
            if !warnedUnverified.exchange(true, ordering: .relaxed) {
                logger.warning("events: SNS signatures cannot be checked here; accepting on the token alone (--events-sns-verify=when-reachable)", metadata: ["why": "\(why)"])
            }
        }
        switch e.type {
        case "SubscriptionConfirmation":
            service.counters.add("sns_subscriptions")
            logger.notice("events: SNS subscription confirmation", metadata: ["topic": "\(e.topicARN)", "subscribe_url": "\(e.subscribeURL ?? "")"])
            switch await service.verifier.confirm(e) {
            case .success:
                logger.notice("events: SNS subscription confirmed", metadata: ["topic": "\(e.topicARN)"])
                return EventReply(200, .object([("confirmed", .bool(true))]))
            case .failure(let why):
                logger.warning("events: could not confirm the SNS subscription; open its SubscribeURL (logged above) to confirm it", metadata: ["topic": "\(e.topicARN)", "why": "\(why.message)"])
                return EventReply(200, .object([("confirmed", .bool(false)), ("reason", .string(why.message))]))
            }
        case "UnsubscribeConfirmation":
            logger.notice("events: SNS unsubscribed this endpoint", metadata: ["topic": "\(e.topicARN)"])
            return EventReply(200, .object([("unsubscribed", .bool(true))]))
        default:
            guard let inner = JSONValue.parse(e.message) else {
                return refuse(EventRejection(400, "malformed", "SNS message \(e.messageID): its Message is not JSON (is raw message delivery on, or is the topic fed by something other than S3?)"))
            }
            let message: EventMessage
            do { message = try EventParser.s3Message(inner) } catch { return refuse(error) }
            switch message {
            case .records(var events):
                for i in events.indices { events[i].source = .sns }
                return await accept(events)
            default:
                service.counters.add("test_events")
                logger.info("events: s3:TestEvent received through SNS", metadata: ["topic": "\(e.topicARN)"])
                return EventReply(200, .object([("accepted", .number(0)), ("test", .bool(true))]))
            }
        }
    }

    /// Whether the request carries the token, compared in constant time.
    package func authorized(_ r: EventRequest) -> Bool {
        var offered: [[UInt8]] = []
        if let auth = r.headers["authorization"] {
            let parts = auth.split(separator: " ", maxSplits: 1).map(String.init)
            if parts.count == 2 {
                switch parts[0].lowercased() {
                case "bearer":
                    offered.append(Array(parts[1].utf8))
                case "basic":
                    if let decoded = try? Base64.decode(string: String(parts[1])), let colon = decoded.firstIndex(of: UInt8(ascii: ":")) {
                        offered.append(Array(decoded[(colon + 1)...]))
                    }
                default:
                    break
                }
            }
        }
        if let q = r.uri.firstIndex(of: "?") {
            for pair in r.uri[r.uri.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0] == "token", let v = URIEncoding.decode(String(kv[1])) { offered.append(Array(v.utf8)) }
            }
        }
        return offered.contains { Self.constantTimeEqual($0, token) }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count, !b.isEmpty else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
