import HTTPTypes
import NIOCore
import WeftFilter
import NIOHTTP1

/// A response the HTTP/1.1 side sends on its own: one line saying what failed, in the body and in
/// `weft-proxy-error`, then the connection closes (the listener keeps serving others).
enum HTTP1ErrorAnswer {
    /// The answer to a request NIO's decoder rejected: malformed → 400, oversized head → 431.
    static func describe(_ error: HTTPParserError) -> (HTTPResponse.Status, String) {
        switch error {
        case .headerOverflow:
            return (.init(code: 431, reasonPhrase: "Request Header Fields Too Large"), "request head is larger than 80 KiB")
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

    /// Sends the proxy's own error answer (``LocalResponse/proxyError(_:_:)``), then closes.
    static func sendAndClose(_ status: HTTPResponse.Status, _ message: String, context: ChannelHandlerContext) {
        let (head, body) = LocalResponse.proxyError(status, message).makeHead(allocator: context.channel.allocator)
        var writer = HTTP1ResponseWriter()
        _ = writer.writeHead(head, http10: false, keepAlive: false, toHEAD: false, context: context)
        writer.writeBody(body, context: context)
        writer.writeEndAndClose(nil, context: context)
    }
}
