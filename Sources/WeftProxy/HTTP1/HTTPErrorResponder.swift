import Logging
import NIOCore
import NIOHTTP1

/// Answers requests the HTTP/1.1 decoder rejects (malformed → 400, oversized head → 431) with
/// a `weft-proxy-error` header, then closes that connection; the listener keeps serving others.
final class HTTPErrorResponder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let logger: Logger
    private var responseInProgress = false
    private var failed = false

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        guard !failed else { return }
        failed = true
        let (status, message) = Self.describe(parseError)
        logger.debug("rejected a malformed request", metadata: [
            "peer": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "status": "\(status.code)", "error": "\(message)",
        ])
        guard !responseInProgress else {
            context.close(promise: nil)
            return
        }
        HTTP1ErrorAnswer.sendAndClose(status, message, context: context)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200 || head.status == .switchingProtocols:
            responseInProgress = true
        case .end:
            responseInProgress = false
        default:
            break
        }
        context.write(data, promise: promise)
    }

    static func describe(_ error: HTTPParserError) -> (HTTPResponseStatus, String) {
        switch error {
        case .headerOverflow:
            return (.requestHeaderFieldsTooLarge, "request head is larger than 80 KiB")
        case .invalidMethod:
            return (.badRequest, "malformed request: invalid method")
        case .invalidURL:
            return (.badRequest, "malformed request: invalid request target")
        case .invalidVersion:
            return (.badRequest, "malformed request: invalid HTTP version")
        case .invalidHeaderToken:
            return (.badRequest, "malformed request: invalid header")
        case .invalidContentLength, .unexpectedContentLength:
            return (.badRequest, "malformed request: invalid content-length")
        case .invalidChunkSize:
            return (.badRequest, "malformed request: invalid chunk size")
        default:
            return (.badRequest, "malformed request: \(error)")
        }
    }
}

/// A response the HTTP/1.1 side sends on its own: one line saying what failed, in the body and in
/// `weft-proxy-error`, then the connection closes.
enum HTTP1ErrorAnswer {
    static func sendAndClose(_ status: HTTPResponseStatus, _ message: String, context: ChannelHandlerContext) {
        let body = message + "\n"
        var headers = HTTPHeaders()
        headers.add(name: "weft-proxy-error", value: message)
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(body.utf8.count))
        headers.add(name: "connection", value: "close")
        let head = HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))
        context.write(NIOAny(head), promise: nil)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
