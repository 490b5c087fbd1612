// The HTTP/2 floor without stream channels: NIO's HTTP/2 connection handler (frame codec, HPACK,
// connection and stream state machines) on both sides, and one handler per connection that relays
// frames between a client connection and its own upstream connection, renumbering streams. This
// is the cheapest way to proxy HTTP/2 on SwiftNIO at all: it measures whether handling streams at
// the frame level (instead of NIO's child channel per stream, `HTTP2Floor`) could take a
// NIO-based proxy to nginx's throughput.
//
// Only what this benchmark's load needs: requests without bodies and small responses. Flow control
// is the minimum that keeps the connection open (the connection window is returned as DATA is
// relayed; stream windows are never exhausted by 64-byte bodies), frames are relayed untouched,
// nothing is validated beyond what NIO does. Flushes are held to one per connection per tick.
import NIOCore
import NIOHTTP2
import NIOPosix

enum HTTP2FrameFloor {
    static func serve(on group: any EventLoopGroup, listenPort: Int, upstreamPort: Int) throws -> any Channel {
        try floorServer(group)
            .childChannelInitializer { client in
                let relay = NIOLoopBound(FrameRelay(), eventLoop: client.eventLoop)
                return ClientBootstrap(group: client.eventLoop)
                    .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .channelInitializer { upstream in
                        upstream.eventLoop.makeCompletedFuture {
                            try upstream.pipeline.syncOperations.addHandler(OneFlushPerTick())
                            try upstream.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .client))
                            try upstream.pipeline.syncOperations.addHandler(FrameRelay.Side(relay: relay.value, role: .upstream))
                        }
                    }
                    .connect(host: "127.0.0.1", port: upstreamPort)
                    .flatMapThrowing { upstream in
                        try client.pipeline.syncOperations.addHandler(OneFlushPerTick())
                        try client.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
                        try client.pipeline.syncOperations.addHandler(FrameRelay.Side(relay: relay.value, role: .client))
                        client.closeFuture.whenComplete { _ in upstream.close(promise: nil) }
                        upstream.closeFuture.whenComplete { _ in client.close(promise: nil) }
                    }
            }
            .bind(host: "127.0.0.1", port: listenPort).wait()
    }
}

/// One client connection and its upstream connection: streams renumbered both ways.
final class FrameRelay {
    var client: ChannelHandlerContext?
    var upstream: ChannelHandlerContext?
    private var nextUpstreamStream = HTTP2StreamID(1)
    private var upstreamFor: [HTTP2StreamID: HTTP2StreamID] = [:]
    private var clientFor: [HTTP2StreamID: HTTP2StreamID] = [:]
    private var clientNeedsFlush = false
    private var upstreamNeedsFlush = false
    /// DATA bytes taken from each side's connection window and not yet returned.
    private var unackedFromClient = 0
    private var unackedFromUpstream = 0

    func fromClient(_ frame: HTTP2Frame) {
        guard let upstream else { return }
        let id: HTTP2StreamID
        switch frame.payload {
        case .headers:
            if let known = upstreamFor[frame.streamID] {
                id = known
            } else {
                id = nextUpstreamStream
                nextUpstreamStream = nextUpstreamStream.advanced(by: 2)
                upstreamFor[frame.streamID] = id
                clientFor[id] = frame.streamID
            }
        case .data(let data):
            guard let known = upstreamFor[frame.streamID] else { return }
            id = known
            unackedFromClient += data.data.readableBytes
        case .rstStream:
            guard let known = upstreamFor.removeValue(forKey: frame.streamID) else { return }
            clientFor[known] = nil
            id = known
        default:
            return
        }
        upstream.write(NIOAny(HTTP2Frame(streamID: id, payload: frame.payload)), promise: nil)
        upstreamNeedsFlush = true
    }

    func fromUpstream(_ frame: HTTP2Frame) {
        guard let client, let id = clientFor[frame.streamID] else { return }
        var ends = false
        switch frame.payload {
        case .headers(let headers):
            ends = headers.endStream
        case .data(let data):
            ends = data.endStream
            unackedFromUpstream += data.data.readableBytes
        case .rstStream:
            ends = true
        default:
            return
        }
        if ends {
            clientFor[frame.streamID] = nil
            upstreamFor[id] = nil
        }
        client.write(NIOAny(HTTP2Frame(streamID: id, payload: frame.payload)), promise: nil)
        clientNeedsFlush = true
    }

    /// After a read from either side: one flush per side, and the connection windows returned.
    func readComplete() {
        if unackedFromUpstream >= 16_384, let upstream {
            upstream.write(NIOAny(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: unackedFromUpstream))), promise: nil)
            unackedFromUpstream = 0
            upstreamNeedsFlush = true
        }
        if unackedFromClient >= 16_384, let client {
            client.write(NIOAny(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: unackedFromClient))), promise: nil)
            unackedFromClient = 0
            clientNeedsFlush = true
        }
        if upstreamNeedsFlush { upstreamNeedsFlush = false; upstream?.flush() }
        if clientNeedsFlush { clientNeedsFlush = false; client?.flush() }
    }

    /// One side's last handler: frames read go to the relay, which writes them to the other side.
    final class Side: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame
        enum Role { case client, upstream }
        let relay: FrameRelay
        let role: Role

        init(relay: FrameRelay, role: Role) {
            self.relay = relay
            self.role = role
        }

        func handlerAdded(context: ChannelHandlerContext) {
            if role == .client { relay.client = context } else { relay.upstream = context }
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            if role == .client { relay.client = nil } else { relay.upstream = nil }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            if role == .client { relay.fromClient(frame) } else { relay.fromUpstream(frame) }
        }

        func channelReadComplete(context: ChannelHandlerContext) { relay.readComplete() }
    }
}
