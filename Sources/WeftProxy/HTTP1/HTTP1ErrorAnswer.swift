import NIOCore
import NIOHTTP1

/// A response the HTTP/1.1 side sends on its own: one line saying what failed, in the body and in
/// `weft-proxy-error`, then the connection closes (the listener keeps serving others).
enum HTTP1ErrorAnswer {
    /// The answer to a request NIO's decoder rejected: malformed → 400, oversized head → 431.
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
