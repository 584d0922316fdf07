import NIOCore
import NIOHTTP1
import NIOPosix
import Platform
import Synchronization

/// An HTTP/1 server for the daemon's endpoints (object-store events, Prometheus metrics), on SwiftNIO's
/// server pipeline (llhttp parsing, bounded headers, pipelining handled). One event-loop thread: requests
/// are few and small; what they cause runs on the daemon's tasks.
package final class HTTPServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let open: ConnectionCount
    /// The port it listens on (the one asked for, or the kernel's pick for port 0).
    package let port: Int

    /// Connections served at once; more are closed on accept.
    static let maxConnections = 128
    /// A connection that sends nothing for this long is closed, and a request must arrive whole within it
    /// (a slow client cannot hold a connection forever).
    static let idleTimeout = TimeAmount.seconds(30)

    private init(group: MultiThreadedEventLoopGroup, channel: any Channel, port: Int, open: ConnectionCount) {
        self.group = group
        self.channel = channel
        self.port = port
        self.open = open
    }

    /// Listens on `address` and answers with `responder`; `what` and `option` name it in a bind failure.
    package static func start(_ address: ListenAddress, responder: any HTTPResponder, what: String, option: String) async throws(SystemError) -> HTTPServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let open = ConnectionCount()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    // Stops reading while replies wait to be written: a client that never reads cannot make
                    // them pile up.
                    try sync.addHandler(BackPressureHandler())
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try sync.addHandler(HTTPRequestHandler(responder: responder, open: open))
                }
            }
            .childChannelOption(.maxMessagesPerRead, value: 8)
        do {
            let channel = try await bootstrap.bind(host: address.host, port: address.port).get()
            return HTTPServer(group: group, channel: channel, port: channel.localAddress?.port ?? address.port, open: open)
        } catch {
            try? await group.shutdownGracefully()
            throw SystemError("cannot listen for \(what) on \(address): \(error); pick a free port with \(option) HOST:PORT")
        }
    }

    /// Stops listening, gives requests being handled up to 5 s to be answered, then closes every connection.
    package func stop() async {
        try? await channel.close()
        for _ in 0..<100 where open.requests > 0 { try? await Task.sleep(nanoseconds: 50_000_000) }
        try? await group.shutdownGracefully()
    }
}

/// Collects one request (head, body within the responder's `maxBody`), hands it to the responder off the
/// event loop, and writes the reply.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: any HTTPResponder
    private let open: ConnectionCount
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// A reply decided before the body ended (too large); the rest of the body is discarded.
    private var early = false
    private var inFlight = false
    /// Closes the connection if the request being read does not end in time.
    private var deadline: Scheduled<Void>?

    init(responder: any HTTPResponder, open: ConnectionCount) {
        self.responder = responder
        self.open = open
    }

    func channelActive(context: ChannelHandlerContext) {
        if open.add(1) > HTTPServer.maxConnections {
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
            deadline?.cancel()
            deadline = context.eventLoop.assumeIsolated().scheduleTask(in: HTTPServer.idleTimeout) { [self] in
                if head != nil { context.close(promise: nil) }
            }
            // A token is checked before the body is read: without it a client cannot hold the connection.
            if let answer = responder.precheck(Self.request(h, body: [])) {
                early = true
                reply(context, h, answer, close: true)
                return
            }
            if let length = h.headers.first(name: "content-length").flatMap(Int.init), length > responder.maxBody {
                early = true
                reply(context, h, responder.tooLarge("the body is \(length) bytes; at most \(responder.maxBody) are accepted"), close: true)
            }
        case .body(var chunk):
            guard !early, let h = head else { return }
            if body.count + chunk.readableBytes > responder.maxBody {
                early = true
                body = []
                reply(context, h, responder.tooLarge("the body is over \(responder.maxBody) bytes"), close: true)
                return
            }
            body += chunk.readBytes(length: chunk.readableBytes) ?? []
        case .end:
            deadline?.cancel()
            deadline = nil
            guard !early, let h = head else { return }
            head = nil
            let request = Self.request(h, body: body)
            body = []
            inFlight = true
            let responder = self.responder
            let open = self.open
            _ = open.addRequest(1)
            let promise = context.eventLoop.makePromise(of: HTTPReply.self)
            promise.completeWithTask {
                defer { _ = open.addRequest(-1) }
                return await responder.respond(request)
            }
            promise.futureResult.assumeIsolated().whenSuccess { [self] answer in
                inFlight = false
                // The responder says which answers keep the connection (event POSTs, scrapes); a probe or a
                // stray request gets its answer and the door.
                reply(context, h, answer, close: !h.isKeepAlive || !answer.keepAlive)
            }
        }
    }

    static func request(_ h: HTTPRequestHead, body: [UInt8]) -> HTTPServerRequest {
        var headers: [String: String] = [:]
        for (name, value) in h.headers { headers[name.lowercased()] = value }
        return HTTPServerRequest(method: h.method.rawValue, uri: h.uri, headers: headers, body: body)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    private func reply(_ context: ChannelHandlerContext, _ h: HTTPRequestHead, _ answer: HTTPReply, close: Bool) {
        let bytes = answer.body
        var headers = HTTPHeaders([("Content-Type", answer.contentType), ("Content-Length", "\(bytes.count)")])
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
    private let handling = Atomic<Int>(0)

    /// Adds `delta` to the open connections; the count after.
    func add(_ delta: Int) -> Int { n.wrappingAdd(delta, ordering: .relaxed).newValue }

    /// Adds `delta` to the requests being handled; the count after.
    func addRequest(_ delta: Int) -> Int { handling.wrappingAdd(delta, ordering: .relaxed).newValue }

    var requests: Int { handling.load(ordering: .relaxed) }
}
