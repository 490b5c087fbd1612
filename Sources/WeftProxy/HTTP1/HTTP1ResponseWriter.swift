import HTTPTypes
import NIOCore
import NIOHTTP1

/// Writes HTTP/1.1 responses from swift-http-types' model straight to the client's bytes.
///
/// NIO's `HTTPResponseEncoder` takes `HTTPResponseHead`: every response would be converted to it
/// (a header array and a head object), pass one more handler, and have its framing headers
/// rewritten in that copy. This writes the same wire format in one buffer per head and frames the
/// body the way the encoder does:
/// - no body for `1xx`, `204` and `304` (their `content-length`/`transfer-encoding` dropped) and
///   none for a response to `HEAD` (whose head still says what a `GET` would get);
/// - a body with `content-length` as is;
/// - otherwise chunked for HTTP/1.1 clients and delimited by the close for HTTP/1.0 ones.
struct HTTP1ResponseWriter {
    private enum Framing {
        /// Body bytes are not sent.
        case suppressed
        /// Body bytes are sent as they are (`content-length`, or until the connection closes).
        case raw
        case chunked
    }

    private var framing = Framing.raw

    /// Writes a response head and returns whether the connection can serve another request after
    /// this response. `keepAlive` is what the exchange allows (the client's wish, no upgrade asked
    /// for, no drain); the writer adds what the client must be told — `connection: close` to an
    /// HTTP/1.1 client, `connection: keep-alive` to an HTTP/1.0 one — and keeps nothing open when
    /// the body can only end with the connection (HTTP/1.0 without a length). Informational heads
    /// go out as HTTP/1.1 without a `Connection` field.
    mutating func writeHead(_ response: HTTPResponse, http10: Bool, keepAlive: Bool, toHEAD: Bool,
                            context: ChannelHandlerContext) -> Bool {
        let status = response.status  // parsed from the `:status` field on every read
        let code = status.code
        let informational = (100...199).contains(code)
        let mayHaveBody = !informational && code != 204 && code != 304
        var hasLength = false
        // A status made from a bare code has no phrase: use the standard one, as NIO's encoder does.
        var phrase = status.reasonPhrase
        if phrase.isEmpty { phrase = HTTPResponseStatus(statusCode: code).reasonPhrase }
        // "HTTP/1.1 200 " and a line end, `connection: keep-alive` and `transfer-encoding: chunked`
        // lines at most, the empty line.
        var capacity = 13 + phrase.utf8.count + 2 + 24 + 28 + 2
        // Fields are read by index: a `for` loop copied each one out whole (and destroyed the copy).
        let fields = response.headerFields
        for index in fields.indices {
            capacity += HTTP1Wire.size(of: fields[index])
            if fields[index].name == .contentLength { hasLength = true }
        }
        let chunked = mayHaveBody && !hasLength && !http10
        framing = !mayHaveBody || toHEAD ? .suppressed : (chunked ? .chunked : .raw)
        var keepAlive = keepAlive
        var connection: StaticString?
        if !informational {
            if http10 {
                if framing == .raw && !hasLength { keepAlive = false }
                if keepAlive { connection = "keep-alive" }
            } else if !keepAlive {
                connection = "close"
            }
        }

        let buffer = HTTP1Wire.buffer(capacity: capacity, allocator: context.channel.allocator) { bytes in
            bytes.append(http10 && !informational ? "HTTP/1.0 " : "HTTP/1.1 ")
            bytes.appendStatusCode(code)
            bytes.append(" ")
            bytes.append(utf8Of: phrase)
            bytes.append("\r\n")
            for index in fields.indices {
                // Framing is this writer's: a body-less status carries neither; a length wins over chunking.
                if HTTP1Wire.isTransferEncoding(fields[index].name) || (fields[index].name == .contentLength && !mayHaveBody) { continue }
                bytes.append(fields[index])
            }
            if let connection {
                bytes.append("connection: ")
                bytes.append(connection)
                bytes.append("\r\n")
            }
            if chunked { bytes.append("transfer-encoding: chunked\r\n") }
            bytes.append("\r\n")
        }
        context.write(NIOAny(IOData.byteBuffer(buffer)), promise: nil)
        return keepAlive
    }

    /// Writes a part of the body, framed as the head decided.
    func writeBody(_ body: ByteBuffer, context: ChannelHandlerContext) {
        switch framing {
        case .suppressed:
            return
        case .raw:
            context.write(NIOAny(IOData.byteBuffer(body)), promise: nil)
        case .chunked:
            HTTP1Wire.writeChunk(body, context: context)
        }
    }

    /// Ends the body (the last chunk and trailers when chunked) and flushes; `promise` completes
    /// once everything before it is written.
    func writeEnd(_ trailers: HTTPFields?, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        switch framing {
        case .chunked:
            HTTP1Wire.writeLastChunk(trailers, context: context, promise: promise)
            context.flush()
        case .raw, .suppressed:
            if let promise {
                // Nothing to write, but the promise must follow the bytes before it.
                context.writeAndFlush(NIOAny(IOData.byteBuffer(context.channel.allocator.buffer(capacity: 0))), promise: promise)
            } else {
                context.flush()
            }
        }
    }

    /// Ends the response, then closes the connection once everything is written.
    func writeEndAndClose(_ trailers: HTTPFields?, context: ChannelHandlerContext) {
        let written = context.eventLoop.makePromise(of: Void.self)
        writeEnd(trailers, context: context, promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

}
