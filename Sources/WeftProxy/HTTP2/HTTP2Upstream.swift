import HTTPTypes
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOHTTPTypes

/// One multiplexed HTTP/2 connection to an upstream endpoint, shared by every request to it
/// from one event loop. NIO queues streams beyond the peer's concurrency limit. Confined to its
/// event loop (it only crosses futures completed there), hence the unchecked `Sendable`.
final class HTTP2UpstreamConnection: @unchecked Sendable {
    let endpoint: ListenAddress
    let channel: any Channel
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    /// Set on GOAWAY: no new streams here; the pool opens another connection.
    var isGoingAway = false
    /// Set once the server's SETTINGS arrived: it speaks HTTP/2.
    var handshakeDone = false

    init(endpoint: ListenAddress, channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
        self.endpoint = endpoint
        self.channel = channel
        self.multiplexer = multiplexer
    }

    var isUsable: Bool { channel.isActive && !isGoingAway }

    /// A new request stream on this connection.
    func openStream() -> EventLoopFuture<any UpstreamStream> {
        let handler = NIOLoopBound(HTTP2UpstreamStream(endpoint: endpoint, connection: self), eventLoop: channel.eventLoop)
        return multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(handler.value)
            }
        }.assumeIsolated().map { _ in handler.value as any UpstreamStream }.nonisolated()
    }
}

/// Watches an upstream HTTP/2 connection's own frames, SETTINGS (the server speaks HTTP/2) and
/// GOAWAY, and closes the connection on an error.
final class HTTP2ConnectionObserver: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    weak var connection: HTTP2UpstreamConnection?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data).payload {
        case .settings: connection?.handshakeDone = true
        case .goAway: connection?.isGoingAway = true
        default: break
        }
        context.fireChannelRead(data)
    }

    /// NIO answers a connection error with GOAWAY and leaves the close to its user (RFC 9113 says
    /// the endpoint must close); until then new streams would wait on a connection the server has
    /// been told is broken. Stream errors reach here too, not always wrapped as `StreamError`;
    /// like grpc-swift, anything else closes the connection. Its streams fail, and those safe to
    /// repeat are retried on a new one.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !(error is NIOHTTP2Errors.StreamError) else { return }
        connection?.isGoingAway = true
        context.close(promise: nil)
    }
}

/// One request on an upstream HTTP/2 stream. It speaks frames itself (rather than through NIO's
/// HTTP-types codec) so that a request without a body goes out as one HEADERS frame with
/// END_STREAM, as every HTTP/2 client sends it: a separate empty DATA frame makes servers such as
/// nginx answer early and reset the stream.
final class HTTP2UpstreamStream: ChannelDuplexHandler, UpstreamStream {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    let endpoint: ListenAddress
    private weak var connection: HTTP2UpstreamConnection?
    weak var delegate: (any UpstreamResponseDelegate)?
    /// A stream rides a shared connection that may be going away (GOAWAY, a reset storm limit):
    /// a failure before any response byte, with no request body sent, is safe to retry once.
    let wasReused = true
    private var context: ChannelHandlerContext?
    private var readsPaused = false
    private var readGate = ReadGate()
    private var resetReason: NIOHTTP2.HTTP2ErrorCode?
    /// The request head, held until we know whether a body follows.
    private var pendingHead: HPACKHeaders?
    private var receivedFinalHead = false

    init(endpoint: ListenAddress, connection: HTTP2UpstreamConnection) {
        self.endpoint = endpoint
        self.connection = connection
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Request

    func writeHead(_ request: HTTPRequest, framing: HTTP1Framing) {
        pendingHead = HTTP2Fields.headers(for: request)
    }

    func writeBody(_ body: ByteBuffer) {
        writePendingHead(endStream: false)
        context?.write(wrapOutboundOut(.data(.init(data: .byteBuffer(body)))), promise: nil)
    }

    func writeEnd(_ trailers: HTTPFields?) {
        if let trailers {
            writePendingHead(endStream: false)
            context?.write(wrapOutboundOut(.headers(.init(headers: HTTP2Fields.headers(for: trailers), endStream: true))), promise: nil)
        } else if pendingHead != nil {
            writePendingHead(endStream: true)
        } else {
            context?.write(wrapOutboundOut(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))), promise: nil)
        }
    }

    func flush() {
        // A head still held here starts a request whose body is still to come.
        writePendingHead(endStream: false)
        context?.flush()
    }

    private func writePendingHead(endStream: Bool) {
        guard let head = pendingHead else { return }
        pendingHead = nil
        context?.write(wrapOutboundOut(.headers(.init(headers: head, endStream: endStream))), promise: nil)
    }

    func pauseReads() { readsPaused = true }

    func resumeReads() {
        readsPaused = false
        if readGate.releases() { context?.read() }
    }

    func finished(requestComplete: Bool) {
        delegate = nil
        if !requestComplete { context?.close(promise: nil) }
    }

    func cancel() {
        delegate = nil
        context?.close(promise: nil)
    }

    // MARK: Response

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let delegate else { return }
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if receivedFinalHead {
                // Trailers.
                self.delegate = nil
                delegate.upstreamResponseEnd(HTTP2Fields.fields(from: headers.headers))
                return
            }
            guard let response = HTTP2Fields.response(from: headers.headers) else {
                fail(.error(HTTP2UpstreamError.invalidResponseHead))
                return
            }
            if response.status.kind != .informational { receivedFinalHead = true }
            delegate.upstreamResponseHead(response)
            if headers.endStream {
                self.delegate = nil
                delegate.upstreamResponseEnd(nil)
            }
        case .data(let data):
            if case .byteBuffer(let body) = data.data, body.readableBytes > 0 {
                delegate.upstreamResponseBody(body)
            }
            if data.endStream {
                self.delegate = nil
                delegate.upstreamResponseEnd(nil)
            }
        case .rstStream(let code):
            resetReason = code
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let closed = event as? StreamClosedEvent, let reason = closed.reason {
            resetReason = reason
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let resetReason {
            fail(.reset("\(resetReason)"))
        } else if connection?.handshakeDone == false {
            fail(.error(HTTP2UpstreamError.noHTTP2))
        } else {
            fail(.closed)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.error(error))
        context.close(promise: nil)
    }

    private func fail(_ failure: UpstreamFailure) {
        guard let delegate else { return }
        self.delegate = nil
        delegate.upstreamFailed(failure)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if readGate.admits(holding: readsPaused) { context.read() }
    }
}

enum HTTP2UpstreamError: Error, CustomStringConvertible {
    case invalidResponseHead
    case noHTTP2

    var description: String {
        switch self {
        case .invalidResponseHead: return "sent a response without a valid :status"
        case .noHTTP2: return "does not speak HTTP/2 (it closed the connection before the HTTP/2 handshake; the client sent HTTP/2, so the proxy did too)"
        }
    }
}
