import HTTPTypes
import NIOCore

/// HTTP/1.1's wire format for the pieces requests and responses share: a field line, a body
/// chunk and the last chunk with its trailers (RFC 9112 §5 and §7.1).
enum HTTP1Wire {
    /// Appends `name: value` and a line end.
    static func write(_ field: HTTPField, to buffer: inout ByteBuffer) {
        buffer.writeString(field.name.rawName)
        buffer.writeStaticString(": ")
        field.withUnsafeBytesOfValue { _ = buffer.writeBytes($0) }
        buffer.writeStaticString("\r\n")
    }

    /// Writes `body` as one chunk: its size in hex, the bytes as they are (not copied), a line
    /// end. Nothing for an empty body, which would read as the last chunk.
    static func writeChunk(_ body: ByteBuffer, context: ChannelHandlerContext) {
        guard body.readableBytes > 0 else { return }
        var size = context.channel.allocator.buffer(capacity: 20)
        size.writeString(String(body.readableBytes, radix: 16))
        size.writeStaticString("\r\n")
        context.write(NIOAny(IOData.byteBuffer(size)), promise: nil)
        context.write(NIOAny(IOData.byteBuffer(body)), promise: nil)
        size.moveReaderIndex(to: size.writerIndex - 2)
        context.write(NIOAny(IOData.byteBuffer(size)), promise: nil)
    }

    /// Writes the last chunk, the trailers and the empty line that ends a chunked body.
    static func writeLastChunk(_ trailers: HTTPFields?, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        var end = context.channel.allocator.buffer(capacity: 5)
        end.writeStaticString("0\r\n")
        if let trailers {
            for index in trailers.indices { write(trailers[index], to: &end) }
        }
        end.writeStaticString("\r\n")
        context.write(NIOAny(IOData.byteBuffer(end)), promise: promise)
    }
}
