import HTTPTypes
import NIOCore

/// Writes HTTP/1.1 requests from swift-http-types' model straight to an upstream's bytes.
///
/// NIO's `HTTPRequestEncoder` takes `HTTPRequestHead`: every request would be converted to it (a
/// header array and a head object), pass the response decoder's handler (which watches requests
/// to learn their methods) and the encoder, each unwrapping it from `NIOAny` through the
/// runtime's casts, and have its framing headers rewritten in that copy: ~14 000 instructions per
/// proxied request. This writes the same wire format in one buffer per head, with the encoder's
/// framing rules:
/// - `TRACE` carries no body: `content-length` and `transfer-encoding` are left out;
/// - a body with `content-length` goes as it is;
/// - otherwise `POST`, `PUT` and `PATCH`, and any request the client sent chunked, are chunked;
///   other methods without a length carry no body.
/// Body bytes a head gave no framing are not sent (NIO's encoder sent them as they were): HTTP/1.1
/// could not tell where they end, and the upstream would read them as the next request.
/// `transfer-encoding` is always this writer's (it frames the hop, so a request's own goes).
/// Like NIO's conversion, the authority goes first as `Host` and cookies are folded into one field.
struct HTTP1RequestWriter {
    private enum Framing {
        /// No body is sent.
        case none
        /// Body bytes are sent as they are (`content-length`).
        case length
        case chunked
    }

    private var framing = Framing.none

    /// The text between the method and the version: the path, or the authority for `CONNECT`;
    /// nil when the request has none.
    static func target(of request: HTTPRequest) -> String? {
        request.method == .connect ? request.authority : request.path
    }

    /// Writes a request head (`target` from ``target(of:)``).
    mutating func writeHead(_ request: HTTPRequest, target: String, framing client: HTTP1Framing, context: ChannelHandlerContext) {
        let method = request.method
        let fields = request.headerFields
        var hasLength = false
        var sentChunked = client.chunked
        var transferEncodingSeen = false
        let host = request.authority
        // The start line, a `Host` line, the `connection`/`upgrade` lines and a
        // `transfer-encoding` line at most, the empty line. (Folded cookies take no more than
        // the fields they come from.)
        var capacity = method.rawValue.utf8.count + 1 + target.utf8.count + 11 + (host.map { $0.utf8.count + 8 } ?? 0)
            + (client.upgrade.map { $0.utf8.count + 32 } ?? 0) + 28 + 2
        // Fields are read by index: a `for` loop copied each one out whole (and destroyed the copy).
        for index in fields.indices {
            capacity += HTTP1Wire.size(of: fields[index])
            if fields[index].name == .contentLength {
                hasLength = true
            } else if HTTP1Wire.isTransferEncoding(fields[index].name) && !transferEncodingSeen {
                // NIO's encoder goes by the first `transfer-encoding` value.
                transferEncodingSeen = true
                sentChunked = sentChunked || fields[index].value == "chunked"
            }
        }
        let mayHaveBody = method != .trace
        framing = switch method {
        case .trace: .none
        case _ where hasLength: .length
        case .post, .put, .patch: .chunked
        default: sentChunked ? .chunked : .none
        }

        let chunked = framing == .chunked
        let buffer = HTTP1Wire.buffer(capacity: capacity, allocator: context.channel.allocator) { bytes in
            bytes.append(utf8Of: method.rawValue)
            bytes.append(" ")
            bytes.append(utf8Of: target)
            bytes.append(" HTTP/1.1\r\n")
            if let host {
                bytes.append("Host: ")
                bytes.append(utf8Of: host)
                bytes.append("\r\n")
            }
            var cookieWritten = false
            for index in fields.indices {
                let name = fields[index].name
                if HTTP1Wire.isTransferEncoding(name) || (name == .contentLength && !mayHaveBody) { continue }
                if name == .cookie {
                    // HTTP/2 splits cookies into fields of their own; HTTP/1.1 wants one (RFC 9113 §8.2.3).
                    if cookieWritten { continue }
                    cookieWritten = true
                    bytes.append("cookie: ")
                    bytes.append(utf8Of: fields[.cookie] ?? "")
                    bytes.append("\r\n")
                    continue
                }
                bytes.append(fields[index])
            }
            if let upgrade = client.upgrade {
                bytes.append("connection: upgrade\r\nupgrade: ")
                bytes.append(utf8Of: upgrade)
                bytes.append("\r\n")
            }
            if chunked { bytes.append("transfer-encoding: chunked\r\n") }
            bytes.append("\r\n")
        }
        context.write(NIOAny(IOData.byteBuffer(buffer)), promise: nil)
    }

    /// Writes a part of the body, framed as the head decided; whether anything was written.
    func writeBody(_ body: ByteBuffer, context: ChannelHandlerContext) -> Bool {
        guard framing != .none, body.readableBytes > 0 else { return false }
        if framing == .chunked {
            HTTP1Wire.writeChunk(body, context: context)
        } else {
            context.write(NIOAny(IOData.byteBuffer(body)), promise: nil)
        }
        return true
    }

    /// Ends the body: the last chunk and the trailers when chunked; nothing to write otherwise
    /// (trailers need chunking to travel). Whether anything was written.
    func writeEnd(_ trailers: HTTPFields?, context: ChannelHandlerContext) -> Bool {
        guard framing == .chunked else { return false }
        HTTP1Wire.writeLastChunk(trailers, context: context, promise: nil)
        return true
    }
}
