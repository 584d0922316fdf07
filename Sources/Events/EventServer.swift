import NIOCore
import NIOHTTP1
import NIOPosix
import Platform
import Synchronization

/// The HTTP side of the events endpoint, on SwiftNIO's HTTP/1 server pipeline (llhttp parsing, bounded
/// headers, pipelining handled). One event-loop thread: events are few and small; what they cause runs on
/// the daemon's tasks.
package final class EventServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    /// The port it listens on (the one asked for, or the kernel's pick for port 0).
    package let port: Int

    /// Connections served at once; more are closed on accept.
    static let maxConnections = 128
    /// A connection that sends nothing for this long is closed (a slow client cannot hold one forever).
    static let idleTimeout = TimeAmount.seconds(30)

    private init(group: MultiThreadedEventLoopGroup, channel: any Channel, port: Int) {
        self.group = group
        self.channel = channel
        self.port = port
    }

    /// Listens on `address` and answers with `endpoint`.
    package static func start(_ address: EventAddress, endpoint: EventEndpoint) async throws(SystemError) -> EventServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let open = ConnectionCount()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try sync.addHandler(EventHTTPHandler(endpoint: endpoint, open: open))
                }
            }
            .childChannelOption(.maxMessagesPerRead, value: 8)
        do {
            let channel = try await bootstrap.bind(host: address.host, port: address.port).get()
            return EventServer(group: group, channel: channel, port: channel.localAddress?.port ?? address.port)
        } catch {
            try? await group.shutdownGracefully()
            throw SystemError("cannot listen for events on \(address): \(error); pick a free port with --events-address HOST:PORT")
        }
    }

    /// Stops listening and closes open connections.
    package func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// Collects one request (head, body within `EventParser.maxBody`), hands it to the endpoint off the event
/// loop, and writes the reply.
final class EventHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let endpoint: EventEndpoint
    private let open: ConnectionCount
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// A reply decided before the body ended (too large); the rest of the body is discarded.
    private var early = false
    private var inFlight = false

    init(endpoint: EventEndpoint, open: ConnectionCount) {
        self.endpoint = endpoint
        self.open = open
    }

    func channelActive(context: ChannelHandlerContext) {
        if open.add(1) > EventServer.maxConnections {
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        _ = open.add(-1)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, !inFlight {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
            early = false
            if let length = h.headers.first(name: "content-length").flatMap(Int.init), length > EventParser.maxBody {
                early = true
                reply(context, h, endpoint.refuse(EventRejection(413, "too_large", "the body is \(length) bytes; at most \(EventParser.maxBody) are accepted")), close: true)
            }
        case .body(var chunk):
            guard !early, let h = head else { return }
            if body.count + chunk.readableBytes > EventParser.maxBody {
                early = true
                body = []
                reply(context, h, endpoint.refuse(EventRejection(413, "too_large", "the body is over \(EventParser.maxBody) bytes")), close: true)
                return
            }
            body += chunk.readBytes(length: chunk.readableBytes) ?? []
        case .end:
            guard !early, let h = head else { return }
            head = nil
            var headers: [String: String] = [:]
            for (name, value) in h.headers { headers[name.lowercased()] = value }
            let request = EventRequest(method: h.method.rawValue, uri: h.uri, headers: headers, body: body)
            body = []
            inFlight = true
            let endpoint = self.endpoint
            let promise = context.eventLoop.makePromise(of: EventReply.self)
            promise.completeWithTask { await endpoint.handle(request) }
            promise.futureResult.assumeIsolated().whenSuccess { [self] answer in
                inFlight = false
                reply(context, h, answer, close: !h.isKeepAlive)
            }
        }
    }

    private func reply(_ context: ChannelHandlerContext, _ h: HTTPRequestHead, _ answer: EventReply, close: Bool) {
        let bytes = Array(answer.body.utf8)
        var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", "\(bytes.count)")])
        for (name, value) in answer.headers { headers.add(name: name, value: value) }
        if close { headers.add(name: "Connection", value: "close") }
        let status = HTTPResponseStatus(statusCode: answer.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: status, headers: headers))), promise: nil)
        if h.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

/// The connections one server has open, shared by their handlers.
final class ConnectionCount: Sendable {
    private let n = Atomic<Int>(0)

    /// Adds `delta`; the count after.
    func add(_ delta: Int) -> Int { n.wrappingAdd(delta, ordering: .relaxed).newValue }
}
