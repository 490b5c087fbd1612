import HTTPTypes
import NIOCore
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2
import WeftRegex

/// The last handler of every client HTTP/2 stream (h2c, gRPC included): one stream, one
/// ``Exchange``. Reads are withheld while the exchange says so, which stops HTTP/2 window
/// updates and so applies flow control back to the client.
final class HTTP2DownstreamHandler: ChannelDuplexHandler, Downstream {
    typealias InboundIn = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let listener: ListenerContext
    /// The connection's: its streams run one at a time on its event loop.
    let scratch: MatchScratch
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    private var readGate = ReadGate()
    /// A gRPC status carried in the response head (a trailers-only answer).
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
        case .head(let request):
            guard exchange == nil else { return }
            let exchange = Exchange(downstream: self, request: request, framing: .none, protocolVersion: .http2,
                                    eventLoop: context.eventLoop)
            self.exchange = exchange
            exchange.start()
        case .body(let body):
            exchange?.requestBody(body)
        case .end(let trailers):
            exchange?.requestEnd(trailers)
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
        if response.status.kind != .informational, let status = response.headerFields.firstValue(GRPC.statusField) {
            var fields = HTTPFields()
            fields[GRPC.statusField] = status
            fields[GRPC.messageField] = response.headerFields[GRPC.messageField]
            statusInHead = fields
        }
        context?.write(wrapOutboundOut(.head(response)), promise: nil)
    }

    func writeResponseBody(_ body: ByteBuffer) {
        context?.write(wrapOutboundOut(.body(body)), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func finishResponse(_ trailers: HTTPFields?, for finished: Exchange) {
        if exchange === finished { exchange = nil }
        // A trailers-only gRPC answer must end with its status in a HEADERS frame, not an empty DATA
        // frame: repeat the status as trailers.
        let trailers = trailers ?? statusInHead
        context?.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
        if !finished.requestEnded {
            // The answer came before the whole request: tell the client to stop sending.
            context?.triggerUserOutboundEvent(NIOHTTP2FramePayloadToHTTPEvent.reset(code: .noError), promise: nil)
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
