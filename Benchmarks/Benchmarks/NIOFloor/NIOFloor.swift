// The floor under any SwiftNIO HTTP/1.1 proxy on this machine: NIO's own HTTP/1.1 codec on both
// sides and one handler per connection that forwards each request to a dedicated keep-alive
// upstream connection and each response back. No routing, pooling, filters, metrics, timeouts
// or error answers: nothing a real proxy needs, so whatever it costs per request, Weft cannot
// cost less while it is built on NIO's channel pipeline and HTTP codec.
//
//     nio-floor LISTEN_PORT UPSTREAM_PORT            HTTP/1.1 (one event loop, 127.0.0.1)
//     nio-floor --http2 LISTEN_PORT UPSTREAM_PORT    HTTP/2 to HTTP/2 (see HTTP2Floor.swift)
//     nio-floor --http2-frames LISTEN_PORT UPSTREAM_PORT
//                                                    HTTP/2 relayed frame by frame (HTTP2FrameFloor.swift)
import NIOCore
import NIOHTTP1
import NIOPosix

/// The listening side every floor shares: a deep backlog, TCP_NODELAY on accepted connections.
func floorServer(_ group: any EventLoopGroup) -> ServerBootstrap {
    ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 1024)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
}

@main
enum NIOFloor {
    static func main() throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let mode = arguments.first?.hasPrefix("--") == true ? arguments.removeFirst() : "--http1"
        guard ["--http1", "--http2", "--http2-frames"].contains(mode), arguments.count == 2,
              let listenPort = Int(arguments[0]), let upstreamPort = Int(arguments[1]) else {
            print("usage: nio-floor [--http2 | --http2-frames] LISTEN_PORT UPSTREAM_PORT")
            return
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        if mode == "--http2" {
            try HTTP2Floor.serve(on: group, listenPort: listenPort, upstreamPort: upstreamPort).closeFuture.wait()
            return
        }
        if mode == "--http2-frames" {
            try HTTP2FrameFloor.serve(on: group, listenPort: listenPort, upstreamPort: upstreamPort).closeFuture.wait()
            return
        }
        let server = try floorServer(group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
                    try sync.addHandler(ClientSide(upstreamPort: upstreamPort))
                }
            }
            .bind(host: "127.0.0.1", port: listenPort).wait()
        try server.closeFuture.wait()
    }
}

/// The client's connection: requests go to this connection's own upstream connection.
final class ClientSide: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let upstreamPort: Int
    private var upstream: UpstreamSide?
    /// Request parts that arrived before the upstream connection was up.
    private var waiting: [HTTPClientRequestPart] = []

    init(upstreamPort: Int) {
        self.upstreamPort = upstreamPort
    }

    func channelActive(context: ChannelHandlerContext) {
        let client = context.channel
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(HTTPRequestEncoder())
                    try sync.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
                }
            }
            .connect(host: "127.0.0.1", port: upstreamPort)
            .whenComplete { result in
                let this = loopBound.value
                switch result {
                case .success(let channel):
                    let side = UpstreamSide(client: client)
                    do {
                        try channel.pipeline.syncOperations.addHandler(side)
                    } catch {
                        client.close(promise: nil)
                        return
                    }
                    this.upstream = side
                    for part in this.waiting { side.forward(part) }
                    this.waiting.removeAll()
                    side.flush()
                case .failure:
                    client.close(promise: nil)
                }
            }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part: HTTPClientRequestPart
        switch unwrapInboundIn(data) {
        case .head(let head): part = .head(head)
        case .body(let body): part = .body(.byteBuffer(body))
        case .end(let trailers): part = .end(trailers)
        }
        if let upstream { upstream.forward(part) } else { waiting.append(part) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        upstream?.flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.close()
        context.fireChannelInactive()
    }
}

/// The upstream connection of one client connection: responses go back as they come.
final class UpstreamSide: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let client: any Channel
    private var context: ChannelHandlerContext?

    init(client: any Channel) {
        self.client = client
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func forward(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func close() {
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let sync = client.pipeline.syncOperations
        switch unwrapInboundIn(data) {
        case .head(let head): sync.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        case .body(let body): sync.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil)
        case .end(let trailers): sync.writeAndFlush(NIOAny(HTTPServerResponsePart.end(trailers)), promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.close(promise: nil)
        context.fireChannelInactive()
    }
}
