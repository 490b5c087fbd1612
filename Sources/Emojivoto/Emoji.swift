import ArgumentParser
import Foundation
import EmojivotoAPI
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOCore
import NIOHTTP1
import NIOPosix

/// `emojivoto emoji`: the catalogue over gRPC, and an old HTTP/1.1 endpoint
/// (`GET /api/find?shortcode=:x:`) on the same port, which fails for the bottom of the list.
struct EmojiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "emoji", abstract: "The emoji service: gRPC EmojiService and the old HTTP/1.1 find endpoint.")

    @OptionGroup var mesh: MeshOptions

    func run() async throws {
        let port = try mesh.listenPort
        // gRPC on a private port; the public port tells HTTP/2 (relayed there) from HTTP/1.1 (served here).
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext)
        let server = GRPCServer(transport: transport, services: [EmojiService()])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            guard let grpcPort = try await transport.listeningAddress.ipv4?.port else { throw ValidationError("gRPC server did not bind") }
            let listener = try await DualProtocolListener.bind(port: port, grpcPort: grpcPort)
            log("emoji listening on 127.0.0.1:\(port): gRPC EmojiService and HTTP/1.1 GET /api/find")
            group.addTask { try await listener.closeFuture.get() }
        }
    }
}

struct EmojiService: Emojivoto_V1_EmojiService.SimpleServiceProtocol {
    func listAll(request: Emojivoto_V1_ListAllRequest, context: ServerContext) async throws -> Emojivoto_V1_ListAllResponse {
        .with { $0.list = Catalogue.all }
    }

    func findByShortcode(request: Emojivoto_V1_FindByShortcodeRequest, context: ServerContext) async throws -> Emojivoto_V1_FindByShortcodeResponse {
        .with { response in
            if let emoji = Catalogue.find(request.shortcode) { response.emoji = emoji }
        }
    }
}

/// One port, two protocols: a connection that opens with the HTTP/2 preface is relayed byte for
/// byte to the gRPC server; anything else is HTTP/1.1, answered here.
enum DualProtocolListener {
    static func bind(port: Int, grpcPort: Int) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ProtocolSniffer(grpcPort: grpcPort))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
    }
}

/// Reads the first bytes, then turns the pipeline into an HTTP/1.1 server or a relay.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private let grpcPort: Int
    private var buffered: ByteBuffer?
    private var decided = false

    init(grpcPort: Int) {
        self.grpcPort = grpcPort
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if buffered == nil { buffered = bytes } else { buffered!.writeBuffer(&bytes) }
        guard !decided, let buffered, buffered.readableBytes >= 3 else { return }
        decided = true
        let channel = context.channel
        if buffered.getString(at: buffered.readerIndex, length: 3) == "PRI" {
            channel.setOption(.autoRead, value: false).whenComplete { _ in }
            let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            let sniffer = NIOLoopBound(self, eventLoop: context.eventLoop)
            ClientBootstrap(group: context.eventLoop)
                .channelInitializer { partner in
                    partner.eventLoop.makeCompletedFuture {
                        try partner.pipeline.syncOperations.addHandler(RelayHandler(partner: channel))
                    }
                }
                .connect(host: "127.0.0.1", port: grpcPort)
                .whenComplete { result in
                    let context = loopBoundContext.value
                    switch result {
                    case .success(let partner):
                        try? context.pipeline.syncOperations.addHandler(RelayHandler(partner: partner), position: .last)
                        partner.writeAndFlush(buffered, promise: nil)
                        context.pipeline.syncOperations.removeHandler(sniffer.value, promise: nil)
                        channel.setOption(.autoRead, value: true).whenComplete { _ in }
                    case .failure:
                        context.close(promise: nil)
                    }
                }
        } else {
            do {
                let sync = context.pipeline.syncOperations
                try sync.configureHTTPServerPipeline(position: .after(self))
                try sync.addHandler(OldFindEndpoint(), position: .last)
                context.fireChannelRead(NIOAny(buffered))
                self.buffered = nil
                sync.removeHandler(self, promise: nil)
            } catch {
                context.close(promise: nil)
            }
        }
    }
}

/// Copies bytes to its partner channel; closes it when this side closes.
final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let partner: any Channel

    init(partner: any Channel) {
        self.partner = partner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner.writeAndFlush(unwrapInboundIn(data), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// `GET /api/find?shortcode=:x:`: the emoji as JSON; 404 for an unknown one; 500 for the emojis
/// this old code path never learned (the bottom of the list).
final class OldFindEndpoint: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private var head: HTTPRequestHead?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            let (status, body) = answer(head)
            var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", String(body.utf8.count))])
            if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            let keepAlive = head.isKeepAlive
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { channel.close(promise: nil) }
            }
            self.head = nil
        }
    }

    private func answer(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String) {
        let parts = head.uri.split(separator: "?", maxSplits: 1)
        guard head.method == .GET, parts.first == "/api/find" else { return (.notFound, #"{"error":"no such endpoint"}"#) }
        let query = parts.count > 1 ? String(parts[1]) : ""
        let shortcode = query.split(separator: "&").compactMap { pair -> String? in
            let kv = pair.split(separator: "=", maxSplits: 1)
            return kv.first == "shortcode" && kv.count == 2 ? String(kv[1]).removingPercentEncoding : nil
        }.first ?? ""
        guard let emoji = Catalogue.find(shortcode) else { return (.notFound, #"{"error":"unknown emoji"}"#) }
        if Catalogue.isBrokenInOldEndpoint(shortcode) {
            return (.internalServerError, #"{"error":"emoji lookup failed"}"#)
        }
        return (.ok, #"{"unicode":"\#(emoji.unicode)","shortcode":"\#(emoji.shortcode)"}"#)
    }
}
