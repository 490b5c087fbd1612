import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import WeftProxy

/// The bytes an upstream connection writes for a request, checked against the framing NIO's
/// request encoder gives (which the writer replaces), and the response decoder told what each
/// request was.
@Suite struct HTTP1RequestWriterTests {
    private func request(_ method: HTTPRequest.Method, _ fields: HTTPFields = [:], path: String = "/items?page=2") -> HTTPRequest {
        HTTPRequest(method: method, scheme: nil, authority: "shop.local", path: path, headerFields: fields)
    }

    private func written(_ request: HTTPRequest, framing: HTTP1Framing = .none, body: [String] = [],
                         trailers: HTTPFields? = nil) throws -> String {
        try bytesWritten { context in
            var writer = HTTP1RequestWriter()
            let target = try! #require(HTTP1RequestWriter.target(of: request))
            writer.writeHead(request, target: target, framing: framing, context: context)
            for part in body { _ = writer.writeBody(ByteBuffer(string: part), context: context) }
            _ = writer.writeEnd(trailers, context: context)
            context.flush()  // the exchange flushes
        }
    }

    @Test func aGetWithoutLengthCarriesNoBodyAndTheAuthorityGoesFirstAsHost() throws {
        let text = try written(request(.get, [.accept: "*/*", .userAgent: "curl/8"]))
        #expect(text == "GET /items?page=2 HTTP/1.1\r\nHost: shop.local\r\nAccept: */*\r\nUser-Agent: curl/8\r\n\r\n",
                "\(text.debugDescription)")
    }

    @Test func aPostWithoutLengthIsChunkedWithTrailers() throws {
        let text = try written(request(.post, [.contentType: "text/plain"]), body: ["hello", "", "world!"],
                               trailers: [HTTPField.Name("x-checksum")!: "ok"])
        #expect(text == "POST /items?page=2 HTTP/1.1\r\nHost: shop.local\r\nContent-Type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
            + "5\r\nhello\r\n6\r\nworld!\r\n0\r\nx-checksum: ok\r\n\r\n", "\(text.debugDescription)")
    }

    @Test func aLengthIsKeptTheRequestsOwnTransferEncodingGoesAndTheBodyIsSentAsItIs() throws {
        let text = try written(request(.put, [.contentLength: "4", .transferEncoding: "chunked"]), framing: .init(upgrade: nil, chunked: true),
                               body: ["data"], trailers: [HTTPField.Name("x-lost")!: "no chunking, no trailers"])
        #expect(text == "PUT /items?page=2 HTTP/1.1\r\nHost: shop.local\r\nContent-Length: 4\r\n\r\ndata", "\(text.debugDescription)")
    }

    @Test func aRequestTheClientSentChunkedStaysChunkedWhateverItsMethod() throws {
        let text = try written(request(.delete), framing: .init(upgrade: nil, chunked: true), body: ["x"])
        #expect(text == "DELETE /items?page=2 HTTP/1.1\r\nHost: shop.local\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
                "\(text.debugDescription)")
    }

    @Test func bodyBytesTheHeadGaveNoFramingAreNotSentToBeReadAsTheNextRequest() throws {
        // An HTTP/2 client may send DATA on a GET without content-length; HTTP/1.1 cannot delimit it.
        let text = try written(request(.get), body: ["GET /smuggled HTTP/1.1\r\n\r\n"])
        #expect(text == "GET /items?page=2 HTTP/1.1\r\nHost: shop.local\r\n\r\n", "\(text.debugDescription)")
    }

    @Test func traceCarriesNoBodyAndNoFraming() throws {
        let text = try written(request(.trace, [.contentLength: "3", .via: "1.1 edge"]), body: ["abc"])
        #expect(text == "TRACE /items?page=2 HTTP/1.1\r\nHost: shop.local\r\nVia: 1.1 edge\r\n\r\n", "\(text.debugDescription)")
    }

    @Test func cookiesSplitByHTTP2AreFoldedIntoOneFieldWhereTheFirstWas() throws {
        let text = try written(request(.get, [.cookie: "a=1", .accept: "*/*", .cookie: "b=2"]))
        #expect(text == "GET /items?page=2 HTTP/1.1\r\nHost: shop.local\r\ncookie: a=1; b=2\r\nAccept: */*\r\n\r\n", "\(text.debugDescription)")
    }

    @Test func manyShortCookiesFoldIntoTheBytesReservedForTheirFields() throws {
        var fields = HTTPFields()
        for index in 0..<50 { fields.append(HTTPField(name: .cookie, value: "c\(index)=\(index)")) }
        let text = try written(request(.get, fields))
        let folded = (0..<50).map { "c\($0)=\($0)" }.joined(separator: "; ")
        #expect(text == "GET /items?page=2 HTTP/1.1\r\nHost: shop.local\r\ncookie: \(folded)\r\n\r\n")
    }

    @Test func anUpgradeIsAskedForInTheConnectionField() throws {
        let text = try written(request(.get, [.secWebSocketKey: "dGhlIHNhbXBsZSBub25jZQ=="], path: "/chat"),
                               framing: .init(upgrade: "websocket", chunked: false))
        #expect(text == "GET /chat HTTP/1.1\r\nHost: shop.local\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            + "connection: upgrade\r\nupgrade: websocket\r\n\r\n", "\(text.debugDescription)")
    }

    @Test func connectNamesTheAuthorityAndARequestWithoutTargetHasNone() throws {
        let tunnel = HTTPRequest(method: .connect, scheme: nil, authority: "db.internal:5432", path: nil)
        #expect(try written(tunnel) == "CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n")
        #expect(HTTP1RequestWriter.target(of: HTTPRequest(method: .get, scheme: nil, authority: "a", path: nil)) == nil)
        #expect(HTTP1RequestWriter.target(of: HTTPRequest(method: .connect, scheme: nil, authority: nil, path: "/")) == nil)
    }

    /// Collects the response parts the decoder fires.
    private final class Parts: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        var seen: [String] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): seen.append("head \(head.status.code)")
            case .body(let body): seen.append("body \(String(buffer: body))")
            case .end: seen.append("end")
            }
        }
    }

    @Test func theDecoderReadsAResponseToHEADWithoutTheBodyItsLengthAnnounces() throws {
        let decoder = UpstreamResponseDecoder()
        let parts = Parts()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
        try channel.pipeline.syncOperations.addHandler(parts)
        decoder.expectResponse(to: .head)
        decoder.expectResponse(to: .get)
        // Told GET for the first, the decoder would take the next response's first bytes as this body.
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
            + "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"))
        #expect(parts.seen == ["head 200", "end", "head 200", "body hi", "end"])
        // A response nobody asked for is an error, not a guess.
        #expect(throws: (any Error).self) {
            try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"))
        }
    }

    /// Counts the flushes that reach the socket.
    private final class FlushCounter: ChannelOutboundHandler {
        typealias OutboundIn = IOData
        var flushes = 0
        func flush(context: ChannelHandlerContext) {
            flushes += 1
            context.flush()
        }
    }

    @Test func theUpstreamConnectionFlushesOnlyWhenItWroteSomething() throws {
        // The exchange asks for a flush after the head, after each client read and at the end;
        // only those with bytes written since the last one reach the socket.
        let channel = EmbeddedChannel()
        let counter = FlushCounter()
        let handler = HTTP1UpstreamHandler(responseDecoder: UpstreamResponseDecoder())
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(handler)
        let get = request(.get)
        handler.writeHead(get, target: try #require(HTTP1RequestWriter.target(of: get)), framing: .none)
        handler.flush()
        handler.writeBody(ByteBuffer(string: "unframed"))  // a GET without length carries no body
        handler.flush()
        handler.writeEnd(nil)
        handler.flush()
        #expect(counter.flushes == 1)

        let post = request(.post)
        handler.writeHead(post, target: try #require(HTTP1RequestWriter.target(of: post)), framing: .none)
        handler.flush()
        handler.writeBody(ByteBuffer())
        handler.flush()
        handler.writeBody(ByteBuffer(string: "abc"))
        handler.flush()
        handler.writeEnd(nil)  // chunked: the last chunk
        handler.flush()
        handler.flush()
        #expect(counter.flushes == 4)
    }
}
