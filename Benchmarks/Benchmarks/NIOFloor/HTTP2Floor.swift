// The HTTP/2 floor: NIO's HTTP/2 stack on both sides, the way NIOHTTP2 is meant to be used — a
// child channel per stream — and nothing else. Each client connection gets one upstream HTTP/2
// connection; each client stream opens an upstream stream and frames are passed through as they
// are (headers, data, trailers), without converting them to HTTP requests. No routing, pooling,
// filters, metrics, flow-control policy or error answers. Socket flushes are held to one per
// connection per event loop tick, as Weft does (otherwise every response is its own write).
import NIOCore
import NIOHTTP2
import NIOPosix

enum HTTP2Floor {
    static func serve(on group: any EventLoopGroup, listenPort: Int, upstreamPort: Int) throws -> any Channel {
        try floorServer(group)
            .childChannelInitializer { client in
                // The upstream connection first; client streams are accepted once it is up.
                connectUpstream(on: client.eventLoop, port: upstreamPort).flatMap { upstream in
                    client.eventLoop.makeCompletedFuture {
                        try client.pipeline.syncOperations.addHandler(OneFlushPerTick())
                        _ = try client.pipeline.syncOperations.configureHTTP2Pipeline(mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()) { stream in
                            stream.eventLoop.makeCompletedFuture {
                                try stream.pipeline.syncOperations.addHandler(ClientStream(upstream: upstream))
                            }
                        }
                        client.closeFuture.whenComplete { _ in upstream.channel.close(promise: nil) }
                    }
                }
            }
            .bind(host: "127.0.0.1", port: listenPort).wait()
    }

    /// An upstream HTTP/2 connection and its stream multiplexer.
    struct Upstream: Sendable {
        let channel: any Channel
        let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    }

    private static func connectUpstream(on loop: any EventLoop, port: Int) -> EventLoopFuture<Upstream> {
        ClientBootstrap(group: loop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(OneFlushPerTick())
                    _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()) { stream in
                        stream.eventLoop.makeSucceededVoidFuture()
                    }
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .flatMapThrowing { channel in
                let multiplexer = try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer()
                return Upstream(channel: channel, multiplexer: multiplexer)
            }
    }
}

/// One client stream: its frames go to a new upstream stream, the answers come back.
final class ClientStream: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let upstream: HTTP2Floor.Upstream
    private var upstreamStream: (any Channel)?
    private var waiting: [HTTP2Frame.FramePayload] = []

    init(upstream: HTTP2Floor.Upstream) {
        self.upstream = upstream
    }

    func channelActive(context: ChannelHandlerContext) {
        let client = context.channel
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        upstream.multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(UpstreamStream(client: client))
            }
        }.whenComplete { result in
            let this = loopBound.value
            guard case .success(let stream) = result else {
                client.close(promise: nil)
                return
            }
            this.upstreamStream = stream
            for payload in this.waiting { stream.write(payload, promise: nil) }
            this.waiting.removeAll()
            stream.flush()
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        switch payload {
        case .headers, .data:
            if let upstreamStream { upstreamStream.write(payload, promise: nil) } else { waiting.append(payload) }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        upstreamStream?.flush()
        context.fireChannelReadComplete()
    }
}

/// One upstream stream: response frames go back to the client stream.
final class UpstreamStream: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload

    private let client: any Channel

    init(client: any Channel) {
        self.client = client
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        switch payload {
        case .headers(let headers):
            client.pipeline.syncOperations.writeAndFlush(NIOAny(HTTP2Frame.FramePayload.headers(headers)), promise: nil)
        case .data(let data):
            client.pipeline.syncOperations.writeAndFlush(NIOAny(HTTP2Frame.FramePayload.data(data)), promise: nil)
        default:
            break
        }
    }
}

/// Holds a connection's flushes until the event loop's tasks run, after the tick's I/O.
final class OneFlushPerTick: ChannelOutboundHandler {
    typealias OutboundIn = Any
    private var pending = false

    func flush(context: ChannelHandlerContext) {
        if pending { return }
        pending = true
        context.eventLoop.assumeIsolated().execute {
            self.pending = false
            context.flush()
        }
    }
}
