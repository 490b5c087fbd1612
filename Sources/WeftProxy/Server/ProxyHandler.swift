import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import WeftFilter
import WeftRegex

/// The last handler of every client (downstream) HTTP/1.1 connection, inbound or outbound.
///
/// One request is in flight at a time (NIO's pipelining handler queues the next), driven by an
/// ``Exchange``. This handler only adapts the channel: it passes request parts to the exchange,
/// writes response parts for it, and withholds reads while the upstream cannot take more.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let direction: TrafficDirection
    let store: SnapshotStore
    let pools: UpstreamPools
    let logger: Logger
    /// Regex scratch space for this connection's route matches.
    let scratch = MatchScratch()

    private(set) var context: ChannelHandlerContext?
    private var exchange: Exchange?
    private var pendingRead = false
    /// Set after a local answer to a request whose body was still arriving: drop the rest and close.
    private var discardingRequestBody = false

    init(direction: TrafficDirection, store: SnapshotStore, pools: UpstreamPools, logger: Logger) {
        self.direction = direction
        self.store = store
        self.pools = pools
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Client → proxy

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard exchange == nil else {
                // NIO's pipelining handler delivers one request at a time; anything else is a bug.
                logger.error("request head arrived while another request was in flight; closing")
                context.close(promise: nil)
                return
            }
            discardingRequestBody = false
            let snapshot = store.current
            let exchange = Exchange(proxy: self, snapshot: snapshot, head: head, eventLoop: context.eventLoop,
                                    remoteAddress: context.remoteAddress)
            self.exchange = exchange
            exchange.start()
        case .body(let body):
            exchange?.requestBody(body)
        case .end(let trailers):
            if let exchange {
                exchange.requestEnd(trailers)
            } else if discardingRequestBody {
                discardingRequestBody = false
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.flushUpstream()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange {
            self.exchange = nil
            exchange.abort("client closed the connection")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
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
        if exchange?.holdsClientReads == true {
            pendingRead = true
        } else {
            context.read()
        }
    }

    // MARK: Proxy → client (called by the exchange)

    func resumeReadsIfPossible() {
        guard pendingRead, exchange?.holdsClientReads != true, let context else { return }
        pendingRead = false
        context.read()
    }

    func writeResponse(_ part: HTTPServerResponsePart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Writes the last part of a response and decides whether the connection serves another
    /// request: only if both sides wanted keep-alive and the whole request was read.
    func completeResponse(_ trailers: HTTPHeaders?, for finished: Exchange, keepAlive: Bool) {
        guard let context else { return }
        // Cleared before writing `.end`: the pipelining handler may deliver the next request at once.
        if exchange === finished { exchange = nil }
        if !finished.requestEnded { discardingRequestBody = true }
        if keepAlive && finished.requestEnded {
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            resumeReadsIfPossible()
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Closes the client connection at once (a failure mid-response: the client sees it cut short).
    func abortConnection(for finished: Exchange) {
        if exchange === finished { exchange = nil }
        context?.close(promise: nil)
    }

    /// After `101 Switching Protocols`: drop HTTP from both connections and relay bytes.
    func spliceUpgraded(with upstream: UpstreamConnection) {
        guard let context, context.channel.isActive, upstream.channel.isActive else {
            context?.close(promise: nil)
            upstream.close()
            return
        }
        exchange = nil
        let (clientSide, upstreamSide) = RelayHandler.pair()
        do {
            let client = context.pipeline.syncOperations
            try client.addHandler(clientSide)
            let upstreamPipeline = upstream.channel.pipeline.syncOperations
            try upstreamPipeline.addHandler(upstreamSide)
            // The decoders go last, so bytes they already buffered flow into the relay.
            client.removeHandler(context: context, promise: nil)
            for context in [
                try? client.context(handlerType: HTTPErrorResponder.self),
                try? client.context(handlerType: HTTPServerPipelineHandler.self),
                try? client.context(handlerType: NIOHTTPResponseHeadersValidator.self),
                try? client.context(handlerType: HTTPResponseEncoder.self),
                try? client.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self),
            ].compactMap({ $0 }) {
                client.removeHandler(context: context, promise: nil)
            }
            upstreamPipeline.removeHandler(upstream.handler, promise: nil)
            for context in [
                try? upstreamPipeline.context(handlerType: HTTPRequestEncoder.self),
                try? upstreamPipeline.context(handlerType: ByteToMessageHandler<HTTPResponseDecoder>.self),
            ].compactMap({ $0 }) {
                upstreamPipeline.removeHandler(context: context, promise: nil)
            }
            context.channel.read()
            upstream.channel.read()
        } catch {
            logger.warning("could not switch the connection to the upgraded protocol", metadata: ["error": "\(error)"])
            upstream.close()
            context.close(promise: nil)
        }
    }
}
