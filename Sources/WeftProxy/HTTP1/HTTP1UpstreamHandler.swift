import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// One HTTP/1.1 connection to an upstream endpoint, serving one request at a time; between
/// requests it waits in its ``UpstreamPool``.
final class HTTP1UpstreamConnection: UpstreamStream {
    let endpoint: ListenAddress
    let channel: any Channel
    let handler: HTTP1UpstreamHandler
    private weak var pool: UpstreamPool?
    let settings: UpstreamConfig
    var wasReused = false
    /// In its pool's idle list, since `idleSince`.
    var isIdle = false
    var idleSince = NIODeadline.now()

    init(endpoint: ListenAddress, channel: any Channel, handler: HTTP1UpstreamHandler, pool: UpstreamPool, settings: UpstreamConfig) {
        self.endpoint = endpoint
        self.channel = channel
        self.handler = handler
        self.pool = pool
        self.settings = settings
        handler.connection = self
    }

    /// The upstream closed the connection while it waited in the pool.
    func closedWhileIdle() {
        pool?.remove(self)
    }

    var delegate: (any UpstreamResponseDelegate)? {
        get { handler.delegate }
        set { handler.delegate = newValue }
    }

    var isWritable: Bool { channel.isWritable }

    func writeHead(_ request: HTTPRequest, framing: HTTP1Framing) {
        guard var head = try? HTTPRequestHead(request) else {
            handler.fail(.error(HTTP1TypeConversionError.missingPath))
            return
        }
        if let upgrade = framing.upgrade {
            head.headers.add(name: "connection", value: "upgrade")
            head.headers.add(name: "upgrade", value: upgrade)
        }
        if framing.chunked && !head.headers.contains(name: "content-length") {
            head.headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
        }
        handler.write(.head(head))
    }

    func writeBody(_ body: ByteBuffer) {
        handler.write(.body(.byteBuffer(body)))
    }

    func writeEnd(_ trailers: HTTPFields?) {
        handler.write(.end(trailers.map(HTTPHeaders.init)))
    }

    func flush() { handler.flush() }
    func pauseReads() { handler.pauseReads() }
    func resumeReads() { handler.resumeReads() }

    func finished(requestComplete: Bool) {
        handler.delegate = nil
        if requestComplete && handler.lastResponseKeepAlive, let pool {
            pool.release(self, settings: settings)
        } else {
            cancel()
        }
    }

    func cancel() {
        handler.delegate = nil
        channel.close(promise: nil)
    }

    /// Leaves only the raw byte stream (after `101 Switching Protocols`).
    func removeHTTPHandlers() throws {
        let pipeline = channel.pipeline.syncOperations
        pipeline.removeHandler(handler, promise: nil)
        for context in [
            try? pipeline.context(handlerType: HTTPRequestEncoder.self),
            try? pipeline.context(handlerType: ByteToMessageHandler<HTTPResponseDecoder>.self),
        ].compactMap({ $0 }) {
            pipeline.removeHandler(context: context, promise: nil)
        }
    }
}

/// The last handler of an upstream HTTP/1.1 connection. It converts responses to the
/// version-free model for the request in flight and withholds reads while the client side
/// cannot take more (backpressure).
final class HTTP1UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var delegate: (any UpstreamResponseDelegate)?
    /// Told when the connection closes while idle in the pool.
    weak var connection: HTTP1UpstreamConnection?
    /// Whether the last final response allows another request on this connection.
    private(set) var lastResponseKeepAlive = true
    private var context: ChannelHandlerContext?
    private var readsPaused = false
    private var readGate = ReadGate()

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let delegate else {
            // Bytes from an idle upstream: it is not speaking HTTP/1.1 correctly; drop the connection.
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard let response = HTTPResponse(http1: head) else {
                fail(.error(HTTP1TypeConversionError.invalidStatusCode))
                return
            }
            if head.status.code >= 200 { lastResponseKeepAlive = head.isKeepAlive }
            delegate.upstreamResponseHead(response)
        case .body(let body):
            delegate.upstreamResponseBody(body)
        case .end(let trailers):
            delegate.upstreamResponseEnd(trailers.map { HTTPFields(http1: $0) })
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if delegate != nil {
            fail(.closed)
        } else {
            connection?.closedWhileIdle()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.error(error))
        context.close(promise: nil)
    }

    /// Reports the failure to the request in flight, once.
    func fail(_ failure: UpstreamFailure) {
        guard let delegate else { return }
        self.delegate = nil
        delegate.upstreamFailed(failure)
        context?.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if readGate.admits(holding: readsPaused) { context.read() }
    }

    func pauseReads() {
        readsPaused = true
    }

    func resumeReads() {
        readsPaused = false
        if readGate.releases() { context?.read() }
    }

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }
}
