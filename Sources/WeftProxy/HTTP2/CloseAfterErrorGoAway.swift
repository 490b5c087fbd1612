import NIOCore
import NIOHTTP2

/// Closes an HTTP/2 connection once NIO has sent GOAWAY for a connection error: RFC 9113 §5.4.1
/// says the endpoint MUST close the TCP connection after it, and NIO leaves that to its user.
/// NIO reports the error itself with nothing that tells it from a stream error (those arrive
/// unwrapped when no stream channels are used, and must not take the connection's other streams
/// down), so the GOAWAY's code decides: anything but NO_ERROR (a graceful GOAWAY on drain or idle)
/// is a connection error.
///
/// It holds the channel whose NIO handler holds it (strong: see ``Exchange``): the cycle ends when
/// the channel closes and NIO takes the handlers out of its pipeline.
struct CloseAfterErrorGoAway: NIOHTTP2FrameDelegate {
    let channel: any Channel
    /// Told at once, before the close: e.g. so no new stream is opened on the connection meanwhile.
    var connectionFailed: (() -> Void)?

    func wroteFrame(_ frame: HTTP2Frame) {
        guard case .goAway(_, let code, _) = frame.payload, code != .noError else { return }
        connectionFailed?()
        // Not inside NIO's write: on the next tick. The GOAWAY still goes out first: a close
        // flushes what is pending (FlushCoalescingHandler).
        channel.eventLoop.execute { [channel] in channel.close(promise: nil) }
    }
}
