import HTTPTypes
import NIOCore

/// HTTP/1.1's wire format for the pieces requests and responses share: heads written in one
/// piece, a body chunk, and the last chunk with its trailers (RFC 9112 §5 and §7.1).
enum HTTP1Wire {
    /// Whether `name` is `transfer-encoding`, compared by length first: most names are not 17
    /// bytes long, and comparing a longer-than-15-byte string is a call into the standard library.
    static func isTransferEncoding(_ name: HTTPField.Name) -> Bool {
        name.canonicalName.utf8.count == 17 && name == .transferEncoding
    }

    /// The bytes `name: value` and a line end take.
    static func size(of field: HTTPField) -> Int {
        field.name.rawName.utf8.count + field.withUnsafeBytesOfValue(\.count) + 4
    }

    /// A buffer holding what `write` puts into at most `capacity` bytes, reserved at once.
    ///
    /// A head is some twenty pieces (start line, names, separators, values, line ends), and each
    /// of `ByteBuffer`'s own writes checks capacity, uniqueness and bounds and moves the writer
    /// index: ~120 instructions a piece, ~4 300 per proxied HTTP/1.1 request. Here each piece is
    /// one bounds check and one copy.
    static func buffer(capacity: Int, allocator: ByteBufferAllocator, _ write: (inout HeadBytes) -> Void) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: capacity)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { memory in
            var bytes = HeadBytes(memory)
            write(&bytes)
            return bytes.count
        }
        return buffer
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
        let trailers = trailers ?? [:]
        var capacity = 5
        for index in trailers.indices { capacity += size(of: trailers[index]) }
        let end = buffer(capacity: capacity, allocator: context.channel.allocator) { bytes in
            bytes.append("0\r\n")
            for index in trailers.indices { bytes.append(trailers[index]) }
            bytes.append("\r\n")
        }
        context.write(NIOAny(IOData.byteBuffer(end)), promise: promise)
    }
}

/// Memory reserved for a head, filled from the front (``HTTP1Wire/buffer(capacity:allocator:_:)``).
/// Writing past the reserved bytes stops the process: the capacity is computed from the same
/// fields, so that would be a bug, never input.
struct HeadBytes {
    private let memory: UnsafeMutableRawBufferPointer
    private(set) var count = 0

    fileprivate init(_ memory: UnsafeMutableRawBufferPointer) {
        self.memory = memory
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        precondition(bytes.count <= memory.count - count, "an HTTP/1.1 head outgrew the bytes reserved for it")
        memory.baseAddress!.advanced(by: count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    /// (Not `append(_:)`: a string literal would pick that overload over `StaticString`'s.)
    mutating func append(utf8Of text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// `name: value` and a line end.
    @inline(__always)
    mutating func append(_ field: HTTPField) {
        append(utf8Of: field.name.rawName)
        append(": ")
        field.withUnsafeBytesOfValue { append(UnsafeRawBufferPointer($0)) }
        append("\r\n")
    }

    /// A status code as three digits.
    mutating func appendStatusCode(_ code: Int) {
        precondition(memory.count - count >= 3, "an HTTP/1.1 head outgrew the bytes reserved for it")
        let clamped = min(max(code, 0), 999)
        memory[count] = UInt8(ascii: "0") + UInt8(clamped / 100)
        memory[count + 1] = UInt8(ascii: "0") + UInt8(clamped / 10 % 10)
        memory[count + 2] = UInt8(ascii: "0") + UInt8(clamped % 10)
        count += 3
    }
}
