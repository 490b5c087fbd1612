import NIOCore
import NIOHPACK
import NIOHTTP2

/// A stream's outgoing head and latest body part, held back so that the end of the stream rides on
/// the last frame: a message without a body is one HEADERS frame with END_STREAM, a small one
/// HEADERS and one DATA frame with END_STREAM, never a trailing empty DATA frame (which some
/// servers, nginx among them, answer early and reset). Both sides of the proxy hold their heads.
struct HTTP2HeldFrames {
    var head: HPACKHeaders?
    var body: ByteBuffer?

    var isHoldingHead: Bool { head != nil }

    /// Writes what is held, in order, the stream staying open.
    mutating func release(_ write: (HTTP2Frame.FramePayload) -> Void) {
        release(endingStream: false, write)
    }

    /// Ends the stream: with trailers, on the last held frame, or with an empty DATA frame.
    mutating func end(trailers: HPACKHeaders?, _ write: (HTTP2Frame.FramePayload) -> Void) {
        if let trailers {
            release(endingStream: false, write)
            write(.headers(.init(headers: trailers, endStream: true)))
        } else if head != nil || body != nil {
            release(endingStream: true, write)
        } else {
            write(.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
        }
    }

    private mutating func release(endingStream: Bool, _ write: (HTTP2Frame.FramePayload) -> Void) {
        if let held = head {
            head = nil
            write(.headers(.init(headers: held, endStream: endingStream && body == nil)))
        }
        if let held = body {
            body = nil
            write(.data(.init(data: .byteBuffer(held), endStream: endingStream)))
        }
    }
}
