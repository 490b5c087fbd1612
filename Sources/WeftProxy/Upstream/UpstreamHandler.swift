import NIOCore
import NIOHTTP1

/// Receives one upstream response at a time: the proxy side of a request in flight.
protocol UpstreamResponseDelegate: AnyObject {
    func upstreamResponseHead(_ head: HTTPResponseHead)
    func upstreamResponseBody(_ body: ByteBuffer)
    func upstreamResponseEnd(_ trailers: HTTPHeaders?)
    func upstreamReadComplete()
    /// The connection closed or failed before the response ended.
    func upstreamFailed(_ error: UpstreamFailure)
    func upstreamWritabilityChanged()
}

/// Why an upstream connection stopped before its response ended.
enum UpstreamFailure: Error {
    case closed
    case error(any Error)
}

/// The last handler of an upstream (client-side) HTTP/1.1 connection. It hands response
/// parts to the request in flight and withholds reads while the client side cannot take more
/// (backpressure); between requests it sits in the pool with no delegate.
final class UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var delegate: (any UpstreamResponseDelegate)?
    /// Called when the connection closes while idle in the pool.
    var onIdleClose: (() -> Void)?
    private(set) var context: ChannelHandlerContext?
    private var readsPaused = false
    private var pendingRead = false

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
        case .head(let head): delegate.upstreamResponseHead(head)
        case .body(let body): delegate.upstreamResponseBody(body)
        case .end(let trailers): delegate.upstreamResponseEnd(trailers)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let delegate {
            self.delegate = nil
            delegate.upstreamFailed(.closed)
        } else {
            onIdleClose?()
            onIdleClose = nil
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

    /// Stops reading from the upstream until ``resumeReads()`` (the client is not keeping up).
    func pauseReads() {
        readsPaused = true
    }

    func resumeReads() {
        readsPaused = false
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }
}
