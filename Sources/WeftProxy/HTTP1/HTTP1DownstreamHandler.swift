import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import WeftFilter
import WeftRegex

/// The last handler of every client HTTP/1.1 connection, inbound or outbound.
///
/// One request is in flight at a time, driven by an ``Exchange``. This handler adapts HTTP/1.1 to
/// the exchange's version-free model: it converts heads, owns keep-alive and framing decisions,
/// and withholds reads while the exchange says so. Pipelined requests (sent before the previous
/// response) are queued and served in order; reading stops only while some are queued, so the
/// usual request-response-request flow never toggles the socket's read interest (two `epoll_ctl`
/// calls per request with NIO's pipelining handler, which withholds reads during every response).
///
/// It also answers requests NIO's decoder rejects and closes idle connections itself: two
/// handlers fewer for every request and response part to pass through.
final class HTTP1DownstreamHandler: ChannelDuplexHandler, RemovableChannelHandler, Downstream, IdleWatched {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    let listener: ListenerContext
    let scratch = MatchScratch()
    private(set) var context: ChannelHandlerContext?
    private var exchange: Exchange?
    private var readGate = ReadGate()
    private var responseWriter = HTTP1ResponseWriter()

    // The request in flight, as HTTP/1.1 saw it.
    private var clientVersion = HTTPVersion.http1_1
    private var clientKeepAlive = true
    private var upgradeRequested = false
    private var headRequest = false
    /// The request in flight declared a body (content-length > 0, or chunked).
    private var requestHasBody = false
    private var keepAlive = true
    /// The client half-closed: finish the request in flight, if any, then close.
    private var clientInputClosed = false
    /// The server is draining: finish the request in flight, if any, then close.
    private var quiescing = false
    /// Whether the exchange in flight has received its whole request.
    private var inFlightRequestEnded = false
    /// Parts of requests that arrived while an earlier one was still being answered, in order.
    private var pipelined = CircularBuffer<HTTPServerRequestPart>()
    /// Cached once: `ChannelHandlerContext.remoteAddress` is a `getpeername` call each time.
    private(set) var remoteAddress: SocketAddress?
    /// A `CONNECT` request's `host:port`, until its end turns the connection into a tunnel.
    private var connectTarget: ListenAddress?
    /// The decoder rejected a request: it was answered (or the connection closed) once.
    private var rejectedMalformedRequest = false

    /// Nothing read or written for the idle timeout: close, unless a request is in flight (a slow
    /// upstream is the route timeout's business, not this one's).
    private let idleTimer: IdleTimer

    init(listener: ListenerContext) {
        self.listener = listener
        idleTimer = IdleTimer(timeout: listener.store.current.config.downstream.idleTimeout.timeAmount)
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        remoteAddress = context.channel.remoteAddress
        idleTimer.start(on: context.eventLoop, watching: self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer.cancel()
        self.context = nil
    }

    // MARK: Client → proxy

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if !pipelined.isEmpty || (exchange != nil && inFlightRequestEnded) {
            pipelined.append(part)
            return
        }
        handle(part, context: context)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head) where head.method == .CONNECT:
            guard exchange == nil, listener.direction == .outbound, let target = ListenAddress(parsing: head.uri) else {
                respondDirectly(listener.direction == .outbound ? .badRequest : .methodNotAllowed,
                                listener.direction == .outbound ? "CONNECT needs host:port" : "CONNECT is for the outbound listener")
                return
            }
            connectTarget = target
        case .end where connectTarget != nil:
            tunnel(to: connectTarget!)
        case .head(let head):
            guard exchange == nil else {
                listener.logger.error("request head arrived while another request was in flight; closing")
                context.close(promise: nil)
                return
            }
            inFlightRequestEnded = false
            clientVersion = head.version
            clientKeepAlive = head.isKeepAlive
            headRequest = head.method == .HEAD
            // Only a request that names an upgrade pays for tokenizing `Connection`.
            let upgrade = head.headers.first(name: "upgrade")
            upgradeRequested = upgrade != nil
                && head.headers[canonicalForm: "connection"].contains { $0.caseInsensitiveEquals("upgrade") }
            let chunked = head.headers.first(name: "transfer-encoding").map { $0.utf8.count >= 7 && $0.lowercased().hasSuffix("chunked") } ?? false
            requestHasBody = chunked || (head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0) > 0
            guard let request = Self.makeRequest(head) else {
                respondDirectly(.badRequest, "malformed request: unsupported method or request target")
                return
            }
            let exchange = Exchange(downstream: self, request: request,
                                    framing: HTTP1Framing(upgrade: upgradeRequested ? upgrade : nil, chunked: chunked),
                                    protocolVersion: .http1, eventLoop: context.eventLoop)
            self.exchange = exchange
            exchange.start()
        case .body(let body):
            exchange?.requestBody(body)
        case .end(let trailers):
            inFlightRequestEnded = true
            exchange?.requestEnd(trailers.map { HTTPFields(http1: $0) })
        }
    }

    /// Serves queued pipelined parts until one starts a request that is not over yet.
    private func drainPipelined() {
        guard let context else { return }
        var handled = false
        while !pipelined.isEmpty, exchange == nil || !inFlightRequestEnded {
            handle(pipelined.removeFirst(), context: context)
            handled = true
        }
        if handled { exchange?.flushUpstream() }
        resumeReadsIfPossible()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        idleTimer.lastActivity = .now()
        exchange?.flushUpstream()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Draining: an idle connection closes now; one with a request in flight after its response.
            quiescing = true
            if exchange == nil { context.close(promise: nil) }
            return
        }
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // The client sent its last byte (listeners allow half-closure for opaque TCP). An idle
        // connection closes now; a request in flight still gets its response first.
        clientInputClosed = true
        if exchange == nil && pipelined.isEmpty { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange {
            self.exchange = nil
            exchange.abort("client closed the connection")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parseError = error as? HTTPParserError {
            rejectMalformedRequest(parseError, context: context)
            return
        }
        if let exchange {
            self.exchange = nil
            exchange.abort("client connection failed: \(error)")
        }
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            exchange?.clientBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if readGate.admits(holding: exchange?.holdsClientReads == true || !pipelined.isEmpty) { context.read() }
    }

    // MARK: Proxy → client (Downstream)

    func resumeReadsIfPossible() {
        guard exchange?.holdsClientReads != true, pipelined.isEmpty else { return }
        if readGate.releases() { context?.read() }
    }

    func writeResponseHead(_ response: HTTPResponse, for exchange: Exchange) {
        guard let context else { return }
        // A half-closed client's answer is watched by the idle timer (see `isBusy`): writing is activity.
        if clientInputClosed { idleTimer.lastActivity = .now() }
        // A request that asked to upgrade stopped the HTTP decoder: without 101 the connection cannot go on.
        let allowed = clientKeepAlive && !upgradeRequested && !quiescing
        let staysOpen = responseWriter.writeHead(response, http10: clientVersion.minor == 0, keepAlive: allowed,
                                                 toHEAD: headRequest, context: context)
        if response.status.kind != .informational { keepAlive = staysOpen }
    }

    func writeResponseBody(_ body: ByteBuffer) {
        guard let context else { return }
        if clientInputClosed { idleTimer.lastActivity = .now() }
        responseWriter.writeBody(body, context: context)
    }

    func flush() {
        context?.flush()
    }

    /// Writes the end of the response; the connection serves another request only if both sides
    /// wanted keep-alive and the whole request was read.
    func finishResponse(_ trailers: HTTPFields?, for finished: Exchange) {
        guard let context else { return }
        if exchange === finished { exchange = nil }
        // A client that half-closed after pipelining still gets every queued answer.
        // An answer given before a body-less request's end arrived (a filter's, a fast failure)
        // keeps the connection: nothing of that request is left to read but its end.
        let requestDone = finished.requestEnded || !requestHasBody
        idleTimer.lastActivity = .now()
        if keepAlive && requestDone && !(clientInputClosed && pipelined.isEmpty) && !quiescing {
            responseWriter.writeEnd(trailers, context: context, promise: nil)
            drainPipelined()
        } else {
            pipelined.removeAll()
            responseWriter.writeEndAndClose(trailers, context: context)
        }
    }

    func abort(for finished: Exchange) {
        if exchange === finished { exchange = nil }
        context?.close(promise: nil)
    }

    /// NIO's decoder rejected what the client sent: answer 400 (431 for an oversized head) unless
    /// a response is already under way, then close; the listener keeps serving other connections.
    private func rejectMalformedRequest(_ error: HTTPParserError, context: ChannelHandlerContext) {
        guard !rejectedMalformedRequest else { return }
        rejectedMalformedRequest = true
        let (status, message) = HTTP1ErrorAnswer.describe(error)
        listener.logger.debug("rejected a malformed request", metadata: [
            "peer": "\(remoteAddress.map { "\($0)" } ?? "?")", "status": "\(status.code)", "error": "\(message)",
        ])
        let answerable = exchange?.responseStarted != true
        if let exchange {
            self.exchange = nil
            exchange.abort("the client sent a malformed request: \(message)")
        }
        pipelined.removeAll()
        if answerable {
            HTTP1ErrorAnswer.sendAndClose(status, message, context: context)
        } else {
            context.close(promise: nil)
        }
    }

    /// Answers without an exchange (the request could not even be converted), then closes.
    private func respondDirectly(_ status: HTTPResponse.Status, _ message: String) {
        guard let context else { return }
        HTTP1ErrorAnswer.sendAndClose(status, message, context: context)
    }

    /// After `101 Switching Protocols`: drop HTTP from both connections and relay bytes.
    func switchProtocols(to upstream: HTTP1UpstreamConnection) {
        guard let context, context.channel.isActive, upstream.channel.isActive else {
            context?.close(promise: nil)
            upstream.cancel()
            return
        }
        exchange = nil
        let (clientSide, upstreamSide) = RelayHandler.pair()
        do {
            let client = context.pipeline.syncOperations
            try client.addHandler(clientSide)
            try upstream.channel.pipeline.syncOperations.addHandler(upstreamSide)
            // The decoders go last, so bytes they already buffered flow into the relay.
            Self.removeHTTP(from: client, context: context)
            try upstream.removeHTTPHandlers()
            context.channel.read()
            upstream.channel.read()
        } catch {
            listener.logger.warning("could not switch the connection to the upgraded protocol", metadata: ["error": "\(error)"])
            upstream.cancel()
            context.close(promise: nil)
        }
    }

    /// `CONNECT host:port` answered: drop HTTP and detect again what flows through the tunnel.
    /// HTTP inside is proxied request by request as usual (routed by its own Host, with metrics
    /// and tap); anything else is relayed to the CONNECT target (a backend name or host:port).
    private func tunnel(to target: ListenAddress) {
        guard let context else { return }
        connectTarget = nil
        do {
            let client = context.pipeline.syncOperations
            // A 2xx answer to CONNECT has no body framing.
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer(string: "HTTP/1.1 200 Connection established\r\n\r\n"))), promise: nil)
            try client.addHandler(ProtocolDetectHandler(listener: listener, tunnelTarget: target))
            Self.removeHTTP(from: client, context: context)
        } catch {
            listener.logger.warning("could not open a CONNECT tunnel", metadata: ["target": "\(target)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    /// Takes this handler (and its idle timer: what follows is a relay or a new pipeline with its
    /// own) and NIO's HTTP/1.1 decoder out of the client pipeline.
    private static func removeHTTP(from client: ChannelPipeline.SynchronousOperations, context: ChannelHandlerContext) {
        client.removeHandler(context: context, promise: nil)
        if let decoder = try? client.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self) {
            client.removeHandler(context: decoder, promise: nil)
        }
    }

    // MARK: Idle (IdleWatched)

    /// A request in flight keeps the connection open however long its upstream takes, unless the
    /// client half-closed: a FIN cannot be told from a client that left (curl giving up, a closed
    /// browser tab), so such a request waits for its answer only while something is read or
    /// written within the idle timeout.
    var isBusy: Bool { (exchange != nil || !pipelined.isEmpty) && !clientInputClosed }

    func becameIdle() {
        if let exchange {
            self.exchange = nil
            listener.logger.info("gave up on a request whose client half-closed: nothing read or written for the idle timeout", metadata: [
                "peer": "\(remoteAddress.map { "\($0)" } ?? "?")", "path": "\(exchange.context.request?.path ?? "")",
                "idleTimeout": "\(idleTimer.timeout)",
            ])
            exchange.abort("the client half-closed and nothing was read or written for the idle timeout")
        }
        pipelined.removeAll()
        context?.close(promise: nil)
    }

    // MARK: Conversion

    /// The request in swift-http-types' model. Origin-form targets (`/path?q`) stay as they are;
    /// absolute-form (`http://host/path`) is split into authority and path.
    static func makeRequest(_ head: HTTPRequestHead) -> HTTPRequest? {
        guard let method = try? HTTPRequest.Method(head.method) else { return nil }
        let (fields, host) = HTTPFields.http1Request(head.headers)
        var authority = host
        var path = head.uri
        var scheme = "http"
        if !head.uri.hasPrefix("/") && head.uri != "*" {
            guard let schemeEnd = head.uri.range(of: "://") else { return nil }
            scheme = String(head.uri[..<schemeEnd.lowerBound]).lowercased()
            let rest = head.uri[schemeEnd.upperBound...]
            let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            authority = String(rest[..<slash])
            path = slash == rest.endIndex ? "/" : String(rest[slash...])
            if path.hasPrefix("?") { path = "/" + path }
        }
        return HTTPRequest(method: method, scheme: scheme, authority: authority, path: path,
                           headerFields: fields)
    }
}
