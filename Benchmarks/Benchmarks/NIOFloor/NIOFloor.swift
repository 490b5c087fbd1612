// The floor under any SwiftNIO HTTP/1.1 proxy on this machine: NIO's own HTTP/1.1 decoders on both
// sides and one handler per connection that forwards each request to a dedicated keep-alive
// upstream connection and each response back, its head written as bytes as it came (NIO's
// encoders, and the response decoder watching the requests written through it, cost more: Weft
// writes its heads itself too). No routing, pooling, filters, metrics, timeouts, error answers
// or body framing (bodies go as they come: the benchmark's have a length): nothing a real proxy
// needs, so whatever it costs per request, Weft cannot cost less while it is built on NIO's
// channel pipeline and HTTP/1.1 decoders.
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
                    try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
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
    private var waiting: [HTTPServerRequestPart] = []
    /// Told each request's method, so that it knows whether the response has a body.
    private let responseDecoder = MethodToldResponseDecoder()

    init(upstreamPort: Int) {
        self.upstreamPort = upstreamPort
    }

    func channelActive(context: ChannelHandlerContext) {
        let client = context.channel
        let decoder = responseDecoder
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
                }
            }
            .connect(host: "127.0.0.1", port: upstreamPort)
            .whenComplete { result in
                let this = loopBound.value
                switch result {
                case .success(let channel):
                    let side = UpstreamSide(client: client, decoder: decoder)
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
        let part = unwrapInboundIn(data)
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
    typealias OutboundOut = IOData

    private let client: any Channel
    private let decoder: MethodToldResponseDecoder
    private var context: ChannelHandlerContext?

    init(client: any Channel, decoder: MethodToldResponseDecoder) {
        self.client = client
        self.decoder = decoder
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func forward(_ part: HTTPServerRequestPart) {
        guard let context else { return }
        switch part {
        case .head(let head):
            decoder.expectResponse(to: head.method)
            var bytes = context.channel.allocator.buffer(capacity: 256)
            bytes.writeString(head.method.rawValue)
            bytes.writeStaticString(" ")
            bytes.writeString(head.uri)
            bytes.writeStaticString(" HTTP/1.1\r\n")
            writeFields(head.headers, to: &bytes)
            context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: nil)
        case .body(let body):
            context.write(wrapOutboundOut(.byteBuffer(body)), promise: nil)
        case .end:
            break
        }
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
        case .head(let head):
            var bytes = client.allocator.buffer(capacity: 256)
            bytes.writeStaticString("HTTP/1.1 ")
            bytes.writeString(String(head.status.code))
            bytes.writeStaticString(" ")
            bytes.writeString(head.status.reasonPhrase)
            bytes.writeStaticString("\r\n")
            writeFields(head.headers, to: &bytes)
            sync.write(NIOAny(IOData.byteBuffer(bytes)), promise: nil)
        case .body(let body): sync.write(NIOAny(IOData.byteBuffer(body)), promise: nil)
        case .end: sync.flush()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.close(promise: nil)
        context.fireChannelInactive()
    }
}

/// `name: value` lines and the empty line that ends a head.
func writeFields(_ headers: HTTPHeaders, to bytes: inout ByteBuffer) {
    for (name, value) in headers {
        bytes.writeString(name)
        bytes.writeStaticString(": ")
        bytes.writeString(value)
        bytes.writeStaticString("\r\n")
    }
    bytes.writeStaticString("\r\n")
}

/// NIO's response decoder, told each request's method directly (it needs only that: a response
/// to HEAD has no body) instead of watching the requests written through its handler.
struct MethodToldResponseDecoder: ByteToMessageDecoder {
    typealias InboundOut = HTTPClientResponsePart
    private let decoder = HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)

    func expectResponse(to method: HTTPMethod) {
        decoder.write(data: .head(HTTPRequestHead(version: .http1_1, method: method, uri: "")))
    }

    func decoderAdded(context: ChannelHandlerContext) { decoder.decoderAdded(context: context) }
    func decoderRemoved(context: ChannelHandlerContext) { decoder.decoderRemoved(context: context) }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        try decoder.decode(context: context, buffer: &buffer)
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decoder.decodeLast(context: context, buffer: &buffer, seenEOF: seenEOF)
    }
}
