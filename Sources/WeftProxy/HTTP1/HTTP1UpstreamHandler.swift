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
    /// Pools live as long as the proxy's event loops.
    private let pool: UpstreamPool
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
        pool.remove(self)
    }

    var delegate: (any UpstreamResponseDelegate)? {
        get { handler.delegate }
        set { handler.delegate = newValue }
    }

    var isWritable: Bool { channel.isWritable }

    func writeHead(_ request: HTTPRequest, framing: HTTP1Framing) {
        guard let target = HTTP1RequestWriter.target(of: request) else {
            handler.fail(.error(HTTP1TypeConversionError.missingPath))
            return
        }
        handler.writeHead(request, target: target, framing: framing)
    }

    func writeBody(_ body: ByteBuffer) {
        handler.writeBody(body)
    }

    func writeEnd(_ trailers: HTTPFields?) {
        handler.writeEnd(trailers)
    }

    func flush() { handler.flush() }
    func pauseReads() { handler.pauseReads() }
    func resumeReads() { handler.resumeReads() }

    func finished(requestComplete: Bool) {
        handler.delegate = nil
        if requestComplete && handler.lastResponseKeepAlive {
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
        if let context = try? pipeline.context(handlerType: ByteToMessageHandler<UpstreamResponseDecoder>.self) {
            pipeline.removeHandler(context: context, promise: nil)
        }
    }
}

/// The last handler of an upstream HTTP/1.1 connection. It writes requests as bytes
/// (``HTTP1RequestWriter``), telling the response decoder what each one was; converts responses
/// to the version-free model for the request in flight; and withholds reads while the client side
/// cannot take more (backpressure).
final class HTTP1UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// The request in flight's exchange (or a ``ResponseDrainer``), until its response ends or
    /// fails or the exchange lets go (`finished`, `cancel`): each of those clears it (strong, as
    /// is ``connection``: see ``Exchange``).
    var delegate: (any UpstreamResponseDelegate)?
    /// Told when the connection closes while idle in the pool; let go when the handler leaves the
    /// pipeline (the connection holds the handler too).
    var connection: HTTP1UpstreamConnection?
    /// Whether the last final response allows another request on this connection.
    private(set) var lastResponseKeepAlive = true
    private var context: ChannelHandlerContext?
    private var readsPaused = false
    private var readGate = ReadGate()
    private var writer = HTTP1RequestWriter()
    /// Bytes were written since the last flush. The exchange flushes after the head, after each
    /// read from the client and at the end of the request; most of those find nothing to send,
    /// and a flush through the pipeline costs ~900 instructions even then.
    private var unflushed = false
    private let responseDecoder: UpstreamResponseDecoder

    init(responseDecoder: UpstreamResponseDecoder) {
        self.responseDecoder = responseDecoder
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        connection = nil
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

    func writeHead(_ request: HTTPRequest, target: String, framing: HTTP1Framing) {
        guard let context else { return }
        responseDecoder.expectResponse(to: request.method)
        writer.writeHead(request, target: target, framing: framing, context: context)
        unflushed = true
    }

    func writeBody(_ body: ByteBuffer) {
        guard let context else { return }
        if writer.writeBody(body, context: context) { unflushed = true }
    }

    func writeEnd(_ trailers: HTTPFields?) {
        guard let context else { return }
        if writer.writeEnd(trailers, context: context) { unflushed = true }
    }

    func flush() {
        guard unflushed else { return }
        unflushed = false
        context?.flush()
    }
}

/// NIO's HTTP/1.1 response decoder, told by the connection which request each response answers.
///
/// The decoder needs a request's method to know whether its response has a body (none for `HEAD`
/// and `CONNECT`). NIO's own arrangement has it watch the requests written through its handler,
/// which makes that handler an outbound one as well: each request part passed through its generic
/// code, unwrapped from `NIOAny` with run-time type lookups, on its way to NIO's encoder. Weft
/// writes requests as bytes instead (``HTTP1RequestWriter``), and the connection's handler calls
/// ``expectResponse(to:)`` as it writes each head.
struct UpstreamResponseDecoder: ByteToMessageDecoder {
    typealias InboundOut = HTTPClientResponsePart

    private let decoder: HTTPResponseDecoder

    init() {
        decoder = HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward)
    }

    /// The decoder reads nothing of a request but its method: one head for each kind of answer.
    private static let headRequest = HTTPRequestHead(version: .http1_1, method: .HEAD, uri: "")
    private static let connectRequest = HTTPRequestHead(version: .http1_1, method: .CONNECT, uri: "")
    private static let otherRequest = HTTPRequestHead(version: .http1_1, method: .GET, uri: "")

    /// Records that the next response answers a request with `method`.
    func expectResponse(to method: HTTPRequest.Method) {
        let head = switch method {
        case .head: Self.headRequest
        case .connect: Self.connectRequest
        default: Self.otherRequest
        }
        decoder.write(data: .head(head))
    }

    func decoderAdded(context: ChannelHandlerContext) {
        decoder.decoderAdded(context: context)
    }

    func decoderRemoved(context: ChannelHandlerContext) {
        decoder.decoderRemoved(context: context)
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        try decoder.decode(context: context, buffer: &buffer)
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decoder.decodeLast(context: context, buffer: &buffer, seenEOF: seenEOF)
    }
}
