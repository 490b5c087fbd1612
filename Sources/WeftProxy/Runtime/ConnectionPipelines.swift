import NIOCore
import NIOHTTP1
import NIOHTTP2
import WeftRegex

/// The pipelines a detected connection gets.
enum ConnectionPipelines {
    /// HTTP/1.1: NIO's request decoder and one handler that runs one exchange at a time (it
    /// queues pipelined requests, answers malformed ones, closes idle connections, handles drain,
    /// and writes responses itself from `HTTPFields`, whose names are validated and whose values
    /// are made legal when set).
    static func addHTTP1(to channel: any Channel, listener: ListenerContext) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
        try sync.addHandler(HTTP1DownstreamHandler(listener: listener))
    }

    /// HTTP/2 (h2c prior knowledge): NIO's HTTP/2 handler runs the protocol, and one handler
    /// routes frames to the connection's streams, one exchange per stream; it also closes idle
    /// connections and answers a drain with GOAWAY (closing once the streams in flight are done).
    static func addHTTP2(to channel: any Channel, listener: ListenerContext) throws {
        let sync = channel.pipeline.syncOperations
        // Ahead of the HTTP/2 handler: it sees the socket's events only, not every HTTP/2 one.
        try sync.addHandler(CloseOnHalfClosure())
        try sync.addHandler(FlushCoalescingHandler())
        try sync.addHandler(NIOHTTP2Handler(mode: .server, frameDelegate: CloseAfterErrorGoAway(channel: channel),
                                            connectionConfiguration: HTTP2ConnectionSettings.connection))
        try sync.addHandler(HTTP2DownstreamConnectionHandler(listener: listener))
    }
}

/// HTTP/2 has no half-closed connections: a client that shuts its side down is gone, so close
/// (listeners allow half-closure only for opaque TCP's sake).
final class CloseOnHalfClosure: ChannelInboundHandler {
    typealias InboundIn = Never

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
