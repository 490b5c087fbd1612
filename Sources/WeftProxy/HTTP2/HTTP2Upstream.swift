import HTTPTypes
import NIOCore
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2

/// One multiplexed HTTP/2 connection to an upstream endpoint, shared by every request to it
/// from one event loop. NIO queues streams beyond the peer's concurrency limit. Confined to its
/// event loop (it only crosses futures completed there), hence the unchecked `Sendable`.
final class HTTP2UpstreamConnection: @unchecked Sendable {
    let endpoint: ListenAddress
    let channel: any Channel
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    /// Set on GOAWAY: no new streams here; the pool opens another connection.
    var isGoingAway = false

    init(endpoint: ListenAddress, channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
        self.endpoint = endpoint
        self.channel = channel
        self.multiplexer = multiplexer
    }

    var isUsable: Bool { channel.isActive && !isGoingAway }

    /// A new request stream on this connection.
    func openStream() -> EventLoopFuture<any UpstreamStream> {
        let endpoint = self.endpoint
        let promise = channel.eventLoop.makePromise(of: (any UpstreamStream).self)
        multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                let sync = stream.pipeline.syncOperations
                try sync.addHandler(HTTP2FramePayloadToHTTPClientCodec())
                try sync.addHandler(HTTP2UpstreamStream(endpoint: endpoint))
            }
        }.assumeIsolated().whenComplete { result in
            do {
                let handler = try result.get().pipeline.syncOperations.handler(type: HTTP2UpstreamStream.self)
                promise.assumeIsolated().succeed(handler)
            } catch {
                promise.fail(error)
            }
        }
        return promise.futureResult
    }
}

/// Watches an upstream HTTP/2 connection for GOAWAY.
final class HTTP2GoAwayObserver: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    var onGoAway: (() -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .goAway = unwrapInboundIn(data).payload {
            onGoAway?()
        }
        context.fireChannelRead(data)
    }
}

/// One request on an upstream HTTP/2 stream.
final class HTTP2UpstreamStream: ChannelDuplexHandler, UpstreamStream {
    typealias InboundIn = HTTPResponsePart
    typealias OutboundIn = HTTPRequestPart
    typealias OutboundOut = HTTPRequestPart

    let endpoint: ListenAddress
    weak var delegate: (any UpstreamResponseDelegate)?
    /// A stream rides a shared connection that may be going away (GOAWAY, a reset storm limit):
    /// a failure before any response byte, with no request body sent, is safe to retry once.
    let wasReused = true
    private var context: ChannelHandlerContext?
    private var readsPaused = false
    private var pendingRead = false
    private var resetReason: NIOHTTP2.HTTP2ErrorCode?

    init(endpoint: ListenAddress) {
        self.endpoint = endpoint
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func writeHead(_ request: HTTPRequest, framing: HTTP1Framing) {
        var request = request
        if request.scheme == nil { request.scheme = "http" }
        if request.path == nil { request.path = "/" }
        context?.write(wrapOutboundOut(.head(request)), promise: nil)
    }

    func writeBody(_ body: ByteBuffer) {
        context?.write(wrapOutboundOut(.body(body)), promise: nil)
    }

    func writeEnd(_ trailers: HTTPFields?) {
        context?.write(wrapOutboundOut(.end(trailers)), promise: nil)
    }

    func flush() { context?.flush() }

    func pauseReads() { readsPaused = true }

    func resumeReads() {
        readsPaused = false
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    func finished(requestComplete: Bool) {
        delegate = nil
        if !requestComplete { context?.close(promise: nil) }
    }

    func cancel() {
        delegate = nil
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let delegate else { return }
        switch unwrapInboundIn(data) {
        case .head(let response): delegate.upstreamResponseHead(response)
        case .body(let body): delegate.upstreamResponseBody(body)
        case .end(let trailers): delegate.upstreamResponseEnd(trailers)
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
        if let delegate {
            self.delegate = nil
            delegate.upstreamFailed(resetReason.map { .reset("\($0)") } ?? .closed)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let delegate {
            self.delegate = nil
            delegate.upstreamFailed(.error(error))
        }
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }
}
