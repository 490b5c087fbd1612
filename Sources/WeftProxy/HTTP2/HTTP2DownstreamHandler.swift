import HTTPTypes
import NIOCore
import NIOHTTP2
import NIOHPACK
import WeftRegex

/// The one handler of every client HTTP/2 stream (h2c, gRPC included): one stream, one
/// ``Exchange``. It speaks frames itself, converting each head once between HPACK and
/// swift-http-types. Reads are withheld while the exchange says so, which stops HTTP/2 window
/// updates and so applies flow control back to the client.
///
/// The response head and the last body part are held (``HTTP2HeldFrames``) until the next write,
/// flush or the end, so that the end rides on the last frame; a response without a body is one
/// HEADERS frame with END_STREAM, a gRPC Trailers-Only answer as the protocol defines it.
final class HTTP2DownstreamHandler: ChannelDuplexHandler, Downstream {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    let listener: ListenerContext
    /// The connection's: its streams run one at a time on its event loop.
    let scratch: MatchScratch
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    private var requestStarted = false
    private var readGate = ReadGate()
    /// The final response head and latest body part, not written yet.
    private var held = HTTP2HeldFrames()
    /// A gRPC status carried in a response head that went out before the end: repeated as trailers.
    private var statusInHead: HTTPFields?

    init(listener: ListenerContext, scratch: MatchScratch) {
        self.listener = listener
        self.scratch = scratch
    }

    var remoteAddress: SocketAddress? { context?.channel.parent?.remoteAddress }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers) where !requestStarted:
            requestStarted = true
            guard let request = HTTP2Fields.request(from: headers.headers) else {
                // NIO validated the block; what is left is a method or pseudo-header we cannot name.
                context.close(promise: nil)
                return
            }
            let exchange = Exchange(downstream: self, request: request, framing: .none, protocolVersion: .http2,
                                    eventLoop: context.eventLoop)
            self.exchange = exchange
            exchange.start()
            if headers.endStream { self.exchange?.requestEnd(nil) }
        case .headers(let trailers):
            exchange?.requestEnd(HTTP2Fields.fields(from: trailers.headers))
        case .data(let data):
            if case .byteBuffer(let body) = data.data, body.readableBytes > 0 {
                exchange?.requestBody(body)
            }
            if data.endStream { exchange?.requestEnd(nil) }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.flushUpstream()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The client reset the stream or the connection went away.
        if let exchange {
            self.exchange = nil
            exchange.abort("client closed the stream")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let exchange {
            self.exchange = nil
            exchange.abort("client stream failed: \(error)")
        }
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { exchange?.clientBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if readGate.admits(holding: exchange?.holdsClientReads == true) { context.read() }
    }

    func resumeReadsIfPossible() {
        guard exchange?.holdsClientReads != true else { return }
        if readGate.releases() { context?.read() }
    }

    func writeResponseHead(_ response: HTTPResponse, for exchange: Exchange) {
        // HTTP/2 has no 101; other informational heads pass as their own HEADERS frame.
        guard response.status != .switchingProtocols else { return }
        let headers = HTTP2Fields.headers(for: response)
        if response.status.kind == .informational {
            context?.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
            return
        }
        if let status = response.headerFields.firstValue(GRPC.statusField) {
            var fields = HTTPFields()
            fields[GRPC.statusField] = status
            fields[GRPC.messageField] = response.headerFields[GRPC.messageField]
            statusInHead = fields
        }
        held.head = headers
    }

    func writeResponseBody(_ body: ByteBuffer) {
        held.release(write)
        held.body = body
    }

    func flush() {
        held.release(write)
        context?.flush()
    }

    private func write(_ payload: HTTP2Frame.FramePayload) {
        context?.write(wrapOutboundOut(payload), promise: nil)
    }

    func finishResponse(_ trailers: HTTPFields?, for finished: Exchange) {
        if exchange === finished { exchange = nil }
        // A gRPC status in a head that is already out must end the stream in a HEADERS frame, not
        // an empty DATA frame: repeated as trailers. (A head still held ends the stream itself:
        // Trailers-Only.)
        let trailers = trailers ?? (held.isHoldingHead ? nil : statusInHead)
        held.end(trailers: trailers.map(HTTP2Fields.headers(for:)), write)
        context?.flush()
        if !finished.requestEnded {
            // The answer came before the whole request: tell the client to stop sending. After the
            // flush: NIO holds DATA frames until one, and a reset drops what the stream still holds.
            context?.writeAndFlush(wrapOutboundOut(.rstStream(.noError)), promise: nil)
        }
    }

    func abort(for finished: Exchange) {
        if exchange === finished { exchange = nil }
        // Closing a stream channel sends RST_STREAM (CANCEL).
        context?.close(promise: nil)
    }

    func switchProtocols(to upstream: HTTP1UpstreamConnection) {
        upstream.cancel()
        context?.close(promise: nil)
    }
}
